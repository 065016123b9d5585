/* trace.c - Chrome Trace Event Format with cJSON */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lib/formats/trace.h"
#include "lib/util/file.h"

struct dc_trace {
    cJSON *root, *events;
    int n;
};

struct dc_trace *dc_trace_create (void)
{
    struct dc_trace *t = calloc (1, sizeof (*t));
    cJSON *other;

    if (!t)
        return NULL;
    if (!(t->root = cJSON_CreateObject ()) ||
        !cJSON_AddStringToObject (t->root, "displayTimeUnit", "ms") ||
        !(other = cJSON_AddObjectToObject (t->root, "otherData")) ||
        !cJSON_AddStringToObject (other, "dcrun", DCRUN_VERSION) ||
        !(t->events = cJSON_AddArrayToObject (t->root, "traceEvents"))) {
        dc_trace_destroy (t);
        errno = ENOMEM;
        return NULL;
    }
    return t;
}

void dc_trace_destroy (struct dc_trace *t)
{
    if (!t)
        return;
    cJSON_Delete (t->root);
    free (t);
}

/* a new event with ph, name, pid, tid (and cat), appended */
static cJSON *event (struct dc_trace *t, const char *ph, const char *name,
                     const char *cat, int pid, int tid)
{
    cJSON *e;

    if (!t || !name || !cat) {
        errno = EINVAL;
        return NULL;
    }
    if (t->n >= DC_TRACE_MAX_EVENTS) {
        errno = E2BIG;
        return NULL;
    }
    if (!(e = cJSON_CreateObject ())) {
        errno = ENOMEM;
        return NULL;
    }
    if (!cJSON_AddStringToObject (e, "ph", ph) ||
        !cJSON_AddStringToObject (e, "name", name) ||
        (cat[0] && !cJSON_AddStringToObject (e, "cat", cat)) ||
        !cJSON_AddNumberToObject (e, "pid", pid) ||
        !cJSON_AddNumberToObject (e, "tid", tid) ||
        !cJSON_AddItemToArray (t->events, e)) {
        cJSON_Delete (e);
        errno = ENOMEM;
        return NULL;
    }
    t->n++;
    return e;
}

static double clean (double us)
{
    return isfinite (us) && us > 0 ? us : 0;
}

static int meta (struct dc_trace *t, const char *what, int pid, int tid,
                 const char *name)
{
    cJSON *e, *args;

    if (!name) {
        errno = EINVAL;
        return -1;
    }
    if (!(e = event (t, "M", what, "", pid, tid)))
        return -1;
    if (!(args = cJSON_AddObjectToObject (e, "args")) ||
        !cJSON_AddStringToObject (args, "name", name)) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

int dc_trace_process_name (struct dc_trace *t, int pid, const char *name)
{
    return meta (t, "process_name", pid, 0, name);
}

int dc_trace_thread_name (struct dc_trace *t, int pid, int tid,
                          const char *name)
{
    return meta (t, "thread_name", pid, tid, name);
}

cJSON *dc_trace_span (struct dc_trace *t, int pid, int tid, const char *name,
                      const char *cat, double ts_us, double dur_us)
{
    cJSON *e = event (t, "X", name, cat, pid, tid);

    if (!e)
        return NULL;
    cJSON_AddNumberToObject (e, "ts", clean (ts_us));
    cJSON_AddNumberToObject (e, "dur", clean (dur_us));
    return cJSON_AddObjectToObject (e, "args");
}

cJSON *dc_trace_instant (struct dc_trace *t, int pid, int tid, const char *name,
                         const char *cat, double ts_us)
{
    cJSON *e = event (t, "i", name, cat, pid, tid);

    if (!e)
        return NULL;
    cJSON_AddNumberToObject (e, "ts", clean (ts_us));
    cJSON_AddStringToObject (e, "s", "t");
    return cJSON_AddObjectToObject (e, "args");
}

int dc_trace_count (const struct dc_trace *t)
{
    return t ? t->n : 0;
}

char *dc_trace_print (const struct dc_trace *t)
{
    return t ? cJSON_PrintUnformatted (t->root) : NULL;
}

int dc_trace_write (const struct dc_trace *t, const char *path,
                    dc_error_t *errp)
{
    struct dc_atomicfile *f;
    char *s;
    int rc = -1;

    if (!t || !path) {
        errno = EINVAL;
        return errprintf (errp, "trace: NULL argument");
    }
    if (!(s = dc_trace_print (t))) {
        errno = ENOMEM;
        return errprintf (errp, "%s: out of memory", path);
    }
    size_t n = strlen (s);
    s[n] = '\n'; /* replaces the NUL; written with its length */
    if ((f = dc_atomicfile_create (path, errp)) &&
        dc_atomicfile_pwrite (f, s, n + 1, 0, errp) == 0 &&
        dc_atomicfile_commit (f, errp) == 0)
        rc = 0;
    dc_atomicfile_destroy (f);
    free (s);
    return rc;
}
