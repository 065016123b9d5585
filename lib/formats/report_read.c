/* report_read.c - a `--report` JSON read back: table, bottleneck, SVG */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/formats/report_read.h"
#include "lib/util/file.h"
#include "lib/util/strbuf.h"

static const char *const phase_names[DC_PHASE_COUNT] = {
    [DC_PHASE_LAUNCH] = "launch",     [DC_PHASE_LOAD] = "load",
    [DC_PHASE_COPY_IN] = "copy_in",   [DC_PHASE_COMPUTE] = "compute",
    [DC_PHASE_COPY_OUT] = "copy_out", [DC_PHASE_GATHER] = "gather",
    [DC_PHASE_WRITE] = "write",
};

const char *dc_report_phase_name (enum dc_phase p)
{
    return (unsigned)p < DC_PHASE_COUNT ? phase_names[p] : NULL;
}

void dc_report_view_destroy (struct dc_report_view *v)
{
    if (!v)
        return;
    free (v->ranks);
    free (v->spans);
    free (v);
}

/* a number from 0 to 1e18 (no count or time of a run is larger, and sums
 * of them stay finite), or -1 when absent or not one */
static double num (const cJSON *o, const char *name)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive (o, name);
    if (!cJSON_IsNumber (n) || !isfinite (n->valuedouble) ||
        n->valuedouble < 0 || n->valuedouble > 1e18)
        return -1;
    return n->valuedouble;
}

static const char *str (const cJSON *o, const char *name)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive (o, name);
    return cJSON_IsString (s) ? s->valuestring : NULL;
}

/* Make s printable in place: control bytes (C0, DEL, C1) and bytes that are
 * not well-formed UTF-8 (overlong, surrogates, past U+10FFFF, U+FFFE/F, a
 * sequence cut by a field's end) become '?'. */
static void printable (char *s)
{
    unsigned char *p = (unsigned char *)s;

    while (*p) {
        unsigned c = *p, n, cp, min;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                *p = '?';
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07, min = 0x10000;
        else {
            *p++ = '?';
            continue;
        }
        unsigned i;
        for (i = 1; i <= n && (p[i] & 0xc0) == 0x80; i++)
            cp = cp << 6 | (p[i] & 0x3f);
        if (i <= n || cp < min || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff ||
            (cp >= 0x80 && cp <= 0x9f)) {
            *p++ = '?';
            continue;
        }
        p += n + 1;
    }
}

/* src (NULL: dflt) cut to n bytes and made printable */
static void copy_text (char *dst, size_t n, const char *src, const char *dflt)
{
    snprintf (dst, n, "%s", src ? src : dflt);
    printable (dst);
}

static double pos0 (double x)
{
    return x > 0 ? x : 0;
}

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median (double *v, int n)
{
    qsort (v, (size_t)n, sizeof (*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the rules (see report_read.h) ---- */

/* The bottleneck found: its kind, the rank at index i (-1: none), its text.
 * Returns true (the rule held). */
static bool blame (struct dc_report_view *v, enum dc_bottleneck kind, int i,
                   const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
static bool blame (struct dc_report_view *v, enum dc_bottleneck kind, int i,
                   const char *fmt, ...)
{
    va_list ap;

    v->kind = kind;
    if (i >= 0)
        v->culprit = v->ranks[i].rank;
    va_start (ap, fmt);
    vsnprintf (v->bottleneck, sizeof (v->bottleneck), fmt, ap);
    va_end (ap);
    return true;
}

/* n bytes in a unit a person reads ("1.8 MiB", "3.20 GiB") */
static void human_bytes (char *buf, size_t len, double n)
{
    if (n >= 1024.0 * 1024 * 1024)
        snprintf (buf, len, "%.2f GiB", n / (1024.0 * 1024 * 1024));
    else if (n >= 1024.0 * 1024)
        snprintf (buf, len, "%.1f MiB", n / (1024.0 * 1024));
    else if (n >= 1024)
        snprintf (buf, len, "%.1f KiB", n / 1024);
    else
        snprintf (buf, len, "%.0f bytes", n);
}

/* The head's relay: the compute phase beyond the busiest rank, plus the
 * gather, dominating the wall time.  How it reads depends on the I/O way. */
static bool rule_relay (struct dc_report_view *v)
{
    double W = v->wall, maxbusy = 0;

    for (int i = 0; i < v->nranks; i++)
        if (v->ranks[i].busy > maxbusy)
            maxbusy = v->ranks[i].busy;
    v->relay =
        pos0 (v->phase[DC_PHASE_COMPUTE] - maxbusy) + v->phase[DC_PHASE_GATHER];
    /* it dominates: half the wall time, or a third and more than any
     * other part (launch, load, write, the busiest rank's busy time) */
    double other = maxbusy;
    for (int p = 0; p < DC_PHASE_COUNT; p++)
        if (p != DC_PHASE_COMPUTE && p != DC_PHASE_GATHER &&
            v->phase[p] > other)
            other = v->phase[p];
    if (!(v->relay / W >= 0.5 || (v->relay / W >= 1.0 / 3 && v->relay > other)))
        return false;
    v->factor = v->relay / W;
    if (!strcmp (v->io, "direct"))
        return blame (v, DC_BN_WAIT, -1,
                      "the ranks waited on the head %.0f%% of the wall time "
                      "(%.3g of %.3g s in which not even the busiest rank, "
                      "busy %.3g s, worked): the head schedules too slowly "
                      "(larger --chunk-rows help)",
                      100 * v->factor, v->relay, W, maxbusy);
    if ((!strcmp (v->io, "relay") || !strcmp (v->io, "mixed")) &&
        v->relayed_bytes >= 0) {
        char bytes[32], who[400] = "";
        human_bytes (bytes, sizeof (bytes), v->relayed_bytes);
        for (int i = 0; i < v->nranks; i++)
            if (!strcmp (v->io, "mixed") && !strcmp (v->ranks[i].io, "relay")) {
                snprintf (who, sizeof (who),
                          "; rank %d on %.100s was relayed%s%.200s",
                          v->ranks[i].rank, v->ranks[i].host,
                          v->ranks[i].io_why[0] ? ": " : "",
                          v->ranks[i].io_why);
                break;
            }
        return blame (v, DC_BN_RELAY, -1,
                      "the head relayed %s of rows: the relay took %.0f%% of "
                      "the wall time (%.3g of %.3g s; the busiest rank was "
                      "busy %.3g s): use --io direct (the ranks see the same "
                      "files)%s",
                      bytes, 100 * v->factor, v->relay, W, maxbusy, who);
    }
    /* a report that does not say how the rows travelled: they were
     * relayed (reports before --io) */
    return blame (v, DC_BN_RELAY, -1,
                  "the coordinator's relay took %.0f%% of the wall time "
                  "(%.3g of %.3g s; the busiest rank computed %.3g s): the "
                  "ranks wait on the hub: use --io direct (the ranks see the "
                  "same files), or larger --chunk-rows",
                  100 * v->factor, v->relay, W, maxbusy);
}

/* launch, load or write taking half the wall time */
static bool rule_phase (struct dc_report_view *v)
{
    double W = v->wall;
    static const enum dc_phase hub[] = {DC_PHASE_LAUNCH, DC_PHASE_LOAD,
                                        DC_PHASE_WRITE};
    enum dc_phase best = DC_PHASE_LAUNCH;

    for (size_t i = 1; i < sizeof (hub) / sizeof (hub[0]); i++)
        if (v->phase[hub[i]] > v->phase[best])
            best = hub[i];
    if (v->phase[best] / W < 0.5)
        return false;
    static const char *const why[DC_PHASE_COUNT] = {
        [DC_PHASE_LAUNCH] = "starting the ranks costs more than "
                            "their work (a larger job amortises it)",
        [DC_PHASE_LOAD] = "loading the model on the ranks costs "
                          "more than their work",
        [DC_PHASE_WRITE] = "the output's storage is slower than "
                           "the ranks",
    };
    v->factor = v->phase[best] / W;
    return blame (v, DC_BN_PHASE, -1,
                  "%s took %.0f%% of the wall time (%.3g of %.3g s): %s",
                  phase_names[best], 100 * v->factor, v->phase[best], W,
                  why[best]);
}

/* exec: the first rank that failed */
static bool rule_failed (struct dc_report_view *v)
{
    for (int i = 0; i < v->nranks; i++)
        if (v->ranks[i].failed)
            return blame (v, DC_BN_FAILED, i, "rank %d on %s failed (%s)",
                          v->ranks[i].rank, v->ranks[i].host,
                          v->ranks[i].status);
    return false;
}

/* The ranks' speeds: rows per busy second (exec: 1 / seconds). */
struct speeds {
    int n;    /* ranks with a speed */
    int slow; /* index of the slowest, or -1 */
    double slowrate, fastrate, median;
};

static int rank_speeds (const struct dc_report_view *v, struct speeds *sp)
{
    double *rates = calloc ((unsigned)v->nranks, sizeof (*rates));

    *sp = (struct speeds){.slow = -1};
    if (!rates)
        return -1;
    for (int i = 0; i < v->nranks; i++) {
        const struct dc_report_rank *k = &v->ranks[i];
        double rate;
        if (v->exec)
            rate = k->busy > 0 ? 1 / k->busy : 0;
        else
            rate = k->rows > 0 && k->busy > 0 ? k->rows / k->busy : 0;
        if (rate <= 0)
            continue;
        rates[sp->n++] = rate;
        if (sp->slow < 0 || rate < sp->slowrate) {
            sp->slow = i;
            sp->slowrate = rate;
        }
        if (rate > sp->fastrate)
            sp->fastrate = rate;
    }
    sp->median = sp->n > 0 ? median (rates, sp->n) : 0;
    free (rates);
    return 0;
}

/* a rank 1.5 times slower than the median */
static bool rule_straggler (struct dc_report_view *v, const struct speeds *sp)
{
    if (!(sp->n >= 2 && sp->slowrate > 0 && sp->median / sp->slowrate >= 1.5))
        return false;
    const struct dc_report_rank *k = &v->ranks[sp->slow];
    v->factor = sp->median / sp->slowrate;
    if (v->exec)
        return blame (v, DC_BN_STRAGGLER, sp->slow,
                      "rank %d on %s was %.1fx slower than the median "
                      "(%.3g s vs %.3g s)",
                      k->rank, k->host, v->factor, k->busy, 1 / sp->median);
    return blame (v, DC_BN_STRAGGLER, sp->slow,
                  "rank %d on %s was %.1fx slower than the median "
                  "(%.0f vs %.0f rows/s)",
                  k->rank, k->host, v->factor, sp->slowrate, sp->median);
}

/* the ranks' reads (or writes) taking half their busy time */
static bool rule_storage (struct dc_report_view *v)
{
    double b = v->busy_sum;

    if (v->exec || !v->has_split || b <= 0)
        return false;
    if (v->read_sum >= v->write_sum && v->read_sum / b >= 0.5) {
        v->factor = v->read_sum / b;
        return blame (v, DC_BN_READ, -1,
                      "reading the input took %.0f%% of the ranks' busy time "
                      "(%.3g of %.3g s): the storage is the limit",
                      100 * v->factor, v->read_sum, b);
    }
    if (v->write_sum / b >= 0.5) {
        v->factor = v->write_sum / b;
        return blame (v, DC_BN_WRITE, -1,
                      "writing the output took %.0f%% of the ranks' busy "
                      "time (%.3g of %.3g s): the output's storage is the "
                      "limit",
                      100 * v->factor, v->write_sum, b);
    }
    return false;
}

/* The ranks computed, and computing is the job's largest phase. */
static bool rule_compute (struct dc_report_view *v, double spread, int nrates)
{
    char part[160] = "";

    if (v->exec || v->compute_sum <= 0)
        return false;
    if (v->has_phases) {
        for (int p = 0; p < DC_PHASE_COUNT; p++)
            if (v->phase[p] > v->phase[DC_PHASE_COMPUTE])
                return false;
        snprintf (part, sizeof (part),
                  "the compute phase took %.0f%% of the wall time",
                  100 * v->phase[DC_PHASE_COMPUTE] / v->wall);
    }
    if (v->has_split && v->busy_sum > 0)
        snprintf (part + strlen (part), sizeof (part) - strlen (part),
                  "%scomputing was %.0f%% of the ranks' busy time",
                  part[0] ? ", " : "", 100 * v->compute_sum / v->busy_sum);
    v->factor = v->busy_sum > 0 ? v->compute_sum / v->busy_sum : 1;
    if (nrates >= 2)
        snprintf (part + strlen (part), sizeof (part) - strlen (part),
                  "%sthe ranks within %.0f%% of each other",
                  part[0] ? ", " : "", spread);
    return blame (v, DC_BN_COMPUTE, -1,
                  "compute-bound: %s%s(faster devices or more ranks help)",
                  part, part[0] ? " " : "");
}

/* a lost rank, or lost ranks named in one text */
static bool rule_lost (struct dc_report_view *v)
{
    for (int i = 0; i < v->nranks; i++)
        if (v->ranks[i].lost)
            return blame (v, DC_BN_LOST, i,
                          "rank %d on %.200s was lost (%.200s): its chunks "
                          "went to the others",
                          v->ranks[i].rank, v->ranks[i].host,
                          v->ranks[i].lost_reason);
    if (v->lost_text[0])
        return blame (v, DC_BN_LOST, -1,
                      "ranks were lost (%.300s): their work went to the "
                      "others",
                      v->lost_text);
    return false;
}

/* ranks that did no rows while others did */
static bool rule_idle (struct dc_report_view *v)
{
    int idle = 0, first = -1;

    if (v->exec || v->total_rows <= 0)
        return false;
    for (int i = 0; i < v->nranks; i++)
        if (v->ranks[i].rows <= 0) {
            idle++;
            if (first < 0)
                first = i;
        }
    if (idle == 0)
        return false;
    return blame (v, DC_BN_IDLE, first,
                  "%d of %d ranks did no rows (rank %d on %s first%s): too "
                  "few chunks for the ranks, or they were ready too late",
                  idle, v->nranks, v->ranks[first].rank, v->ranks[first].host,
                  !strcmp (v->ranks[first].io, "none")
                      ? ", not ready before the work ended"
                      : "");
}

/* The rules in their order; the first that holds names the bottleneck. */
static void analyze (struct dc_report_view *v)
{
    struct speeds sp;

    v->kind = DC_BN_NONE;
    v->culprit = -1;
    v->factor = 0;
    if (v->wall <= 0 || v->nranks == 0) {
        v->kind = DC_BN_EMPTY;
        snprintf (v->bottleneck, sizeof (v->bottleneck),
                  "no bottleneck: the report holds no timed work");
        return;
    }
    if (v->has_phases && !v->exec && (rule_relay (v) || rule_phase (v)))
        return;
    if (v->exec && rule_failed (v))
        return;
    if (rank_speeds (v, &sp) < 0) {
        snprintf (v->bottleneck, sizeof (v->bottleneck),
                  "no analysis: out of memory");
        return;
    }
    if (rule_straggler (v, &sp) || rule_storage (v) || rule_lost (v) ||
        rule_idle (v))
        return;
    double spread =
        sp.median > 0 ? (sp.fastrate - sp.slowrate) / sp.median * 100 : 0;
    spread = spread > 10 ? ceil (spread) : 10;
    if (rule_compute (v, spread, sp.n))
        return;
    snprintf (v->bottleneck, sizeof (v->bottleneck),
              "no bottleneck: ranks within %.0f%% of each other", spread);
}

/* ---- parsing ---- */

static int bad (dc_error_t *errp, const char *name, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static int bad (dc_error_t *errp, const char *name, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof (msg), fmt, ap);
    va_end (ap);
    errno = EINVAL;
    return errprintf (errp, "%s: %s", name, msg);
}

/* a chunk's "phases" (optional): its start and the rank's seconds */
static int parse_chunk_phases (struct dc_report_span *sp, const cJSON *c, int r,
                               const char *name, dc_error_t *errp)
{
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive (c, "phases");

    if (!ph || cJSON_IsNull (ph))
        return 0;
    if (!cJSON_IsObject (ph))
        return bad (errp, name,
                    "rank %d: a chunk's \"phases\" is not an object", r);
    if ((sp->pstart = num (ph, "start")) < 0)
        return bad (errp, name,
                    "rank %d: a chunk's \"phases\" without a \"start\"", r);
    for (int k = 0; k < DC_CHUNK_NPHASES; k++)
        sp->ph[k] = pos0 (num (ph, dc_chunk_phase_names[k]));
    sp->has_phases = true;
    return 0;
}

static int parse_spans (struct dc_report_view *v, const cJSON *rank, int r,
                        const char *name, dc_error_t *errp)
{
    const cJSON *chunks = cJSON_GetObjectItemCaseSensitive (rank, "chunks");
    const cJSON *c;

    if (!chunks)
        return 0;
    if (!cJSON_IsArray (chunks))
        return bad (errp, name, "rank %d: \"chunks\" is not a list", r);
    cJSON_ArrayForEach (c, chunks)
    {
        double s = num (c, "start"), e = num (c, "end"),
               cs = num (c, "compute");
        if (!cJSON_IsObject (c) || s < 0)
            return bad (errp, name, "rank %d: a chunk without a \"start\"", r);
        if (v->nspans >= DC_REPORT_MAX_CHUNKS)
            return bad (errp, name, "more than %d chunks",
                        DC_REPORT_MAX_CHUNKS);
        if (e >= 0 && e < s)
            return bad (errp, name,
                        "rank %d: a chunk that ends before it "
                        "starts",
                        r);
        if ((v->nspans & (v->nspans - 1)) == 0) {
            size_t cap = v->nspans ? 2 * v->nspans : 1;
            struct dc_report_span *p = realloc (v->spans, cap * sizeof (*p));
            if (!p) {
                errno = ENOMEM;
                return errprintf (errp, "%s: out of memory", name);
            }
            v->spans = p;
        }
        struct dc_report_span *sp = &v->spans[v->nspans++];
        *sp = (struct dc_report_span){
            .rank = r,
            .start = s,
            .end = e >= 0 ? e : s,
            .compute = cs > 0 ? cs : 0,
            .unfinished = e < 0,
        };
        if (parse_chunk_phases (sp, c, r, name, errp) < 0)
            return -1;
    }
    return 0;
}

/* exec: a rank's start, end and how it ended */
static int parse_exec_rank (struct dc_report_rank *k, const cJSON *e,
                            const char *name, dc_error_t *errp)
{
    double s = num (e, "start"), t = num (e, "end");

    if (s < 0 || t < 0 || t < s)
        return bad (errp, name, "rank %d: no \"start\" and \"end\"", k->rank);
    k->start = s;
    k->end = t;
    k->busy = t - s;
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive (e, "signal");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive (e, "status");
    const char *fs = str (e, "failed_start");
    if (fs)
        snprintf (k->status, sizeof (k->status), "failed to start: %s", fs);
    else if (cJSON_IsNumber (sig))
        snprintf (k->status, sizeof (k->status), "signal %d",
                  (int)sig->valuedouble);
    else if (cJSON_IsNumber (st))
        snprintf (k->status, sizeof (k->status), "exit %d",
                  (int)st->valuedouble);
    else
        return bad (errp, name, "rank %d: no \"status\" or \"signal\"",
                    k->rank);
    printable (k->status);
    k->failed = strcmp (k->status, "exit 0") != 0;
    return 0;
}

/* a rank's "phases" (optional): the totals of its chunks' phases; its busy
 * time and its read/compute/write split (the copies counted as compute) */
static int parse_rank_phases (struct dc_report_rank *k, const cJSON *e,
                              const char *name, dc_error_t *errp)
{
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive (e, "phases");

    if (!ph)
        return 0;
    if (!cJSON_IsObject (ph))
        return bad (errp, name, "rank %d: \"phases\" is not an object",
                    k->rank);
    double rd = num (ph, "read"), c = num (ph, "compute"),
           w = num (ph, "write"), b = num (ph, "busy");
    if (rd < 0 || c < 0 || w < 0)
        return bad (errp, name,
                    "rank %d: \"phases\" without \"read\", \"compute\" "
                    "and \"write\"",
                    k->rank);
    k->has_split = true;
    k->read = rd;
    k->compute = c + pos0 (num (ph, "copy_in")) + pos0 (num (ph, "copy_out"));
    k->write = w;
    k->busy = b >= 0 ? b : rd + k->compute + w;
    return 0;
}

/* ranks[v->nranks]: one rank of the report, with its chunks */
static int parse_rank (struct dc_report_view *v, const cJSON *e,
                       const char *name, dc_error_t *errp)
{
    struct dc_report_rank *k = &v->ranks[v->nranks];
    const char *host = str (e, "host");
    double r = num (e, "rank");

    if (!cJSON_IsObject (e) || r < 0 || r > 1e9 || !host)
        return bad (errp, name, "ranks[%d]: no \"rank\" or \"host\"",
                    v->nranks);
    k->rank = (int)r;
    copy_text (k->host, sizeof (k->host), host, "");
    copy_text (k->device, sizeof (k->device), str (e, "device"), "-");
    k->relayed_bytes = -1;
    if (v->exec) {
        if (parse_exec_rank (k, e, name, errp) < 0)
            return -1;
    } else {
        double rows = num (e, "rows"), secs = num (e, "seconds");
        if (rows < 0 || secs < 0)
            return bad (errp, name, "rank %d: no \"rows\" or \"seconds\"",
                        k->rank);
        k->rows = rows;
        k->busy = secs;
        double tf = num (e, "tflops");
        k->tflops = tf > 0 ? tf : 0;
        v->total_rows += rows;
        if (parse_rank_phases (k, e, name, errp) < 0)
            return -1;
    }
    k->span0 = v->nspans;
    if (parse_spans (v, e, k->rank, name, errp) < 0)
        return -1;
    k->nspans = v->nspans - k->span0;
    v->nranks++;
    return 0;
}

/* "ranks": every rank, then their shares of the rows ("totals"."rows"
 * when given: a layer layout's stages each count the rows that passed
 * through them, the totals the batch's rows once) */
static int parse_ranks (struct dc_report_view *v, const cJSON *root,
                        const cJSON *ranks, const char *name, dc_error_t *errp)
{
    const cJSON *e;
    int n = cJSON_GetArraySize (ranks);

    if (n > DC_REPORT_MAX_RANKS)
        return bad (errp, name, "more than %d ranks", DC_REPORT_MAX_RANKS);
    if (n > 0 && !(v->ranks = calloc ((size_t)n, sizeof (*v->ranks)))) {
        errno = ENOMEM;
        return errprintf (errp, "%s: out of memory", name);
    }
    cJSON_ArrayForEach (e, ranks)
    {
        if (parse_rank (v, e, name, errp) < 0)
            return -1;
    }
    double once =
        num (cJSON_GetObjectItemCaseSensitive (root, "totals"), "rows");
    if (!v->exec && once > 0)
        v->total_rows = once;
    for (int i = 0; i < v->nranks; i++)
        v->ranks[i].share =
            v->total_rows > 0 ? v->ranks[i].rows / v->total_rows : 0;
    return 0;
}

/* lost ranks: "distributed"."lost_workers" (data parallel) or
 * "lost_workers" (pipeline) */
static int parse_lost (struct dc_report_view *v, const cJSON *root,
                       const char *name, dc_error_t *errp)
{
    const cJSON *e;
    const cJSON *lost = cJSON_GetObjectItemCaseSensitive (
        cJSON_GetObjectItemCaseSensitive (root, "distributed"), "lost_workers");

    if (!lost)
        lost = cJSON_GetObjectItemCaseSensitive (root, "lost_workers");
    if (cJSON_IsString (lost)) {
        /* data parallel train writes the lost ranks as one text */
        if (lost->valuestring[0]) {
            copy_text (v->lost_text, sizeof (v->lost_text), lost->valuestring,
                       "");
            v->nlost++;
        }
        return 0;
    }
    if (lost && !cJSON_IsArray (lost))
        return bad (errp, name, "\"lost_workers\" is not a list");
    cJSON_ArrayForEach (e, lost)
    {
        double r = num (e, "rank");
        const char *why = str (e, "reason");
        for (int i = 0; r >= 0 && i < v->nranks; i++)
            if (v->ranks[i].rank == (int)r && !v->ranks[i].lost) {
                v->ranks[i].lost = true;
                copy_text (v->ranks[i].lost_reason,
                           sizeof (v->ranks[i].lost_reason), why, "lost");
                v->nlost++;
            }
    }
    return 0;
}

/* one entry of "rank_io" for rank k: its way, why, split and bytes */
static int parse_rank_io (struct dc_report_view *v, struct dc_report_rank *k,
                          const cJSON *o, int j, const char *name,
                          dc_error_t *errp)
{
    if (!cJSON_IsObject (o))
        return bad (errp, name, "\"rank_io\"[%d] is not an object", j);
    copy_text (k->io, sizeof (k->io), str (o, "io"), "");
    copy_text (k->io_why, sizeof (k->io_why), str (o, "why"), "");
    double rd = num (o, "read"), w = num (o, "write"),
           b = num (o, "relayed_bytes");
    if (b >= 0) {
        k->relayed_bytes = b;
        v->relayed_bytes = (v->relayed_bytes > 0 ? v->relayed_bytes : 0) + b;
    }
    if (!k->has_split && rd >= 0 && w >= 0) {
        /* no chunk phases: the compute seconds and the hub's measure of
         * the rank's reads and writes */
        k->has_split = true;
        k->read = rd;
        k->compute = k->busy;
        k->write = w;
        k->busy += rd + w;
    }
    return 0;
}

/* "distributed" (optional): the I/O way, the head's CPU, the job's ranks,
 * "rank_io" (one entry per rank, in rank order) */
static int parse_distributed (struct dc_report_view *v, const cJSON *root,
                              const char *name, dc_error_t *errp)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive (root, "distributed");
    const cJSON *a, *o;
    int *at = NULL, j = 0;

    v->relayed_bytes = -1;
    v->hub_cpu = -1;
    v->job_ranks = v->nranks;
    if (!d)
        return 0;
    if (!cJSON_IsObject (d))
        return bad (errp, name, "\"distributed\" is not an object");
    copy_text (v->io, sizeof (v->io), str (d, "io"), "");
    copy_text (v->io_mode, sizeof (v->io_mode), str (d, "io_mode"), "");
    v->hub_cpu = num (d, "hub_cpu_seconds");
    double n = num (d, "ranks");
    if (n > v->nranks && n <= DC_REPORT_MAX_RANKS)
        v->job_ranks = (int)n;
    if (!(a = cJSON_GetObjectItemCaseSensitive (d, "rank_io")))
        return 0;
    if (!cJSON_IsArray (a))
        return bad (errp, name, "\"rank_io\" is not a list");
    if (v->nranks == 0)
        return 0;
    /* the index of rank r in ranks[] (rank numbers below nranks) */
    if (!(at = malloc ((size_t)v->nranks * sizeof (*at)))) {
        errno = ENOMEM;
        return errprintf (errp, "%s: out of memory", name);
    }
    for (int i = 0; i < v->nranks; i++)
        at[i] = -1;
    for (int i = v->nranks; i-- > 0;)
        if (v->ranks[i].rank < v->nranks)
            at[v->ranks[i].rank] = i;
    cJSON_ArrayForEach (o, a)
    {
        if (j < v->nranks && at[j] >= 0 &&
            parse_rank_io (v, &v->ranks[at[j]], o, j, name, errp) < 0) {
            free (at);
            return -1;
        }
        if (++j >= v->nranks)
            break;
    }
    free (at);
    return 0;
}

/* the ranks' idle time and the sums of their busy time and its split */
static void sum_up (struct dc_report_view *v)
{
    for (int i = 0; i < v->nranks; i++) {
        struct dc_report_rank *k = &v->ranks[i];
        k->idle = v->wall > k->busy ? v->wall - k->busy : 0;
        v->busy_sum += k->busy;
        if (k->has_split) {
            v->has_split = true;
            v->read_sum += k->read;
            v->compute_sum += k->compute;
            v->write_sum += k->write;
        } else
            v->compute_sum += v->exec ? 0 : k->busy;
    }
}

/* "totals"."seconds" and the optional "phases" */
static int parse_times (struct dc_report_view *v, const cJSON *root,
                        const char *name, dc_error_t *errp)
{
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive (root, "totals");
    const cJSON *phases = cJSON_GetObjectItemCaseSensitive (root, "phases");

    if ((v->wall = num (totals, "seconds")) < 0)
        return bad (errp, name, "no \"totals\".\"seconds\"");
    if (phases && !cJSON_IsObject (phases))
        return bad (errp, name, "\"phases\" is not an object");
    if (phases) {
        v->has_phases = true;
        for (int p = 0; p < DC_PHASE_COUNT; p++) {
            double s = num (phases, phase_names[p]);
            v->phase[p] = s > 0 ? s : 0;
        }
    }
    return 0;
}

struct dc_report_view *dc_report_view_parse (const char *text, size_t len,
                                             const char *name, dc_error_t *errp)
{
    struct dc_report_view *v = NULL;
    cJSON *root = NULL;
    const cJSON *ranks;
    const char *cmd;

    if (!name)
        name = "report";
    if (!text) {
        bad (errp, name, "no text");
        return NULL;
    }
    if (!(root = cJSON_ParseWithLength (text, len))) {
        bad (errp, name, "not JSON");
        return NULL;
    }
    if (!cJSON_IsObject (root) || !(cmd = str (root, "command")) ||
        !cJSON_IsArray (ranks =
                            cJSON_GetObjectItemCaseSensitive (root, "ranks"))) {
        bad (errp, name, "not a dcrun report (no \"command\" and \"ranks\")");
        goto fail;
    }
    if (!(v = calloc (1, sizeof (*v)))) {
        errno = ENOMEM;
        errprintf (errp, "%s: out of memory", name);
        goto fail;
    }
    copy_text (v->command, sizeof (v->command), cmd, "");
    copy_text (v->layout, sizeof (v->layout), str (root, "layout"), "");
    v->exec = !strcmp (cmd, "exec");
    if (parse_times (v, root, name, errp) < 0 ||
        parse_ranks (v, root, ranks, name, errp) < 0 ||
        parse_lost (v, root, name, errp) < 0 ||
        parse_distributed (v, root, name, errp) < 0)
        goto fail;
    cJSON_Delete (root);
    sum_up (v);
    analyze (v);
    return v;
fail:
    cJSON_Delete (root);
    dc_report_view_destroy (v);
    return NULL;
}

struct dc_report_view *dc_report_view_read (const char *path, dc_error_t *errp)
{
    size_t len;
    uint8_t *text;
    struct dc_report_view *v;

    if (!path) {
        errno = EINVAL;
        errprintf (errp, "report: no file");
        return NULL;
    }
    if (!(text = dc_file_read (path, DC_REPORT_READ_MAX, &len, errp)))
        return NULL;
    v = dc_report_view_parse ((const char *)text, len, path, errp);
    free (text);
    return v;
}

/* ---- JSON of the analysis ---- */

static const char *const kind_names[] = {
    [DC_BN_NONE] = "none",           [DC_BN_RELAY] = "relay",
    [DC_BN_PHASE] = "phase",         [DC_BN_FAILED] = "failed",
    [DC_BN_STRAGGLER] = "straggler", [DC_BN_LOST] = "lost",
    [DC_BN_IDLE] = "idle",           [DC_BN_EMPTY] = "empty",
    [DC_BN_WAIT] = "wait",           [DC_BN_READ] = "read",
    [DC_BN_WRITE] = "write",         [DC_BN_COMPUTE] = "compute",
};

char *dc_report_view_json (const struct dc_report_view *v)
{
    cJSON *o, *a, *ph, *bn;
    char *s;

    if (!v || !(o = cJSON_CreateObject ()))
        return NULL;
    cJSON_AddStringToObject (o, "command", v->command);
    cJSON_AddStringToObject (o, "layout", v->layout);
    cJSON_AddNumberToObject (o, "seconds", v->wall);
    cJSON_AddNumberToObject (o, "rows", v->total_rows);
    a = cJSON_AddArrayToObject (o, "ranks");
    for (int i = 0; a && i < v->nranks; i++) {
        const struct dc_report_rank *k = &v->ranks[i];
        cJSON *r = cJSON_CreateObject ();
        if (!r)
            break;
        cJSON_AddNumberToObject (r, "rank", k->rank);
        cJSON_AddStringToObject (r, "host", k->host);
        if (v->exec) {
            cJSON_AddStringToObject (r, "status", k->status);
            cJSON_AddNumberToObject (r, "start", k->start);
            cJSON_AddNumberToObject (r, "end", k->end);
        } else {
            cJSON_AddStringToObject (r, "device", k->device);
            cJSON_AddNumberToObject (r, "rows", k->rows);
            cJSON_AddNumberToObject (r, "tflops", k->tflops);
            cJSON_AddNumberToObject (r, "share", k->share);
        }
        cJSON_AddNumberToObject (r, "busy", k->busy);
        cJSON_AddNumberToObject (r, "idle", k->idle);
        if (k->io[0])
            cJSON_AddStringToObject (r, "io", k->io);
        if (k->io_why[0])
            cJSON_AddStringToObject (r, "why", k->io_why);
        if (k->has_split) {
            cJSON_AddNumberToObject (r, "read", k->read);
            cJSON_AddNumberToObject (r, "compute", k->compute);
            cJSON_AddNumberToObject (r, "write", k->write);
        }
        if (k->relayed_bytes >= 0)
            cJSON_AddNumberToObject (r, "relayed_bytes", k->relayed_bytes);
        cJSON_AddBoolToObject (r, "lost", k->lost);
        if (k->lost)
            cJSON_AddStringToObject (r, "lost_reason", k->lost_reason);
        cJSON_AddItemToArray (a, r);
    }
    if (v->has_phases && (ph = cJSON_AddObjectToObject (o, "phases")))
        for (int p = 0; p < DC_PHASE_COUNT; p++)
            cJSON_AddNumberToObject (ph, phase_names[p], v->phase[p]);
    if (v->job_ranks != v->nranks)
        cJSON_AddNumberToObject (o, "job_ranks", v->job_ranks);
    if (v->io[0])
        cJSON_AddStringToObject (o, "io", v->io);
    if (v->io_mode[0])
        cJSON_AddStringToObject (o, "io_mode", v->io_mode);
    if (v->relayed_bytes >= 0)
        cJSON_AddNumberToObject (o, "relayed_bytes", v->relayed_bytes);
    if (v->hub_cpu >= 0)
        cJSON_AddNumberToObject (o, "hub_cpu_seconds", v->hub_cpu);
    if (v->has_split && (ph = cJSON_AddObjectToObject (o, "ranks_busy"))) {
        cJSON_AddNumberToObject (ph, "busy", v->busy_sum);
        cJSON_AddNumberToObject (ph, "read", v->read_sum);
        cJSON_AddNumberToObject (ph, "compute", v->compute_sum);
        cJSON_AddNumberToObject (ph, "write", v->write_sum);
    }
    cJSON_AddNumberToObject (o, "lost", v->nlost);
    if (v->lost_text[0])
        cJSON_AddStringToObject (o, "lost_text", v->lost_text);
    cJSON_AddNumberToObject (o, "chunks", (double)v->nspans);
    if ((bn = cJSON_AddObjectToObject (o, "bottleneck"))) {
        cJSON_AddStringToObject (bn, "kind", kind_names[v->kind]);
        if (v->culprit >= 0)
            cJSON_AddNumberToObject (bn, "rank", v->culprit);
        else
            cJSON_AddNullToObject (bn, "rank");
        cJSON_AddNumberToObject (bn, "factor", v->factor);
        cJSON_AddStringToObject (bn, "text", v->bottleneck);
    }
    s = cJSON_Print (o);
    cJSON_Delete (o);
    return s;
}

/* ---- SVG ---- */

/* The largest drawing: DC_REPORT_MAX_RANKS rows of escaped names and
 * DC_REPORT_MAX_CHUNKS chunks take well under this. */
#define SVG_MAX ((size_t)1 << 30)

/* text with &, <, >, " and control bytes escaped */
static void put_text (struct dc_strbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '&')
            dc_strbuf_str (b, "&amp;");
        else if (c == '<')
            dc_strbuf_str (b, "&lt;");
        else if (c == '>')
            dc_strbuf_str (b, "&gt;");
        else if (c == '"')
            dc_strbuf_str (b, "&quot;");
        else if (c < 0x20 || c == 0x7f)
            dc_strbuf_str (b, "?");
        else
            dc_strbuf_add (b, s, 1);
    }
}

/* colours of the phases, the chunk spans and the states */
static const char *const phase_colour[DC_PHASE_COUNT] = {
    [DC_PHASE_LAUNCH] = "#9e9e9e",   [DC_PHASE_LOAD] = "#f2a900",
    [DC_PHASE_COPY_IN] = "#8e44ad",  [DC_PHASE_COMPUTE] = "#1f77b4",
    [DC_PHASE_COPY_OUT] = "#16a085", [DC_PHASE_GATHER] = "#d35400",
    [DC_PHASE_WRITE] = "#2ca02c",
};
#define COLOUR_RELAY "#aec7e8" /* a chunk's time away from the rank's GEMM */
#define COLOUR_READ "#17becf"  /* a chunk's read on the rank */
/* a chunk's phases on the rank, in dc_chunk_phase_names' order */
static const char *const chunk_colour[DC_CHUNK_NPHASES] = {
    COLOUR_READ, "#8e44ad", /* copy_in */
    "#1f77b4",              /* compute */
    "#16a085",              /* copy_out */
    "#2ca02c",              /* write */
};
#define COLOUR_LOST "#d62728"
#define COLOUR_FAILED "#d62728"
#define COLOUR_OK "#2ca02c"

static double nice_step (double span)
{
    double raw = span / 8, p = pow (10, floor (log10 (raw)));
    if (raw <= p)
        return p;
    if (raw <= 2 * p)
        return 2 * p;
    if (raw <= 5 * p)
        return 5 * p;
    return 10 * p;
}

/* The drawing's geometry: a time axis of T seconds over plotw pixels. */
struct svg {
    struct dc_strbuf b;
    const struct dc_report_view *v;
    double left, right, top, rowh, plotw;
    double T, ploth, legend_y;
};

static double svg_x (const struct svg *g, double t)
{
    return g->left + t / g->T * g->plotw;
}

/* a bar from t0 to t1 (at least half a pixel wide) with a tooltip */
static void svg_bar (struct svg *g, double t0, double t1, double y, double h,
                     const char *fill, const char *opacity, const char *fmt,
                     ...) __attribute__ ((format (printf, 8, 9)));
static void svg_bar (struct svg *g, double t0, double t1, double y, double h,
                     const char *fill, const char *opacity, const char *fmt,
                     ...)
{
    char title[512];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (title, sizeof (title), fmt, ap);
    va_end (ap);
    dc_strbuf_printf (
        &g->b,
        "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
        "fill=\"%s\"%s><title>",
        svg_x (g, t0), y, fmax (svg_x (g, t1) - svg_x (g, t0), 0.5), h, fill,
        opacity);
    printable (title); /* a cut may end inside a character */
    put_text (&g->b, title);
    dc_strbuf_printf (&g->b, "</title></rect>\n");
}

/* the title, the bottleneck, the grid and the time axis */
static void svg_head (struct svg *g, double W, double H)
{
    const struct dc_report_view *v = g->v;
    struct dc_strbuf *b = &g->b;

    dc_strbuf_printf (
        b,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
        "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n"
        "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
        "fill=\"#ffffff\"/>\n",
        W, H, W, H, W, H);
    dc_strbuf_printf (b, "<text x=\"10\" y=\"22\" font-size=\"15\">dcrun ");
    put_text (b, v->command);
    dc_strbuf_printf (b, ": %d ranks, %.3f s", v->nranks, v->wall);
    if (v->nlost)
        dc_strbuf_printf (b, ", %d lost", v->nlost);
    dc_strbuf_printf (b, "</text>\n<text x=\"10\" y=\"40\" fill=\"#444444\">");
    put_text (b, v->bottleneck);
    dc_strbuf_printf (b, "</text>\n");
    double step = nice_step (g->T), top = g->top, ploth = g->ploth;
    for (double t = 0; t <= g->T * 1.0001; t += step) {
        double x = svg_x (g, t);
        dc_strbuf_printf (
            b,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#dddddd\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
            x, top, x, top + ploth, x, top + ploth + 16, t);
    }
    dc_strbuf_printf (
        b,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
        "stroke=\"#000000\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">seconds since "
        "the start</text>\n",
        g->left, top + ploth, g->left + g->plotw, top + ploth,
        g->left + g->plotw / 2, top + ploth + 34);
}

/* the job's phases, one after another, on the hub's row */
static void svg_phases (struct svg *g)
{
    const struct dc_report_view *v = g->v;
    double y = g->top + 4, t = 0;

    dc_strbuf_printf (
        &g->b, "<text x=\"10\" y=\"%.1f\">job (hub) phases</text>\n", y + 14);
    for (int p = 0; p < DC_PHASE_COUNT; p++) {
        if (v->phase[p] <= 0)
            continue;
        svg_bar (g, t, t + v->phase[p], y, g->rowh - 8, phase_colour[p], "",
                 "%s %.3f s", phase_names[p], v->phase[p]);
        t += v->phase[p];
    }
}

/* a rank's chunks: the span in the relay colour (red without a result)
 * and its compute inside; returns the rank's last sign of life */
static double svg_chunks (struct svg *g, const struct dc_report_rank *k,
                          double y, double h)
{
    const struct dc_report_view *v = g->v;
    double last = 0; /* its latest result, or chunk sent */

    for (size_t s = k->span0; s < k->span0 + k->nspans; s++)
        if (v->spans[s].end > last)
            last = v->spans[s].end;
    /* the chunks' spans first, so that the next chunk's span (a rank
     * holds two at a time) never covers this one's phases */
    for (size_t s = k->span0; s < k->span0 + k->nspans; s++) {
        const struct dc_report_span *sp = &v->spans[s];
        /* a chunk without a result: red, up to the rank's last sign
         * of life (its latest result), at least a sliver */
        double end = sp->end;
        if (sp->unfinished) {
            end = last > sp->start ? last : sp->start + g->T / 200;
            if (end > g->T)
                end = g->T;
        }
        svg_bar (g, sp->start, end, y, h,
                 sp->unfinished ? COLOUR_LOST : COLOUR_RELAY,
                 " fill-opacity=\"0.6\"", "chunk %.3f-%.3f s%s", sp->start, end,
                 sp->unfinished ? ", no result" : "");
    }
    for (size_t s = k->span0; s < k->span0 + k->nspans; s++) {
        const struct dc_report_span *sp = &v->spans[s];
        if (sp->has_phases) {
            /* the rank's phases of the chunk, end to end from pstart */
            double t = sp->pstart;
            for (int p = 0; p < DC_CHUNK_NPHASES; p++) {
                if (sp->ph[p] <= 0)
                    continue;
                svg_bar (g, t, t + sp->ph[p], y + 3, h - 6, chunk_colour[p], "",
                         "chunk %s %.3f s", dc_chunk_phase_names[p], sp->ph[p]);
                t += sp->ph[p];
            }
        } else if (!sp->unfinished && sp->compute > 0) {
            double c0 = sp->end - sp->compute;
            if (c0 < sp->start)
                c0 = sp->start;
            svg_bar (g, c0, sp->end, y + 3, h - 6,
                     phase_colour[DC_PHASE_COMPUTE], "", "chunk compute %.3f s",
                     sp->compute);
        }
    }
    return last;
}

/* one rank's row: its label, chunks (or one bar), and a lost mark */
static void svg_rank (struct svg *g, const struct dc_report_rank *k, int row)
{
    const struct dc_report_view *v = g->v;
    double y = g->top + row * g->rowh + 4, h = g->rowh - 8;
    bool red = k->lost || k->failed;

    dc_strbuf_printf (&g->b, "<text x=\"10\" y=\"%.1f\" fill=\"%s\">rank %d @ ",
                      y + 14, red ? COLOUR_LOST : "#000000", k->rank);
    char host[40];
    size_t hl = strlen (k->host);
    if (hl < sizeof (host))
        memcpy (host, k->host, hl + 1);
    else {
        memcpy (host, k->host, sizeof (host) - 4);
        memcpy (host + sizeof (host) - 4, "...", 4);
    }
    printable (host);
    put_text (&g->b, host);
    if (k->io[0]) {
        dc_strbuf_str (&g->b, " (");
        put_text (&g->b, k->io);
        dc_strbuf_str (&g->b, ")");
    }
    dc_strbuf_printf (&g->b, "</text>\n");
    double last = svg_chunks (g, k, y, h);
    if (k->nspans == 0 && v->exec)
        svg_bar (g, k->start, k->end, y, h,
                 k->failed ? COLOUR_FAILED : COLOUR_OK, "", "%s, %.3f s",
                 k->status, k->busy);
    else if (k->nspans == 0 && k->busy > 0) {
        /* no chunk list: one bar of the busy time, after launch+load */
        double t0 = v->phase[DC_PHASE_LAUNCH] + v->phase[DC_PHASE_LOAD];
        if (t0 + k->busy > g->T)
            t0 = g->T - k->busy > 0 ? g->T - k->busy : 0;
        svg_bar (g, t0, t0 + k->busy, y, h, phase_colour[DC_PHASE_COMPUTE], "",
                 "busy %.3f s", k->busy);
    }
    if (k->lost) {
        dc_strbuf_printf (&g->b,
                          "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\" "
                          "font-weight=\"bold\">&#x2715; lost: ",
                          fmin (svg_x (g, last) + 6, g->left + g->plotw - 200),
                          y + 14, COLOUR_LOST);
        put_text (&g->b, k->lost_reason);
        dc_strbuf_printf (&g->b, "</text>\n");
    }
}

static void svg_legend (struct svg *g)
{
    const struct dc_report_view *v = g->v;
    struct legend {
        const char *colour, *name;
    } leg[DC_PHASE_COUNT + 6];
    int nl = 0;

    if (v->exec) {
        leg[nl++] = (struct legend){COLOUR_OK, "ran, exit 0"};
        leg[nl++] = (struct legend){COLOUR_FAILED, "failed"};
    } else {
        for (int p = 0; p < DC_PHASE_COUNT; p++)
            if (v->phase[p] > 0 || p == DC_PHASE_COMPUTE)
                leg[nl++] = (struct legend){phase_colour[p], phase_names[p]};
        bool phases = false;
        for (size_t i = 0; i < v->nspans && !phases; i++)
            phases = v->spans[i].has_phases;
        if (phases) {
            leg[nl++] = (struct legend){COLOUR_READ, "read (rank)"};
            leg[nl++] = (struct legend){chunk_colour[4], "write (rank)"};
        }
        if (v->nspans)
            leg[nl++] = (struct legend){COLOUR_RELAY,
                                        "chunk away from the rank (relay, "
                                        "waits)"};
        leg[nl++] =
            (struct legend){COLOUR_LOST, "lost (a chunk without result)"};
    }
    double lx = 10;
    for (int i = 0; i < nl; i++) {
        dc_strbuf_printf (
            &g->b,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" "
            "fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
            lx, g->legend_y, leg[i].colour, lx + 18, g->legend_y + 12,
            leg[i].name);
        lx += 30 + 7 * strlen (leg[i].name);
    }
}

/* the time the drawing spans: the wall time, or the latest end seen */
static double svg_span (const struct dc_report_view *v)
{
    double T = v->wall, sum = 0;

    /* the job's phases, drawn one after another (they may overlap) */
    for (int p = 0; p < DC_PHASE_COUNT; p++)
        sum += v->phase[p];
    if (sum > T)
        T = sum;

    for (size_t i = 0; i < v->nspans; i++) {
        const struct dc_report_span *sp = &v->spans[i];
        double e = sp->pstart;
        for (int p = 0; sp->has_phases && p < DC_CHUNK_NPHASES; p++)
            e += sp->ph[p];
        if (sp->end > T)
            T = sp->end;
        if (sp->has_phases && e > T)
            T = e;
    }
    for (int i = 0; i < v->nranks; i++)
        if (v->ranks[i].end > T)
            T = v->ranks[i].end;
    return T > 0 ? T : 1;
}

char *dc_report_svg (const struct dc_report_view *v)
{
    if (!v)
        return NULL;
    struct svg g = {
        .b = DC_STRBUF_INIT (SVG_MAX),
        .v = v,
        .left = 220,
        .right = 30,
        .top = 50,
        .rowh = 26,
        .plotw = 900,
        .T = svg_span (v),
    };
    int rows = v->nranks + (v->has_phases ? 1 : 0);
    g.ploth = rows * g.rowh;
    g.legend_y = g.top + g.ploth + 50;
    svg_head (&g, g.left + g.plotw + g.right, g.legend_y + 40);
    int row = 0;
    if (v->has_phases) {
        svg_phases (&g);
        row++;
    }
    for (int i = 0; i < v->nranks; i++, row++)
        svg_rank (&g, &v->ranks[i], row);
    svg_legend (&g);
    dc_strbuf_printf (&g.b, "</svg>\n");
    return dc_strbuf_take (&g.b); /* NULL with errno when it failed */
}

int dc_report_svg_write (const struct dc_report_view *v, const char *path,
                         dc_error_t *errp)
{
    struct dc_atomicfile *f;
    char *s;
    int rc = -1;

    if (!v || !path) {
        errno = EINVAL;
        return errprintf (errp, "svg: NULL argument");
    }
    if (!(s = dc_report_svg (v))) {
        errno = ENOMEM;
        return errprintf (errp, "%s: out of memory", path);
    }
    if ((f = dc_atomicfile_create (path, errp)) &&
        dc_atomicfile_pwrite (f, s, strlen (s), 0, errp) == 0 &&
        dc_atomicfile_commit (f, errp) == 0)
        rc = 0;
    dc_atomicfile_destroy (f);
    free (s);
    return rc;
}
