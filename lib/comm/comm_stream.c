/* comm_stream.c - comm over byte channels: ranks speak frames on their
 * stdin/stdout, the coordinator is the hub (DESIGN.md section 5) */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/comm/comm.h"
#include "lib/launch/launch.h"
#include "lib/util/log.h"

#define MAX_POLLFDS 4096
#define READ_CHUNK (1 << 20)

/* ---- a queue of messages ---- */

struct qitem {
    struct dc_comm_msg m;
    struct qitem *next;
};

struct msgq {
    struct qitem *head, *tail;
};

static int q_push (struct msgq *q, int src, int type, uint8_t *data, size_t len)
{
    struct qitem *it = malloc (sizeof (*it));

    if (!it)
        return -1;
    it->m = (struct dc_comm_msg){
        .src = src, .type = type, .data = data, .len = len};
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    return 0;
}

/* Pop the first message (of type, or any when type is 0). */
static bool q_pop (struct msgq *q, int type, struct dc_comm_msg *out)
{
    struct qitem *prev = NULL;

    for (struct qitem *it = q->head; it; prev = it, it = it->next) {
        if (type && it->m.type != type)
            continue;
        if (prev)
            prev->next = it->next;
        else
            q->head = it->next;
        if (q->tail == it)
            q->tail = prev;
        *out = it->m;
        free (it);
        return true;
    }
    return false;
}

static void q_clear (struct msgq *q)
{
    struct dc_comm_msg m;
    while (q_pop (q, 0, &m))
        free (m.data);
}

void dc_comm_destroy (struct dc_comm *c)
{
    if (c && c->ops && c->ops->destroy)
        c->ops->destroy (c);
}

/* Reduction payloads start with the u64 epoch of the reduction; a REDUCED
 * with no floats after it means the reduction was abandoned. */
#define EPOCH_BYTES 8

static void put_u64 (uint8_t *p, uint64_t v)
{
    memcpy (p, &v, sizeof (v));
}

static uint64_t get_u64 (const uint8_t *p)
{
    uint64_t v;
    memcpy (&v, p, sizeof (v));
    return v;
}

/* ================= rank side ================= */

struct rank_side {
    int fd_in, fd_out;
    pthread_t reader;
    bool reader_started;
    pthread_mutex_t mu; /* queue, eof */
    pthread_cond_t cv;
    struct msgq q;
    bool eof;
    dc_error_t eof_err;
    pthread_mutex_t wmu; /* writes to fd_out */
    uint64_t epoch;
};

static void *reader_main (void *arg)
{
    struct dc_comm *c = arg;
    struct rank_side *rs = c->data;
    struct dc_proto_decoder *d = dc_proto_decoder_create (0);
    uint8_t *buf = malloc (READ_CHUNK);
    dc_error_t err = {{0}};

    if (!d || !buf) {
        errprintf (&err, "comm: out of memory");
        goto done;
    }
    for (;;) {
        ssize_t n = read (rs->fd_in, buf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                errprintf (&err, "comm: read: %s", strerror (errno));
            else if (dc_proto_eof (d, &err) == 0)
                errprintf (&err, "comm: the coordinator closed the channel");
            break;
        }
        size_t off = 0;
        while (off < (size_t)n) {
            long used = dc_proto_feed (d, buf + off, (size_t)n - off, &err);
            if (used < 0)
                goto done;
            off += (size_t)used;
            struct dc_frame_hdr h;
            if (dc_proto_next (d, &h, NULL)) {
                uint8_t *p = dc_proto_take (d);
                if (h.len == 0) {
                    free (p);
                    p = NULL;
                }
                pthread_mutex_lock (&rs->mu);
                int src = h.src == DC_PROTO_ANY ? DC_COMM_HUB : (int)h.src;
                if (q_push (&rs->q, src, h.type, p, (size_t)h.len) < 0)
                    free (p);
                pthread_cond_broadcast (&rs->cv);
                pthread_mutex_unlock (&rs->mu);
            }
        }
    }
done:
    pthread_mutex_lock (&rs->mu);
    rs->eof = true;
    rs->eof_err = err;
    pthread_cond_broadcast (&rs->cv);
    pthread_mutex_unlock (&rs->mu);
    dc_proto_decoder_destroy (d);
    free (buf);
    return NULL;
}

static int rank_send (struct dc_comm *c, int dst, int type, const void *buf,
                      size_t len, dc_error_t *errp)
{
    struct rank_side *rs = c->data;
    uint32_t d = dst == DC_COMM_HUB ? DC_PROTO_ANY : (uint32_t)dst;
    int rc;

    pthread_mutex_lock (&rs->wmu);
    rc = dc_proto_send (rs->fd_out, type, (uint32_t)c->rank, d, buf, len, errp);
    pthread_mutex_unlock (&rs->wmu);
    return rc;
}

/* Wait for a message of type (0: any) until the deadline (<0: none). */
static int rank_wait (struct dc_comm *c, int type, struct dc_comm_msg *msg,
                      int timeout_ms, dc_error_t *errp)
{
    struct rank_side *rs = c->data;
    struct timespec until;
    int rc = 0;

    if (timeout_ms >= 0) {
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock (&rs->mu);
    for (;;) {
        if (q_pop (&rs->q, type, msg)) {
            rc = 1;
            break;
        }
        if (rs->eof) {
            if (errp)
                *errp = rs->eof_err;
            errno = EPIPE;
            rc = -1;
            break;
        }
        if (timeout_ms < 0)
            pthread_cond_wait (&rs->cv, &rs->mu);
        else if (pthread_cond_timedwait (&rs->cv, &rs->mu, &until) ==
                 ETIMEDOUT) {
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock (&rs->mu);
    return rc;
}

static int rank_recv (struct dc_comm *c, struct dc_comm_msg *msg,
                      int timeout_ms, dc_error_t *errp)
{
    return rank_wait (c, 0, msg, timeout_ms, errp);
}

/* A GRAD frame: the header, the epoch and the floats straight from buf
 * (no copy of the gradient). */
static int send_grad (struct dc_comm *c, uint64_t epoch, const float *buf,
                      size_t n, dc_error_t *errp)
{
    struct rank_side *rs = c->data;
    uint8_t hdr[DC_PROTO_HDR_SIZE], e[EPOCH_BYTES];
    size_t bytes = EPOCH_BYTES + n * sizeof (float);
    struct iovec iov[3] = {
        {.iov_base = hdr, .iov_len = sizeof (hdr)},
        {.iov_base = e, .iov_len = sizeof (e)},
        {.iov_base = (void *)buf, .iov_len = n * sizeof (float)},
    };
    struct iovec *v = iov;
    int iovcnt = 3, rc = 0;

    if (bytes > DC_PROTO_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return errprintf (errp, "comm: a reduction of %zu floats is too large",
                          n);
    }
    dc_proto_pack (hdr, DC_MSG_GRAD, (uint32_t)c->rank, DC_PROTO_ANY, bytes);
    put_u64 (e, epoch);
    pthread_mutex_lock (&rs->wmu);
    while (iovcnt > 0) {
        ssize_t w = writev (rs->fd_out, v, iovcnt);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = errprintf (errp, "comm: write: %s", strerror (errno));
            break;
        }
        while (iovcnt > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            v->iov_base = (uint8_t *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    pthread_mutex_unlock (&rs->wmu);
    return rc;
}

static int rank_allreduce (struct dc_comm *c, float *buf, size_t n,
                           dc_error_t *errp)
{
    struct rank_side *rs = c->data;
    uint64_t epoch = ++rs->epoch;
    size_t bytes = EPOCH_BYTES + n * sizeof (float);
    struct dc_comm_msg m;

    if (send_grad (c, epoch, buf, n, errp) < 0)
        return -1;
    for (;;) {
        if (rank_wait (c, DC_MSG_REDUCED, &m, -1, errp) < 0)
            return -1;
        if (m.len < EPOCH_BYTES || get_u64 (m.data) != epoch) {
            free (m.data); /* a stale answer */
            continue;
        }
        break;
    }
    if (m.len == EPOCH_BYTES) {
        free (m.data);
        errno = ECANCELED;
        return errprintf (errp, "comm: a rank was lost during the reduction");
    }
    if (m.len != bytes) {
        free (m.data);
        errno = EPROTO;
        return errprintf (errp, "comm: reduction of %zu bytes, expected %zu",
                          m.len, bytes);
    }
    memcpy (buf, m.data + EPOCH_BYTES, n * sizeof (float));
    free (m.data);
    return 0;
}

static void rank_destroy (struct dc_comm *c)
{
    struct rank_side *rs = c->data;

    if (rs) {
        if (rs->reader_started) {
            /* the reader blocks in read(): it ends with the process, or
             * when the hub closes the channel; do not wait for it */
            pthread_detach (rs->reader);
        }
        pthread_mutex_lock (&rs->mu);
        q_clear (&rs->q);
        pthread_mutex_unlock (&rs->mu);
        /* rs stays allocated for a detached reader still running */
        if (!rs->reader_started) {
            pthread_mutex_destroy (&rs->mu);
            pthread_cond_destroy (&rs->cv);
            pthread_mutex_destroy (&rs->wmu);
            free (rs);
        }
    }
    free (c);
}

static const struct dc_comm_ops rank_ops = {
    .name = "stream",
    .send = rank_send,
    .recv = rank_recv,
    .allreduce = rank_allreduce,
    .destroy = rank_destroy,
};

struct dc_comm *dc_comm_stream_rank_create (int rank, int size, int fd_in,
                                            int fd_out, dc_error_t *errp)
{
    struct dc_comm *c = calloc (1, sizeof (*c));
    struct rank_side *rs = calloc (1, sizeof (*rs));

    if (!c || !rs) {
        free (c);
        free (rs);
        errprintf (errp, "comm: out of memory");
        return NULL;
    }
    rs->fd_in = fd_in;
    rs->fd_out = fd_out;
    pthread_mutex_init (&rs->mu, NULL);
    pthread_cond_init (&rs->cv, NULL);
    pthread_mutex_init (&rs->wmu, NULL);
    c->ops = &rank_ops;
    c->rank = rank;
    c->size = size;
    c->data = rs;
    if (pthread_create (&rs->reader, NULL, reader_main, c) != 0) {
        errprintf (errp, "comm: cannot start the reader thread");
        rank_destroy (c);
        return NULL;
    }
    rs->reader_started = true;
    return c;
}

/* ================= hub side ================= */

/* A payload queued for one or more ranks (a broadcast shares one copy). */
struct blob {
    size_t refs;
    size_t len;
    uint8_t data[];
};

struct outbuf {
    uint8_t hdr[DC_PROTO_HDR_SIZE];
    struct blob *blob; /* NULL for an empty payload */
    size_t len, off;   /* of header + payload */
    struct outbuf *next;
};

static void ob_free (struct outbuf *o)
{
    if (o->blob && --o->blob->refs == 0)
        free (o->blob);
    free (o);
}

static struct blob *blob_create (const void *buf, size_t len)
{
    struct blob *b;

    if (len == 0)
        return NULL;
    if (!(b = malloc (sizeof (*b) + len)))
        return NULL;
    b->refs = 0;
    b->len = len;
    memcpy (b->data, buf, len);
    return b;
}

struct peer {
    struct dc_proto_decoder *dec;
    struct outbuf *head, *tail;
    bool lost;
    char reason[256];
    double last_seen;
    uint8_t *contrib; /* this rank's GRAD payload for the pending epoch */
    size_t contrib_len;
};

struct hub {
    struct dc_launch *l;
    struct peer *p;
    struct msgq q;
    dc_comm_stderr_f errout;
    void *arg;
    int extra_fd;
    int running;
    double heartbeat;
    /* reduction at the hub */
    uint64_t epoch;        /* pending epoch (0: none) */
    uint64_t aborted_upto; /* epochs <= this are abandoned */
    uint64_t last_done;    /* the last epoch completed */
    struct pollfd *fds;
};

static int hub_drop (struct dc_comm *c, int rank, const char *why);
static void abandon_reduction (struct dc_comm *c);

/* A rank is gone: its part of a reduction will never come.  The pending
 * reduction is abandoned, or, when none is pending, the next one: a rank
 * lost between two reductions may have taken work for the next (the
 * survivors then redo it with the work shared among themselves). */
static void mark_lost (struct dc_comm *c, int rank, const char *why)
{
    struct hub *h = c->data;
    struct peer *pr;

    if (rank < 0 || rank >= c->size)
        return;
    pr = &h->p[rank];
    if (pr->lost)
        return;
    pr->lost = true;
    snprintf (pr->reason, sizeof (pr->reason), "%s", why);
    while (pr->head) {
        struct outbuf *o = pr->head;
        pr->head = o->next;
        ob_free (o);
    }
    pr->tail = NULL;
    free (pr->contrib);
    pr->contrib = NULL;
    q_push (&h->q, rank, DC_COMM_LOST, NULL, 0);
    if (h->epoch)
        abandon_reduction (c);
    else if (h->aborted_upto < h->last_done + 1)
        h->aborted_upto = h->last_done + 1;
}

/* Queue a frame whose payload is blob (shared, may be NULL when empty). */
static int enqueue_blob (struct dc_comm *c, int dst, int type, uint32_t src,
                         struct blob *blob, dc_error_t *errp)
{
    struct hub *h = c->data;
    struct peer *pr;
    struct outbuf *o;
    size_t len = blob ? blob->len : 0;

    if (dst < 0 || dst >= c->size) {
        errno = EINVAL;
        return errprintf (errp, "comm: no rank %d", dst);
    }
    pr = &h->p[dst];
    if (pr->lost)
        return 0;
    if (!(o = calloc (1, sizeof (*o))))
        return errprintf (errp, "comm: out of memory");
    dc_proto_pack (o->hdr, type, src, (uint32_t)dst, len);
    o->blob = blob;
    if (blob)
        blob->refs++;
    o->len = DC_PROTO_HDR_SIZE + len;
    if (pr->tail)
        pr->tail->next = o;
    else
        pr->head = o;
    pr->tail = o;
    return 0;
}

/* Write what the channels take now.  Returns true when something waits. */
static bool hub_flush (struct dc_comm *c)
{
    struct hub *h = c->data;
    bool pending = false;

    for (int r = 0; r < c->size; r++) {
        struct peer *pr = &h->p[r];
        while (pr->head && !pr->lost) {
            struct outbuf *o = pr->head;
            bool in_hdr = o->off < DC_PROTO_HDR_SIZE;
            size_t want = in_hdr ? DC_PROTO_HDR_SIZE - o->off : o->len - o->off;
            ssize_t n = dc_launch_write (
                h->l, r,
                in_hdr ? o->hdr + o->off
                       : o->blob->data + (o->off - DC_PROTO_HDR_SIZE),
                want);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                char why[128];
                snprintf (why, sizeof (why), "channel closed (%s)",
                          strerror (errno));
                dc_launch_signal (h->l, r, SIGKILL);
                mark_lost (c, r, why);
                break;
            }
            o->off += (size_t)n;
            if ((size_t)n < want)
                break; /* the channel is full */
            if (o->off < o->len)
                continue;
            pr->head = o->next;
            if (!pr->head)
                pr->tail = NULL;
            ob_free (o);
        }
        if (pr->head && !pr->lost)
            pending = true;
    }
    return pending;
}

static int hub_enqueue (struct dc_comm *c, int dst, int type, uint32_t src,
                        const void *buf, size_t len, dc_error_t *errp)
{
    struct blob *b = blob_create (buf, len);

    if (len && !b)
        return errprintf (errp,
                          "comm: out of memory for a frame of %zu "
                          "bytes",
                          len);
    int rc = enqueue_blob (c, dst, type, src, b, errp);
    if (b && b->refs == 0)
        free (b); /* not queued: an error, or the rank is lost */
    return rc;
}

static int hub_send (struct dc_comm *c, int dst, int type, const void *buf,
                     size_t len, dc_error_t *errp)
{
    if (hub_enqueue (c, dst, type, DC_PROTO_ANY, buf, len, errp) < 0)
        return -1;
    hub_flush (c);
    return 0;
}

static void abandon_reduction (struct dc_comm *c)
{
    struct hub *h = c->data;
    uint8_t e[EPOCH_BYTES];

    if (h->epoch == 0)
        return;
    put_u64 (e, h->epoch);
    for (int r = 0; r < c->size; r++) {
        struct peer *pr = &h->p[r];
        if (pr->contrib && !pr->lost)
            hub_enqueue (c, r, DC_MSG_REDUCED, DC_PROTO_ANY, e, sizeof (e),
                         NULL);
        free (pr->contrib);
        pr->contrib = NULL;
    }
    h->aborted_upto = h->epoch;
    h->epoch = 0;
}

/* Every live rank has sent its part: sum in rank order and broadcast
 * (one copy of the sum, shared by every rank's queue). */
static void finish_reduction (struct dc_comm *c)
{
    struct hub *h = c->data;
    size_t len = 0;
    struct blob *out = NULL;

    for (int r = 0; r < c->size; r++) {
        struct peer *pr = &h->p[r];
        if (pr->lost)
            continue;
        if (!pr->contrib)
            return; /* not yet */
        len = pr->contrib_len;
    }
    if (len == 0)
        return;
    for (int r = 0; r < c->size; r++) {
        struct peer *pr = &h->p[r];
        if (!pr->lost && pr->contrib_len != len) {
            mark_lost (c, r, "sent a reduction of the wrong size");
            dc_launch_signal (h->l, r, SIGKILL);
            abandon_reduction (c);
            return;
        }
    }
    if (!(out = malloc (sizeof (*out) + len))) {
        abandon_reduction (c);
        return;
    }
    out->refs = 0;
    out->len = len;
    put_u64 (out->data, h->epoch);
    size_t n = (len - EPOCH_BYTES) / sizeof (float);
    float *sum = (float *)(void *)(out->data + EPOCH_BYTES);
    bool first = true;
    for (int r = 0; r < c->size; r++) {
        struct peer *pr = &h->p[r];
        if (pr->lost)
            continue;
        const float *v = (const float *)(void *)(pr->contrib + EPOCH_BYTES);
        if (first)
            memcpy (sum, v, n * sizeof (float));
        else
            for (size_t i = 0; i < n; i++)
                sum[i] += v[i];
        first = false;
    }
    for (int r = 0; r < c->size; r++) {
        struct peer *pr = &h->p[r];
        if (!pr->lost)
            enqueue_blob (c, r, DC_MSG_REDUCED, DC_PROTO_ANY, out, NULL);
        free (pr->contrib);
        pr->contrib = NULL;
    }
    if (out->refs == 0)
        free (out);
    h->last_done = h->epoch;
    h->epoch = 0;
}

static void on_grad (struct dc_comm *c, int rank, uint8_t *data, size_t len)
{
    struct hub *h = c->data;
    struct peer *pr = &h->p[rank];
    uint64_t epoch;

    if (len < EPOCH_BYTES || (len - EPOCH_BYTES) % sizeof (float)) {
        free (data);
        dc_launch_signal (h->l, rank, SIGKILL);
        mark_lost (c, rank, "sent a malformed reduction");
        abandon_reduction (c);
        return;
    }
    epoch = get_u64 (data);
    if (epoch <= h->aborted_upto) {
        /* a reduction already abandoned: tell it at once */
        hub_enqueue (c, rank, DC_MSG_REDUCED, DC_PROTO_ANY, data, EPOCH_BYTES,
                     NULL);
        free (data);
        return;
    }
    if (h->epoch == 0)
        h->epoch = epoch;
    if (epoch != h->epoch || pr->contrib) {
        free (data);
        dc_launch_signal (h->l, rank, SIGKILL);
        mark_lost (c, rank, "out of step in a reduction");
        abandon_reduction (c);
        return;
    }
    pr->contrib = data;
    pr->contrib_len = len;
    finish_reduction (c);
}

void dc_comm_stream_on_output (int rank, enum dc_launch_stream stream,
                               const char *data, size_t len, void *arg)
{
    struct dc_comm *c = arg;
    struct hub *h = c->data;
    struct peer *pr;
    dc_error_t err;

    if (rank < 0 || rank >= c->size)
        return;
    pr = &h->p[rank];
    if (stream == DC_LAUNCH_STDERR) {
        if (h->errout)
            h->errout (rank, data, len, h->arg);
        return;
    }
    if (pr->lost)
        return;
    pr->last_seen = dc_now ();
    size_t off = 0;
    while (off < len) {
        long used = dc_proto_feed (pr->dec, data + off, len - off, &err);
        if (used < 0) {
            dc_launch_signal (h->l, rank, SIGKILL);
            mark_lost (c, rank, err.text);
            if (h->epoch)
                abandon_reduction (c);
            return;
        }
        off += (size_t)used;
        struct dc_frame_hdr fh;
        if (!dc_proto_next (pr->dec, &fh, NULL))
            continue;
        uint8_t *p = dc_proto_take (pr->dec);
        if (fh.len == 0) {
            free (p);
            p = NULL;
        }
        if (fh.src != (uint32_t)rank) {
            free (p);
            dc_launch_signal (h->l, rank, SIGKILL);
            mark_lost (c, rank, "sent a frame in another rank's name");
            return;
        }
        if (fh.type == DC_MSG_HEARTBEAT) {
            free (p);
        } else if (fh.type == DC_MSG_GRAD) {
            on_grad (c, rank, p, (size_t)fh.len);
        } else if (fh.dst != DC_PROTO_ANY && fh.dst != (uint32_t)-1 &&
                   (int)fh.dst != rank && (int)fh.dst < c->size &&
                   fh.type == DC_MSG_DATA) {
            /* rank to rank: relay with the sender's rank */
            hub_enqueue (c, (int)fh.dst, fh.type, (uint32_t)rank, p,
                         (size_t)fh.len, NULL);
            free (p);
        } else if (q_push (&h->q, rank, fh.type, p, (size_t)fh.len) < 0)
            free (p);
    }
}

void dc_comm_stream_on_exit (const struct dc_launch_status *st, void *arg)
{
    struct dc_comm *c = arg;
    struct hub *h = c->data;
    char why[700];
    dc_error_t err;

    if (st->rank < 0 || st->rank >= c->size)
        return;
    if (st->failed_start)
        snprintf (why, sizeof (why), "did not start: %s", st->reason);
    else if (st->signaled)
        snprintf (why, sizeof (why), "killed by signal %d", st->sig);
    else if (dc_proto_eof (h->p[st->rank].dec, &err) < 0)
        snprintf (why, sizeof (why), "exited with status %d (%s)", st->code,
                  err.text);
    else
        snprintf (why, sizeof (why), "exited with status %d", st->code);
    mark_lost (c, st->rank, why);
    if (h->epoch) {
        abandon_reduction (c);
    }
}

static int hub_recv (struct dc_comm *c, struct dc_comm_msg *msg, int timeout_ms,
                     dc_error_t *errp)
{
    struct hub *h = c->data;
    double deadline = timeout_ms >= 0 ? dc_now () + timeout_ms / 1000.0 : 0;

    if (!h->l) {
        errno = EINVAL;
        return errprintf (errp, "comm: hub has no launcher");
    }
    for (;;) {
        bool pending = hub_flush (c);
        if (q_pop (&h->q, 0, msg))
            return 1;
        if (h->heartbeat > 0) {
            double t = dc_now ();
            for (int r = 0; r < c->size; r++) {
                struct peer *pr = &h->p[r];
                if (!pr->lost && pr->last_seen > 0 &&
                    t - pr->last_seen > h->heartbeat) {
                    char why[128];
                    snprintf (why, sizeof (why), "no heartbeat for %.0f s",
                              h->heartbeat);
                    hub_drop (c, r, why);
                }
            }
            if (h->q.head)
                continue;
        }
        int wait = -1;
        if (timeout_ms >= 0) {
            double left = deadline - dc_now ();
            if (left <= 0)
                return 0;
            wait = (int)(left * 1000) + 1;
        }
        if (h->heartbeat > 0 && (wait < 0 || wait > 500))
            wait = 500;
        int nf = 0;
        if (h->extra_fd >= 0)
            h->fds[nf++] = (struct pollfd){.fd = h->extra_fd, .events = POLLIN};
        int base = nf;
        nf +=
            dc_launch_pollfds (h->l, h->fds + base, MAX_POLLFDS - base, &wait);
        int nl = nf - base;
        /* channels that were full: wake when they take bytes again, or
         * retry on a short timer where the launcher has no descriptor */
        for (int r = 0; pending && r < c->size; r++) {
            struct peer *pr = &h->p[r];
            if (!pr->head || pr->lost)
                continue;
            int fd = dc_launch_write_fd (h->l, r);
            if (fd >= 0 && nf < MAX_POLLFDS)
                h->fds[nf++] = (struct pollfd){.fd = fd, .events = POLLOUT};
            else if (wait < 0 || wait > 2)
                wait = 2;
        }
        int rc = poll (h->fds, (nfds_t)nf, wait);
        if (rc < 0 && errno != EINTR)
            return errprintf (errp, "comm: poll: %s", strerror (errno));
        h->running = dc_launch_progress (h->l, h->fds + base, nl);
        if (rc < 0 || (h->extra_fd >= 0 && h->fds[0].revents))
            return q_pop (&h->q, 0, msg) ? 1 : 0;
    }
}

/* One copy of the payload for every live rank. */
static int hub_bcast (struct dc_comm *c, int type, const void *buf, size_t len,
                      dc_error_t *errp)
{
    struct blob *b = blob_create (buf, len);
    int rc = 0;

    if (len && !b)
        return errprintf (errp,
                          "comm: out of memory for a frame of %zu "
                          "bytes",
                          len);
    for (int r = 0; r < c->size && rc == 0; r++)
        rc = enqueue_blob (c, r, type, DC_PROTO_ANY, b, errp);
    if (b && b->refs == 0)
        free (b);
    hub_flush (c);
    return rc;
}

static int hub_allreduce (struct dc_comm *c, float *buf, size_t n,
                          dc_error_t *errp)
{
    (void)c;
    (void)buf;
    (void)n;
    errno = EINVAL;
    return errprintf (errp, "comm: the hub takes no part in reductions");
}

static void hub_destroy (struct dc_comm *c)
{
    struct hub *h = c->data;

    if (h) {
        for (int r = 0; r < c->size; r++) {
            struct peer *pr = &h->p[r];
            dc_proto_decoder_destroy (pr->dec);
            while (pr->head) {
                struct outbuf *o = pr->head;
                pr->head = o->next;
                ob_free (o);
            }
            free (pr->contrib);
        }
        q_clear (&h->q);
        free (h->p);
        free (h->fds);
        free (h);
    }
    free (c);
}

static const char *hub_lost_reason (struct dc_comm *c, int rank);

static const struct dc_comm_ops hub_ops = {
    .name = "stream",
    .reports_exit = true,
    .send = hub_send,
    .recv = hub_recv,
    .allreduce = hub_allreduce,
    .bcast = hub_bcast,
    .drop = hub_drop,
    .lost_reason = hub_lost_reason,
    .destroy = hub_destroy,
};

struct dc_comm *dc_comm_stream_hub_create (int size, dc_comm_stderr_f errout,
                                           void *arg, int extra_fd,
                                           dc_error_t *errp)
{
    struct dc_comm *c = calloc (1, sizeof (*c));
    struct hub *h = calloc (1, sizeof (*h));

    if (size < 1) {
        free (c);
        free (h);
        errno = EINVAL;
        errprintf (errp, "comm: no ranks");
        return NULL;
    }
    if (!c || !h || !(h->p = calloc ((size_t)size, sizeof (*h->p))) ||
        !(h->fds = calloc (MAX_POLLFDS, sizeof (*h->fds))))
        goto nomem;
    c->ops = &hub_ops;
    c->rank = DC_COMM_HUB;
    c->size = size;
    c->data = h;
    h->errout = errout;
    h->arg = arg;
    h->extra_fd = extra_fd;
    h->running = size;
    for (int r = 0; r < size; r++)
        if (!(h->p[r].dec = dc_proto_decoder_create (0)))
            goto nomem;
    return c;
nomem:
    if (c && c->data)
        hub_destroy (c);
    else {
        if (h)
            free (h->p);
        free (h);
        free (c);
    }
    errprintf (errp, "comm: out of memory");
    return NULL;
}

void dc_comm_stream_hub_attach (struct dc_comm *c, struct dc_launch *l)
{
    struct hub *h = c->data;
    double t = dc_now ();

    h->l = l;
    for (int r = 0; r < c->size; r++)
        h->p[r].last_seen = t;
}

void dc_comm_stream_set_heartbeat (struct dc_comm *c, double seconds)
{
    struct hub *h = c->data;
    h->heartbeat = seconds;
}

static const char *hub_lost_reason (struct dc_comm *c, int rank)
{
    struct hub *h = c->data;

    if (rank < 0 || rank >= c->size || !h->p[rank].lost)
        return "";
    return h->p[rank].reason;
}

static int hub_drop (struct dc_comm *c, int rank, const char *why)
{
    struct hub *h = c->data;

    if (rank < 0 || rank >= c->size) {
        errno = EINVAL;
        return -1;
    }
    if (h->l)
        dc_launch_signal (h->l, rank, SIGKILL);
    mark_lost (c, rank, why);
    if (h->epoch)
        abandon_reduction (c);
    return 0;
}

int dc_comm_stream_running (struct dc_comm *c)
{
    struct hub *h = c->data;
    return h->running;
}
