/* trace.c - Chrome Trace Event Format with cJSON */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lib/formats/report.h"
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

/* ================= a run's trace from its report ================= */

#define LANE_TID                                                               \
    100000 /* tid of a rank's overlap lane L: rank + 1 + L*this                \
            */
#define MAX_RANK 1000000

struct rank_info {
    bool seen;
    int pid;
    double lost;  /* seconds, < 0: not lost */
    double first; /* start of its first chunk span, < 0: none */
    bool has_load;
    int lanes; /* overlap lanes beyond the first */
};

struct build {
    struct dc_trace *t;
    const struct dc_report *r;
    const struct dc_report_chunk *ch;
    size_t nch;
    const struct dc_report_event *ev;
    size_t nev;
    struct rank_info *ri;
    int maxrank;
    const char **pname; /* process names, by pid */
    int npid, hubpid;
    double end; /* the last time of the run */
};

static double us (double s)
{
    return s * 1e6;
}

/* the pid of host name, added when new */
static int host_pid (struct build *b, const char *host)
{
    for (int i = 0; i < b->npid; i++)
        if (!strcmp (b->pname[i], host))
            return i;
    const char **p = realloc (b->pname, (size_t)(b->npid + 1) * sizeof (*p));
    if (!p)
        return 0;
    b->pname = p;
    p[b->npid] = host;
    return b->npid++;
}

static bool is_here (const char *host, const char *me)
{
    return !strcmp (host, "localhost") || !strcmp (host, "127.0.0.1") ||
           !strcmp (host, "::1") || !strcmp (host, me);
}

static int see_rank (struct build *b, int rank)
{
    if (rank < 0 || rank > b->maxrank)
        return -1;
    b->ri[rank].seen = true;
    return 0;
}

/* hosts as processes, the hub's among them (this host) */
static int build_hosts (struct build *b, const char *me)
{
    const struct cJSON *root = dc_report_root (b->r), *e;
    int max = -1;

    cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive (root, "hosts"))
    {
        if (cJSON_IsString (e))
            host_pid (b, e->valuestring);
    }
    b->hubpid = -1;
    for (int i = 0; i < b->npid; i++)
        if (is_here (b->pname[i], me)) {
            b->hubpid = i;
            break;
        }
    if (b->hubpid < 0)
        b->hubpid = host_pid (b, me);
    /* ranks: those of the report, of the chunks and of the events */
    cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive (root, "ranks"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (e, "rank");
        if (cJSON_IsNumber (n) && n->valuedouble >= 0 &&
            n->valuedouble < MAX_RANK && (int)n->valuedouble > max)
            max = (int)n->valuedouble;
    }
    for (size_t i = 0; i < b->nch; i++)
        if (b->ch[i].rank >= 0 && b->ch[i].rank < MAX_RANK &&
            b->ch[i].rank > max)
            max = b->ch[i].rank;
    for (size_t i = 0; i < b->nev; i++)
        if (b->ev[i].rank >= 0 && b->ev[i].rank < MAX_RANK &&
            b->ev[i].rank > max)
            max = b->ev[i].rank;
    b->maxrank = max;
    if (!(b->ri = calloc ((size_t)max + 2, sizeof (*b->ri))))
        return -1;
    cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive (root, "ranks"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (e, "rank");
        if (cJSON_IsNumber (n))
            see_rank (b, (int)n->valuedouble);
    }
    for (size_t i = 0; i < b->nch; i++)
        see_rank (b, b->ch[i].rank);
    for (size_t i = 0; i < b->nev; i++)
        see_rank (b, b->ev[i].rank);
    for (int k = 0; k <= max; k++) {
        const char *h = dc_report_host_of (b->r, k);
        b->ri[k].pid = h ? host_pid (b, h) : b->hubpid;
        b->ri[k].lost = -1;
        b->ri[k].first = -1;
    }
    return 0;
}

static cJSON *span (struct build *b, int rank, int lane, const char *name,
                    const char *cat, double s, double e)
{
    int pid = rank < 0 ? b->hubpid : b->ri[rank].pid;
    int tid = rank < 0 ? DC_TRACE_HUB_TID : rank + 1 + lane * LANE_TID;
    return dc_trace_span (b->t, pid, tid, name, cat, us (s), us (e - s));
}

static cJSON *instant (struct build *b, int rank, const char *name,
                       const char *cat, double s)
{
    int pid = rank < 0 ? b->hubpid : b->ri[rank].pid;
    int tid = rank < 0 ? DC_TRACE_HUB_TID : rank + 1;
    return dc_trace_instant (b->t, pid, tid, name, cat, us (s));
}

static int by_end (const void *a, const void *c)
{
    const struct dc_report_chunk *x = *(const struct dc_report_chunk *const *)a;
    const struct dc_report_chunk *y = *(const struct dc_report_chunk *const *)c;
    bool xf = x->end >= 0, yf = y->end >= 0;
    double kx = xf ? x->end : x->start, ky = yf ? y->end : y->start;

    if (xf != yf)
        return xf ? -1 : 1; /* finished ones first */
    return kx < ky ? -1 : kx > ky ? 1 : 0;
}

static int by_phase_start (const void *a, const void *c)
{
    const struct dc_report_chunk *x = *(const struct dc_report_chunk *const *)a;
    const struct dc_report_chunk *y = *(const struct dc_report_chunk *const *)c;
    return x->phases.start < y->phases.start   ? -1
           : x->phases.start > y->phases.start ? 1
                                               : 0;
}

static void chunk_args (cJSON *a, const struct dc_report_chunk *c)
{
    if (!a)
        return;
    cJSON_AddNumberToObject (a, "id", (double)c->id);
    cJSON_AddNumberToObject (a, "sent", c->start);
    if (c->end >= 0) {
        cJSON_AddNumberToObject (a, "arrived", c->end);
        cJSON_AddNumberToObject (a, "compute", c->compute);
    } else
        cJSON_AddStringToObject (a, "result", "none: the rank was lost");
}

/* Chunks without phases: from the hub's send to the result's arrival,
 * the rank's compute seconds nested at the end.  A rank works on one
 * chunk at a time: the compute spans are laid back from the arrivals
 * (each ends by the next one's start), and a chunk's span starts at its
 * send or at the previous span's end, whichever is later. */
static void plain_chunks (struct build *b, int rank,
                          const struct dc_report_chunk **v, size_t n)
{
    double *cs, *ce;
    size_t fin = 0;

    qsort (v, n, sizeof (*v), by_end);
    while (fin < n && v[fin]->end >= 0)
        fin++;
    if (!(cs = calloc (fin + 1, sizeof (*cs))) ||
        !(ce = calloc (fin + 1, sizeof (*ce)))) {
        free (cs);
        return;
    }
    for (size_t k = fin; k-- > 0;) {
        ce[k] = k + 1 == fin || v[k]->end < cs[k + 1] ? v[k]->end : cs[k + 1];
        cs[k] = ce[k] - v[k]->compute;
    }
    double prev = -1e300;
    for (size_t k = 0; k < n; k++) {
        const struct dc_report_chunk *c = v[k];
        double s = c->start > prev ? c->start : prev, e;
        if (k < fin) {
            if (s > cs[k])
                s = cs[k];
            e = ce[k];
        } else {
            double lost = b->ri[rank].lost >= 0 ? b->ri[rank].lost : b->end;
            e = lost > s ? lost : s;
        }
        if (s < 0)
            s = 0;
        chunk_args (span (b, rank, 0, "chunk", "chunk", s, e), c);
        if (k < fin)
            span (b, rank, 0, "compute", "compute", cs[k] > s ? cs[k] : s, e);
        if (b->ri[rank].first < 0 || s < b->ri[rank].first)
            b->ri[rank].first = s;
        prev = e;
    }
    free (cs);
    free (ce);
}

/* Chunks with phases measured on the rank: read, copy_in, compute,
 * copy_out, write laid end to end from their start; a chunk that overlaps
 * the one before (a rank that overlaps its phases) goes on a lane of its
 * own. */
#define MAX_LANES 8
static void phased_chunks (struct build *b, int rank,
                           const struct dc_report_chunk **v, size_t n)
{
    double lane_end[MAX_LANES];
    int nl = 0;

    qsort (v, n, sizeof (*v), by_phase_start);
    for (size_t k = 0; k < n; k++) {
        const struct dc_report_chunk *c = v[k];
        double ph[DC_CHUNK_NPHASES], s = c->phases.start, tot = 0;
        int l = 0;
        dc_chunk_phases_get (&c->phases, ph);
        for (int i = 0; i < DC_CHUNK_NPHASES; i++)
            tot += ph[i];
        while (l < nl && lane_end[l] > s + 1e-9)
            l++;
        if (l == nl) {
            if (nl < MAX_LANES)
                nl++;
            else
                l = nl - 1;
        }
        lane_end[l] = s + tot;
        if (l > b->ri[rank].lanes)
            b->ri[rank].lanes = l;
        chunk_args (span (b, rank, l, "chunk", "chunk", s, s + tot), c);
        for (int i = 0; i < DC_CHUNK_NPHASES; i++) {
            if (ph[i] > 0)
                span (b, rank, l, dc_chunk_phase_names[i], "phase", s,
                      s + ph[i]);
            s += ph[i];
        }
        if (b->ri[rank].first < 0 || c->phases.start < b->ri[rank].first)
            b->ri[rank].first = c->phases.start;
    }
}

static void build_chunks (struct build *b)
{
    const struct dc_report_chunk **plain, **phased;

    if (b->nch == 0)
        return;
    plain = calloc (b->nch, sizeof (*plain));
    phased = calloc (b->nch, sizeof (*phased));
    for (int k = 0; plain && phased && k <= b->maxrank; k++) {
        size_t np = 0, nq = 0;
        for (size_t i = 0; i < b->nch; i++)
            if (b->ch[i].rank == k) {
                if (b->ch[i].has_phases)
                    phased[nq++] = &b->ch[i];
                else
                    plain[np++] = &b->ch[i];
            }
        if (np)
            plain_chunks (b, k, plain, np);
        if (nq)
            phased_chunks (b, k, phased, nq);
    }
    free (plain);
    free (phased);
    /* retries: a chunk sent again, to whichever rank (ids are the chunks'
     * indices: a table of the last rank each went to); a layer layout's
     * micro-batches pass every stage once and are never sent again */
    if (cJSON_GetObjectItemCaseSensitive (dc_report_root (b->r), "pipeline"))
        return;
    uint64_t maxid = 0;
    for (size_t i = 0; i < b->nch; i++)
        if (b->ch[i].id > maxid)
            maxid = b->ch[i].id;
    int *last = maxid < 4 * (uint64_t)b->nch + 1024
                    ? malloc ((size_t)(maxid + 1) * sizeof (*last))
                    : NULL;
    if (!last)
        return;
    for (uint64_t i = 0; i <= maxid; i++)
        last[i] = -1;
    for (size_t i = 0; i < b->nch; i++) {
        const struct dc_report_chunk *c = &b->ch[i];
        if (last[c->id] >= 0 && c->rank >= 0 && c->rank <= b->maxrank) {
            cJSON *a = instant (b, c->rank, "retry", "retry", c->start);
            if (a) {
                cJSON_AddNumberToObject (a, "id", (double)c->id);
                cJSON_AddNumberToObject (a, "previous_rank", last[c->id]);
            }
        }
        last[c->id] = c->rank;
    }
    free (last);
}

static void build_events (struct build *b)
{
    for (size_t i = 0; i < b->nev; i++) {
        const struct dc_report_event *e = &b->ev[i];
        cJSON *a;
        if (e->rank > b->maxrank)
            continue;
        double end = e->end;
        /* a rank's load ends where its first chunk began (that chunk's
         * start may be laid back from its result's arrival) */
        if (e->rank >= 0 && !strcmp (e->cat, "load") &&
            b->ri[e->rank].first >= 0 && end > b->ri[e->rank].first)
            end = b->ri[e->rank].first > e->start ? b->ri[e->rank].first
                                                  : e->start;
        if (e->ph == 'X')
            a = span (b, e->rank < 0 ? -1 : e->rank, 0, e->name, e->cat,
                      e->start, end);
        else
            a = instant (b, e->rank < 0 ? -1 : e->rank, e->name, e->cat,
                         e->start);
        if (a && isfinite (e->n))
            cJSON_AddNumberToObject (a, "n", e->n);
        if (a && e->detail[0])
            cJSON_AddStringToObject (a, "detail", e->detail);
    }
}

struct dc_trace *dc_trace_from_report (const struct dc_report *r,
                                       dc_error_t *errp)
{
    struct build b = {.r = r};
    char me[256] = "localhost";
    double launch_end = 0;

    if (!r) {
        errno = EINVAL;
        errprintf (errp, "trace: NULL report");
        return NULL;
    }
    gethostname (me, sizeof (me) - 1);
    me[sizeof (me) - 1] = '\0';
    b.ch = dc_report_chunks (r, &b.nch);
    b.ev = dc_report_events (r, &b.nev);
    if (!(b.t = dc_trace_create ()) || build_hosts (&b, me) < 0)
        goto nomem;
    /* the run's end, the ranks' losses, the launch's end */
    for (size_t i = 0; i < b.nch; i++) {
        if (b.ch[i].start > b.end)
            b.end = b.ch[i].start;
        if (b.ch[i].end > b.end)
            b.end = b.ch[i].end;
    }
    for (size_t i = 0; i < b.nev; i++) {
        const struct dc_report_event *e = &b.ev[i];
        if (e->end > b.end)
            b.end = e->end;
        if (e->ph == 'i' && !strcmp (e->name, "lost") && e->rank >= 0 &&
            e->rank <= b.maxrank && b.ri[e->rank].lost < 0)
            b.ri[e->rank].lost = e->start;
        if (e->ph == 'X' && e->rank < 0 && !strcmp (e->name, "launch"))
            launch_end = e->end;
        if (e->ph == 'X' && e->rank >= 0 && e->rank <= b.maxrank &&
            !strcmp (e->cat, "load"))
            b.ri[e->rank].has_load = true;
    }
    /* the hosts that hold the hub or a rank */
    for (int i = 0; i < b.npid; i++) {
        bool used = i == b.hubpid;
        for (int k = 0; !used && k <= b.maxrank; k++)
            used = b.ri[k].seen && b.ri[k].pid == i;
        if (used)
            dc_trace_process_name (b.t, i, b.pname[i]);
    }
    dc_trace_thread_name (b.t, b.hubpid, DC_TRACE_HUB_TID, "hub (coordinator)");
    build_chunks (&b);
    build_events (&b);
    for (int k = 0; k <= b.maxrank; k++) {
        char name[64];
        if (!b.ri[k].seen)
            continue;
        snprintf (name, sizeof (name), "rank %d", k);
        dc_trace_thread_name (b.t, b.ri[k].pid, k + 1, name);
        for (int l = 1; l <= b.ri[k].lanes; l++) {
            snprintf (name, sizeof (name), "rank %d (overlap %d)", k, l);
            dc_trace_thread_name (b.t, b.ri[k].pid, k + 1 + l * LANE_TID, name);
        }
        /* infer: connecting and loading the model, until the first chunk */
        if (!b.ri[k].has_load && b.ri[k].first > launch_end)
            span (&b, k, 0, "connect+load", "load", launch_end, b.ri[k].first);
    }
    free (b.ri);
    free (b.pname);
    return b.t;
nomem:
    free (b.ri);
    free (b.pname);
    dc_trace_destroy (b.t);
    errno = ENOMEM;
    errprintf (errp, "trace: out of memory");
    return NULL;
}

int dc_trace_write_report (const struct dc_report *r, const char *path,
                           dc_error_t *errp)
{
    struct dc_trace *t;
    int rc;

    if (!path) {
        errno = EINVAL;
        return errprintf (errp, "trace: NULL path");
    }
    if (!(t = dc_trace_from_report (r, errp)))
        return -1;
    rc = dc_trace_write (t, path, errp);
    dc_trace_destroy (t);
    return rc;
}
