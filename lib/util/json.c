/* json.c - two habits of building a JSON document with cJSON (json.h) */
#include <errno.h>

#include "lib/util/json.h"

bool dc_json_push (cJSON *arr, cJSON *item)
{
    if (!item)
        return false;
    if (!arr || !cJSON_AddItemToArray (arr, item)) {
        cJSON_Delete (item);
        return false;
    }
    return true;
}

char *dc_json_take (cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted (o) : NULL;

    cJSON_Delete (o);
    if (!s)
        errno = ENOMEM;
    return s;
}
