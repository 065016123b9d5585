/* check.c - what `dcrun check` judges of each host, and its table (see
 * check.h) */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/launch/launch.h"
#include "lib/run/check.h"
#include "lib/util/strbuf.h"
#include "lib/util/json.h"

#define TEXT_MAX ((size_t)256 << 20)

static const char *plural (int n)
{
    return n == 1 ? "" : "s";
}

/* a probed host: fills c->reason, returns ok */
static bool judge (struct dc_check_host *c, const char *here)
{
    const struct dc_host *h = c->host;
    const struct dc_topo *t = c->topo;

    if (c->stage != DC_CHECK_OK)
        return false;
    if (strcmp (c->version, here)) {
        snprintf (c->reason, sizeof (c->reason),
                  "dcrun %s there, %s here\nhint: install the same version "
                  "on every host",
                  c->version, here);
        return false;
    }
    for (int i = 0; i < h->ngpus; i++)
        if (dc_topo_find_gpu (t, h->gpus[i]) < 0) {
            snprintf (c->reason, sizeof (c->reason),
                      "gpus= names GPU %d but the host has %d GPU%s",
                      h->gpus[i], t->ngpus, plural (t->ngpus));
            return false;
        }
    if (!h->gpus && t->ngpus > 0 && h->slots > t->ngpus) {
        snprintf (c->reason, sizeof (c->reason),
                  "%d slots but %d GPU%s: ranks would share GPUs", h->slots,
                  t->ngpus, plural (t->ngpus));
        return false;
    }
    snprintf (c->reason, sizeof (c->reason), "dcrun %s, %d GPU%s, %d cores",
              c->version, t->ngpus, plural (t->ngpus), t->cores);
    return true;
}

int dc_check_judge (struct dc_check_host *c, size_t n, const char *version)
{
    int bad = 0;

    if ((!c && n > 0) || !version) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (c[i].stage == DC_CHECK_OK &&
            (!c[i].host || !c[i].topo || !c[i].version)) {
            errno = EINVAL;
            return -1;
        }
    for (size_t i = 0; i < n; i++)
        if (!(c[i].ok = judge (&c[i], version)))
            bad++;
    return bad;
}

const char *dc_check_stage_name (enum dc_check_stage s)
{
    switch (s) {
    case DC_CHECK_OK:
        return "ok";
    case DC_CHECK_CONNECT:
        return "connect";
    case DC_CHECK_NO_DCRUN:
        return "dcrun";
    case DC_CHECK_FAILED:
        return "failed";
    case DC_CHECK_TIMEOUT:
        return "timeout";
    }
    return "?";
}

static const char *name_of (const struct dc_check_host *c)
{
    return c->host && c->host->name ? c->host->name : "?";
}

char *dc_check_text (const struct dc_check_host *c, size_t n)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    if (!c && n > 0) {
        errno = EINVAL;
        return NULL;
    }
    dc_strbuf_printf (&b, "%-24s %-6s %s\n", "HOST", "STATUS", "DETAIL");
    for (size_t i = 0; i < n; i++) {
        const char *r = c[i].reason, *hint = strchr (r, '\n');
        int len = hint ? (int)(hint - r) : (int)strlen (r);
        dc_strbuf_printf (&b, "%-24s %-6s %.*s\n", name_of (&c[i]),
                          c[i].ok ? "OK" : "BAD", len, r);
        if (hint)
            dc_strbuf_printf (&b, "%-24s %-6s %s\n", "", "", hint + 1);
    }
    return dc_strbuf_take (&b);
}

/* one host's object; NULL on ENOMEM */
static cJSON *host_json (const struct dc_check_host *c)
{
    cJSON *j = cJSON_CreateObject ();
    const char *stage = c->ok ? "ok"
                        : c->stage == DC_CHECK_OK
                            ? "mismatch"
                            : dc_check_stage_name (c->stage);
    char reason[sizeof (c->reason)];

    /* the reason without its hint line */
    snprintf (reason, sizeof (reason), "%s", c->reason);
    reason[strcspn (reason, "\n")] = '\0';
    if (!j || !cJSON_AddStringToObject (j, "host", name_of (c)) ||
        !cJSON_AddBoolToObject (j, "ok", c->ok) ||
        !cJSON_AddStringToObject (j, "stage", stage) ||
        !cJSON_AddStringToObject (j, "reason", reason) ||
        !(c->version && c->version[0]
              ? cJSON_AddStringToObject (j, "version", c->version)
              : cJSON_AddNullToObject (j, "version")) ||
        !cJSON_AddNumberToObject (j, "slots", c->host ? c->host->slots : 0) ||
        !(c->topo ? cJSON_AddNumberToObject (j, "gpus", c->topo->ngpus)
                  : cJSON_AddNullToObject (j, "gpus")) ||
        !cJSON_AddBoolToObject (j, "local", c->local)) {
        cJSON_Delete (j);
        return NULL;
    }
    return j;
}

char *dc_check_json (const struct dc_check_host *c, size_t n)
{
    cJSON *o, *arr;
    int bad = 0;

    if (!c && n > 0) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        bad += !c[i].ok;
    if (!(o = cJSON_CreateObject ()) ||
        !cJSON_AddBoolToObject (o, "ok", !bad) ||
        !(arr = cJSON_AddArrayToObject (o, "hosts")))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!dc_json_push (arr, host_json (&c[i])))
            goto out;
    }
    return dc_json_take (o);
out:
    cJSON_Delete (o);
    errno = ENOMEM;
    return NULL;
}

bool dc_check_probe_here (const char *launcher, const struct dc_hosts *hosts)
{
    if (launcher && !strcmp (launcher, "local"))
        return true;
    if (launcher && strcmp (launcher, "auto"))
        return false;
    for (size_t i = 0; hosts && i < hosts->count; i++)
        if (!dc_launch_is_local_host (hosts->v[i].name))
            return false;
    return true;
}
