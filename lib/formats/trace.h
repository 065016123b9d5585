/* trace.h - Chrome Trace Event Format files (`--trace FILE.json`)
 *
 * The JSON that Perfetto (ui.perfetto.dev) and chrome://tracing load:
 *
 *   {"displayTimeUnit": "ms", "otherData": {"dcrun": VERSION},
 *    "traceEvents": [
 *      {"ph": "M", "name": "process_name", "pid": P, "tid": 0,
 *       "args": {"name": HOST}},
 *      {"ph": "M", "name": "thread_name", "pid": P, "tid": T,
 *       "args": {"name": "rank 3"}},
 *      {"ph": "X", "name", "cat", "pid", "tid", "ts", "dur", "args": {..}},
 *      {"ph": "i", "name", "cat", "pid", "tid", "ts", "s": "t", "args"}]}
 *
 * dcrun's convention: pid = the host's index in the job's host list,
 * tid = rank + 1 (the hub, on the coordinator's host, is tid 0); ts and
 * dur are microseconds since the job's start on the launching host's
 * clock.  Spans ("X") of one thread never overlap.  Events are kept in
 * memory (at most DC_TRACE_MAX_EVENTS) and written atomically.
 */
#ifndef DC_TRACE_H
#define DC_TRACE_H

#include "lib/util/error.h"

#define DC_TRACE_MAX_EVENTS 4000000
#define DC_TRACE_HUB_TID 0

struct dc_trace;
struct cJSON;

struct dc_trace *dc_trace_create (void);
void dc_trace_destroy (struct dc_trace *t); /* accepts NULL */

/* Metadata: the name of process pid (a host) and of thread tid (a rank). */
int dc_trace_process_name (struct dc_trace *t, int pid, const char *name);
int dc_trace_thread_name (struct dc_trace *t, int pid, int tid,
                          const char *name);

/* A complete span, [ts, ts + dur] microseconds (dur < 0 is taken as 0).
 * Returns its "args" object (borrowed: add members to it), NULL on error
 * (a NULL name or cat, ENOMEM, more than DC_TRACE_MAX_EVENTS). */
struct cJSON *dc_trace_span (struct dc_trace *t, int pid, int tid,
                             const char *name, const char *cat, double ts_us,
                             double dur_us);

/* An instant event, thread scoped; its "args" (borrowed) or NULL. */
struct cJSON *dc_trace_instant (struct dc_trace *t, int pid, int tid,
                                const char *name, const char *cat,
                                double ts_us);

/* Events so far. */
int dc_trace_count (const struct dc_trace *t);

/* The JSON text (caller frees). */
char *dc_trace_print (const struct dc_trace *t);

/* Written atomically (unnamed temporary file, then linked); -1 with errp. */
int dc_trace_write (const struct dc_trace *t, const char *path,
                    dc_error_t *errp);

/* The trace of a run from its report (report.h): one process per host (the
 * hub's is this host), thread "hub" (tid 0) and "rank N" (tid N + 1);
 * each chunk a span "chunk" (cat "chunk", args id, sent, arrived,
 * compute), with nested spans "compute" (cat "compute": the rank's own
 * seconds, placed at the end of its result's arrival) or, when the rank
 * measured them, "read", "copy_in", "compute", "copy_out", "write" (cat
 * "phase") laid end to end from their start; "connect+load" (cat "load")
 * per rank before its first chunk; instants "retry" (a chunk sent again);
 * then the report's own spans and instants (launch, steps, "lost",
 * "commit").  All on the head's monotonic clock, microseconds since the
 * report's zero.  NULL with errp on failure. */
struct dc_report;
struct dc_trace *dc_trace_from_report (const struct dc_report *r,
                                       dc_error_t *errp);

/* dc_trace_from_report, written atomically to path. */
int dc_trace_write_report (const struct dc_report *r, const char *path,
                           dc_error_t *errp);

#endif
