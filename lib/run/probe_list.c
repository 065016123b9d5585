/* probe_list.c - every host probed at once, listed (probe_list.h) */
#include <stdio.h>
#include <stdlib.h>

#include "lib/hosts/topo_text.h"
#include "lib/run/check.h"
#include "lib/run/remote_probe.h"
#include "probe_list.h"

char *dc_probe_list (const struct dc_hosts *hosts,
                     const struct dc_launch_opts *lo, bool local, bool json,
                     int *bad)
{
    size_t n = hosts->count;
    struct dc_remote_result *res = calloc (n ? n : 1, sizeof (*res));
    struct dc_topo_entry *e = calloc (n ? n : 1, sizeof (*e));
    char *s = NULL;

    *bad = 0;
    if (res && e) {
        dc_remote_probe_all (hosts, lo, local, res);
        for (size_t i = 0; i < n; i++) {
            e[i] = (struct dc_topo_entry){hosts->v[i].name, res[i].topo,
                                          res[i].reason};
            *bad += !res[i].topo;
        }
        s = json ? dc_topo_list_json (e, n) : dc_topo_list_text (e, n);
    }
    free (e);
    if (res)
        dc_remote_results_free (res, n);
    return s;
}

/* the probe's stages, as lib/run/check.h names them */
static const enum dc_check_stage stage_of[] = {
    [DC_REMOTE_OK] = DC_CHECK_OK,
    [DC_REMOTE_CONNECT] = DC_CHECK_CONNECT,
    [DC_REMOTE_NO_DCRUN] = DC_CHECK_NO_DCRUN,
    [DC_REMOTE_FAILED] = DC_CHECK_FAILED,
    [DC_REMOTE_TIMEOUT] = DC_CHECK_TIMEOUT,
};

char *dc_check_list (const struct dc_hosts *hosts,
                     const struct dc_launch_opts *lo, const char *launcher,
                     const char *version, bool json, int *bad)
{
    size_t n = hosts->count;
    struct dc_remote_result *res = calloc (n ? n : 1, sizeof (*res));
    struct dc_check_host *c = calloc (n ? n : 1, sizeof (*c));
    char *s = NULL;

    *bad = 0;
    if (res && c) {
        dc_remote_probe_all (hosts, lo, dc_check_probe_here (launcher, hosts),
                             res);
        for (size_t i = 0; i < n; i++) {
            c[i] = (struct dc_check_host){.host = res[i].host,
                                          .stage = stage_of[res[i].stage],
                                          .version = res[i].version,
                                          .topo = res[i].topo,
                                          .local = res[i].local};
            snprintf (c[i].reason, sizeof (c[i].reason), "%s", res[i].reason);
        }
        if ((*bad = dc_check_judge (c, n, version)) >= 0)
            s = json ? dc_check_json (c, n) : dc_check_text (c, n);
    }
    free (c);
    if (res)
        dc_remote_results_free (res, n);
    return s;
}
