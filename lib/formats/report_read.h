/* report_read.h - read a `--report` JSON back, name its bottleneck, draw it
 *
 * What `dcrun report R.json` prints.  A view is the report checked and
 * flattened: per rank its host, device, rows, busy seconds (for exec: start
 * to end), idle seconds (the wall time it was not busy, launch and load
 * included), TFLOP/s, share of the rows, I/O way and read/compute/write
 * split; the job's phases; the head's relayed bytes and CPU seconds; the
 * lost ranks; the chunk timeline when the report has one.
 *
 * The rank's busy seconds are its "phases"."busy" when the report has it
 * (the read, copies, compute and write of its chunks), else its "seconds"
 * (compute); its read/compute/write split comes from "phases" (the copies
 * counted as compute) or else "distributed"."rank_io".  Reports written
 * before these members (or by exec) read as before: no split, no I/O way.
 *
 * The bottleneck: the first rule that holds, in this order (W = the wall
 * seconds, "totals"."seconds"; the head's relay: the part of the compute
 * phase in which not even the busiest rank was busy (compute phase - max
 * busy) plus the gather phase):
 *
 *  1. DC_BN_RELAY: the head's relay dominates (>= 50% of W, or >= 1/3 of
 *     W and longer than launch, load, write and the busiest rank's busy
 *     time each) and the rows went through the head ("io" relay or mixed,
 *     or a report without "io", written before --io):
 *     "the head relayed N GiB of rows: the relay took X% of the wall time:
 *     use --io direct (the ranks see the same files)".
 *     DC_BN_WAIT: the same with "io" direct (the ranks waited on the head's
 *     scheduling, not on its relay).
 *  2. DC_BN_PHASE: launch, load or write (the largest) is >= 50% of W.
 *  3. DC_BN_FAILED (exec): a rank failed; the first one is named.
 *  4. DC_BN_STRAGGLER: the slowest rank (rows per busy second; exec:
 *     seconds) is >= 1.5x slower than the median of the ranks that did work
 *     (at least 2 of them).
 *  5. DC_BN_READ / DC_BN_WRITE: reading the input (writing the output) took
 *     >= 50% of the ranks' busy time, summed over the ranks.
 *  6. DC_BN_LOST: a rank was lost (its chunks went to the others).
 *  7. DC_BN_IDLE: a rank that was not lost did no rows (one that never
 *     became ready, "io" none, is said so).
 *  8. DC_BN_COMPUTE: the compute phase is the job's largest (or the report
 *     has no phases) and the ranks computed: "compute-bound: ...".
 *  9. DC_BN_NONE: "no bottleneck: ranks within P% of each other" (P the
 *     spread of the rates around the median, at least 10).
 *
 * Every text taken from the report (hosts, devices, statuses, reasons) is
 * cut to its field and made printable: control bytes and bytes that are
 * not well-formed UTF-8 become '?'.
 *
 * Bounded: at most DC_REPORT_READ_MAX bytes, DC_REPORT_MAX_RANKS ranks,
 * DC_REPORT_MAX_CHUNKS spans.
 */
#ifndef DC_REPORT_READ_H
#define DC_REPORT_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/formats/report.h"
#include "lib/util/error.h"

#define DC_REPORT_READ_MAX ((size_t)256 << 20)
#define DC_REPORT_MAX_RANKS 100000

enum dc_bottleneck {
    DC_BN_NONE = 0,
    DC_BN_RELAY,
    DC_BN_PHASE,
    DC_BN_FAILED,
    DC_BN_STRAGGLER,
    DC_BN_LOST,
    DC_BN_IDLE,
    DC_BN_EMPTY, /* nothing was timed */
    DC_BN_WAIT,  /* direct I/O: the ranks waited on the head */
    DC_BN_READ,
    DC_BN_WRITE,
    DC_BN_COMPUTE,
};

struct dc_report_rank {
    int rank;
    char host[256];
    char device[256];
    double rows, busy, idle, tflops, share;
    double start, end; /* exec: since the report's start */
    bool lost;
    char lost_reason[256];
    char status[64];      /* exec: "exit 0", "signal 9", "failed to start" */
    bool failed;          /* exec: not "exit 0" */
    size_t span0, nspans; /* its chunks: spans[span0 .. span0 + nspans) */
    /* how its rows travelled: "direct", "relay", "none" (no READY); ""
     * when the report does not say; why not direct */
    char io[16];
    char io_why[256];
    bool has_split;              /* read, compute, write known */
    double read, compute, write; /* seconds; compute with the copies */
    double relayed_bytes;        /* -1: unknown */
};

struct dc_report_span {
    int rank;
    double start, end; /* seconds since the job's start */
    double compute;    /* the rank's compute seconds in it */
    bool unfinished;   /* no result came: drawn to the end, lost */
    /* the rank's phases of it, laid end to end from pstart (seconds since
     * the job's start): read, copy_in, compute, copy_out, write */
    bool has_phases;
    double pstart;
    double ph[DC_CHUNK_NPHASES];
};

struct dc_report_view {
    char command[32];
    char layout[32];
    bool exec;
    double wall;
    double total_rows;
    bool has_phases;
    double phase[DC_PHASE_COUNT];
    int nranks;
    struct dc_report_rank *ranks;
    size_t nspans;
    struct dc_report_span *spans;
    int nlost;
    char lost_text[512]; /* a "lost_workers" given as text (train) */
    int job_ranks;       /* "distributed"."ranks" (train), else nranks */
    /* "distributed": "io" (direct, relay, mixed; "" not said), "io_mode"
     * (what was asked), the bytes relayed (-1 unknown), the head's CPU
     * seconds (-1 unknown) */
    char io[16];
    char io_mode[16];
    double relayed_bytes;
    double hub_cpu;
    /* the ranks' busy seconds summed, and their split (has_split: at
     * least one rank has one) */
    bool has_split;
    double busy_sum, read_sum, compute_sum, write_sum;
    double relay; /* the head's relay seconds (see above) */
    enum dc_bottleneck kind;
    int culprit;   /* the rank named, -1 none */
    double factor; /* straggler: x slower; relay/phase: fraction of W */
    char bottleneck[512];
};

/* The phase's name ("launch"); NULL out of range. */
const char *dc_report_phase_name (enum dc_phase p);

/* Check and flatten a report's text (name for messages); NULL with errp
 * ("NAME: reason") when it is not JSON, not a dcrun report, or misses a
 * member the table needs.  Runs the analysis. */
struct dc_report_view *dc_report_view_parse (const char *text, size_t len,
                                             const char *name,
                                             dc_error_t *errp);

/* The same from a file (a regular file only: a FIFO or a device is
 * refused). */
struct dc_report_view *dc_report_view_read (const char *path, dc_error_t *errp);

void dc_report_view_destroy (struct dc_report_view *v); /* accepts NULL */

/* The view and its analysis as JSON text (caller frees); NULL on ENOMEM. */
char *dc_report_view_json (const struct dc_report_view *v);

/* The SVG text of the timeline (caller frees): one row per rank (chunks as
 * bars from their send to their result; inside, the rank's read, copies,
 * compute and write of the chunk as segments coloured by phase when the
 * chunk has "phases", else its compute; one bar of its busy time when the
 * report has no chunk list), labelled with the rank's host and I/O way, a
 * row of the job's phases, lost ranks marked, a legend, an axis in seconds.
 * Every text from the report is escaped (tooltips included).  NULL on
 * ENOMEM. */
char *dc_report_svg (const struct dc_report_view *v);

/* dc_report_svg written atomically; -1 with errp. */
int dc_report_svg_write (const struct dc_report_view *v, const char *path,
                         dc_error_t *errp);

#endif
