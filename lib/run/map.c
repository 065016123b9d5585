/* map.c - `dcrun map` below the CLI (map.h) */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <libgen.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/formats/report.h"
#include "lib/formats/trace.h"
#include "lib/run/map.h"
#include "lib/run/map_rank.h"
#include "lib/util/file.h"
#include "lib/util/log.h"

#define MAX_CHUNK_BYTES ((size_t)64 << 20)          /* of input per chunk */
#define MAX_FILES_CHUNK_BYTES ((uint64_t)256 << 20) /* --files, per chunk */
#define MAX_FILE_BYTES (DC_WIRE_MAX_FILES_BYTES - ((uint64_t)1 << 20))
#define MAX_LIST_BYTES ((size_t)64 << 20)

static const char *signame (int sig)
{
    const char *s = sigabbrev_np (sig);
    return s ? s : "?";
}

bool dc_map_per_chunk (int argc, char *const *argv)
{
    for (int i = 0; i < argc; i++)
        if (strstr (argv[i], "{in}") || strstr (argv[i], "{out}"))
            return true;
    return false;
}

static void free_paths (char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++)
        free (paths[i]);
    free (paths);
}

static int add_path (char ***paths, uint64_t **sizes, size_t *n, size_t *cap,
                     char *path, const char *where, dc_error_t *err)
{
    struct stat st;
    const char *slash = strrchr (path, '/');
    const char *base = slash ? slash + 1 : path;

    int r = stat (path, &st);
    if (r < 0 || !S_ISREG (st.st_mode)) { /* st is unset when stat fails */
        errprintf (err, "%s%s: %s", where, path,
                   r < 0 ? strerror (errno) : "not a regular file");
        free (path);
        return -1;
    }
    if (!dc_wire_file_name_ok (base, strlen (base))) {
        errprintf (err, "%s%s: not a file name", where, path);
        free (path);
        return -1;
    }
    if ((uint64_t)st.st_size > MAX_FILE_BYTES) {
        errprintf (err, "%s%s: larger than 1 GiB", where, path);
        free (path);
        return -1;
    }
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        char **p = realloc (*paths, c * sizeof (char *));
        uint64_t *z = p ? realloc (*sizes, c * sizeof (uint64_t)) : NULL;
        if (p)
            *paths = p;
        if (!p || !z) {
            errprintf (err, "out of memory");
            free (path);
            return -1;
        }
        *sizes = z;
        *cap = c;
    }
    (*paths)[*n] = path;
    (*sizes)[*n] = (uint64_t)st.st_size;
    (*n)++;
    return 0;
}

static int cmp_str (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

int dc_map_list_files (const char *input, char ***paths, uint64_t **sizes,
                       size_t *n, dc_error_t *err)
{
    struct stat st;
    size_t cap = 0;
    char where[4200];

    *paths = NULL;
    *sizes = NULL;
    *n = 0;
    if (stat (input, &st) < 0) {
        errprintf (err, "%s: %s", input, strerror (errno));
        return DC_STATUS_INPUT;
    }
    if (S_ISDIR (st.st_mode)) { /* its regular files, by name */
        DIR *d = opendir (input);
        struct dirent *e;
        char **names = NULL;
        size_t nn = 0, nc = 0;
        if (!d) {
            errprintf (err, "%s: %s", input, strerror (errno));
            return DC_STATUS_INPUT;
        }
        while ((e = readdir (d))) {
            struct stat es;
            if (e->d_name[0] == '.' ||
                fstatat (dirfd (d), e->d_name, &es, 0) < 0 ||
                !S_ISREG (es.st_mode))
                continue; /* hidden files and folders stay out */
            if (nn == nc) {
                char **v =
                    realloc (names, (nc = nc ? 2 * nc : 64) * sizeof (char *));
                if (!v)
                    break;
                names = v;
            }
            if (!(names[nn] = strdup (e->d_name)))
                break;
            nn++;
        }
        closedir (d);
        if (e) {
            free_paths (names, nn);
            errprintf (err, "out of memory");
            return DC_STATUS_FAIL;
        }
        if (nn)
            qsort (names, nn, sizeof (char *), cmp_str);
        snprintf (where, sizeof (where), "%s: ", input);
        int rc = 0;
        for (size_t i = 0; i < nn && rc == 0; i++) {
            char *p;
            if (asprintf (&p, "%s/%s", input, names[i]) < 0) {
                errprintf (err, "out of memory");
                rc = -1;
            } else
                rc = add_path (paths, sizes, n, &cap, p, "", err);
        }
        free_paths (names, nn);
        if (rc < 0)
            goto fail;
    } else {
        size_t len;
        uint8_t *buf = dc_file_read (input, MAX_LIST_BYTES, &len, err);
        size_t line = 0;
        if (!buf)
            return DC_STATUS_INPUT;
        for (size_t i = 0; i < len;) {
            size_t j = i;
            while (j < len && buf[j] != '\n')
                j++;
            size_t k = j;
            line++;
            while (i < k && (buf[i] == ' ' || buf[i] == '\t'))
                i++;
            while (k > i && (buf[k - 1] == '\r' || buf[k - 1] == ' ' ||
                             buf[k - 1] == '\t'))
                k--;
            if (k > i) {
                char *p = strndup ((const char *)buf + i, k - i);
                snprintf (where, sizeof (where), "%s: line %zu: ", input, line);
                if (!p || memchr (buf + i, '\0', k - i)) {
                    free (p);
                    free (buf);
                    errprintf (err, "%s%s", where,
                               p ? "holds a NUL byte" : "out of memory");
                    goto fail;
                }
                if (add_path (paths, sizes, n, &cap, p, where, err) < 0) {
                    free (buf);
                    goto fail;
                }
            }
            i = j + 1;
        }
        free (buf);
    }
    if (*n == 0) {
        errprintf (err, "%s: no files to map", input);
        goto fail;
    }
    return DC_STATUS_OK;
fail:
    free_paths (*paths, *n);
    free (*sizes);
    *paths = NULL;
    *sizes = NULL;
    *n = 0;
    return DC_STATUS_INPUT;
}

/* --files: the input's files, an output folder that does not exist yet. */
static int prepare_files (const struct dc_map_opts *o, dc_error_t *err)
{
    const struct dc_file_use files[] = {
        {"--report", o->report, DC_FILE_OUTPUT},
        {"--trace", o->trace, DC_FILE_OUTPUT},
    };
    struct stat st;
    char **paths;
    uint64_t *sizes;
    size_t n;
    int st_;

    if ((o->report || o->trace) &&
        dc_file_check (files, sizeof (files) / sizeof (files[0]), err) < 0)
        return DC_STATUS_INPUT;
    if (lstat (o->output, &st) == 0) {
        errprintf (err, "%s: exists: --files writes a new folder", o->output);
        return DC_STATUS_INPUT;
    }
    char *a = strdup (o->output);
    if (!a) {
        errprintf (err, "out of memory");
        return DC_STATUS_FAIL;
    }
    const char *dir = dirname (a);
    if (stat (dir, &st) < 0 || !S_ISDIR (st.st_mode)) {
        errprintf (err, "%s: no folder %s", o->output, dir);
        free (a);
        return DC_STATUS_INPUT;
    }
    free (a);
    if ((st_ = dc_map_list_files (o->input, &paths, &sizes, &n, err)) !=
        DC_STATUS_OK)
        return st_;
    free_paths (paths, n);
    free (sizes);
    return DC_STATUS_OK;
}

int dc_map_check (const struct dc_map_opts *o, dc_error_t *err)
{
    if (!o->input || !o->output)
        return errprintf (err, "--input and --output are required");
    if (o->argc < 1)
        return errprintf (err, "no command to run: dcrun map [options] -- "
                               "CMD ARGS...");
    if (o->files && o->io_mode == DC_IO_DIRECT)
        return errprintf (err, "--io direct: not with --files (the files "
                               "travel through this process)");
    return 0;
}

const char *dc_map_io_plan (const struct dc_map_opts *o)
{
    if (o->files)
        return dc_io_mode_name (DC_IO_RELAY);
    if (o->io_mode != DC_IO_AUTO)
        return dc_io_mode_name (o->io_mode);
    return "auto: each rank copies its chunks' rows from the input and CMD's "
           "rows into the output itself when it sees the input and the "
           "output's folder at the same paths, else they pass through the "
           "head (decided when the ranks start)";
}

int dc_map_prepare (const struct dc_map_opts *o, dc_error_t *err)
{
    const struct dc_file_use files[] = {
        {"--input", o->input, DC_FILE_INPUT},
        {"--output", o->output, DC_FILE_OUTPUT},
        {"--report", o->report, DC_FILE_OUTPUT},
        {"--trace", o->trace, DC_FILE_OUTPUT},
    };
    struct dc_map_arr a;
    int fd;

    err->text[0] = '\0';
    if (o->files) {
        int st = prepare_files (o, err);
        if (st != DC_STATUS_OK)
            return st;
        goto argv;
    }
    if (dc_file_check (files, sizeof (files) / sizeof (files[0]), err) < 0)
        return DC_STATUS_INPUT;
    if ((fd = dc_map_npy_open (o->input, &a, err)) < 0)
        return DC_STATUS_INPUT;
    close (fd);
    if (a.rows == 0) {
        errprintf (err, "%s: no rows to map", o->input);
        return DC_STATUS_INPUT;
    }
    if (a.row_bytes == 0 || a.row_bytes > DC_WIRE_MAX_WIDTH) {
        errprintf (err,
                   "%s: rows of %llu bytes: dcrun map takes rows of 1 "
                   "byte to 16 MiB",
                   o->input, (unsigned long long)a.row_bytes);
        return DC_STATUS_INPUT;
    }
    if (a.ndim - 1 > DC_WIRE_MAP_MAXDIM - 1) {
        errprintf (err, "%s: too many dimensions", o->input);
        return DC_STATUS_INPUT;
    }
argv:;
    bool in = false, out = false;
    for (int i = 0; i < o->argc; i++) {
        in = in || strstr (o->argv[i], "{in}");
        out = out || strstr (o->argv[i], "{out}");
    }
    if (in != out) {
        errprintf (err,
                   "the command holds %s but not %s: per-chunk mode "
                   "needs both",
                   in ? "{in}" : "{out}", in ? "{out}" : "{in}");
        return DC_STATUS_USAGE;
    }
    return DC_STATUS_OK;
}

static void spec_init (const struct dc_map_opts *o, struct dc_sched_map *sm,
                       uint64_t rows)
{
    struct dc_wire_map *sp = &sm->spec;

    sm->retries = o->retries < 0 ? 2 : o->retries;
    sm->output = o->output;
    sp->argc = o->argc;
    sp->argv = o->argv;
    sp->per_chunk = dc_map_per_chunk (o->argc, o->argv);
    sp->rows = rows;
    sp->chunk_timeout = o->chunk_timeout;
}

/* --files: chunks of consecutive files, at most chunk rows files and
 * MAX_FILES_CHUNK_BYTES bytes (a larger file alone). */
static int files_init (const struct dc_map_opts *o, int size,
                       struct dc_sched_map *sm, dc_error_t *err)
{
    int st =
        dc_map_list_files (o->input, &sm->paths, &sm->sizes, &sm->npaths, err);
    if (st != DC_STATUS_OK)
        return st;
    size_t n = sm->npaths, cr = o->chunk_rows;
    if (cr == 0)
        cr = (n + (size_t)size * 4 - 1) / ((size_t)size * 4);
    if (cr == 0)
        cr = 1;
    sm->files = true;
    sm->chunk_rows = cr;
    if (!(sm->chunks = calloc (n, sizeof (*sm->chunks)))) {
        errprintf (err, "out of memory");
        return DC_STATUS_FAIL;
    }
    size_t c = 0;
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        uint64_t bytes = 0;
        while (i + k < n && k < cr &&
               (k == 0 || bytes + sm->sizes[i + k] <= MAX_FILES_CHUNK_BYTES))
            bytes += sm->sizes[i + k++];
        sm->chunks[c] = (struct dc_map_chunk){
            .row0 = i, .rows = k, .owner = -1, .last_failed = -1};
        c++;
        i += k;
    }
    sm->nchunks = c;
    sm->in.rows = n; /* the hub counts files as rows */
    spec_init (o, sm, n);
    sm->spec.files = true;
    snprintf (sm->spec.descr, sizeof (sm->spec.descr), "|u1"); /* unused */
    sm->spec.row_bytes = 1;
    return DC_STATUS_OK;
}

/* Chunks, the spec the ranks get. */
static int sched_init (const struct dc_map_opts *o, int size,
                       struct dc_sched_map *sm, dc_error_t *err)
{
    memset (sm, 0, sizeof (*sm));
    sm->in_fd = sm->tmp_fd = sm->probe_fd = -1;
    sm->io_mode = o->files ? DC_IO_RELAY : o->io_mode;
    if (o->files)
        return files_init (o, size, sm, err);
    if ((sm->in_fd = dc_map_npy_open (o->input, &sm->in, err)) < 0)
        return DC_STATUS_INPUT;
    uint64_t rows = sm->in.rows;
    size_t cap = MAX_CHUNK_BYTES / (size_t)sm->in.row_bytes;
    size_t cr = o->chunk_rows;
    if (cr == 0) /* about 4 chunks per rank: faster ranks take more */
        cr = (size_t)((rows + (uint64_t)size * 4 - 1) / ((uint64_t)size * 4));
    if (cr > cap)
        cr = cap ? cap : 1;
    if (cr > DC_WIRE_MAX_ROWS)
        cr = DC_WIRE_MAX_ROWS;
    if (cr > rows)
        cr = (size_t)rows;
    if (cr == 0)
        cr = 1;
    sm->chunk_rows = cr;
    sm->nchunks = (size_t)((rows + cr - 1) / cr);
    if (!(sm->chunks = calloc (sm->nchunks, sizeof (*sm->chunks)))) {
        errprintf (err, "out of memory");
        return DC_STATUS_FAIL;
    }
    for (size_t i = 0; i < sm->nchunks; i++) {
        sm->chunks[i].row0 = i * cr;
        sm->chunks[i].rows = i + 1 < sm->nchunks ? cr : (size_t)rows - i * cr;
        sm->chunks[i].owner = -1;
        sm->chunks[i].last_failed = -1;
    }
    spec_init (o, sm, rows);
    struct dc_wire_map *sp = &sm->spec;
    snprintf (sp->descr, sizeof (sp->descr), "%s", sm->in.descr);
    sp->ndim = sm->in.ndim - 1;
    for (int i = 1; i < sm->in.ndim; i++)
        sp->shape[i - 1] = sm->in.shape[i];
    sp->row_bytes = sm->in.row_bytes;
    return DC_STATUS_OK;
}

static void sched_fini (struct dc_sched_map *sm)
{
    if (sm->in_fd >= 0)
        close (sm->in_fd);
    dc_sched_map_io_close (sm);
    dc_map_out_destroy (sm->out); /* uncommitted: no file */
    sm->out = NULL;
    dc_sched_map_files_close (sm); /* uncommitted: no folder */
    free_paths (sm->paths, sm->npaths);
    free (sm->sizes);
    free (sm->chunks);
}

struct ctx {
    const struct dc_map_opts *o;
    struct dc_job *job;
};

static int check (void *arg)
{
    struct ctx *c = arg;
    return dc_job_check (c->job);
}

static void progress (size_t done, size_t total, int alive, void *arg)
{
    struct ctx *c = arg;
    if (c->o->progress)
        c->o->progress (DC_PROGRESS_UPDATE, "rows", done, total, alive,
                        c->o->arg);
}

static int end_status (const struct dc_coord_result *res, const char *output,
                       int *sig, dc_error_t *err)
{
    char text[sizeof (err->text)];

    snprintf (text, sizeof (text), "%s", err->text);
    switch (res->status) {
    case DC_COORD_OK:
        if (res->nlost > 0)
            errprintf (err, "%zu rows written to %s; lost on the way: %s",
                       res->rows, output, res->lost);
        else
            err->text[0] = '\0';
        return DC_STATUS_OK;
    case DC_COORD_INTERRUPTED:
        *sig = res->signal;
        errprintf (err,
                   "interrupted by SIG%s: every rank stopped, no output "
                   "written",
                   signame (res->signal));
        return DC_STATUS_SIGNAL;
    case DC_COORD_ALL_LOST:
        errprintf (err, "no output written: every rank was lost: %s",
                   res->lost);
        return DC_STATUS_FAIL;
    case DC_COORD_IO_ERROR:
        errprintf (err, "%s: no output written", text);
        return DC_STATUS_FAIL;
    default:
        errprintf (err, "%s: no output written", text);
        return DC_STATUS_FAIL;
    }
}

/* The output's shape and dtype, the total time; --report written. */
static int finish_report (const struct dc_map_opts *o,
                          const struct dc_sched_map *sm,
                          const struct dc_coord_result *res,
                          struct dc_report *rep, double t0, int st,
                          dc_error_t *err)
{
    int64_t shape[DC_MAP_MAXDIM];
    dc_error_t e;

    shape[0] = (int64_t)sm->in.rows;
    for (int i = 0; i < sm->out_ndim; i++)
        shape[i + 1] = sm->out_shape[i];
    if (sm->files) {
        shape[0] = (int64_t)sm->out_files;
        dc_report_set_output (rep, o->output, 1, shape, "files", NULL);
    } else
        dc_report_set_output (rep, o->output, sm->out_ndim + 1, shape,
                              sm->out_descr, res->sha256);
    dc_report_set_total_seconds (rep, dc_report_now () - t0);
    if (o->report && dc_report_write (rep, o->report, &e) < 0) {
        errprintf (err, "%s", e.text);
        return DC_STATUS_FAIL;
    }
    /* the timeline of a run that succeeded, as infer's */
    if (o->trace && st == DC_STATUS_OK &&
        dc_trace_write_report (rep, o->trace, &e) < 0) {
        errprintf (err, "%s", e.text);
        return DC_STATUS_FAIL;
    }
    return st;
}

int dc_map_hub (const struct dc_map_opts *o, struct dc_comm *comm, int size,
                const char *const *hosts, int (*check) (void *arg), void *arg,
                int *sig, dc_error_t *err)
{
    struct dc_sched_map sm = {.in_fd = -1, .probe_fd = -1};
    struct dc_report *rep = NULL;
    struct dc_coord_result res;
    double t0 = dc_report_now ();
    int st;

    *sig = 0;
    err->text[0] = '\0';
    if ((st = sched_init (o, size, &sm, err)) != DC_STATUS_OK)
        goto out;
    if (dc_sched_map_io_open (&sm, o->input, err) < 0) {
        st = DC_STATUS_INPUT;
        goto out;
    }
    if (sm.files && dc_sched_map_files_open (&sm, err) < 0) {
        st = DC_STATUS_INPUT;
        goto out;
    }
    if (!(rep = dc_report_create ("map"))) {
        errprintf (err, "out of memory");
        st = DC_STATUS_FAIL;
        goto out;
    }
    dc_report_set_layout (rep, "data");
    struct dc_coord_infer_opts io = {
        .input_path = o->input,
        .output_path = o->output,
        .check = check,
        .arg = arg,
        .hosts = hosts,
    };
    struct dc_hub h = {.comm = comm,
                       .size = size,
                       .o = &io,
                       .rows = (size_t)sm.in.rows,
                       .res = &res};
    int rc = dc_hub_run (&h, &dc_sched_map, &sm, rep, err);
    st = end_status (&res, o->output, sig, err);
    if (rc == 0)
        st = finish_report (o, &sm, &res, rep, t0, st, err);
out:
    sched_fini (&sm); /* an output not committed is removed */
    dc_report_destroy (rep);
    return st;
}

/* Under mpirun or srun: every process calls it. */
static int map_mpi (const struct dc_map_opts *o, int *sig, dc_error_t *err)
{
    struct dc_job_mpi m = {.on_error = o->on_rank_error, .arg = o->arg};
    bool hub;
    int st = dc_job_mpi_start (&m, &hub, err);

    if (!hub)
        return st; /* a rank that served, or its failure */
    if (st == DC_STATUS_OK)
        st = dc_map_hub (o, m.hub, m.size, m.host, dc_job_mpi_check, &m, sig,
                         err);
    if (st != DC_STATUS_OK)
        dc_map_rank_cleanup (); /* rank 0's own CMD and chunk files */
    /* before any abort: the output is committed or removed */
    dc_job_mpi_finish (&m, st == DC_STATUS_SIGNAL ? 128 + *sig : (int)st);
    return st;
}

int dc_map_run (const struct dc_map_opts *o, struct dc_job *job, int *sig,
                dc_error_t *err)
{
    struct dc_sched_map sm = {.in_fd = -1, .probe_fd = -1};
    struct ctx cx = {.o = o, .job = job};
    struct dc_coord_infer_opts io = {
        .input_path = o->input,
        .output_path = o->output,
        .check = check,
        .progress = progress,
        .arg = &cx,
    };
    struct dc_report *rep = NULL;
    struct dc_coord_result res;
    double t0 = dc_report_now ();
    int st;

    *sig = 0;
    err->text[0] = '\0';
    if (!job)
        return map_mpi (o, sig, err);
    io.hosts = job->host;
    if ((st = sched_init (o, job->plan->size, &sm, err)) != DC_STATUS_OK)
        goto out;
    if (dc_job_via_driver (job)) {
        st = DC_STATUS_DRIVER;
        goto out;
    }
    if (o->dry_run) {
        if (o->dry_run_data)
            o->dry_run_data (job, (size_t)sm.in.rows, sm.chunk_rows, o->arg);
        goto out;
    }
    if (sm.files && dc_sched_map_files_open (&sm, err) < 0) {
        st = DC_STATUS_INPUT;
        goto out;
    }
    if (dc_sched_map_io_open (&sm, o->input, err) < 0) {
        st = DC_STATUS_INPUT;
        goto out;
    }
    if (!(rep = dc_report_create ("map"))) {
        errprintf (err, "out of memory");
        st = DC_STATUS_FAIL;
        goto out;
    }
    for (size_t h = 0; h < job->hosts->count; h++)
        dc_report_add_host (rep, job->hosts->v[h].name);
    dc_report_set_layout (rep, "data");
    double tl = dc_report_now ();
    st = dc_job_launch (job, o->heartbeat_timeout, err);
    dc_report_span (rep, DC_REPORT_HUB, "launch", "launch", tl,
                    dc_report_now (), NAN);
    if (st == DC_STATUS_SIGNAL) {
        *sig = job->interrupted;
        errprintf (err, "interrupted by SIG%s while connecting: nothing runs",
                   signame (job->interrupted));
        goto out;
    }
    if (st != DC_STATUS_OK)
        goto out;
    dc_report_phase_add (rep, DC_PHASE_LAUNCH, dc_report_now () - t0);
    if (o->progress)
        o->progress (DC_PROGRESS_START, "rows", 0, (size_t)sm.in.rows, -1,
                     o->arg);
    struct dc_hub h = {.comm = job->hub,
                       .size = job->plan->size,
                       .o = &io,
                       .rows = (size_t)sm.in.rows,
                       .res = &res};
    int rc = dc_hub_run (&h, &dc_sched_map, &sm, rep, err);
    if (o->progress)
        o->progress (DC_PROGRESS_DONE, "rows", res.rows, res.rows, -1, o->arg);
    if (rc < 0)
        dc_job_stop (job);
    st = end_status (&res, o->output, sig, err);
    if (rc == 0)
        st = finish_report (o, &sm, &res, rep, t0, st, err);
out:
    sched_fini (&sm);
    dc_report_destroy (rep);
    return st;
}
