/* json.h - two habits of building a JSON document with cJSON, once
 *
 * The listings (hosts, probe, check, plan) build an object with an array
 * of items and print it without formatting; each item may fail to be
 * built (out of memory).
 */
#ifndef DC_UTIL_JSON_H
#define DC_UTIL_JSON_H

#include <stdbool.h>

#include <cjson/cJSON.h>

/* Append item to the array arr.  False when item is NULL or cannot be
 * added (then item is deleted): the caller gives up the document. */
bool dc_json_push (cJSON *arr, cJSON *item);

/* The unformatted text of o (malloc'ed; the caller frees), o deleted in
 * any case.  NULL with errno ENOMEM when o is NULL or cannot be printed. */
char *dc_json_take (cJSON *o);

#endif
