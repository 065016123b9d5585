/* test_map.c - the hub of `dcrun map` (lib/run/map.h, sched_map) over the
 * in-process comm "loop": scripted ranks that answer right, die with a
 * chunk, send garbage, another dtype or failed chunks; and one real rank
 * (dc_worker_serve running `cp {in} {out}`).  Every case checks the status,
 * the message, the lost ranks and that the output is complete and right
 * or absent. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "gpu/compute.h"
#include "lib/comm/comm_loop.h"
#include "lib/comm/wire.h"
#include "lib/run/map.h"
#include "lib/run/rank.h"

#define DC_TMP_PREFIX "/tmp/test_map"
#include "tmpdir.h"

#define ROWS 100
#define COLS 3
#define MAXR 4

static int16_t xin[ROWS * COLS];

static void make_input (void)
{
    int64_t shape[2] = {ROWS, COLS};
    uint8_t hdr[256];
    size_t hl = dc_map_npy_header ("<i2", 2, shape, hdr, sizeof (hdr));
    FILE *f = fopen (tpath ("x.npy"), "wb");

    for (int i = 0; i < ROWS * COLS; i++)
        xin[i] = (int16_t)(i * 7 - 300);
    ck_assert_ptr_nonnull (f);
    ck_assert_uint_eq (fwrite (hdr, 1, hl, f), hl);
    ck_assert_uint_eq (fwrite (xin, sizeof (xin), 1, f), 1);
    fclose (f);
}

enum script {
    REAL = 0, /* dc_worker_serve: cp {in} {out} */
    GOOD,     /* each chunk's rows back as they came */
    ALT_TYPE, /* odd chunks' bytes back as '>i2' */
    FAIL,     /* every chunk failed: "nope" */
    DIE,      /* takes a chunk, then its process ends */
    BAD_ID,   /* a result for a chunk it does not have */
    GARBAGE,  /* a result of 5 bytes */
    ERROR,    /* ERROR "boom" after the command */
    EARLY,    /* says it is direct, then claims rows written before the
                 hub told it where */
};

struct rank_thread {
    pthread_t t;
    struct dc_comm *c;
    enum script script;
    int rc;
};

/* The misbehaving ranks (DIE, BAD_ID, GARBAGE, ERROR) act before a GOOD
 * rank answers its first chunk, so the hub sees the loss before the end
 * whatever the threads' timing. */
static int nbad, bad_done;

static bool is_bad (enum script s)
{
    return s == DIE || s == BAD_ID || s == GARBAGE || s == ERROR || s == EARLY;
}

static void wait_for_bad (void)
{
    for (int i = 0;
         i < 10000 && __atomic_load_n (&bad_done, __ATOMIC_SEQ_CST) < nbad; i++)
        usleep (1000);
}

static void *scripted (struct rank_thread *rt)
{
    struct dc_comm *c = rt->c;
    struct dc_comm_msg m;
    struct dc_wire_map spec = {0};
    dc_error_t e;

    /* JOB, then the command */
    if (dc_comm_recv (c, &m, -1, &e) <= 0)
        return NULL;
    free (m.data);
    if (dc_comm_recv (c, &m, -1, &e) <= 0)
        return NULL;
    ck_assert_int_eq (m.type, DC_MSG_DATA);
    ck_assert_int_eq (dc_wire_map_decode (m.data, m.len, &spec, &e), 0);
    free (m.data);
    if (rt->script == ERROR) {
        dc_comm_send (c, DC_COMM_HUB, DC_MSG_ERROR, "boom", 4, NULL);
        __atomic_add_fetch (&bad_done, 1, __ATOMIC_SEQ_CST);
        dc_wire_map_free (&spec);
        return NULL;
    }
    if (rt->script == EARLY)
        dc_comm_send (c, DC_COMM_HUB, DC_MSG_READY, "{\"io\": \"direct\"}", 16,
                      NULL);
    else
        dc_comm_send (c, DC_COMM_HUB, DC_MSG_READY, "{}", 2, NULL);
    for (;;) {
        if (dc_comm_recv (c, &m, -1, &e) < 0)
            break;
        if (m.type == DC_MSG_DONE) {
            free (m.data);
            break;
        }
        struct dc_wire_chunk ch;
        if (m.type != DC_MSG_CHUNK ||
            dc_wire_chunk_get (m.data, m.len,
                               rt->script == EARLY ? 0 : spec.row_bytes, &ch,
                               &e) < 0) {
            free (m.data);
            continue;
        }
        if (rt->script == DIE) {
            free (m.data);
            break;
        }
        if (rt->script == GOOD)
            wait_for_bad ();
        struct dc_wire_mapres r = {
            .id = ch.id,
            .row0 = ch.row0,
            .rows = ch.rows,
            .row_bytes = spec.row_bytes,
            .ndim = spec.ndim,
            .text = rt->script == ALT_TYPE && ch.id % 2 ? ">i2" : spec.descr,
            .text_len = 3,
            .data = ch.data};
        memcpy (r.shape, spec.shape, sizeof (r.shape));
        if (rt->script == FAIL)
            r = (struct dc_wire_mapres){.id = ch.id,
                                        .row0 = ch.row0,
                                        .rows = ch.rows,
                                        .status = 1,
                                        .text = "nope",
                                        .text_len = 4};
        if (rt->script == BAD_ID)
            r.id += 1000;
        if (rt->script == EARLY) {
            r.status = DC_MAPRES_WRITTEN;
            r.data = NULL;
        }
        size_t len;
        uint8_t *b = dc_wire_mapres_new (&r, &len);
        if (b && rt->script == EARLY) /* the header only */
            len = dc_wire_mapres_hdr_len (&r);
        free (m.data);
        ck_assert_ptr_nonnull (b);
        if (rt->script == GARBAGE)
            len = 5;
        dc_comm_send (c, DC_COMM_HUB, DC_MSG_RESULT, b, len, NULL);
        free (b);
        if (is_bad (rt->script)) /* dropped by the hub now */
            __atomic_add_fetch (&bad_done, 1, __ATOMIC_SEQ_CST);
    }
    dc_wire_map_free (&spec);
    return NULL;
}

static void *rank_main (void *arg)
{
    struct rank_thread *rt = arg;
    struct dc_worker_opts wo = {
        .find = dc_compute_find, .tmpdir = tmpdir, .heartbeat = 0.05};
    dc_error_t e;

    if (rt->script == REAL)
        rt->rc = dc_worker_serve (rt->c, &wo, &e);
    else
        scripted (rt);
    dc_comm_destroy (rt->c); /* the "process" ends */
    if (rt->script == DIE)   /* its loss is queued at the hub */
        __atomic_add_fetch (&bad_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

struct mcase {
    const char *name;
    int n;
    enum script s[MAXR];
    int retries;
    int status;      /* dc_status */
    int nlost;       /* on success */
    const char *err; /* in the message ("" none) */
    enum dc_io_mode io;
};

static const struct mcase cases[] = {
    {"3 good ranks", 3, {GOOD, GOOD, GOOD}, 2, DC_STATUS_OK, 0, "", DC_IO_AUTO},
    {"a real rank and a good one",
     2,
     {REAL, GOOD},
     2,
     DC_STATUS_OK,
     0,
     "",
     DC_IO_AUTO},
    {"a rank dies with a chunk",
     2,
     {GOOD, DIE},
     2,
     DC_STATUS_OK,
     1,
     "lost on the way: rank 1 on h1",
     DC_IO_AUTO},
    {"a result for no chunk",
     2,
     {GOOD, BAD_ID},
     2,
     DC_STATUS_OK,
     1,
     "rank 1 on h1 (sent a bad result)",
     DC_IO_AUTO},
    {"a result of 5 bytes",
     2,
     {GARBAGE, GOOD},
     2,
     DC_STATUS_OK,
     1,
     "rank 0 on h0 (sent a bad result)",
     DC_IO_AUTO},
    {"a rank that sends ERROR",
     2,
     {ERROR, GOOD},
     2,
     DC_STATUS_OK,
     1,
     "rank 0 on h0 (boom)",
     DC_IO_AUTO},
    {"failed chunks retried on a good rank",
     2,
     {FAIL, GOOD},
     2,
     DC_STATUS_OK,
     0,
     "",
     DC_IO_AUTO},
    {"every chunk fails",
     2,
     {FAIL, FAIL},
     2,
     DC_STATUS_FAIL,
     0,
     "failed 3 times, last on rank",
     DC_IO_AUTO},
    {"--retries 0",
     3,
     {FAIL, FAIL, FAIL},
     0,
     DC_STATUS_FAIL,
     0,
     "failed 1 time, last on rank",
     DC_IO_AUTO},
    {"another dtype",
     1,
     {ALT_TYPE},
     0,
     DC_STATUS_FAIL,
     0,
     "but the first chunk's is",
     DC_IO_AUTO},
    {"every rank dies",
     3,
     {DIE, DIE, DIE},
     2,
     DC_STATUS_FAIL,
     0,
     "every rank was lost",
     DC_IO_AUTO},
    {"every rank fails",
     2,
     {ERROR, ERROR},
     2,
     DC_STATUS_FAIL,
     0,
     "boom",
     DC_IO_AUTO},
    /* one REAL rank per case: its chunk folder is the process's */
    {"--io direct: a real rank",
     1,
     {REAL},
     2,
     DC_STATUS_OK,
     0,
     "",
     DC_IO_DIRECT},
    {"--io relay: a real rank and a good one",
     2,
     {REAL, GOOD},
     2,
     DC_STATUS_OK,
     0,
     "",
     DC_IO_RELAY},
    {"--io direct: a rank that cannot is refused",
     2,
     {REAL, GOOD},
     2,
     DC_STATUS_OK,
     1,
     "rank 1 on h1 (no direct I/O)",
     DC_IO_DIRECT},
    {"--io direct: no rank can",
     2,
     {GOOD, GOOD},
     2,
     DC_STATUS_FAIL,
     0,
     "--io direct: the rank cannot read the files",
     DC_IO_DIRECT},
    {"rows written before the hub said where",
     2,
     {EARLY, GOOD},
     2,
     DC_STATUS_OK,
     1,
     "rank 0 on h0 (sent a bad result)",
     DC_IO_AUTO},
};

START_TEST (t_map)
{
    const struct mcase *c = &cases[_i];
    struct rank_thread rt[MAXR];
    const char *hosts[MAXR] = {"h0", "h1", "h2", "h3"};
    char *argv[] = {"cp", "{in}", "{out}", NULL};
    struct dc_map_opts o = {.input = tpath ("x.npy"),
                            .argc = 3,
                            .argv = argv,
                            .chunk_rows = 10,
                            .retries = c->retries,
                            .io_mode = c->io};
    char out[4096];
    dc_error_t err;
    int sig;

    make_input ();
    snprintf (out, sizeof (out), "%s", tpath ("y.npy"));
    unlink (out);
    o.output = out;
    nbad = bad_done = 0;
    for (int r = 0; r < c->n; r++)
        nbad += is_bad (c->s[r]);
    struct dc_comm *hub = dc_comm_loop_create (c->n, &err);
    ck_assert_ptr_nonnull (hub);
    for (int r = 0; r < c->n; r++) {
        rt[r] = (struct rank_thread){.script = c->s[r]};
        ck_assert_ptr_nonnull (rt[r].c = dc_comm_loop_rank (hub, r, &err));
        ck_assert_int_eq (pthread_create (&rt[r].t, NULL, rank_main, &rt[r]),
                          0);
    }
    int st = dc_map_hub (&o, hub, c->n, hosts, NULL, NULL, &sig, &err);
    dc_comm_destroy (hub); /* the ranks still waiting see it go */
    for (int r = 0; r < c->n; r++)
        pthread_join (rt[r].t, NULL);
    ck_assert_msg (st == c->status, "%s: status %d, expected %d: %s", c->name,
                   st, c->status, err.text);
    ck_assert_msg (strstr (err.text, c->err), "%s: '%s' lacks '%s'", c->name,
                   err.text, c->err);
    /* the shared temporary output and its token are gone either way */
    DIR *d = opendir (tmpdir);
    struct dirent *de;
    ck_assert_ptr_nonnull (d);
    while ((de = readdir (d)))
        ck_assert_msg (strncmp (de->d_name, ".y.npy.dcrun-", 13), "%s: %s left",
                       c->name, de->d_name);
    closedir (d);
    struct stat sb;
    if (st != DC_STATUS_OK) {
        ck_assert_msg (stat (out, &sb) < 0, "%s: an output exists", c->name);
        ck_assert (strstr (err.text, "no output written"));
        return;
    }
    struct dc_map_arr a;
    int fd = dc_map_npy_open (out, &a, &err);
    ck_assert_msg (fd >= 0, "%s: %s", c->name, err.text);
    ck_assert_str_eq (a.descr, "<i2");
    ck_assert_uint_eq (a.rows, ROWS);
    ck_assert_int_eq (a.ndim, 2);
    ck_assert_int_eq (a.shape[1], COLS);
    int16_t back[ROWS * COLS];
    ck_assert_int_eq (pread (fd, back, sizeof (back), (off_t)a.data_offset),
                      (ssize_t)sizeof (back));
    close (fd);
    ck_assert_msg (!memcmp (back, xin, sizeof (xin)), "%s: other rows",
                   c->name);
    if (c->nlost == 0)
        ck_assert_msg (!err.text[0], "%s: %s", c->name, err.text);
    for (int r = 0; r < c->n; r++)
        if (c->s[r] == REAL)
            ck_assert_int_eq (rt[r].rc, 0);
    unlink (out);
}
END_TEST

/* Bad options before any rank: no output. */
START_TEST (t_prepare)
{
    char *argv[] = {"cat", "{in}", NULL};
    struct dc_map_opts o = {.input = tpath ("x.npy"),
                            .output = tpath ("z.npy"),
                            .argc = 2,
                            .argv = argv};
    dc_error_t err;

    make_input ();
    ck_assert_int_eq (dc_map_prepare (&o, &err), DC_STATUS_USAGE);
    ck_assert (strstr (err.text, "holds {in} but not {out}"));
    argv[1] = "x";
    ck_assert_int_eq (dc_map_prepare (&o, &err), DC_STATUS_OK);
    o.output = o.input;
    ck_assert_int_eq (dc_map_prepare (&o, &err), DC_STATUS_INPUT);
    o.output = tpath ("z.npy");
    o.input = tpath ("none.npy");
    ck_assert_int_eq (dc_map_prepare (&o, &err), DC_STATUS_INPUT);
    ck_assert (dc_map_per_chunk (3, (char *[]){"a", "--x={out}", "b"}));
    ck_assert (!dc_map_per_chunk (2, (char *[]){"a", "{inx}"}));
    o.files = true;
    o.input = tmpdir; /* a folder of one file */
    ck_assert_int_eq (dc_map_prepare (&o, &err), DC_STATUS_OK);
    o.output = tmpdir; /* exists */
    ck_assert_int_eq (dc_map_prepare (&o, &err), DC_STATUS_INPUT);
    ck_assert (strstr (err.text, "exists"));
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("map");
    TCase *tc = tcase_create ("map");

    signal (SIGPIPE, SIG_IGN);
    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_loop_test (tc, t_map, 0,
                         (int)(sizeof (cases) / sizeof (cases[0])));
    tcase_add_test (tc, t_prepare);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
