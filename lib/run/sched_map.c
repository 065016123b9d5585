/* sched_map.c - the hub's scheduler of `dcrun map` (map.h): raw rows of
 * any dtype out, CMD's rows in; a failed chunk retried on another rank,
 * a lost rank's chunks to the others */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/run/map.h"
#include "lib/util/file.h"
#include "lib/util/log.h"

#define MAX_OUTSTANDING 2 /* one with CMD, one on its way */

static int read_rows (void *s, size_t row0, size_t rows, uint8_t *dst,
                      dc_error_t *errp)
{
    struct dc_sched_map *sm = s;
    size_t n = rows * (size_t)sm->in.row_bytes, off = 0;
    uint64_t at = sm->in.data_offset + row0 * sm->in.row_bytes;

    while (off < n) {
        ssize_t k = pread (sm->in_fd, dst + off, n - off, (off_t)(at + off));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return errprintf (errp, "reading the input: %s",
                              k < 0 ? strerror (errno) : "file shrank");
        off += (size_t)k;
    }
    return 0;
}

/* --files: the chunk's files, read here, under their own names. */
static uint8_t *files_chunk (struct dc_sched_map *sm, size_t idx, size_t *len,
                             dc_error_t *errp)
{
    struct dc_map_chunk *ch = &sm->chunks[idx];
    struct dc_wire_file *f = calloc (ch->rows, sizeof (*f));
    uint8_t *msg = NULL;
    size_t k;

    if (!f) {
        errprintf (errp, "out of memory for a chunk");
        return NULL;
    }
    for (k = 0; k < ch->rows; k++) {
        const char *path = sm->paths[ch->row0 + k];
        const char *slash = strrchr (path, '/');
        size_t n;
        f[k].name = slash ? slash + 1 : path;
        f[k].name_len = strlen (f[k].name);
        if (!(f[k].data =
                  dc_file_read (path, DC_WIRE_MAX_FILES_BYTES, &n, errp)))
            goto out;
        f[k].len = n;
    }
    struct dc_wire_files m = {.id = idx,
                              .first = ch->row0,
                              .count = ch->rows,
                              .nfiles = ch->rows,
                              .files = f};
    if (!(msg = dc_wire_files_new (&m, len)))
        errprintf (errp,
                   "chunk %zu: its files do not fit one message: use a "
                   "smaller --chunk-rows",
                   idx);
out:
    for (size_t i = 0; i < ch->rows; i++)
        free ((void *)f[i].data);
    free (f);
    return msg;
}

static int send_chunk (void *s, struct dc_hub *h, int r, size_t idx,
                       dc_error_t *errp)
{
    struct dc_sched_map *sm = s;
    struct dc_map_chunk *ch = &sm->chunks[idx];
    size_t bytes;
    uint8_t *buf;
    int rc;

    if (!sm->files)
        return dc_hub_send_rows (h, r, idx, ch->row0, ch->rows,
                                 (size_t)sm->in.row_bytes, read_rows, sm,
                                 &ch->state, &ch->owner, errp);
    if (!(buf = files_chunk (sm, idx, &bytes, errp)))
        return -1;
    dc_hub_chunk_out (h, r, idx, bytes);
    rc = dc_hub_chunk_send (h, r, buf, bytes, &ch->state, &ch->owner, errp);
    free (buf);
    return rc;
}

static int start (void *s, struct dc_hub *h, dc_error_t *errp)
{
    struct dc_sched_map *sm = s;
    struct dc_wire_job j = {.mode = DC_WIRE_MAP, .io = sm->io};
    char *job = dc_wire_job_encode (&j);
    char *spec = dc_wire_map_encode (&sm->spec);
    int rc = -1;

    free (sm->told);
    if (!(sm->told = calloc ((size_t)h->size, sizeof (bool))) || !job || !spec)
        errprintf (errp, "out of memory");
    else if (dc_comm_bcast (h->comm, DC_MSG_JOB, job, strlen (job), errp) ==
                 0 &&
             dc_comm_bcast (h->comm, DC_MSG_DATA, spec, strlen (spec), errp) ==
                 0)
        rc = 0;
    free (job);
    free (spec);
    return rc;
}

/* The output's place to direct rank r, once: 0, or -1 (errp). */
static int tell_out (struct dc_sched_map *sm, struct dc_hub *h, int r,
                     dc_error_t *errp)
{
    struct dc_wire_mapout m = {.ndim = sm->out_ndim,
                               .row_bytes = sm->out_row_bytes,
                               .offset = dc_map_out_data_offset (sm->out)};
    char *js;
    int rc;

    if (sm->told[r] || !h->ranks[r].direct || h->ranks[r].lost)
        return 0;
    snprintf (m.descr, sizeof (m.descr), "%s", sm->out_descr);
    memcpy (m.shape, sm->out_shape, sizeof (int64_t) * (size_t)sm->out_ndim);
    if (!(js = dc_wire_mapout_encode (&m)))
        return errprintf (errp, "out of memory");
    rc = dc_comm_send (h->comm, r, DC_MSG_DATA, js, strlen (js), errp);
    free (js);
    if (rc == 0)
        sm->told[r] = true;
    return rc;
}

static int ready (void *s, struct dc_hub *h, int r,
                  const struct dc_wire_ready *rd)
{
    struct dc_sched_map *sm = s;
    dc_error_t e;

    if (dc_hub_ready_io (h, r, &sm->io, rd))
        return 1;
    if (sm->shaped && tell_out (sm, h, r, &e) < 0) {
        dc_log (DC_LOG_WARN, "rank %d: %s", r, e.text);
        dc_comm_drop (h->comm, r, "cannot be told the output");
        return 1;
    }
    return 0;
}

/* Chunk idx failed on r: back to the queue, or the job fails. */
static int chunk_failed (struct dc_sched_map *sm, struct dc_hub *h, int r,
                         size_t idx, const char *why, dc_error_t *errp)
{
    struct dc_map_chunk *ch = &sm->chunks[idx];

    ch->failures++;
    sm->failed++;
    h->ranks[r].outstanding--;
    if (ch->failures > sm->retries) {
        h->res->status = DC_COORD_WORKER_ERROR;
        return errprintf (errp,
                          "chunk %zu (%s %zu-%zu) failed %d time%s, last "
                          "on rank %d on %s: %s",
                          idx, sm->files ? "files" : "rows", ch->row0,
                          ch->row0 + ch->rows - 1, ch->failures,
                          ch->failures == 1 ? "" : "s", r, dc_hub_host (h, r),
                          why);
    }
    dc_log (DC_LOG_WARN,
            "map: chunk %zu (%s %zu-%zu) failed on rank %d on "
            "%s: %s: retried elsewhere",
            idx, sm->files ? "files" : "rows", ch->row0,
            ch->row0 + ch->rows - 1, r, dc_hub_host (h, r), why);
    ch->state = DC_CHUNK_PENDING;
    ch->owner = -1;
    ch->last_failed = r;
    ch->requeued = true;
    return 0;
}

/* The first result makes the output; the others must agree with it. */
static int take_shape (struct dc_sched_map *sm, struct dc_hub *h,
                       const struct dc_wire_mapres *w, char *why, size_t len,
                       dc_error_t *errp)
{
    char descr[64], a[256], b[256];
    dc_error_t e;
    size_t isz;

    if (w->text_len >= sizeof (descr)) {
        snprintf (why, len, "output dtype too long");
        return 1;
    }
    memcpy (descr, w->text, w->text_len);
    descr[w->text_len] = '\0';
    if (!(isz = dc_map_itemsize (descr, &e))) {
        snprintf (why, len, "output: %s", e.text);
        return 1;
    }
    uint64_t rb = isz;
    for (int i = 0; i < w->ndim; i++)
        if (__builtin_mul_overflow (rb, (uint64_t)w->shape[i], &rb))
            rb = UINT64_MAX;
    if (rb != w->row_bytes) {
        snprintf (why, len,
                  "output rows of %" PRIu64 " bytes, but %s %s "
                  "rows are %" PRIu64 " bytes",
                  w->row_bytes, descr, "shaped", rb);
        return 1;
    }
    if (sm->shaped) {
        bool same = !strcmp (descr, sm->out_descr) && w->ndim == sm->out_ndim;
        for (int i = 0; same && i < w->ndim; i++)
            same = w->shape[i] == sm->out_shape[i];
        if (!same) {
            dc_map_shape_str (w->ndim, w->shape, a, sizeof (a));
            dc_map_shape_str (sm->out_ndim, sm->out_shape, b, sizeof (b));
            snprintf (why, len,
                      "output of dtype %s and shape %s, but the first "
                      "chunk's is %s %s",
                      descr, a, sm->out_descr, b);
            return 1;
        }
        return 0;
    }
    if (sm->out ? dc_map_out_shape (sm->out, descr, sm->in.rows, w->ndim,
                                    w->shape, w->row_bytes, errp) < 0
                : !(sm->out = dc_map_out_create (sm->output, descr, sm->in.rows,
                                                 w->ndim, w->shape,
                                                 w->row_bytes, errp))) {
        h->res->status = DC_COORD_IO_ERROR;
        return -1;
    }
    sm->shaped = true;
    snprintf (sm->out_descr, sizeof (sm->out_descr), "%s", descr);
    sm->out_ndim = w->ndim;
    memcpy (sm->out_shape, w->shape, sizeof (int64_t) * (size_t)w->ndim);
    sm->out_row_bytes = w->row_bytes;
    /* --io direct: every direct rank learns where its rows go */
    for (int o = 0; o < h->size; o++)
        if (h->ranks[o].ready && tell_out (sm, h, o, &e) < 0) {
            dc_log (DC_LOG_WARN, "rank %d: %s", o, e.text);
            dc_comm_drop (h->comm, o, "cannot be told the output");
        }
    return 0;
}

static void account (struct dc_hub *h, int r, struct dc_map_chunk *ch,
                     size_t id, double seconds)
{
    h->t_last = dc_hub_now ();
    h->done += ch->rows;
    h->busy += seconds;
    h->ranks[r].rows += ch->rows;
    h->ranks[r].chunks++;
    h->ranks[r].seconds += seconds;
    h->ranks[r].outstanding--;
    ch->state = DC_CHUNK_DONE;
    dc_report_chunk_done (h->report, r, id, seconds);
}

static int write_file (int dfd, const char *name, const uint8_t *data,
                       uint64_t len, dc_error_t *errp)
{
    int fd = openat (
        dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    size_t off = 0;

    if (fd < 0)
        return errno == EEXIST
                   ? 1
                   : errprintf (errp, "%s: %s", name, strerror (errno));
    while (off < len) {
        ssize_t k = write (fd, data + off, (size_t)len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            errprintf (errp, "%s: %s", name,
                       k < 0 ? strerror (errno) : "short write");
            close (fd);
            return -1;
        }
        off += (size_t)k;
    }
    if (fsync (fd) < 0 || close (fd) < 0)
        return errprintf (errp, "%s: %s", name, strerror (errno));
    return 0;
}

/* --files: CMD's files into the temporary folder. */
static int files_result (struct dc_sched_map *sm, struct dc_hub *h, int r,
                         const uint8_t *data, size_t len, dc_error_t *errp)
{
    struct dc_wire_files w;
    char why[1200], name[256];
    dc_error_t e;
    int rc = 0;

    if (dc_wire_files_get (data, len, "RESULT", &w, &e) < 0) {
        dc_log (DC_LOG_WARN, "rank %d: %s", r, e.text);
        dc_comm_drop (h->comm, r, "sent a bad result");
        return 0;
    }
    if (w.id >= sm->nchunks || sm->chunks[w.id].row0 != w.first ||
        sm->chunks[w.id].rows != w.count) {
        dc_log (DC_LOG_WARN, "rank %d: a result that matches no chunk", r);
        dc_comm_drop (h->comm, r, "sent a bad result");
        goto out;
    }
    struct dc_map_chunk *ch = &sm->chunks[w.id];
    if (ch->state != DC_CHUNK_ASSIGNED || ch->owner != r)
        goto out;
    if (w.status == 1) {
        snprintf (why, sizeof (why), "%.*s", (int)w.text_len, w.text);
        rc = chunk_failed (sm, h, r, w.id, why, errp);
        goto out;
    }
    double tw = dc_hub_now ();
    for (size_t i = 0; i < w.nfiles; i++) {
        memcpy (name, w.files[i].name, w.files[i].name_len);
        name[w.files[i].name_len] = '\0';
        int x = write_file (sm->tmp_fd, name, w.files[i].data, w.files[i].len,
                            errp);
        if (x == 0)
            continue;
        for (size_t j = 0; j < i; j++) { /* this chunk's files go again */
            memcpy (name, w.files[j].name, w.files[j].name_len);
            name[w.files[j].name_len] = '\0';
            unlinkat (sm->tmp_fd, name, 0);
        }
        if (x < 0) {
            h->res->status = DC_COORD_IO_ERROR;
            rc = -1;
        } else {
            snprintf (why, sizeof (why),
                      "output file %s: another chunk wrote one of that name",
                      name);
            rc = chunk_failed (sm, h, r, w.id, why, errp);
        }
        goto out;
    }
    sm->out_files += w.nfiles;
    h->t_write += dc_hub_now () - tw;
    account (h, r, ch, w.id, w.seconds);
out:
    free (w.files);
    return rc;
}

static int result (void *s, struct dc_hub *h, int r, const uint8_t *data,
                   size_t len, dc_error_t *errp)
{
    struct dc_sched_map *sm = s;
    struct dc_wire_mapres w;
    char why[1200];
    dc_error_t e;

    if (sm->files)
        return files_result (sm, h, r, data, len, errp);

    if (dc_wire_mapres_get (data, len, &w, &e) < 0) {
        dc_log (DC_LOG_WARN, "rank %d: %s", r, e.text);
        dc_comm_drop (h->comm, r, "sent a bad result");
        return 0;
    }
    if (w.id >= sm->nchunks || sm->chunks[w.id].row0 != w.row0 ||
        sm->chunks[w.id].rows != w.rows) {
        dc_log (DC_LOG_WARN, "rank %d: a result that matches no chunk", r);
        dc_comm_drop (h->comm, r, "sent a bad result");
        return 0;
    }
    struct dc_map_chunk *ch = &sm->chunks[w.id];
    if (ch->state != DC_CHUNK_ASSIGNED || ch->owner != r)
        return 0; /* given to another rank meanwhile */
    if (w.status == 1) {
        snprintf (why, sizeof (why), "%.*s", (int)w.text_len, w.text);
        return chunk_failed (sm, h, r, w.id, why, errp);
    }
    bool by_rank = w.status == DC_MAPRES_WRITTEN || w.status == DC_MAPRES_HELD;
    if (by_rank && (!h->ranks[r].direct ||
                    (w.status == DC_MAPRES_WRITTEN && !sm->told[r]))) {
        dc_log (DC_LOG_WARN, "rank %d: rows it could not have written", r);
        dc_comm_drop (h->comm, r, "sent a bad result");
        return 0;
    }
    int t = take_shape (sm, h, &w, why, sizeof (why), errp);
    if (t < 0)
        return -1;
    if (t > 0 && w.status == DC_MAPRES_WRITTEN) { /* it checked: a bug */
        dc_log (DC_LOG_WARN, "rank %d: %s", r, why);
        dc_comm_drop (h->comm, r, "sent a bad result");
        return 0;
    }
    if (t > 0)
        return chunk_failed (sm, h, r, w.id, why, errp);
    if (w.status == DC_MAPRES_HELD) { /* it writes them once told where */
        if (tell_out (sm, h, r, &e) < 0) {
            dc_log (DC_LOG_WARN, "rank %d: %s", r, e.text);
            dc_comm_drop (h->comm, r, "cannot be told the output");
        }
        return 0;
    }
    if (w.status == DC_MAPRES_WRITTEN) {
        account (h, r, ch, w.id, w.seconds);
        return 0;
    }
    h->ranks[r].relayed += w.rows * w.row_bytes;
    double tw = dc_hub_now ();
    if (dc_map_out_write (sm->out, w.row0, w.rows, w.data, errp) < 0) {
        h->res->status = DC_COORD_IO_ERROR;
        return -1;
    }
    h->t_write += dc_hub_now () - tw;
    account (h, r, ch, w.id, w.seconds);
    return 0;
}

static int lost (void *s, struct dc_hub *h, int r, bool error, const char *why,
                 dc_error_t *errp)
{
    struct dc_sched_map *sm = s;

    (void)error, (void)why, (void)errp;
    for (size_t i = 0; i < sm->nchunks; i++)
        if (sm->chunks[i].state == DC_CHUNK_ASSIGNED &&
            sm->chunks[i].owner == r) {
            sm->chunks[i].state = DC_CHUNK_PENDING;
            sm->chunks[i].owner = -1;
            sm->chunks[i].requeued = true;
        }
    h->ranks[r].outstanding = 0;
    return 0;
}

/* Another rank than the one it failed on, when there is one. */
static bool may_take (const struct dc_hub *h, const struct dc_map_chunk *ch,
                      int r)
{
    int f = ch->last_failed;

    if (f < 0 || f != r)
        return true;
    for (int o = 0; o < h->size; o++)
        if (o != r && !h->ranks[o].lost)
            return false;
    return true;
}

static bool next_chunk (void *s, const struct dc_hub *h, int r, size_t *idx)
{
    struct dc_sched_map *sm = s;
    size_t first = SIZE_MAX;

    for (size_t i = 0; i < sm->nchunks; i++) {
        const struct dc_map_chunk *ch = &sm->chunks[i];
        if (ch->state != DC_CHUNK_PENDING || !may_take (h, ch, r))
            continue;
        if (ch->requeued) {
            *idx = i;
            return true;
        }
        if (first == SIZE_MAX)
            first = i;
    }
    *idx = first;
    return first != SIZE_MAX;
}

static void report (void *s, struct dc_hub *h, struct dc_report *report)
{
    struct dc_sched_map *sm = s;

    for (int r = 0; r < h->size; r++) {
        const struct dc_hub_rank *rk = &h->ranks[r];
        dc_report_add_rank (report, r, dc_hub_host (h, r), "cmd", rk->rows,
                            rk->seconds, 0);
    }
    cJSON *x = dc_report_extra (report, "map");
    if (!x)
        return;
    cJSON *av = cJSON_AddArrayToObject (x, "command");
    for (int i = 0; i < sm->spec.argc; i++)
        cJSON_AddItemToArray (av, cJSON_CreateString (sm->spec.argv[i]));
    cJSON_AddStringToObject (x, "mode",
                             sm->spec.per_chunk ? "per-chunk" : "persistent");
    cJSON_AddNumberToObject (x, "retries", sm->retries);
    cJSON_AddNumberToObject (x, "failed_chunks", sm->failed);
    if (sm->files) {
        cJSON_AddNumberToObject (x, "input_files", (double)sm->npaths);
        cJSON_AddNumberToObject (x, "output_files", (double)sm->out_files);
    }
    /* as infer's, for `dcrun report` */
    if (!(x = dc_report_extra (report, "distributed")))
        return;
    cJSON_AddNumberToObject (x, "chunk_rows", (double)sm->chunk_rows);
    dc_hub_report_io (h, x, dc_io_mode_name (sm->io_mode));
    dc_hub_report_chunks (h, x, sm->nchunks);
}

/* An absolute path for what ranks open: the real folder and the name. */
static int abs_path (const char *path, char *buf, size_t len, dc_error_t *errp)
{
    return dc_file_abs_path (path, buf, len, errp);
}

/* The token file next to the output's temporary file (as infer's): ranks
 * that read it back see this folder at the same path.  Named like the
 * temporary file and locked, so dc_atomicfile_sweep removes one a killed
 * run left. */
static int make_probe (struct dc_sched_map *sm, const char *tmp,
                       dc_error_t *errp)
{
    struct dc_wire_io *io = &sm->io;

    sm->probe_fd = dc_file_token_create (tmp, sm->probe, sizeof (sm->probe),
                                         io->token, sizeof (io->token), errp);
    if (sm->probe_fd < 0)
        return -1;
    return abs_path (sm->probe, io->probe, sizeof (io->probe), errp);
}

int dc_sched_map_io_open (struct dc_sched_map *sm, const char *input,
                          dc_error_t *errp)
{
    struct dc_wire_io *io = &sm->io;
    struct stat st;
    char stale[1024];
    dc_error_t e;

    sm->probe_fd = -1;
    if (sm->files)
        return 0;
    if (dc_atomicfile_sweep (sm->output, stale, sizeof (stale)) > 0)
        dc_log (DC_LOG_WARN,
                "%s: removed what a killed run left next to it: %s", sm->output,
                stale);
    if (sm->io_mode == DC_IO_RELAY)
        return 0;
    if (!(sm->out = dc_map_out_open (sm->output, true, &e))) {
        if (sm->io_mode == DC_IO_AUTO && errno == ENOTSUP)
            return 0; /* a device or FIFO: relayed */
        return errprintf (errp, "%s%s",
                          sm->io_mode == DC_IO_DIRECT ? "--io direct: " : "",
                          e.text);
    }
    if (fstat (sm->in_fd, &st) < 0 || !realpath (input, io->input))
        return errprintf (errp, "%s: %s", input, strerror (errno));
    if (abs_path (dc_map_out_tmppath (sm->out), io->output, sizeof (io->output),
                  errp) < 0 ||
        make_probe (sm, dc_map_out_tmppath (sm->out), errp) < 0)
        return -1;
    io->on = true;
    io->required = sm->io_mode == DC_IO_DIRECT;
    io->input_size = (uint64_t)st.st_size;
    io->input_mtime_s = st.st_mtim.tv_sec;
    io->input_mtime_ns = st.st_mtim.tv_nsec;
    return 0;
}

void dc_sched_map_io_close (struct dc_sched_map *sm)
{
    if (sm->probe_fd >= 0) {
        dc_file_on_signal_forget (sm->probe);
        unlink (sm->probe);
        close (sm->probe_fd);
    }
    sm->probe_fd = -1;
    free (sm->told);
    sm->told = NULL;
}

int dc_sched_map_files_open (struct dc_sched_map *sm, dc_error_t *errp)
{
    char *a = strdup (sm->output), *b = strdup (sm->output);
    int rc = -1;

    sm->tmp_fd = -1;
    if (!a || !b) {
        errprintf (errp, "out of memory");
        goto out;
    }
    const char *dir = dirname (a), *base = basename (b);
    if (asprintf (&sm->tmp, "%s/.%s.dcrun-XXXXXX", dir, base) < 0) {
        sm->tmp = NULL;
        errprintf (errp, "out of memory");
        goto out;
    }
    if (!mkdtemp (sm->tmp)) {
        errprintf (errp, "%s: %s", sm->output, strerror (errno));
        free (sm->tmp);
        sm->tmp = NULL;
        goto out;
    }
    if ((sm->tmp_fd = open (sm->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        errprintf (errp, "%s: %s", sm->tmp, strerror (errno));
        goto out;
    }
    rc = 0;
out:
    free (a);
    free (b);
    return rc;
}

void dc_sched_map_files_close (struct dc_sched_map *sm)
{
    if (sm->tmp && sm->tmp_fd >= 0) { /* not committed: nothing stays */
        DIR *d = fdopendir (dup (sm->tmp_fd));
        struct dirent *e;
        while (d && (e = readdir (d)))
            if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
                unlinkat (sm->tmp_fd, e->d_name, 0);
        if (d)
            closedir (d);
    }
    if (sm->tmp)
        rmdir (sm->tmp);
    if (sm->tmp_fd >= 0)
        close (sm->tmp_fd);
    sm->tmp_fd = -1;
    free (sm->tmp);
    sm->tmp = NULL;
}

static int files_commit (struct dc_sched_map *sm, dc_error_t *errp)
{
    mode_t mask = umask (0);

    umask (mask);
    if (fchmod (sm->tmp_fd, 0777 & ~mask) < 0 || fsync (sm->tmp_fd) < 0)
        return errprintf (errp, "%s: %s", sm->tmp, strerror (errno));
    if (renameat2 (AT_FDCWD, sm->tmp, AT_FDCWD, sm->output, RENAME_NOREPLACE) <
        0)
        return errprintf (errp, "%s: %s", sm->output, strerror (errno));
    free (sm->tmp); /* committed: close leaves it */
    sm->tmp = NULL;
    char *a = strdup (sm->output);
    if (a) { /* the rename is durable */
        int dfd = open (dirname (a), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync (dfd);
            close (dfd);
        }
        free (a);
    }
    return 0;
}

static int commit (void *s, struct dc_hub *h, dc_error_t *errp)
{
    struct dc_sched_map *sm = s;

    (void)h;
    if (sm->files)
        return files_commit (sm, errp);
    if (!sm->shaped)
        return errprintf (errp, "no output was made");
    return dc_map_out_commit (sm->out, h->res->sha256, errp);
}

const struct dc_hub_sched dc_sched_map = {
    .start = start,
    .ready = ready,
    .result = result,
    .lost = lost,
    .next = next_chunk,
    .send = send_chunk,
    .most = MAX_OUTSTANDING,
    .name = dc_hub_name,
    .report = report,
    .on_loss = "its chunks go to the others",
    .commit = commit,
};
