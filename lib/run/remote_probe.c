/* remote_probe.c - version and probe of every host at once (see remote_probe.h)
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "gpu/probe.h"
#include "lib/run/remote_probe.h"
#include "lib/util/clock.h"

#define ERR_TAIL 1024

struct probe_job {
    struct dc_remote_result *res;
    struct dc_launch *l;
    char *out;
    size_t outlen;
    bool overflow;
    char err[ERR_TAIL];
    size_t errlen;
    bool exited;
    struct dc_launch_status st;
    double run_s;
    const char *dcrun;
    char *const *env; /* the probe's environment (-x), NULL: none */
};

static void on_output (int rank, enum dc_launch_stream s, const char *d,
                       size_t len, void *arg)
{
    struct probe_job *j = arg;

    (void)rank;
    if (s == DC_LAUNCH_STDOUT) {
        if (j->outlen + len > DC_TOPO_MAX_JSON) {
            j->overflow = true;
            return;
        }
        char *p = realloc (j->out, j->outlen + len + 1);
        if (!p) {
            j->overflow = true;
            return;
        }
        j->out = p;
        memcpy (j->out + j->outlen, d, len);
        j->outlen += len;
        j->out[j->outlen] = '\0';
    } else {
        for (size_t i = 0; i < len; i++) {
            if (j->errlen == ERR_TAIL - 1) {
                memmove (j->err, j->err + ERR_TAIL / 2, ERR_TAIL / 2 - 1);
                j->errlen = ERR_TAIL / 2 - 1;
            }
            j->err[j->errlen++] = d[i];
        }
        j->err[j->errlen] = '\0';
    }
}

static void on_exit_cb (const struct dc_launch_status *st, void *arg)
{
    struct probe_job *j = arg;
    j->exited = true;
    j->st = *st;
}

/* The last non-empty line of s (into buf). */
static const char *last_line (const char *s, char *buf, size_t len)
{
    size_t n = strlen (s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    size_t b = n;
    while (b > 0 && s[b - 1] != '\n')
        b--;
    snprintf (buf, len, "%.*s", (int)(n - b), s + b);
    return buf;
}

/* Parse "dcrun X\n...@@\n{"hosts":[{...}]}". */
static void parse (struct probe_job *j)
{
    struct dc_remote_result *r = j->res;
    dc_error_t err;
    char *sep;

    if (!j->out || strncmp (j->out, "dcrun ", 6)) {
        r->stage = DC_REMOTE_FAILED;
        snprintf (r->reason, sizeof (r->reason), "%s --version said no version",
                  j->dcrun);
        return;
    }
    size_t vl = strcspn (j->out + 6, " \n");
    snprintf (r->version, sizeof (r->version), "%.*s", (int)vl, j->out + 6);
    if (!(sep = strstr (j->out, "\n@@\n"))) {
        r->stage = DC_REMOTE_FAILED;
        snprintf (r->reason, sizeof (r->reason), "no probe output");
        return;
    }
    cJSON *o = cJSON_Parse (sep + 4);
    cJSON *hosts = o ? cJSON_GetObjectItemCaseSensitive (o, "hosts") : NULL;
    cJSON *h0 = cJSON_IsArray (hosts) ? cJSON_GetArrayItem (hosts, 0) : NULL;
    char *text = h0 ? cJSON_PrintUnformatted (h0) : NULL;
    if (!text) {
        r->stage = DC_REMOTE_FAILED;
        snprintf (r->reason, sizeof (r->reason),
                  "probe: not the JSON of "
                  "dcrun probe --json");
    } else if (!(r->topo = dc_topo_from_json (text, strlen (text),
                                              r->host->name, &err))) {
        r->stage = DC_REMOTE_FAILED;
        snprintf (r->reason, sizeof (r->reason), "probe: %s", err.text);
    } else
        r->stage = DC_REMOTE_OK;
    free (text);
    cJSON_Delete (o);
}

static void *run_host (void *arg)
{
    struct probe_job *j = arg;
    struct dc_remote_result *r = j->res;
    const struct dc_host *h = r->host;
    dc_error_t err;
    char script[PATH_MAX * 2 + 64];
    char *argv[] = {"sh", "-c", script, NULL};
    char *noenv[] = {NULL};
    struct dc_launch_rank rk = {.rank = 0,
                                .host = h->name,
                                .user = h->user,
                                .port = h->port,
                                .argv = argv,
                                .env = j->env ? j->env : noenv};

    snprintf (script, sizeof (script),
              "command -v '%s' >/dev/null 2>&1 || { echo 'dcrun-not-found' "
              ">&2; exit 127; }; '%s' --version && echo @@ && '%s' probe "
              "--json",
              j->dcrun, j->dcrun, j->dcrun);
    if (dc_launch_spawn (j->l, &rk, 1, &err) < 0) {
        r->stage = DC_REMOTE_CONNECT;
        /* "ssh: HOST: why" -> "why" */
        const char *why = err.text;
        char pre[300];
        snprintf (pre, sizeof (pre), "ssh: %s: ", h->name);
        if (!strncmp (why, pre, strlen (pre)))
            why += strlen (pre);
        snprintf (r->reason, sizeof (r->reason), "%s", why);
        if (!strncmp (why, "no dcrun at '", 13)) {
            /* the ssh launcher looked for it before starting anything */
            r->stage = DC_REMOTE_NO_DCRUN;
            snprintf (r->reason, sizeof (r->reason),
                      "dcrun not found there as %s\nhint: install it there "
                      "or give its path with --remote-dcrun",
                      j->dcrun);
        }
        return NULL;
    }
    double deadline = dc_now () + j->run_s;
    struct pollfd fds[16];
    int running = 1;
    while (running > 0) {
        double left = deadline - dc_now ();
        if (left <= 0) {
            r->stage = DC_REMOTE_TIMEOUT;
            snprintf (r->reason, sizeof (r->reason),
                      "dcrun there did not answer within %g s", j->run_s);
            return NULL;
        }
        int timeout = (int)(left * 1000) + 1;
        int n = dc_launch_pollfds (j->l, fds, 16, &timeout);
        poll (fds, (nfds_t)n, timeout);
        running = dc_launch_progress (j->l, fds, n);
    }
    char line[300];
    if (j->st.failed_start) {
        r->stage = DC_REMOTE_FAILED;
        snprintf (r->reason, sizeof (r->reason), "%s", j->st.reason);
    } else if (strstr (j->err, "dcrun-not-found") ||
               (j->st.code == 127 && !j->outlen)) {
        r->stage = DC_REMOTE_NO_DCRUN;
        snprintf (r->reason, sizeof (r->reason),
                  "dcrun not found there as %s\nhint: install it there or "
                  "give its path with --remote-dcrun",
                  j->dcrun);
    } else if (j->st.signaled || j->st.code != 0) {
        r->stage = DC_REMOTE_FAILED;
        snprintf (
            r->reason, sizeof (r->reason), "dcrun there failed (%s %d)%s%s",
            j->st.signaled ? "signal" : "status",
            j->st.signaled ? j->st.sig : j->st.code, j->errlen ? ": " : "",
            j->errlen ? last_line (j->err, line, sizeof (line)) : "");
    } else if (j->overflow) {
        r->stage = DC_REMOTE_FAILED;
        snprintf (r->reason, sizeof (r->reason), "probe output too large");
    } else
        parse (j);
    return NULL;
}

static void probe_local (struct dc_remote_result *r)
{
    dc_error_t err;

    r->local = true;
    snprintf (r->version, sizeof (r->version), "%s", DCRUN_VERSION);
    if (!(r->topo = dc_probe_host (NULL, &err))) {
        r->stage = DC_REMOTE_FAILED;
        snprintf (r->reason, sizeof (r->reason), "probe: %s", err.text);
    } else {
        r->stage = DC_REMOTE_OK;
        free (r->topo->host);
        r->topo->host = strdup (r->host->name);
    }
}

void dc_remote_probe_all (const struct dc_hosts *hosts,
                          const struct dc_launch_opts *opts, bool local_inproc,
                          struct dc_remote_result *res)
{
    dc_remote_probe_all_env (hosts, opts, local_inproc, NULL, res);
}

void dc_remote_probe_all_env (const struct dc_hosts *hosts,
                              const struct dc_launch_opts *opts,
                              bool local_inproc, char *const *env,
                              struct dc_remote_result *res)
{
    size_t n = hosts->count;
    struct probe_job *jobs = calloc (n ? n : 1, sizeof (*jobs));
    pthread_t *th = calloc (n ? n : 1, sizeof (*th));
    bool *started = calloc (n ? n : 1, sizeof (*started));
    static char self[PATH_MAX];

    if (!opts->remote_dcrun) {
        ssize_t k = readlink ("/proc/self/exe", self, sizeof (self) - 1);
        if (k > 0)
            self[k] = '\0';
        else
            snprintf (self, sizeof (self), "dcrun");
    }
    for (size_t i = 0; i < n; i++) {
        memset (&res[i], 0, sizeof (res[i]));
        res[i].host = &hosts->v[i];
    }
    if (!jobs || !th || !started) {
        for (size_t i = 0; i < n; i++) {
            res[i].stage = DC_REMOTE_FAILED;
            snprintf (res[i].reason, sizeof (res[i].reason), "out of memory");
        }
        goto out;
    }
    /* launchers are created here, in one thread (libssh2_init) */
    for (size_t i = 0; i < n; i++) {
        struct probe_job *j = &jobs[i];
        j->res = &res[i];
        j->env = env;
        if (local_inproc && dc_launch_is_local_host (hosts->v[i].name)) {
            probe_local (&res[i]);
            continue;
        }
        struct dc_launch_opts o = *opts;
        dc_error_t err;
        o.on_output = on_output;
        o.on_exit = on_exit_cb;
        o.arg = j;
        o.cancel_fd = -1;
        o.stdin_null = true;
        j->dcrun = opts->remote_dcrun ? opts->remote_dcrun : self;
        o.remote_dcrun = j->dcrun;
        j->run_s =
            (o.connect_timeout > 0 ? o.connect_timeout : 10) + DC_REMOTE_RUN_S;
        if (!(j->l = dc_launch_create ("ssh", &o, &err))) {
            res[i].stage = DC_REMOTE_CONNECT;
            snprintf (res[i].reason, sizeof (res[i].reason), "%s", err.text);
            continue;
        }
        started[i] = pthread_create (&th[i], NULL, run_host, j) == 0;
        if (!started[i]) {
            res[i].stage = DC_REMOTE_FAILED;
            snprintf (res[i].reason, sizeof (res[i].reason),
                      "cannot start a thread");
        }
    }
    for (size_t i = 0; i < n; i++)
        if (started[i])
            pthread_join (th[i], NULL);
    for (size_t i = 0; i < n; i++) {
        dc_launch_destroy (jobs[i].l);
        free (jobs[i].out);
    }
out:
    free (jobs);
    free (th);
    free (started);
}

void dc_remote_results_free (struct dc_remote_result *res, size_t n)
{
    for (size_t i = 0; res && i < n; i++)
        dc_topo_destroy (res[i].topo);
    free (res);
}
