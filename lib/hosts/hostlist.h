/* hostlist.h - Slurm hostlist expressions, both ways
 *
 *   "node[01-04,07]"        node01 node02 node03 node04 node07
 *   "rack[1-2]-gpu[01-16]"  rack1-gpu01 ... rack1-gpu16 rack2-gpu01 ...
 *   "a,b,c[1-3]"            a b c1 c2 c3
 *
 * Zero padding is kept (the width of a range is the width of its low end).
 * Expansion is capped at DC_HOSTLIST_MAX hosts; names longer than
 * DC_HOSTNAME_MAX characters are refused.
 */
#ifndef DC_HOSTLIST_H
#define DC_HOSTLIST_H

#include <stddef.h>

#include "lib/util/error.h"

#define DC_HOSTLIST_MAX 1000000
#define DC_HOSTNAME_MAX 255

struct dc_hostlist;

struct dc_hostlist *dc_hostlist_create (void);
void dc_hostlist_destroy (struct dc_hostlist *hl); /* accepts NULL */

/* Expand expr and append its hosts.  On failure nothing is appended. */
int dc_hostlist_append (struct dc_hostlist *hl, const char *expr,
                        dc_error_t *errp);

/* Append one host name, verbatim (no range expansion). */
int dc_hostlist_push (struct dc_hostlist *hl, const char *host,
                      dc_error_t *errp);

size_t dc_hostlist_count (const struct dc_hostlist *hl);

/* Borrowed; NULL when i is out of range. */
const char *dc_hostlist_nth (const struct dc_hostlist *hl, size_t i);

/* Shortest ranged form, order kept: "node[01-04,07],login".
 * Caller frees.  NULL with errno set on allocation failure. */
char *dc_hostlist_encode (const struct dc_hostlist *hl);

/* Convenience: expand expr into a new hostlist. */
struct dc_hostlist *dc_hostlist_decode (const char *expr, dc_error_t *errp);

#endif
