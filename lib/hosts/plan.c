/* plan.c - rank map */
#include <errno.h>
#include <hwloc.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hosts/plan.h"
#include <stdio.h>
#include "lib/hosts/topo.h"

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
static int assign_gpus (struct dc_plan *plan, size_t h, const int *list, int n,
                        int slots)
{
    int per = (n >= slots && slots > 0) ? n / slots : 1;

    if (plan->gpus_per_rank > 0)
        per = plan->gpus_per_rank;

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

/* The options against the host list's np (ranks) and slots. */
static int check_opts (const struct dc_hosts *hosts,
                       const struct dc_plan_opts *o, long np, long slots,
                       dc_error_t *errp)
{
    int saved_errno = errno;

    errno = EINVAL; /* for every refusal below */
    if (o->gpus_per_rank < 0 || o->gpus_per_rank > DC_TOPO_MAX_GPUS)
        return errprintf (errp, "--gpus-per-rank %d: expected 1 to %d",
                          o->gpus_per_rank, DC_TOPO_MAX_GPUS);
    if (o->ppr_n < 0 || o->ppr_n > DC_MAX_SLOTS ||
        (o->ppr_n > 0 && o->ppr_obj != DC_PPR_PACKAGE &&
         o->ppr_obj != DC_PPR_NUMA))
        return errprintf (errp, "--map-by ppr: invalid count or object");
    if (o->np < 0 || np > DC_MAX_SLOTS)
        return errprintf (errp, "-n %ld: expected 1 to %d ranks", o->np,
                          DC_MAX_SLOTS);
    if (np > slots && !o->oversubscribe)
        return errprintf (errp,
                          "-n %ld is more than the %ld slot%s of the host "
                          "list (%s)\nhint: add slots, or allow it with "
                          "--oversubscribe",
                          np, slots, slots == 1 ? "" : "s", hosts->origin);
    errno = saved_errno;
    return 0;
}

static void place (struct dc_plan *plan, long *r, size_t h, int *used,
                   long *placed)
{
    plan->ranks[*r].rank = (int)*r;
    plan->ranks[*r].host = h;
    used[h]++;
    (*r)++;
    (*placed)++;
}

/* One round of --map-by node: one rank a host (within its slots in the
 * first round, its max_slots always). */
static long round_by_node (struct dc_plan *plan, long *r, long np, int *used,
                           bool first)
{
    const struct dc_hosts *hosts = plan->hosts;
    long placed = 0;

    for (size_t h = 0; h < hosts->count && *r < np; h++) {
        const struct dc_host *host = &hosts->v[h];
        if (first && used[h] >= host->slots)
            continue;
        if (host->max_slots && used[h] >= host->max_slots)
            continue;
        place (plan, r, h, used, &placed);
    }
    return placed;
}

/* One round of --map-by slot: a host takes up to its slots. */
static long round_by_slot (struct dc_plan *plan, long *r, long np, int *used)
{
    const struct dc_hosts *hosts = plan->hosts;
    long placed = 0;

    for (size_t h = 0; h < hosts->count && *r < np; h++) {
        const struct dc_host *host = &hosts->v[h];
        for (int s = 0; s < host->slots && *r < np; s++) {
            if (host->max_slots && used[h] >= host->max_slots)
                break;
            place (plan, r, h, used, &placed);
        }
    }
    return placed;
}

/* Place ranks: in rounds; in each round a host takes up to its slots
 * (by slot) or one rank (by node).  Rounds after the first only happen
 * with oversubscribe. */
static int place_ranks (struct dc_plan *plan, const struct dc_plan_opts *o,
                        long np, int *used, dc_error_t *errp)
{
    long r = 0;
    bool first = true;

    while (r < np) {
        long placed;
        if (o->map_by == DC_MAP_BY_NODE) {
            /* one rank per host per pass, until every slot is used */
            placed = round_by_node (plan, &r, np, used, first);
            if (placed == 0 && first) {
                first = false;
                continue;
            }
        } else {
            placed = round_by_slot (plan, &r, np, used);
            first = false;
        }
        if (placed == 0) {
            errno = EINVAL;
            return errprintf (errp,
                              "-n %ld does not fit: every host is at its "
                              "max_slots",
                              np);
        }
    }
    return 0;
}

/* Local ranks and sizes, node ranks (used: ranks on each host, zeroed). */
static int number_ranks (struct dc_plan *plan, int *used, dc_error_t *errp)
{
    size_t nh = plan->hosts->count;
    int *node = calloc (nh, sizeof (int));
    int nn = 0;

    if (!node)
        return errprintf (errp, "out of memory");
    for (int i = 0; i < plan->size; i++)
        plan->ranks[i].local_rank = used[plan->ranks[i].host]++;
    for (size_t h = 0; h < nh; h++)
        node[h] = used[h] > 0 ? nn++ : -1;
    plan->nnodes = nn;
    for (int i = 0; i < plan->size; i++) {
        plan->ranks[i].local_size = used[plan->ranks[i].host];
        plan->ranks[i].node_rank = node[plan->ranks[i].host];
    }
    free (node);
    return 0;
}

struct dc_plan *dc_plan_create (const struct dc_hosts *hosts,
                                const struct dc_plan_opts *o, dc_error_t *errp)
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
    if (check_opts (hosts, o, np, slots, errp) < 0)
        return NULL;
    if (!(plan = calloc (1, sizeof (*plan))) ||
        !(plan->ranks = calloc ((size_t)np, sizeof (struct dc_rank))) ||
        !(used = calloc (nh, sizeof (int)))) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    plan->hosts = hosts;
    plan->size = (int)np;
    plan->gpus_per_rank = o->gpus_per_rank;
    if (o->ppr_n > 0) {
        plan->ppr_n = o->ppr_n;
        plan->ppr_obj = o->ppr_obj;
    }
    if (place_ranks (plan, o, np, used, errp) < 0)
        goto fail;
    memset (used, 0, nh * sizeof (int));
    if (number_ranks (plan, used, errp) < 0)
        goto fail;
    for (size_t h = 0; h < nh; h++) {
        const struct dc_host *host = &hosts->v[h];
        if (host->gpus &&
            assign_gpus (plan, h, host->gpus, host->ngpus, host->slots) < 0) {
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

/* ---- placement on a probed topology ---------------------------------- */

struct place {
    hwloc_bitmap_t *cores; /* PUs of each core */
    int ncores;
    hwloc_bitmap_t all;  /* every PU of the host */
    hwloc_bitmap_t *dom; /* per rank of the host: its GPUs' locality */
};

static hwloc_bitmap_t parse_cpus (const char *s)
{
    hwloc_bitmap_t b = hwloc_bitmap_alloc ();
    if (b && (!s || hwloc_bitmap_list_sscanf (b, s) < 0)) {
        hwloc_bitmap_free (b);
        return NULL;
    }
    return b;
}

static void place_free (struct place *p, int nranks)
{
    if (p->cores)
        for (int i = 0; i < p->ncores; i++)
            hwloc_bitmap_free (p->cores[i]);
    free (p->cores);
    if (p->dom)
        for (int i = 0; i < nranks; i++)
            hwloc_bitmap_free (p->dom[i]);
    free (p->dom);
    hwloc_bitmap_free (p->all);
}

/* The host's cores: topo->core_cpus, or one core per PU when not known. */
static int place_cores (struct place *p, const struct dc_topo *topo,
                        const char *hname, dc_error_t *errp)
{
    if (topo->core_cpus && topo->cores > 0) {
        if (!(p->cores = calloc ((size_t)topo->cores, sizeof (*p->cores))))
            return errprintf (errp, "out of memory");
        p->ncores = topo->cores;
        if (!(p->all = hwloc_bitmap_alloc ()))
            return errprintf (errp, "out of memory");
        for (int i = 0; i < topo->cores; i++) {
            if (!(p->cores[i] = parse_cpus (topo->core_cpus[i])))
                return errprintf (
                    errp, "%s: topology: bad CPU list '%s'", hname,
                    topo->core_cpus[i] ? topo->core_cpus[i] : "(null)");
            hwloc_bitmap_or (p->all, p->all, p->cores[i]);
        }
        return 0;
    }
    if (!(p->all = parse_cpus (topo->cpus)))
        return errprintf (errp, "%s: topology: no CPU list", hname);
    int n = hwloc_bitmap_weight (p->all);
    if (n <= 0 || n > DC_TOPO_MAX_CORES)
        return errprintf (errp, "%s: topology: bad CPU list '%s'", hname,
                          topo->cpus);
    if (!(p->cores = calloc ((size_t)n, sizeof (*p->cores))))
        return errprintf (errp, "out of memory");
    int i = 0, pu;
    hwloc_bitmap_foreach_begin (pu, p->all)
    {
        if ((p->cores[i] = hwloc_bitmap_alloc ()))
            hwloc_bitmap_only (p->cores[i], (unsigned)pu);
        p->ncores = ++i;
        if (!p->cores[i - 1])
            return errprintf (errp, "out of memory");
    }
    hwloc_bitmap_foreach_end ();
    return 0;
}

/* Give the k ranks in group (indices into plan->ranks) the cores of dom. */
static int place_group (struct dc_plan *plan, const struct place *p,
                        hwloc_const_bitmap_t dom, const int *group, int k)
{
    int *local = malloc ((size_t)p->ncores * sizeof (int));
    hwloc_bitmap_t b = hwloc_bitmap_alloc ();
    int nc = 0, rc = -1;

    if (!local || !b)
        goto out;
    for (int c = 0; c < p->ncores; c++)
        if (hwloc_bitmap_intersects (p->cores[c], dom))
            local[nc++] = c;
    for (int i = 0; i < k; i++) {
        struct dc_rank *rk = &plan->ranks[group[i]];
        char *s = NULL;
        hwloc_bitmap_zero (b);
        if (nc == 0) {
            hwloc_bitmap_copy (b, dom);
        } else if (nc >= k) {
            for (int c = (int)((long)i * nc / k);
                 c < (int)((long)(i + 1) * nc / k); c++)
                hwloc_bitmap_or (b, b, p->cores[local[c]]);
        } else {
            hwloc_bitmap_copy (b, p->cores[local[i % nc]]);
        }
        if (nc > 0)
            hwloc_bitmap_and (b, b, dom);
        if (hwloc_bitmap_list_asprintf (&s, b) < 0)
            goto out;
        free (rk->cpus);
        rk->cpus = s;
    }
    rc = 0;
out:
    hwloc_bitmap_free (b);
    free (local);
    return rc;
}

static int topo_gpu_list (struct dc_plan *plan, size_t h,
                          const struct dc_topo *topo, dc_error_t *errp)
{
    const struct dc_host *host = &plan->hosts->v[h];
    int *list;
    int rc;

    if (host->gpus) {
        for (int i = 0; i < host->ngpus; i++)
            if (dc_topo_find_gpu (topo, host->gpus[i]) < 0) {
                errno = EINVAL;
                return errprintf (errp,
                                  "%s: gpus= names GPU %d but the host has "
                                  "%d GPU%s",
                                  host->name, host->gpus[i], topo->ngpus,
                                  topo->ngpus == 1 ? "" : "s");
            }
        return 0;
    }
    if (topo->ngpus == 0)
        return assign_gpus (plan, h, NULL, 0, host->slots);
    if (!(list = malloc ((size_t)topo->ngpus * sizeof (int))))
        return errprintf (errp, "out of memory");
    for (int i = 0; i < topo->ngpus; i++)
        list[i] = topo->gpus[i].index;
    rc = assign_gpus (plan, h, list, topo->ngpus, host->slots);
    free (list);
    if (rc < 0)
        return errprintf (errp, "out of memory");
    return 0;
}

int dc_plan_ppr_objects (const struct dc_topo *topo, enum dc_ppr_obj obj)
{
    int n = 0;

    if (topo)
        n = obj == DC_PPR_NUMA ? topo->numa_nodes : topo->packages;
    return n > 0 ? n : 1;
}

int dc_plan_parse_map_by (const char *s, struct dc_plan_opts *o,
                          dc_error_t *errp)
{
    char *end;
    long n;

    if (!s || !o) {
        errno = EINVAL;
        return errprintf (errp, "--map-by: missing value");
    }
    o->ppr_n = 0;
    o->ppr_obj = DC_PPR_NONE;
    if (!strcmp (s, "slot") || !strcmp (s, "core")) {
        o->map_by = DC_MAP_BY_SLOT;
        return 0;
    }
    if (!strcmp (s, "node")) {
        o->map_by = DC_MAP_BY_NODE;
        return 0;
    }
    if (!strncmp (s, "ppr:", 4) && s[4] >= '0' && s[4] <= '9') {
        errno = 0;
        n = strtol (s + 4, &end, 10);
        if (end != s + 4 && !errno && n >= 1 && n <= DC_MAX_SLOTS &&
            *end == ':' &&
            (!strcmp (end + 1, "package") || !strcmp (end + 1, "socket") ||
             !strcmp (end + 1, "numa"))) {
            o->map_by = DC_MAP_BY_SLOT;
            o->ppr_n = (int)n;
            o->ppr_obj =
                strcmp (end + 1, "numa") ? DC_PPR_PACKAGE : DC_PPR_NUMA;
            return 0;
        }
    }
    errno = EINVAL;
    return errprintf (errp,
                      "--map-by '%s': expected slot, node, ppr:N:package or "
                      "ppr:N:numa (N from 1 to %d)",
                      s, DC_MAX_SLOTS);
}

/* ppr: local rank l of host h on object (l / N) mod objects, the N ranks
 * of an object sharing its cores; without gpus=, its GPUs are those local
 * to the object, in order (gpus_per_rank each, default 1, mod their
 * count). */
static int place_ppr (struct dc_plan *plan, size_t h,
                      const struct dc_topo *topo, struct place *p, int *idx,
                      int *group, dc_error_t *errp)
{
    int nobj = dc_plan_ppr_objects (topo, plan->ppr_obj);
    bool by_numa = plan->ppr_obj == DC_PPR_NUMA;
    const struct dc_host *host = &plan->hosts->v[h];
    int *gl = malloc (((size_t)topo->ngpus + 1) * sizeof (int));
    hwloc_bitmap_t ob = NULL;
    int rc = -1;

    if (!gl) {
        errprintf (errp, "out of memory");
        return -1;
    }
    for (int o = 0; o < nobj; o++) {
        const char *oc = NULL;
        int k = 0, ng = 0;
        if (by_numa && topo->numa && o < topo->numa_nodes)
            oc = topo->numa[o].cpus;
        else if (!by_numa && topo->package_cpus && o < topo->packages)
            oc = topo->package_cpus[o];
        hwloc_bitmap_free (ob);
        if (!(ob = oc ? parse_cpus (oc) : hwloc_bitmap_dup (p->all))) {
            errprintf (errp, "%s: topology: bad CPU list of %s %d", host->name,
                       by_numa ? "NUMA node" : "package", o);
            goto out;
        }
        hwloc_bitmap_and (ob, ob, p->all);
        if (hwloc_bitmap_iszero (ob))
            hwloc_bitmap_copy (ob, p->all);
        /* the object's GPUs */
        for (int g = 0; g < topo->ngpus; g++) {
            hwloc_bitmap_t gb =
                topo->gpus[g].cpus ? parse_cpus (topo->gpus[g].cpus) : NULL;
            if (gb && hwloc_bitmap_intersects (gb, ob))
                gl[ng++] = topo->gpus[g].index;
            hwloc_bitmap_free (gb);
        }
        for (int r = 0; r < plan->size; r++) {
            struct dc_rank *rk = &plan->ranks[r];
            if (rk->host != h || (rk->local_rank / plan->ppr_n) % nobj != o)
                continue;
            idx[k] = rk->local_rank % plan->ppr_n;
            group[k++] = r;
            if (host->gpus)
                continue; /* the hostfile's gpus= wins */
            int per = plan->gpus_per_rank > 0 ? plan->gpus_per_rank : 1;
            free (rk->gpus);
            rk->gpus = NULL;
            rk->ngpus = 0;
            if (ng == 0)
                continue;
            if (!(rk->gpus = malloc ((size_t)per * sizeof (int)))) {
                errprintf (errp, "out of memory");
                goto out;
            }
            for (int j = 0; j < per; j++)
                rk->gpus[j] = gl[((long)idx[k - 1] * per + j) % ng];
            rk->ngpus = per;
        }
        if (k > 0 && place_group (plan, p, ob, group, k) < 0) {
            errprintf (errp, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    hwloc_bitmap_free (ob);
    free (gl);
    return rc;
}

int dc_plan_place (struct dc_plan *plan, size_t h, const struct dc_topo *topo,
                   dc_error_t *errp)
{
    struct place p = {0};
    int *idx = NULL, *group = NULL, *done = NULL;
    int n = 0, rc = -1;
    const char *hname;

    if (!plan || !topo || h >= plan->hosts->count) {
        errno = EINVAL;
        return errprintf (errp, "plan: invalid host or topology");
    }
    hname = plan->hosts->v[h].name;
    if (topo_gpu_list (plan, h, topo, errp) < 0)
        return -1;
    if (place_cores (&p, topo, hname, errp) < 0)
        goto out;
    if (!(idx = malloc ((size_t)plan->size * sizeof (int))) ||
        !(group = malloc ((size_t)plan->size * sizeof (int))) ||
        !(done = calloc ((size_t)plan->size, sizeof (int))) ||
        !(p.dom = calloc ((size_t)plan->size, sizeof (*p.dom)))) {
        errprintf (errp, "out of memory");
        goto out;
    }
    if (plan->ppr_n > 0) {
        rc = place_ppr (plan, h, topo, &p, idx, group, errp);
        goto out;
    }
    /* each rank's locality: the union of its GPUs', else the whole host */
    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *rk = &plan->ranks[r];
        if (rk->host != h)
            continue;
        hwloc_bitmap_t d = hwloc_bitmap_alloc ();
        if (!d) {
            errprintf (errp, "out of memory");
            goto out;
        }
        p.dom[n] = d;
        idx[n++] = r;
        for (int i = 0; i < rk->ngpus; i++) {
            int g = dc_topo_find_gpu (topo, rk->gpus[i]);
            hwloc_bitmap_t gb;
            if (g < 0 || !topo->gpus[g].cpus)
                continue;
            if (!(gb = parse_cpus (topo->gpus[g].cpus))) {
                errprintf (errp, "%s: GPU %d: bad CPU list '%s'", hname,
                           rk->gpus[i], topo->gpus[g].cpus);
                goto out;
            }
            hwloc_bitmap_or (d, d, gb);
            hwloc_bitmap_free (gb);
        }
        hwloc_bitmap_and (d, d, p.all);
        if (hwloc_bitmap_iszero (d))
            hwloc_bitmap_copy (d, p.all);
    }
    /* ranks of equal locality share its cores */
    for (int i = 0; i < n; i++) {
        int k = 0;
        if (done[i])
            continue;
        for (int j = i; j < n; j++)
            if (!done[j] && hwloc_bitmap_isequal (p.dom[i], p.dom[j])) {
                done[j] = 1;
                group[k++] = idx[j];
            }
        if (place_group (plan, &p, p.dom[i], group, k) < 0) {
            errprintf (errp, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    place_free (&p, n);
    free (idx);
    free (group);
    free (done);
    return rc;
}

int dc_plan_place_local (const struct dc_topo *topo, const char *hostname,
                         int local_rank, int local_size, int slots,
                         const int *host_gpus, int nhost_gpus,
                         const struct dc_plan_opts *po, char **cpus,
                         char **gpus, dc_error_t *errp)
{
    struct dc_hosts *hosts = NULL;
    struct dc_plan *plan = NULL;
    char *g = NULL;
    int rc = -1;

    if (!topo || !cpus || !gpus || local_size < 1 ||
        local_size > DC_MAX_SLOTS || local_rank < 0 ||
        local_rank >= local_size || slots < 0 || slots > DC_MAX_SLOTS ||
        nhost_gpus < 0 || nhost_gpus > DC_TOPO_MAX_GPUS ||
        (nhost_gpus > 0 && !host_gpus)) {
        errno = EINVAL;
        return errprintf (errp, "plan: invalid local rank %d of %d", local_rank,
                          local_size);
    }
    *cpus = *gpus = NULL;
    struct dc_plan_opts o = {
        .np = local_size,
        .oversubscribe = true,
        .gpus_per_rank = po ? po->gpus_per_rank : 0,
        .ppr_n = po ? po->ppr_n : 0,
        .ppr_obj = po ? po->ppr_obj : DC_PPR_NONE,
    };
    struct dc_host h = {
        .name = (char *)(hostname && *hostname ? hostname : "localhost"),
        .slots = slots > 0 ? slots : local_size,
        .gpus = (int *)host_gpus,
        .ngpus = nhost_gpus,
    };
    if (!(hosts = dc_hosts_create ("agent")) || dc_hosts_add (hosts, &h) < 0) {
        errprintf (errp, "out of memory");
        goto out;
    }
    if (!(plan = dc_plan_create (hosts, &o, errp)) ||
        dc_plan_place (plan, 0, topo, errp) < 0)
        goto out;
    const struct dc_rank *rk = &plan->ranks[local_rank];
    size_t len = (size_t)rk->ngpus * 12 + 1, n = 0;
    if (!(g = malloc (len))) {
        errprintf (errp, "out of memory");
        goto out;
    }
    g[0] = '\0';
    for (int i = 0; i < rk->ngpus; i++)
        n += (size_t)snprintf (g + n, len - n, "%s%d", i ? "," : "",
                               rk->gpus[i]);
    if (rk->cpus && !(*cpus = strdup (rk->cpus))) {
        errprintf (errp, "out of memory");
        goto out;
    }
    *gpus = g;
    g = NULL;
    rc = 0;
out:
    free (g);
    dc_plan_destroy (plan);
    dc_hosts_destroy (hosts);
    return rc;
}
