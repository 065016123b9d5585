/* rank.c - the rank side of the distributed executor */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/file.h"
#include "lib/util/half.h"
#include "lib/util/log.h"
#include "lib/model/model.h"
#include "lib/formats/npy.h"
#include "lib/formats/report.h"
#include "lib/run/map_rank.h"
#include "lib/run/rank.h"
#include "lib/run/ready.h"
#include "lib/run/stage.h"
#include "lib/comm/mpi_file.h"
#include "lib/comm/wire.h"

struct job {
    char mode[16];
    char device[16];
    char dtype[8];
    char activation[16];
    int threads;
    int delay_ms;
    size_t chunk_rows;
    /* train */
    struct dc_train_opts to;
    bool resume;          /* a DATA message with the checkpoint follows MODEL */
    struct dc_wire_io io; /* infer: direct I/O offered */
    struct dc_wire_tio tio; /* train: direct rows offered */
};

static dc_compute_find_f worker_find;

struct beat {
    struct dc_comm *c;
    double period;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static void *beat_main (void *arg)
{
    struct beat *b = arg;
    struct timespec until;

    pthread_mutex_lock (&b->mu);
    while (!b->stop) {
        clock_gettime (CLOCK_REALTIME, &until);
        long ns = (long)(b->period * 1e9);
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec += ns % 1000000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait (&b->cv, &b->mu, &until);
        if (b->stop)
            break;
        pthread_mutex_unlock (&b->mu);
        if (dc_comm_send (b->c, DC_COMM_HUB, DC_MSG_HEARTBEAT, NULL, 0, NULL) <
            0) {
            pthread_mutex_lock (&b->mu);
            break;
        }
        pthread_mutex_lock (&b->mu);
    }
    pthread_mutex_unlock (&b->mu);
    return NULL;
}

/* The data-parallel rank's view of a decoded JOB. */
static void job_from_wire (const struct dc_wire_job *w, struct job *j)
{
    memset (j, 0, sizeof (*j));
    snprintf (j->mode, sizeof (j->mode), "%s", dc_wire_mode_name (w->mode));
    snprintf (j->device, sizeof (j->device), "%s", w->device);
    snprintf (j->dtype, sizeof (j->dtype), "%s", w->dtype);
    snprintf (j->activation, sizeof (j->activation), "%s", w->activation);
    j->threads = w->threads;
    j->delay_ms = w->delay_ms;
    j->chunk_rows = (size_t)w->chunk_rows;
    j->io = w->io;
    j->tio = w->tio;
    if (w->has_train) {
        dc_serve_train_unpack (&w->train, &j->to);
        j->resume = w->train.resume;
    }
}

/* Write bytes to a private file (path gets its name). */
/* Put bytes where dc_model_load and checkpoint loads can read them: an
 * in-memory file (memfd, path "/proc/self/fd/N"), else a private file in
 * the temporary folder.  Returns the memfd to close after loading, -2 for
 * a named file to unlink, -1 on error. */
static int write_tmp (const uint8_t *data, size_t len,
                      const struct dc_worker_opts *o, char *path,
                      size_t pathlen, dc_error_t *errp)
{
    const char *dir = o->tmpdir ? o->tmpdir : getenv ("TMPDIR");
    int fd, ret;

    if ((fd = memfd_create ("dcrun-model", MFD_CLOEXEC)) >= 0) {
        snprintf (path, pathlen, "/proc/self/fd/%d", fd);
        ret = fd;
    } else {
        snprintf (path, pathlen, "%s/dcrun-rank-XXXXXX.safetensors",
                  dir && *dir ? dir : "/tmp");
        if ((fd = mkostemps (path, 12, O_CLOEXEC)) < 0)
            return errprintf (errp, "worker: %s: %s", path, strerror (errno));
        ret = -2;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write (fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errprintf (errp, "worker: %s: %s", path, strerror (errno));
            close (fd);
            if (ret == -2)
                unlink (path);
            return -1;
        }
        off += (size_t)n;
    }
    if (ret == -2)
        close (fd);
    return ret;
}

static void drop_tmp (int how, const char *path)
{
    if (how >= 0)
        close (how);
    else if (how == -2)
        unlink (path);
}

static struct dc_model *load_model (const uint8_t *data, size_t len,
                                    const struct job *j,
                                    const struct dc_worker_opts *o,
                                    dc_error_t *errp)
{
    char path[4096];
    struct dc_model *m;

    int how = write_tmp (data, len, o, path, sizeof (path), errp);
    if (how == -1)
        return NULL;
    m = dc_model_load (path, j->activation[0] ? j->activation : NULL, errp);
    drop_tmp (how, path);
    return m;
}

/* ---- direct I/O: the rank reads its rows and writes its results ---- */

struct dio {
    struct dc_npy *in, *out;
    struct dc_mpi_file *min, *mout; /* MPI-IO under mpirun/srun */
    const char *engine;             /* "mmap", "pread" or "mpi-io" */
    const uint8_t *map; /* <f4 input mapped: rows computed in place */
    size_t maplen;
    bool netfs; /* flush each chunk before it is acknowledged */
};

static void dio_close (struct dio *d)
{
    dc_mpi_file_close (d->min);
    dc_mpi_file_close (d->mout);
    if (d->map)
        munmap ((void *)d->map, d->maplen);
    dc_npy_close (d->in);
    dc_npy_close (d->out);
    memset (d, 0, sizeof (*d));
}

/* Open the input and the output's temporary file the hub offered: 0, or
 * -1 with why (then relayed rows, or an error under --io direct).  map:
 * <f4 rows may be computed in place from the page cache (the cpu
 * back-end); a device copies them from pinned buffers instead. */
static int dio_open (const struct dc_wire_io *io, int nin, int nout, bool mpi,
                     bool map, struct dio *d, char *why, size_t len)
{
    struct stat st;
    dc_error_t e;

    memset (d, 0, sizeof (*d));
    if (dc_ready_probe (io, why, len) < 0)
        goto fail;
    if (!(d->in = dc_npy_open (io->input, &e))) {
        dc_ready_why (why, len, "%s", e.text);
        goto fail;
    }
    if (fstat (d->in->fd, &st) < 0 || (uint64_t)st.st_size != io->input_size ||
        st.st_mtim.tv_sec != io->input_mtime_s ||
        st.st_mtim.tv_nsec != io->input_mtime_ns || d->in->ndim != 2 ||
        d->in->row_elems != (size_t)nin || d->in->dtype == DC_NPY_I8) {
        dc_ready_why (
            why, len,
            "%s: not the head's file (its size, time or shape differ)",
            io->input);
        goto fail;
    }
    if (!(d->out = dc_npy_open_write (io->output, &e))) {
        dc_ready_why (why, len, "%s", e.text);
        goto fail;
    }
    if (d->out->ndim != 2 || d->out->rows != d->in->rows ||
        d->out->row_elems != (size_t)nout) {
        dc_ready_why (why, len, "%s: not the head's output (shape differs)",
                      io->output);
        goto fail;
    }
    d->netfs = dc_file_network_fs (d->out->fd);
    d->engine = "pread";
    if (mpi && d->in->dtype == DC_NPY_F4) {
        /* a rank of mpirun or srun: the cluster's parallel I/O engine */
        dc_error_t e;
        if (!(d->min = dc_mpi_file_open (io->input, false, &e)) ||
            !(d->mout = dc_mpi_file_open (io->output, true, &e))) {
            dc_ready_why (why, len, "%s", e.text);
            goto fail;
        }
        d->engine = "mpi-io";
        return 0;
    }
    /* float32 rows are computed where the page cache has them: no copy */
    if (map && d->in->dtype == DC_NPY_F4 && st.st_size > 0) {
        void *p = mmap (NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED,
                        d->in->fd, 0);
        if (p != MAP_FAILED) {
            d->map = p;
            d->maplen = (size_t)st.st_size;
            d->engine = "mmap";
        }
    }
    return 0;
fail:
    dio_close (d);
    return -1;
}

/* One chunk's rows from the input: *x in the mapping, or read into buf
 * (rows x nin floats); the results into the output (flushed on a network
 * filesystem, so the head's commit sees them). */
static int dio_read (struct dio *d, uint64_t row0, uint64_t rows, int nin,
                     float *buf, const float **x, dc_error_t *errp)
{
    size_t need = (size_t)rows * (size_t)nin;
    if (row0 > d->in->rows || rows > d->in->rows - row0)
        return errprintf (errp,
                          "worker: chunk rows %" PRIu64 "..%" PRIu64
                          " outside %s (%zu rows)",
                          row0, row0 + rows, d->in->path, d->in->rows);
    if (d->map) {
        size_t off =
            (size_t)d->in->data_offset + (size_t)row0 * (size_t)nin * 4;
        *x = (const float *)(d->map + off);
        /* the whole chunk from the disk at once, not page by page */
        madvise ((void *)((uintptr_t)(d->map + off) & ~(uintptr_t)4095),
                 need * 4 + 4096, MADV_WILLNEED);
        return 0;
    }
    *x = buf;
    if (d->min) /* <f4 rows as they are on the disk */
        return dc_mpi_file_read_at (
            d->min, d->in->data_offset + row0 * (uint64_t)nin * 4, buf,
            need * sizeof (float), errp);
    return dc_npy_read_f32 (d->in, (size_t)row0, (size_t)rows, buf, errp);
}

/* MPI-IO: the results as the output's dtype (<f4 or <f2) at their rows */
static int dio_write_mpi (struct dio *d, uint64_t row0, uint64_t rows,
                          const float *y, dc_error_t *errp)
{
    size_t n = (size_t)rows * d->out->row_elems;
    uint64_t off = d->out->data_offset +
                   row0 * d->out->row_elems * (uint64_t)d->out->itemsize;
    if (d->out->dtype == DC_NPY_F4)
        return dc_mpi_file_write_at (d->mout, off, y, n * 4, errp);
    uint16_t *h = malloc (n * 2 + 2);
    if (!h)
        return errprintf (errp, "worker: out of memory");
    dc_half_from_float_n (y, h, n);
    int rc = dc_mpi_file_write_at (d->mout, off, h, n * 2, errp);
    free (h);
    return rc;
}

static int dio_write (struct dio *d, uint64_t row0, uint64_t rows,
                      const float *y, dc_error_t *errp)
{
    if (d->mout)
        return dio_write_mpi (d, row0, rows, y, errp) < 0 ||
                       (d->netfs && dc_mpi_file_sync (d->mout, errp) < 0)
                   ? -1
                   : 0;
    if (dc_npy_write_f32 (d->out, (size_t)row0, (size_t)rows, y, errp) < 0)
        return -1;
    if (d->netfs && fdatasync (d->out->fd) < 0)
        return errprintf (errp, "%s: fdatasync: %s", d->out->path,
                          strerror (errno));
    return 0;
}

/* --io direct: the model from its path, if it is the hub's file. */
static struct dc_model *dio_model (const struct job *j, char *why, size_t len)
{
    const struct dc_wire_io *io = &j->io;
    struct stat st;
    struct dc_model *m;
    dc_error_t e;

    if (stat (io->model, &st) < 0) {
        dc_ready_why (why, len, "%s: %s (the model is not shared)", io->model,
                      strerror (errno));
        return NULL;
    }
    if ((uint64_t)st.st_size != io->model_size ||
        st.st_mtim.tv_sec != io->model_mtime_s ||
        st.st_mtim.tv_nsec != io->model_mtime_ns) {
        dc_ready_why (why, len,
                      "%s: not the head's file (its size or time differ)",
                      io->model);
        return NULL;
    }
    if (!(m = dc_model_load (io->model, j->activation[0] ? j->activation : NULL,
                             &e)))
        dc_ready_why (why, len, "%s", e.text);
    return m;
}

/* A rank that cannot do what --io direct needs: READY says why (the hub
 * refuses it), then wait for the end. */
static int serve_refused (struct dc_comm *c, const char *why, dc_error_t *errp)
{
    struct dc_wire_ready rd = {.inputs = -1, .outputs = -1, .parameters = -1};
    struct dc_comm_msg msg;

    snprintf (rd.io, sizeof (rd.io), "relay");
    snprintf (rd.io_why, sizeof (rd.io_why), "%s", why);
    int rc = dc_ready_send (c, &rd, errp);
    if (rc == -1)
        errprintf (errp, "worker: out of memory");
    rc = rc < 0 ? -1 : 0;
    while (rc == 0 && dc_comm_recv (c, &msg, -1, NULL) > 0) {
        int type = msg.type;
        free (msg.data);
        if (type == DC_MSG_DONE)
            break;
    }
    return rc;
}

/* What the chunk loops of serve_infer share. */
struct infer {
    struct dc_comm *c;
    const struct job *j;
    const struct dc_compute_ops *ops;
    struct dc_compute *dev;
    struct dc_mlp_dev *net;
    int nin, nout;
    struct dio d;
    bool overlap; /* read chunk k+1 while chunk k computes */
};

/* serve_infer's loops: 0 at DONE, -1 on an error (the hub is told), -2
 * when the coordinator went away (nothing to tell). */
#define INFER_QUIET -2
#define NEXT_NONE -1 /* dio_next: nothing within the timeout */
#define NEXT_BAD -3  /* dio_next: a CHUNK that does not parse */

/* Relayed rows: each CHUNK carries them, each RESULT carries the results. */
static int infer_relay (struct infer *f, dc_error_t *errp)
{
    uint8_t *out = NULL;
    size_t out_cap = 0;
    int rc = -1;

    for (;;) {
        struct dc_comm_msg msg;
        if (dc_comm_recv (f->c, &msg, -1, errp) < 0) {
            rc = INFER_QUIET; /* the coordinator went away */
            break;
        }
        if (msg.type == DC_MSG_DONE) {
            free (msg.data);
            rc = 0;
            break;
        }
        if (msg.type != DC_MSG_CHUNK) {
            free (msg.data);
            continue;
        }
        struct dc_wire_chunk ch;
        dc_error_t e;
        if (dc_wire_chunk_get (msg.data, msg.len, (size_t)f->nin * 4, &ch, &e) <
            0) {
            free (msg.data);
            errprintf (errp, "worker: %s", e.text);
            break;
        }
        size_t need = DC_RESULT_HDR + (size_t)ch.rows * (size_t)f->nout * 4;
        if (need > out_cap) {
            uint8_t *p = realloc (out, need);
            if (!p) {
                free (msg.data);
                errprintf (errp, "worker: out of memory");
                break;
            }
            out = p;
            out_cap = need;
        }
        if (f->j->delay_ms > 0) /* test hook: makes lost-worker tests exact */
            dc_worker_sleep_ms (f->j->delay_ms);
        struct dc_wire_rows res = {.id = ch.id,
                                   .row0 = ch.row0,
                                   .rows = ch.rows,
                                   .start = dc_report_now ()};
        double t0 = dc_report_now ();
        res.read = t0 - res.start;
        /* payload offsets are multiples of 8: aligned for floats */
        int r = f->ops->mlp_infer (f->dev, f->net, (const float *)ch.data,
                                   (size_t)ch.rows, (size_t)ch.row0,
                                   (float *)(out + DC_RESULT_HDR), errp);
        res.seconds = dc_report_now () - t0;
        free (msg.data);
        if (r < 0)
            break;
        dc_wire_rows_put (out, &res);
        if (dc_comm_send (f->c, DC_COMM_HUB, DC_MSG_RESULT, out, need, errp) <
            0) {
            rc = INFER_QUIET;
            break;
        }
    }
    free (out);
    return rc;
}

/* A chunk of --io direct in one of the compute slots: its rows (read into
 * x, or in the input's mapping) and its results, in host memory from
 * host_alloc (pinned for CUDA), and its phases for RESULT. */
struct dslot {
    float *x, *y;
    size_t xcap, ycap; /* floats */
    const float *in;   /* x, or the rows in the mapping */
    struct dc_wire_rows res;
};

static void dslot_free (struct infer *f, struct dslot *s)
{
    dc_compute_host_free (f->ops, f->dev, s->x);
    dc_compute_host_free (f->ops, f->dev, s->y);
    memset (s, 0, sizeof (*s));
}

static int dslot_grow (struct infer *f, float **p, size_t *cap, size_t need,
                       dc_error_t *errp)
{
    if (need <= *cap)
        return 0;
    dc_compute_host_free (f->ops, f->dev, *p);
    *cap = 0;
    if (!(*p = dc_compute_host_alloc (f->ops, f->dev, need * sizeof (float),
                                      errp)))
        return -1;
    *cap = need;
    return 0;
}

/* The next CHUNK for this rank (its header in *ch): 1; 0 for DONE;
 * NEXT_NONE when nothing came within timeout_ms (-1: wait for ever);
 * NEXT_BAD with errp; INFER_QUIET when the coordinator went away; other
 * messages are skipped. */
static int dio_next (struct infer *f, int timeout_ms, struct dc_wire_chunk *ch,
                     dc_error_t *errp)
{
    for (;;) {
        struct dc_comm_msg msg;
        int r = dc_comm_recv (f->c, &msg, timeout_ms, errp);
        if (r < 0)
            return INFER_QUIET;
        if (r == 0 && timeout_ms >= 0)
            return NEXT_NONE;
        if (r == 0)
            continue; /* a signal: wait on */
        int type = msg.type;
        dc_error_t e;
        int ok = type != DC_MSG_CHUNK ||
                 dc_wire_chunk_get (msg.data, msg.len, 0, ch, &e) == 0;
        free (msg.data);
        ch->data = NULL;
        if (!ok) {
            errprintf (errp, "worker: %s", e.text);
            return NEXT_BAD;
        }
        if (type == DC_MSG_DONE)
            return 0;
        if (type == DC_MSG_CHUNK)
            return 1;
    }
}

/* Chunk ch's rows into slot s. */
static int dio_take (struct infer *f, struct dslot *s,
                     const struct dc_wire_chunk *ch, dc_error_t *errp)
{
    size_t nx = (size_t)ch->rows * (size_t)f->nin;
    size_t ny = (size_t)ch->rows * (size_t)f->nout;

    if (ch->rows > f->d.in->rows)
        return errprintf (errp, "worker: chunk of %" PRIu64 " rows in %s",
                          ch->rows, f->d.in->path);
    if (f->j->delay_ms > 0) /* test hook: makes lost-worker tests exact */
        dc_worker_sleep_ms (f->j->delay_ms);
    s->res = (struct dc_wire_rows){.id = ch->id,
                                   .row0 = ch->row0,
                                   .rows = ch->rows,
                                   .start = dc_report_now ()};
    if ((!f->d.map && dslot_grow (f, &s->x, &s->xcap, nx, errp) < 0) ||
        dslot_grow (f, &s->y, &s->ycap, ny ? ny : 1, errp) < 0 ||
        dio_read (&f->d, ch->row0, ch->rows, f->nin, s->x, &s->in, errp) < 0)
        return -1;
    s->res.read = dc_report_now () - s->res.start;
    return 0;
}

/* Wait for the chunk in slot k, write its results, send its RESULT (the
 * header only).  A RESULT's compute seconds are the time this thread spent
 * in submit and wait: read, compute and write of a rank's chunks add up to
 * its busy time even when a read overlaps a device's compute. */
static int dio_finish (struct infer *f, struct dslot *s, int k,
                       dc_error_t *errp)
{
    uint8_t hdr[DC_RESULT_HDR];
    double t0 = dc_report_now ();

    if (dc_compute_mlp_wait (f->ops, f->dev, f->net, k, errp) < 0)
        return -1;
    double t1 = dc_report_now ();
    s->res.seconds += t1 - t0;
    if (dio_write (&f->d, s->res.row0, s->res.rows, s->y, errp) < 0)
        return -1;
    s->res.write = dc_report_now () - t1;
    dc_wire_rows_put (hdr, &s->res);
    if (dc_comm_send (f->c, DC_COMM_HUB, DC_MSG_RESULT, hdr, sizeof (hdr),
                      errp) < 0)
        return INFER_QUIET;
    return 0;
}

/* --io direct: the rank reads its rows and writes its results.  Submit
 * chunk k, read chunk k+1 (when the hub has sent it: it keeps two chunks
 * with a rank) into the other slot, wait for k, write k.  The look-ahead
 * waits up to 1 ms for chunk k+1 only when the last wait blocked that
 * long (a device still computing); a rank that holds no chunk waits for
 * the next message, having acknowledged all it had. */
static int infer_direct (struct infer *f, dc_error_t *errp)
{
    struct dslot s[DC_COMPUTE_SLOTS] = {{0}};
    struct dc_wire_chunk ch;
    bool have = false;
    double waited = 0;
    int k = 0, rc = 0;

    for (;;) {
        if (!have) {
            if ((rc = dio_next (f, -1, &ch, errp)) != 1) {
                rc = rc == NEXT_BAD ? -1 : rc; /* 0: DONE */
                break;
            }
            if ((rc = dio_take (f, &s[k], &ch, errp)) < 0)
                break;
        }
        double t0 = dc_report_now ();
        if ((rc = dc_compute_mlp_submit (
                 f->ops, f->dev, f->net, k, s[k].in, (size_t)s[k].res.rows,
                 (size_t)s[k].res.row0, s[k].y, errp)) < 0)
            break;
        s[k].res.seconds = dc_report_now () - t0;
        if (!f->overlap) { /* submit computed: nothing to overlap with */
            if ((rc = dio_finish (f, &s[k], k, errp)) < 0)
                break;
            have = false;
            continue;
        }
        int ahead = dio_next (f, waited >= 1e-3 ? 1 : 0, &ch, errp);
        if (ahead == INFER_QUIET || ahead == NEXT_BAD ||
            (ahead == 1 && dio_take (f, &s[1 - k], &ch, errp) < 0)) {
            rc = ahead == INFER_QUIET ? INFER_QUIET : -1;
            break;
        }
        have = ahead == 1;
        double seconds = s[k].res.seconds;
        if ((rc = dio_finish (f, &s[k], k, errp)) < 0)
            break;
        waited = s[k].res.seconds - seconds;
        if (ahead == 0) /* DONE came early: nothing more is ours */
            break;
        k = 1 - k;
    }
    for (int i = 0; i < DC_COMPUTE_SLOTS; i++) {
        dc_compute_mlp_wait (f->ops, f->dev, f->net, i, NULL);
        dslot_free (f, &s[i]);
    }
    return rc;
}

static int serve_infer (struct dc_comm *c, const struct job *j,
                        struct dc_model *m, dc_error_t *errp)
{
    struct dc_layer_view *lv = NULL;
    struct dc_mlp_view view;
    int rc = -1;
    struct infer f = {.c = c, .j = j};
    struct dc_compute_opts co = {.threads = j->threads};

    f.nin = dc_model_inputs (m);
    f.nout = dc_model_outputs (m);
    if (dc_dtype_parse (j->dtype, &co.dtype) < 0) {
        errprintf (errp, "worker: unknown dtype '%s'", j->dtype);
        return dc_worker_fail (c, errp);
    }
    if (!(f.ops = worker_find (j->device, errp)) ||
        !(f.dev = f.ops->create (&co, errp)))
        return dc_worker_fail (c, errp);
    if (!(lv = calloc ((size_t)m->nlayers, sizeof (*lv)))) {
        errprintf (errp, "worker: out of memory");
        goto done;
    }
    dc_model_view (m, lv, &view);
    if (!(f.net = f.ops->mlp_load (f.dev, &view, errp)))
        goto done;
    struct dc_wire_ready rd = {
        .inputs = f.nin, .outputs = f.nout, .parameters = -1};
    if (j->io.on) {
        /* the cpu back-end computes from the page cache in place */
        bool ok = dio_open (&j->io, f.nin, f.nout, dc_mpi_file_usable (c),
                            !strcmp (f.ops->name, "cpu"), &f.d, rd.io_why,
                            sizeof (rd.io_why)) == 0;
        if (ok)
            snprintf (rd.io_engine, sizeof (rd.io_engine), "%s", f.d.engine);
        /* under --io direct the hub refuses a rank that cannot (one
         * that starts after the end finds no temporary output: quiet) */
        snprintf (rd.io, sizeof (rd.io), "%s", ok ? "direct" : "relay");
    }
    rd.clock = dc_report_now ();
    snprintf (rd.device, sizeof (rd.device), "%s",
              f.ops->describe ? f.ops->describe (f.dev) : f.ops->name);
    snprintf (rd.kernel, sizeof (rd.kernel), "%s",
              f.ops->kernel && f.ops->kernel (f.dev) ? f.ops->kernel (f.dev)
                                                     : "");
    if (dc_ready_send (c, &rd, errp) < 0)
        goto done;
    /* the next chunk is read while one computes only where the back-end
     * computes on its own (CUDA streams); the cpu back-end's submit
     * computes at once, and a chunk's phases then follow one another
     * (its trace spans nest; with the look-ahead, chunk k+1's read falls
     * inside chunk k's span) */
    f.overlap = strcmp (f.ops->name, "cpu") != 0 ||
                getenv ("DCRUN_TEST_OVERLAP"); /* tests: the cpu too */
    rc = f.d.out ? infer_direct (&f, errp) : infer_relay (&f, errp);
    if (rc == INFER_QUIET)
        goto quiet;
done:
    if (rc < 0)
        dc_worker_fail (c, errp);
quiet:
    if (rc == INFER_QUIET)
        rc = -1;
    if (f.net)
        f.ops->mlp_unload (f.dev, f.net);
    if (f.ops && f.dev)
        f.ops->destroy (f.dev);
    free (lv);
    dio_close (&f.d);
    return rc;
}

/* ---- training: direct rows, the trained state ---- */

/* The input and target files the JOB names, when they are the head's:
 * read with MPI-IO under mpirun/srun (float32 input, float32 or int64
 * target), with pread otherwise. */
struct trows {
    struct dc_npy *x, *t;
    struct dc_mpi_file *mx, *mt; /* MPI-IO */
    const char *engine;          /* "pread" or "mpi-io" */
};

static void trows_close (struct trows *d)
{
    dc_mpi_file_close (d->mx);
    dc_mpi_file_close (d->mt);
    dc_npy_close (d->x);
    dc_npy_close (d->t);
    memset (d, 0, sizeof (*d));
}

static bool same_file (const struct dc_npy *a, uint64_t size, int64_t s,
                       int64_t ns)
{
    struct stat st;
    return fstat (a->fd, &st) == 0 && (uint64_t)st.st_size == size &&
           st.st_mtim.tv_sec == s && st.st_mtim.tv_nsec == ns;
}

/* A rank of mpirun or srun: the files through the cluster's parallel I/O
 * engine, when their rows are as they are to be in memory. */
static int trows_open_mpi (const struct dc_wire_tio *io, bool xent,
                           struct trows *d, char *why, size_t len)
{
    dc_error_t e;

    if (d->x->dtype != DC_NPY_F4 ||
        d->t->dtype != (xent ? DC_NPY_I8 : DC_NPY_F4))
        return 0; /* converted rows: pread */
    if (!(d->mx = dc_mpi_file_open (io->input, false, &e)) ||
        !(d->mt = dc_mpi_file_open (io->target, false, &e))) {
        dc_ready_why (why, len, "%s", e.text);
        return -1;
    }
    d->engine = "mpi-io";
    return 0;
}

/* 0, or -1 with why (then relayed rows, or an error under --io direct). */
static int trows_open (const struct dc_wire_tio *io, size_t nin, size_t nout,
                       bool xent, bool mpi, struct trows *d, char *why,
                       size_t len)
{
    dc_error_t e;

    memset (d, 0, sizeof (*d));
    if (!(d->x = dc_npy_open (io->input, &e)) ||
        !(d->t = dc_npy_open (io->target, &e))) {
        dc_ready_why (why, len, "%s", e.text);
        goto fail;
    }
    if (!same_file (d->x, io->input_size, io->input_mtime_s,
                    io->input_mtime_ns) ||
        d->x->ndim != 2 || d->x->row_elems != nin || d->x->dtype == DC_NPY_I8) {
        dc_ready_why (
            why, len,
            "%s: not the head's file (its size, time or shape differ)",
            io->input);
        goto fail;
    }
    if (!same_file (d->t, io->target_size, io->target_mtime_s,
                    io->target_mtime_ns) ||
        d->t->rows != d->x->rows ||
        (xent ? d->t->dtype != DC_NPY_I8
              : d->t->dtype == DC_NPY_I8 || d->t->row_elems != nout)) {
        dc_ready_why (
            why, len,
            "%s: not the head's file (its size, time or shape differ)",
            io->target);
        goto fail;
    }
    d->engine = "pread";
    if (mpi && trows_open_mpi (io, xent, d, why, len) < 0)
        goto fail;
    return 0;
fail:
    trows_close (d);
    return -1;
}

/* Row k of the input into x and of the target into tg (tsz bytes). */
static int trows_read_mpi (struct trows *d, uint64_t k, size_t nin, size_t tsz,
                           float *x, uint8_t *tg, dc_error_t *errp)
{
    return dc_mpi_file_read_at (d->mx, d->x->data_offset + k * nin * 4, x,
                                nin * 4, errp) < 0 ||
                   dc_mpi_file_read_at (d->mt, d->t->data_offset + k * tsz, tg,
                                        tsz, errp) < 0
               ? -1
               : 0;
}

/* The rows of a step given by their indices, into x and tg. */
static int trows_read (struct trows *d, const uint8_t *idx, size_t rows,
                       size_t nin, size_t tsz, bool xent, float *x, uint8_t *tg,
                       dc_error_t *errp)
{
    for (size_t i = 0; i < rows; i++) {
        uint64_t k;
        memcpy (&k, idx + 8 * i, 8);
        if (k >= d->x->rows)
            return errprintf (errp, "worker: step: row %llu of %zu",
                              (unsigned long long)k, d->x->rows);
        if (d->mx) {
            if (trows_read_mpi (d, k, nin, tsz, x + i * nin, tg + i * tsz,
                                errp) < 0)
                return -1;
        } else if (dc_npy_read_f32 (d->x, (size_t)k, 1, x + i * nin, errp) <
                       0 ||
                   (xent ? dc_npy_read_i64 (d->t, (size_t)k, 1,
                                            (int64_t *)(void *)(tg + i * tsz),
                                            errp)
                         : dc_npy_read_f32 (d->t, (size_t)k, 1,
                                            (float *)(void *)(tg + i * tsz),
                                            errp)) < 0)
            return -1;
    }
    return 0;
}

/* DATA from the hub: send the trained state back. */
static int send_state (struct dc_comm *c, struct dc_trainer *t, size_t np,
                       dc_error_t *errp)
{
    int nvec = dc_trainer_state_nvec (t);
    size_t len = DC_TSTATE_HDR + (size_t)nvec * np * sizeof (float);
    uint8_t *b = malloc (len);
    int rc = -1;

    if (!b)
        return errprintf (errp, "worker: out of memory for the state");
    dc_wire_tstate_put (
        b, &(struct dc_wire_tstate){.step = (uint64_t)dc_trainer_steps (t),
                                    .nvec = (uint64_t)nvec});
    if (dc_trainer_state_get (t, (float *)(void *)(b + DC_TSTATE_HDR), errp) ==
        0)
        rc = dc_comm_send (c, DC_COMM_HUB, DC_MSG_DATA, b, len, errp);
    free (b);
    return rc;
}

/* A training rank: what serve_train's steps share.  The functions below
 * return 0, -1 to report the error to the hub (dc_worker_fail) or QUIET
 * when the hub is gone (nothing to report to). */
#define QUIET (-2)

struct trun {
    struct dc_comm *c;
    const struct job *j;
    const struct dc_compute_ops *ops;
    struct dc_compute *dev;
    struct dc_trainer *t;
    struct trows d;
    size_t nin, nout, np, tsz;
    bool xent;
    float *g, *bx; /* the gradient (summed in place); direct rows */
    uint8_t *out, *bt;
    /* overlap (comm can sum in the background): the buckets, the sums
     * started (req[k] for bucket k) and the next bucket to start */
    struct dc_grad_bucket *b;
    struct dc_comm_req **req;
    int nb, next;
};

static void trun_free (struct trun *k)
{
    dc_trainer_destroy (k->t);
    if (k->ops && k->dev)
        k->ops->destroy (k->dev);
    trows_close (&k->d);
    free (k->g);
    free (k->bx);
    free (k->bt);
    free (k->out);
    free (k->b);
    free (k->req);
}

/* The checkpoint's optimizer state and step (a DATA message). */
static int train_resume (struct trun *k, const struct dc_worker_opts *o,
                         dc_error_t *errp)
{
    struct dc_comm_msg msg;
    struct dc_train_pos pos;
    char path[4096];
    int how = -1;

    if (dc_comm_recv (k->c, &msg, -1, errp) <= 0)
        return QUIET;
    if (msg.type != DC_MSG_DATA ||
        (how = write_tmp (msg.data, msg.len, o, path, sizeof (path), errp)) ==
            -1) {
        free (msg.data);
        if (msg.type != DC_MSG_DATA)
            errprintf (errp, "worker: expected the checkpoint");
        return -1;
    }
    free (msg.data);
    int lr = dc_trainer_checkpoint_load (k->t, &pos, path, errp);
    drop_tmp (how, path);
    return lr < 0 ? -1 : 0;
}

/* Overlap, when the comm sums in the background: the buckets of the
 * model (the same on every rank) and a hook that starts each one's sum as
 * soon as the backward pass has completed it. */
static int train_hook (void *arg, int layer, dc_error_t *errp);

static int train_buckets (struct trun *k, int nlayers, dc_error_t *errp)
{
    if (!dc_comm_can_overlap (k->c) || nlayers <= 0)
        return 0; /* the whole gradient summed after the backward */
    if (!(k->b = calloc ((size_t)nlayers, sizeof (*k->b))) ||
        !(k->req = calloc ((size_t)nlayers, sizeof (*k->req))))
        return errprintf (errp, "worker: out of memory");
    if ((k->nb = dc_trainer_buckets (k->t, DC_TRAIN_BUCKET_BYTES, k->b, nlayers,
                                     errp)) < 0)
        return -1;
    dc_trainer_set_grad_hook (k->t, train_hook, k);
    return 0;
}

/* Start bucket k->next's sum; rows 0: the rank has no gradient (zeros). */
static int bucket_start (struct trun *k, bool rows, dc_error_t *errp)
{
    const struct dc_grad_bucket *b = &k->b[k->next];

    if (rows && dc_trainer_grads_get_range (k->t, b->off, b->n, k->g + b->off,
                                            errp) < 0)
        return -1;
    if (!(k->req[k->next] =
              dc_comm_iallreduce (k->c, k->g + b->off, b->n, errp)))
        return -1;
    k->next++;
    return 0;
}

static int train_hook (void *arg, int layer, dc_error_t *errp)
{
    struct trun *k = arg;

    if (k->next < k->nb && k->b[k->next].layer == layer)
        return bucket_start (k, true, errp);
    return 0;
}

/* Finish every sum started, in order: 0, or -1 with the first error (the
 * rest are waited for all the same: their buffers are the comm's). */
static int buckets_wait (struct trun *k, dc_error_t *errp)
{
    int rc = 0, err = 0;

    for (int i = 0; i < k->next; i++) {
        dc_error_t e;
        if (dc_comm_wait (k->c, k->req[i], &e) < 0 && rc == 0) {
            rc = -1;
            err = errno;
            errprintf (errp, "%s", e.text);
        }
        k->req[i] = NULL;
    }
    k->next = 0;
    errno = err;
    return rc;
}

/* This rank's gradient of its rows, summed over every live rank into k->g:
 * 0, -1 (the step failed), or 1 when the sum failed (errno ECANCELED: a
 * rank was lost; else the comm is gone).  *tc1: when the backward ended. */
static int train_grad (struct trun *k, const float *x, const void *tg,
                       uint64_t rows, uint64_t scale, double *ls, double *tc1,
                       dc_error_t *errp)
{
    int r = 0;

    if (rows > 0)
        r = dc_trainer_grad (k->t, x, tg, (size_t)rows, (size_t)scale, ls,
                             errp);
    else
        memset (k->g, 0, k->np * sizeof (float));
    if (r == 0 && k->nb > 0 && rows == 0) /* no backward: every bucket */
        while (r == 0 && k->next < k->nb)
            r = bucket_start (k, false, errp);
    if (r == 0 && k->nb == 0 && rows > 0)
        r = dc_trainer_grads_get (k->t, k->g, errp);
    *tc1 = dc_report_now ();
    if (r < 0) {
        buckets_wait (k, NULL); /* the sums started end before g is freed */
        return -1;
    }
    /* every live rank sums its gradient with the others' */
    if (k->nb > 0 ? buckets_wait (k, errp)
                  : dc_comm_allreduce (k->c, k->g, k->np, errp))
        return 1;
    return 0;
}

/* One step's share (a CHUNK): its rows (read here under direct rows),
 * the summed gradient, the update and the RESULT. */
static int train_step (struct trun *k, struct dc_comm_msg *msg,
                       dc_error_t *errp)
{
    struct dc_wire_step sp;
    dc_error_t e;
    bool direct = k->d.x != NULL;
    double ls = 0;

    /* direct: each row is its u64 index */
    if (dc_wire_step_get (msg->data, msg->len, direct ? 8 : k->nin * 4,
                          direct ? 0 : k->tsz, k->j->to.batch_size, &sp,
                          &e) < 0)
        return errprintf (errp, "worker: a malformed training %s", e.text);
    uint64_t rows = sp.rows;
    if (k->j->delay_ms > 0)
        dc_worker_sleep_ms (k->j->delay_ms);
    double tr0 = dc_report_now (), tc0, tc1; /* read, compute, allreduce */
    const float *x = (const float *)sp.x;
    const void *tg = sp.target;
    if (direct && rows > 0) {
        if (trows_read (&k->d, sp.x, (size_t)rows, k->nin, k->tsz, k->xent,
                        k->bx, k->bt, errp) < 0)
            return -1;
        x = k->bx;
        tg = k->bt;
    }
    tc0 = dc_report_now ();
    uint64_t status = 0;
    int r = train_grad (k, x, tg, rows, sp.scale, &ls, &tc1, errp);
    if (r < 0 || (r > 0 && errno != ECANCELED))
        return r < 0 ? -1 : QUIET;
    if (r > 0)
        status = 1; /* a rank was lost: the step is redone */
    else if (dc_trainer_grads_set (k->t, k->g, errp) < 0 ||
             dc_trainer_apply (k->t, errp) < 0)
        return -1;
    size_t len = DC_TRAIN_RESULT_HDR;
    dc_wire_tresult_put (
        k->out, &(struct dc_wire_tresult){.attempt = sp.attempt,
                                          .status = status,
                                          .loss = ls,
                                          .read = tc0 - tr0,
                                          .compute = tc1 - tc0,
                                          .allreduce = dc_report_now () - tc1});
    if (sp.want_grads && status == 0) {
        memcpy (k->out + DC_TRAIN_RESULT_HDR, k->g, k->np * sizeof (float));
        len += k->np * sizeof (float);
    }
    if (dc_comm_send (k->c, DC_COMM_HUB, DC_MSG_RESULT, k->out, len, errp) < 0)
        return QUIET;
    return 0;
}

/* READY: the model's shape, and whether this rank reads its rows itself
 * (and with which engine). */
static int train_ready (struct trun *k, dc_error_t *errp)
{
    struct dc_wire_ready rd = {.inputs = (int64_t)k->nin,
                               .outputs = (int64_t)k->nout,
                               .parameters = (int64_t)k->np};
    size_t B = k->j->to.batch_size;

    if (k->j->tio.on) {
        bool ok = trows_open (&k->j->tio, k->nin, k->nout, k->xent,
                              dc_mpi_file_usable (k->c), &k->d, rd.io_why,
                              sizeof (rd.io_why)) == 0;
        if (ok && (!(k->bx = malloc (B * k->nin * sizeof (float))) ||
                   !(k->bt = malloc (B * k->tsz))))
            return errprintf (errp, "worker: out of memory");
        if (ok)
            snprintf (rd.io_engine, sizeof (rd.io_engine), "%s", k->d.engine);
        snprintf (rd.io, sizeof (rd.io), "%s", ok ? "direct" : "relay");
    }
    rd.clock = dc_report_now ();
    snprintf (rd.device, sizeof (rd.device), "%s",
              k->ops->describe ? k->ops->describe (k->dev) : k->ops->name);
    snprintf (rd.kernel, sizeof (rd.kernel), "%s",
              k->ops->kernel && k->ops->kernel (k->dev)
                  ? k->ops->kernel (k->dev)
                  : "");
    return dc_ready_send (k->c, &rd, errp) == 0 ? 0 : QUIET;
}

/* The device, the trainer (and the checkpoint's state), the buffers. */
static int train_setup (struct trun *k, struct dc_model *m,
                        const struct dc_worker_opts *o, dc_error_t *errp)
{
    const struct job *j = k->j;
    struct dc_compute_opts co = {.threads = j->threads,
                                 .train_rows = DC_TRAIN_CPU_ROWS};

    k->nin = (size_t)dc_model_inputs (m);
    k->nout = (size_t)dc_model_outputs (m);
    k->np = dc_model_nparams (m);
    k->xent = j->to.loss == DC_LOSS_XENT;
    k->tsz = k->xent ? sizeof (int64_t) : k->nout * sizeof (float);
    if (dc_dtype_parse (j->dtype, &co.dtype) < 0)
        return errprintf (errp, "worker: unknown dtype '%s'", j->dtype);
    if (!(k->ops = worker_find (j->device, errp)) ||
        !(k->dev = k->ops->create (&co, errp)) ||
        !(k->t = dc_trainer_create (m, k->ops, k->dev, &j->to, errp)))
        return -1;
    int rc = j->resume ? train_resume (k, o, errp) : 0;
    if (rc < 0)
        return rc;
    if (!(k->g = malloc ((k->np ? k->np : 1) * sizeof (float))) ||
        !(k->out = malloc (DC_TRAIN_RESULT_HDR + k->np * sizeof (float))))
        return errprintf (errp, "worker: out of memory");
    return train_buckets (k, m->nlayers, errp);
}

static int serve_train (struct dc_comm *c, const struct job *j,
                        struct dc_model *m, const struct dc_worker_opts *o,
                        dc_error_t *errp)
{
    struct trun k = {.c = c, .j = j};
    int rc = train_setup (&k, m, o, errp);

    if (rc == 0)
        rc = train_ready (&k, errp);
    while (rc == 0) {
        struct dc_comm_msg msg = {0};
        if (dc_comm_recv (c, &msg, -1, errp) < 0) {
            rc = QUIET;
            break;
        }
        if (msg.type == DC_MSG_DONE) {
            free (msg.data);
            break;
        }
        if (msg.type == DC_MSG_DATA) /* the hub wants the state */
            rc = send_state (c, k.t, k.np, errp);
        else if (msg.type == DC_MSG_CHUNK)
            rc = train_step (&k, &msg, errp);
        free (msg.data);
    }
    if (rc == -1)
        dc_worker_fail (c, errp);
    trun_free (&k);
    return rc < 0 ? -1 : 0;
}

/* JOB "echo" (dcrun bench comm): no model; READY, then every DATA frame
 * goes back to the hub as it came, until DONE. */
static int serve_echo (struct dc_comm *c, dc_error_t *errp)
{
    if (dc_comm_send (c, DC_COMM_HUB, DC_MSG_READY, "{}", 2, errp) < 0)
        return -1;
    for (;;) {
        struct dc_comm_msg msg;
        int rc = 0;
        if (dc_comm_recv (c, &msg, -1, errp) < 0)
            return -1; /* the coordinator went away */
        if (msg.type == DC_MSG_DONE) {
            free (msg.data);
            return 0;
        }
        if (msg.type == DC_MSG_DATA)
            rc = dc_comm_send (c, DC_COMM_HUB, DC_MSG_DATA, msg.data, msg.len,
                               errp);
        free (msg.data);
        if (rc < 0)
            return -1;
    }
}

int dc_worker_serve (struct dc_comm *c, const struct dc_worker_opts *o,
                     dc_error_t *errp)
{
    struct beat b = {.c = c, .period = o->heartbeat > 0 ? o->heartbeat : 1};
    pthread_t bt;
    bool beating = false;
    struct dc_comm_msg msg = {0};
    struct job j;
    struct dc_model *m = NULL;
    int rc = -1;

    worker_find = o->find;
    pthread_mutex_init (&b.mu, NULL);
    pthread_cond_init (&b.cv, NULL);
    if (pthread_create (&bt, NULL, beat_main, &b) == 0)
        beating = true;
    /* JOB, then MODEL */
    if (dc_comm_recv (c, &msg, -1, errp) <= 0)
        goto out;
    if (msg.type != DC_MSG_JOB) {
        errprintf (errp, "worker: expected a job, got a %s message",
                   dc_proto_type_name (msg.type));
        dc_worker_fail (c, errp);
        goto out;
    }
    struct dc_wire_job wj;
    dc_error_t e;
    if (dc_wire_job_decode (msg.data, msg.len, &wj, &e) < 0) {
        errprintf (errp, "worker: %s", e.text);
        dc_worker_fail (c, errp);
        goto out;
    }
    if (wj.mode == DC_WIRE_PIPELINE) { /* lib/run/stage.h */
        rc = dc_worker_pipe_serve (c, o, &wj, errp);
        goto out;
    }
    if (wj.mode == DC_WIRE_MAP) { /* lib/run/map_rank.h */
        rc = dc_worker_map_serve (c, o, &wj.io, errp);
        goto out;
    }
    job_from_wire (&wj, &j);
    free (msg.data);
    msg.data = NULL;
    if (!strcmp (j.mode, "echo")) {
        rc = serve_echo (c, errp);
        goto out;
    }
    if (j.io.model[0]) { /* --io direct: no MODEL comes */
        char why[256];
        if (!(m = dio_model (&j, why, sizeof (why)))) {
            rc = serve_refused (c, why, errp);
            goto out;
        }
    } else {
        if (dc_comm_recv (c, &msg, -1, errp) <= 0)
            goto out;
        if (msg.type != DC_MSG_MODEL) {
            errprintf (errp, "worker: expected the model, got a %s message",
                       dc_proto_type_name (msg.type));
            dc_worker_fail (c, errp);
            goto out;
        }
        if (!(m = load_model (msg.data, msg.len, &j, o, errp))) {
            dc_worker_fail (c, errp);
            goto out;
        }
        free (msg.data);
        msg.data = NULL;
    }
    if (!strcmp (j.mode, "train"))
        rc = serve_train (c, &j, m, o, errp);
    else
        rc = serve_infer (c, &j, m, errp);
out:
    free (msg.data);
    dc_model_destroy (m);
    if (beating) {
        pthread_mutex_lock (&b.mu);
        b.stop = true;
        pthread_cond_signal (&b.cv);
        pthread_mutex_unlock (&b.mu);
        pthread_join (bt, NULL);
    }
    pthread_mutex_destroy (&b.mu);
    pthread_cond_destroy (&b.cv);
    return rc;
}
