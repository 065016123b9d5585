/* plan.c - rank map */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

void dc_plan_destroy (struct dc_plan *plan)
{
    if (plan) {
        int saved_errno = errno;
        for (int r = 0; r < plan->size; r++) {
            free (plan->ranks[r].gpus);
            free (plan->ranks[r].cpus);
        }
        free (plan->ranks);
        free (plan);
        errno = saved_errno;
    }
}

const char *dc_plan_host (const struct dc_plan *plan, int r)
{
    if (!plan || r < 0 || r >= plan->size)
        return NULL;
    return plan->hosts->v[plan->ranks[r].host].name;
}

/* Assign GPUs from list (n entries) to the ranks of host h. */
static int assign_gpus (struct dc_plan *plan, size_t h, const int *list,
                        int n, int slots)
{
    int per = (n >= slots && slots > 0) ? n / slots : 1;

    for (int r = 0; r < plan->size; r++) {
        struct dc_rank *rk = &plan->ranks[r];
        if (rk->host != h)
            continue;
        free (rk->gpus);
        rk->gpus = NULL;
        rk->ngpus = 0;
        if (n == 0)
            continue;
        if (!(rk->gpus = malloc ((size_t)per * sizeof (int))))
            return -1;
        for (int j = 0; j < per; j++)
            rk->gpus[j] = list[((long)rk->local_rank * per + j) % n];
        rk->ngpus = per;
    }
    return 0;
}

int dc_plan_set_host_gpus (struct dc_plan *plan, size_t h, int ngpus,
                           dc_error_t *errp)
{
    const struct dc_host *host;
    int *list;
    int rc;

    if (!plan || h >= plan->hosts->count || ngpus < 0) {
        errno = EINVAL;
        return errprintf (errp, "plan: invalid host or GPU count");
    }
    host = &plan->hosts->v[h];
    if (host->gpus)
        return 0; /* the hostfile's gpus= wins */
    if (ngpus == 0)
        return assign_gpus (plan, h, NULL, 0, host->slots);
    if (!(list = malloc ((size_t)ngpus * sizeof (int))))
        return errprintf (errp, "out of memory");
    for (int i = 0; i < ngpus; i++)
        list[i] = i;
    rc = assign_gpus (plan, h, list, ngpus, host->slots);
    free (list);
    if (rc < 0)
        return errprintf (errp, "out of memory");
    return 0;
}

struct dc_plan *dc_plan_create (const struct dc_hosts *hosts,
                                const struct dc_plan_opts *o,
                                dc_error_t *errp)
{
    struct dc_plan *plan = NULL;
    long slots, np;
    int *used = NULL; /* ranks placed on each host */
    size_t nh;

    if (!hosts || hosts->count == 0 || !o) {
        errno = EINVAL;
        errprintf (errp, "no hosts to place ranks on");
        return NULL;
    }
    nh = hosts->count;
    slots = dc_hosts_slots (hosts);
    np = o->np > 0 ? o->np : slots;
    if (o->np < 0 || np > DC_MAX_SLOTS) {
        errno = EINVAL;
        errprintf (errp, "-n %ld: expected 1 to %d ranks", o->np,
                   DC_MAX_SLOTS);
        return NULL;
    }
    if (np > slots && !o->oversubscribe) {
        errno = EINVAL;
        errprintf (errp,
                   "-n %ld is more than the %ld slot%s of the host list "
                   "(%s)\nhint: add slots, or allow it with --oversubscribe",
                   np, slots, slots == 1 ? "" : "s", hosts->origin);
        return NULL;
    }
    if (!(plan = calloc (1, sizeof (*plan)))
        || !(plan->ranks = calloc ((size_t)np, sizeof (struct dc_rank)))
        || !(used = calloc (nh, sizeof (int)))) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    plan->hosts = hosts;
    plan->size = (int)np;

    /* Place ranks: in rounds; in each round a host takes up to its slots
     * (by slot) or one rank (by node).  Rounds after the first only happen
     * with oversubscribe. */
    long r = 0;
    bool first = true;
    while (r < np) {
        long placed = 0;
        if (o->map_by == DC_MAP_BY_NODE) {
            /* one rank per host per pass, until every slot is used */
            for (size_t h = 0; h < nh && r < np; h++) {
                const struct dc_host *host = &hosts->v[h];
                if (first && used[h] >= host->slots)
                    continue;
                if (host->max_slots && used[h] >= host->max_slots)
                    continue;
                plan->ranks[r].rank = (int)r;
                plan->ranks[r].host = h;
                used[h]++;
                r++;
                placed++;
            }
            if (placed == 0 && first) {
                first = false;
                continue;
            }
        } else {
            for (size_t h = 0; h < nh && r < np; h++) {
                const struct dc_host *host = &hosts->v[h];
                for (int s = 0; s < host->slots && r < np; s++) {
                    if (host->max_slots && used[h] >= host->max_slots)
                        break;
                    plan->ranks[r].rank = (int)r;
                    plan->ranks[r].host = h;
                    used[h]++;
                    r++;
                    placed++;
                }
            }
            first = false;
        }
        if (placed == 0) {
            errno = EINVAL;
            errprintf (errp,
                       "-n %ld does not fit: every host is at its max_slots",
                       np);
            goto fail;
        }
    }
    /* local ranks, node ranks */
    memset (used, 0, nh * sizeof (int));
    for (long i = 0; i < np; i++)
        plan->ranks[i].local_rank = used[plan->ranks[i].host]++;
    int *node = calloc (nh, sizeof (int));
    if (!node) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    int nn = 0;
    for (size_t h = 0; h < nh; h++)
        node[h] = used[h] > 0 ? nn++ : -1;
    plan->nnodes = nn;
    for (long i = 0; i < np; i++) {
        plan->ranks[i].local_size = used[plan->ranks[i].host];
        plan->ranks[i].node_rank = node[plan->ranks[i].host];
    }
    free (node);
    for (size_t h = 0; h < nh; h++) {
        const struct dc_host *host = &hosts->v[h];
        if (host->gpus
            && assign_gpus (plan, h, host->gpus, host->ngpus, host->slots)
                   < 0) {
            errprintf (errp, "out of memory");
            goto fail;
        }
    }
    free (used);
    return plan;
fail:
    free (used);
    dc_plan_destroy (plan);
    return NULL;
}
