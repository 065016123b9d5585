/* hostmap.c - a command's host list, and the rank map `dcrun hosts` prints
 * (see hostmap.h) */
#include <string.h>

#include "gpu/probe.h"
#include "lib/hosts/sources.h"
#include "lib/run/hostmap.h"
#include "lib/run/status.h"
#include "lib/util/log.h"

struct dc_hosts *dc_hostmap_hosts (const struct dc_resolve_opts *ro,
                                   const char *exclude, int *statusp,
                                   dc_error_t *errp)
{
    struct dc_hosts *hosts, *kept;

    *statusp = DC_STATUS_INPUT;
    if (!(hosts = dc_hosts_resolve (ro, errp)) || !exclude)
        return hosts;
    /* --exclude: from whatever list was resolved */
    kept = dc_hosts_exclude (hosts, exclude, errp);
    dc_hosts_destroy (hosts);
    if (!kept)
        *statusp = DC_STATUS_USAGE;
    return kept;
}

/* this host: one slot per GPU of topo, or of its own probe; the topology
 * to place the ranks on (NULL: none) */
static const struct dc_topo *this_host (struct dc_hostmap *m,
                                        const struct dc_hostmap_opts *o,
                                        int *statusp, dc_error_t *errp)
{
    const struct dc_topo *topo = o->topo;
    struct dc_resolve_opts ro = o->resolve;
    dc_error_t perr;

    if (!topo && !(topo = m->probed = dc_probe_host (NULL, &perr)))
        dc_info ("%s: %s", o->subject ? o->subject : "hosts", perr.text);
    if (topo && topo->ngpus > 0) {
        ro.local_gpus = topo->ngpus;
        dc_hosts_destroy (m->hosts);
        m->hosts = dc_hostmap_hosts (&ro, o->exclude, statusp, errp);
    }
    return topo;
}

int dc_hostmap_create (struct dc_hostmap *m, const struct dc_hostmap_opts *o,
                       dc_error_t *errp)
{
    struct dc_resolve_opts ro = o->resolve;
    const struct dc_topo *topo = o->topo;
    int status = DC_STATUS_INPUT;

    memset (m, 0, sizeof (*m));
    ro.local_gpus = 0;
    if (!(m->hosts = dc_hostmap_hosts (&ro, o->exclude, &status, errp)))
        return status;
    if (!strcmp (m->hosts->origin, "this host")) {
        topo = this_host (m, o, &status, errp);
        if (!m->hosts)
            goto fail;
    }
    status = DC_STATUS_INPUT;
    if (!(m->plan = dc_plan_create (m->hosts, &o->plan, errp))) {
        errprefix (errp, "%s: ", o->subject ? o->subject : "hosts");
        goto fail;
    }
    for (size_t h = 0; topo && h < m->hosts->count; h++)
        if (dc_plan_place (m->plan, h, topo, errp) < 0)
            goto fail;
    return DC_STATUS_OK;
fail:
    dc_hostmap_destroy (m);
    return status;
}

void dc_hostmap_destroy (struct dc_hostmap *m)
{
    if (!m)
        return;
    dc_plan_destroy (m->plan);
    dc_hosts_destroy (m->hosts);
    dc_topo_destroy (m->probed);
    memset (m, 0, sizeof (*m));
}
