/* plan_text.c - a rank map as `dcrun hosts` prints it (see plan_text.h) */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>

#include "lib/hosts/plan_text.h"
#include "lib/util/strbuf.h"
#include "lib/util/json.h"

/* rows of about 80 bytes for every rank a plan may have */
#define TEXT_MAX ((size_t)1 << 30)

char *dc_plan_to_text (const struct dc_plan *plan)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    if (!plan) {
        errno = EINVAL;
        return NULL;
    }
    dc_strbuf_printf (&b, "%-6s %-24s %-6s %-5s %-10s %s\n", "RANK", "HOST",
                      "LOCAL", "NODE", "GPUS", "CPUS");
    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *rk = &plan->ranks[r];
        char gpus[64] = "";
        int n = 0;
        for (int i = 0; i < rk->ngpus && n < (int)sizeof (gpus) - 8; i++)
            n += snprintf (gpus + n, sizeof (gpus) - (size_t)n, "%s%d",
                           i ? "," : "", rk->gpus[i]);
        dc_strbuf_printf (&b, "%-6d %-24s %-6d %-5d %-10s %s\n", rk->rank,
                          plan->hosts->v[rk->host].name, rk->local_rank,
                          rk->node_rank, rk->ngpus ? gpus : "-",
                          rk->cpus ? rk->cpus : "-");
    }
    return dc_strbuf_take (&b);
}

/* one rank's object; NULL on ENOMEM */
static cJSON *rank_json (const struct dc_plan *plan, const struct dc_rank *rk)
{
    cJSON *j = cJSON_CreateObject (), *gpus;

    if (!j || !cJSON_AddNumberToObject (j, "rank", rk->rank) ||
        !cJSON_AddStringToObject (j, "host", plan->hosts->v[rk->host].name) ||
        !cJSON_AddNumberToObject (j, "local_rank", rk->local_rank) ||
        !cJSON_AddNumberToObject (j, "node_rank", rk->node_rank) ||
        !(gpus = cJSON_AddArrayToObject (j, "gpus")))
        goto fail;
    for (int i = 0; i < rk->ngpus; i++) {
        cJSON *g = cJSON_CreateNumber (rk->gpus[i]);
        if (!g || !cJSON_AddItemToArray (gpus, g)) {
            cJSON_Delete (g);
            goto fail;
        }
    }
    if (rk->cpus && !cJSON_AddStringToObject (j, "cpus", rk->cpus))
        goto fail;
    return j;
fail:
    cJSON_Delete (j);
    return NULL;
}

char *dc_plan_to_json (const struct dc_plan *plan)
{
    cJSON *o, *ranks;

    if (!plan) {
        errno = EINVAL;
        return NULL;
    }
    if (!(o = cJSON_CreateObject ()) ||
        !cJSON_AddNumberToObject (o, "size", plan->size) ||
        !(ranks = cJSON_AddArrayToObject (o, "ranks")))
        goto out;
    for (int r = 0; r < plan->size; r++) {
        if (!dc_json_push (ranks, rank_json (plan, &plan->ranks[r])))
            goto out;
    }
    return dc_json_take (o);
out:
    cJSON_Delete (o);
    errno = ENOMEM;
    return NULL;
}
