/* check.h - what `dcrun check` judges of each host, and its table
 *
 * The CLI probes every host at once (`dcrun --version` and `dcrun probe
 * --json` there, or this host in-process) and fills one struct
 * dc_check_host per host; dc_check_judge then says whether each host is
 * ready: the probe came back, dcrun there is this version, every GPU that
 * gpus= names exists, and a host without gpus= has no more slots than GPUs
 * (when it has GPUs: ranks would share them).  The reason of a host is the
 * probe's when it failed, else the first rule broken, else a summary
 * ("dcrun 0.1.0, 8 GPUs, 32 cores"); a second line, after '\n', is a hint.
 *
 * dc_check_text: "HOST STATUS DETAIL" and a row per host, OK or BAD and the
 * reason, its hint on a row of its own.  dc_check_json: {"ok": bool,
 * "hosts": [{"host", "ok", "stage" (ok, mismatch, connect, dcrun, failed,
 * timeout), "reason" (without its hint), "version" (null unknown),
 * "slots", "gpus" (null unknown), "local"}]}.
 */
#ifndef DC_RUN_CHECK_H
#define DC_RUN_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/hosts/hosts.h"
#include "lib/hosts/topo.h"

enum dc_check_stage {
    DC_CHECK_OK = 0,   /* probed */
    DC_CHECK_CONNECT,  /* unreachable, login or host key refused */
    DC_CHECK_NO_DCRUN, /* dcrun not found there */
    DC_CHECK_FAILED,   /* dcrun there failed, or said something unreadable */
    DC_CHECK_TIMEOUT,
};

struct dc_check_host {
    const struct dc_host *host; /* borrowed: name, slots, gpus= */
    enum dc_check_stage stage;  /* how far the probe got */
    const char *version;        /* dcrun's version there, "" unknown */
    const struct dc_topo *topo; /* borrowed; NULL unless DC_CHECK_OK */
    bool local;                 /* probed in-process */
    char reason[600];           /* in: why the probe failed; out: verdict */
    bool ok;                    /* out: ready */
};

/* Judge n hosts against this dcrun's version: sets ok and the reason of
 * each; returns how many are not ready (-1, EINVAL: NULL arguments, or a
 * probed host without host or topology). */
int dc_check_judge (struct dc_check_host *c, size_t n, const char *version);

/* The stage's name as JSON says it ("connect"); "?" out of range. */
const char *dc_check_stage_name (enum dc_check_stage s);

/* The table and the JSON document of n judged hosts (caller frees); NULL
 * with errno (ENOMEM; EINVAL for NULL c with n > 0). */
char *dc_check_text (const struct dc_check_host *c, size_t n);
char *dc_check_json (const struct dc_check_host *c, size_t n);

/* Whether to probe in-process: -L local, or no -L / auto when every host
 * is this host (launcher: the -L value, NULL none). */
bool dc_check_probe_here (const char *launcher, const struct dc_hosts *hosts);

#endif
