/* comm_mpi.c - comm over MPI: point-to-point for messages, MPI_Allreduce
 * for sums (DESIGN.md section 5)
 *
 * Messages go up (rank -> hub) and down (hub -> rank) on two communicators
 * duplicated from MPI_COMM_WORLD, so the hub and rank 0's worker, both MPI
 * rank 0, never take each other's messages; the tag is the message type.
 * Sums run on a third communicator over every rank.
 *
 * iallreduce (sums while the caller computes, DDP's overlap) queues the
 * buffer for a thread of the rank's own, started with the first one, that
 * runs the queued sums in order: each waits politely for every rank
 * (MPI_Ibarrier tested with naps), then MPI_Allreduce.  A thread rather
 * than MPI_Iallreduce: Open MPI moves a non-blocking collective on only
 * inside MPI calls, and the caller is in a GEMM.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "lib/util/clock.h"
#include "lib/comm/comm.h"

#if HAVE_MPI
#include <mpi.h>

static MPI_Comm c_up = MPI_COMM_NULL, c_down = MPI_COMM_NULL,
                c_sum = MPI_COMM_NULL;
static int world_rank, world_size;

static int mpierr (dc_error_t *errp, const char *call, int rc)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;

    MPI_Error_string (rc, text, &len);
    errno = EIO;
    return errprintf (errp, "comm: %s: %.*s", call, len, text);
}

bool dc_comm_mpi_wanted (void)
{
    const char *s;

    if ((s = getenv ("OMPI_COMM_WORLD_SIZE")) && atoi (s) > 1)
        return true;
    if (getenv ("SLURM_PROCID") && getenv ("SLURM_STEP_ID") &&
        (s = getenv ("SLURM_STEP_NUM_TASKS")) && atoi (s) > 1)
        return true;
    return false;
}

int dc_comm_mpi_init (int *rank, int *size, dc_error_t *errp)
{
    int provided = 0, rc, flag = 0;

    MPI_Initialized (&flag);
    if (!flag) {
        rc = MPI_Init_thread (NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
        if (rc != MPI_SUCCESS)
            return mpierr (errp, "MPI_Init_thread", rc);
        if (provided < MPI_THREAD_MULTIPLE) {
            errno = ENOTSUP;
            return errprintf (errp,
                              "comm: this MPI does not support "
                              "MPI_THREAD_MULTIPLE (gives %d)",
                              provided);
        }
        MPI_Comm_set_errhandler (MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    MPI_Comm_rank (MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size (MPI_COMM_WORLD, &world_size);
    if (c_up == MPI_COMM_NULL) {
        MPI_Comm_dup (MPI_COMM_WORLD, &c_up);
        MPI_Comm_dup (MPI_COMM_WORLD, &c_down);
        MPI_Comm_dup (MPI_COMM_WORLD, &c_sum);
    }
    *rank = world_rank;
    *size = world_size;
    return 0;
}

void dc_comm_mpi_finalize (void)
{
    int flag = 0, done = 0;

    MPI_Initialized (&flag);
    MPI_Finalized (&done);
    if (flag && !done) {
        if (c_up != MPI_COMM_NULL) {
            MPI_Comm_free (&c_up);
            MPI_Comm_free (&c_down);
            MPI_Comm_free (&c_sum);
        }
        MPI_Finalize ();
    }
}

void dc_comm_mpi_abort (int code)
{
    MPI_Abort (MPI_COMM_WORLD, code);
}

static int do_send (MPI_Comm comm, int dst, int type, const void *buf,
                    size_t len, dc_error_t *errp)
{
    if (len > (size_t)INT32_MAX) {
        errno = EMSGSIZE;
        return errprintf (errp,
                          "comm: a message of %zu bytes is too large "
                          "for MPI",
                          len);
    }
    int rc = MPI_Send (len ? buf : NULL, (int)len, MPI_BYTE, dst, type, comm);
    return rc == MPI_SUCCESS ? 0 : mpierr (errp, "MPI_Send", rc);
}

/* Waiting without a core spinning (the other ranks and the hub thread of
 * rank 0 need it): 20 us after the last thing that happened, doubling up
 * to 1 ms while nothing does. */
static void nap (long *ns)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = *ns};
    nanosleep (&ts, NULL);
    if (*ns < 1000000L)
        *ns *= 2;
}

#define NAP_START 20000L

/* Probe without blocking (other threads use MPI too), then receive. */
static int do_recv (MPI_Comm comm, struct dc_comm_msg *msg, int timeout_ms,
                    bool drop_heartbeats, dc_error_t *errp)
{
    double until = timeout_ms >= 0 ? dc_now () + timeout_ms / 1000.0 : 0;
    long ns = NAP_START;

    for (;;) {
        MPI_Status st;
        int flag = 0, rc, count = 0;
        rc = MPI_Iprobe (MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &st);
        if (rc != MPI_SUCCESS)
            return mpierr (errp, "MPI_Iprobe", rc);
        if (!flag) {
            if (timeout_ms >= 0 && dc_now () >= until)
                return 0;
            nap (&ns);
            continue;
        }
        MPI_Get_count (&st, MPI_BYTE, &count);
        uint8_t *data = count > 0 ? malloc ((size_t)count) : NULL;
        if (count > 0 && !data)
            return errprintf (errp, "comm: out of memory for %d bytes", count);
        rc = MPI_Recv (data, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, comm,
                       MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            free (data);
            return mpierr (errp, "MPI_Recv", rc);
        }
        if (drop_heartbeats && st.MPI_TAG == DC_MSG_HEARTBEAT) {
            free (data);
            continue;
        }
        msg->src = comm == c_down ? DC_COMM_HUB : st.MPI_SOURCE;
        msg->type = st.MPI_TAG;
        msg->data = data;
        msg->len = (size_t)count;
        return 1;
    }
}

/* The hub never blocks on a send: a rank (rank 0's own thread above all)
 * may be sending to the hub at the same time.  Sends are copied and
 * started with MPI_Isend; finished ones are freed as the hub goes on. */
struct pending {
    MPI_Request req;
    void *buf;
    struct pending *next;
};

static struct pending *hub_pending;

static void reap_sends (bool wait)
{
    struct pending **pp = &hub_pending;

    while (*pp) {
        struct pending *p = *pp;
        int done = 0;
        if (wait)
            done = MPI_Wait (&p->req, MPI_STATUS_IGNORE) == MPI_SUCCESS;
        else
            MPI_Test (&p->req, &done, MPI_STATUS_IGNORE);
        if (done) {
            *pp = p->next;
            free (p->buf);
            free (p);
        } else
            pp = &p->next;
    }
}

static int hub_send (struct dc_comm *c, int dst, int type, const void *buf,
                     size_t len, dc_error_t *errp)
{
    struct pending *p;

    if (dst < 0 || dst >= c->size) {
        errno = EINVAL;
        return errprintf (errp, "comm: no rank %d", dst);
    }
    if (len > (size_t)INT32_MAX) {
        errno = EMSGSIZE;
        return errprintf (errp,
                          "comm: a message of %zu bytes is too large "
                          "for MPI",
                          len);
    }
    if (!(p = calloc (1, sizeof (*p))) || (len && !(p->buf = malloc (len)))) {
        free (p);
        return errprintf (errp, "comm: out of memory for %zu bytes", len);
    }
    if (len)
        memcpy (p->buf, buf, len);
    int rc = MPI_Isend (p->buf, (int)len, MPI_BYTE, dst, type, c_down, &p->req);
    if (rc != MPI_SUCCESS) {
        free (p->buf);
        free (p);
        return mpierr (errp, "MPI_Isend", rc);
    }
    p->next = hub_pending;
    hub_pending = p;
    reap_sends (false);
    return 0;
}

static int hub_recv (struct dc_comm *c, struct dc_comm_msg *msg, int timeout_ms,
                     dc_error_t *errp)
{
    (void)c;
    reap_sends (false);
    return do_recv (c_up, msg, timeout_ms, true, errp);
}

static int rank_send (struct dc_comm *c, int dst, int type, const void *buf,
                      size_t len, dc_error_t *errp)
{
    (void)c;
    if (dst != DC_COMM_HUB) {
        errno = EINVAL;
        return errprintf (errp, "comm: ranks send to the hub only");
    }
    return do_send (c_up, 0, type, buf, len, errp);
}

static int rank_recv (struct dc_comm *c, struct dc_comm_msg *msg,
                      int timeout_ms, dc_error_t *errp)
{
    (void)c;
    return do_recv (c_down, msg, timeout_ms, false, errp);
}

/* Every rank there first, waited for politely (MPI_Allreduce spins on a
 * core while the slowest rank still computes on it, on a machine of few
 * cores), then the sum at full speed. */
static int sum_now (float *buf, size_t n, dc_error_t *errp)
{
    MPI_Request req;
    int rc = MPI_Ibarrier (c_sum, &req), done = 0;
    long ns = NAP_START;
    if (rc != MPI_SUCCESS)
        return mpierr (errp, "MPI_Ibarrier", rc);
    while ((rc = MPI_Test (&req, &done, MPI_STATUS_IGNORE)) == MPI_SUCCESS &&
           !done)
        nap (&ns);
    if (rc != MPI_SUCCESS)
        return mpierr (errp, "MPI_Test", rc);
    /* in pieces: counts are ints */
    for (size_t off = 0; off < n;) {
        size_t k = n - off > (size_t)INT32_MAX ? (size_t)INT32_MAX : n - off;
        int rc = MPI_Allreduce (MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT,
                                MPI_SUM, c_sum);
        if (rc != MPI_SUCCESS)
            return mpierr (errp, "MPI_Allreduce", rc);
        off += k;
    }
    return 0;
}

/* ---- sums in the background: a queue and its thread (rank only) ---- */

struct dc_comm_req {
    float *buf;
    size_t n;
    bool done;
    int rc, err; /* sum_now's, and its errno */
    dc_error_t e;
    struct dc_comm_req *next;
};

struct sumq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    bool running, stop;
    struct dc_comm_req *head, *tail; /* not started yet, in order */
};

static void *sumq_main (void *arg)
{
    struct sumq *q = arg;

    pthread_mutex_lock (&q->mu);
    for (;;) {
        while (!q->head && !q->stop)
            pthread_cond_wait (&q->cv, &q->mu);
        if (!q->head)
            break; /* stopped with nothing left */
        struct dc_comm_req *r = q->head;
        if (!(q->head = r->next))
            q->tail = NULL;
        pthread_mutex_unlock (&q->mu);
        int rc = sum_now (r->buf, r->n, &r->e);
        int err = errno;
        pthread_mutex_lock (&q->mu);
        r->rc = rc;
        r->err = err;
        r->done = true;
        pthread_cond_broadcast (&q->cv);
    }
    pthread_mutex_unlock (&q->mu);
    return NULL;
}

static struct dc_comm_req *rank_iallreduce (struct dc_comm *c, float *buf,
                                            size_t n, dc_error_t *errp)
{
    struct sumq *q = c->data;
    struct dc_comm_req *r = calloc (1, sizeof (*r));

    if (!r) {
        errprintf (errp, "comm: out of memory");
        return NULL;
    }
    r->buf = buf;
    r->n = n;
    pthread_mutex_lock (&q->mu);
    if (!q->running) {
        int rc = pthread_create (&q->th, NULL, sumq_main, q);
        if (rc != 0) {
            pthread_mutex_unlock (&q->mu);
            free (r);
            errno = rc;
            errprintf (errp, "comm: a thread for sums: %s", strerror (rc));
            return NULL;
        }
        q->running = true;
    }
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    pthread_cond_broadcast (&q->cv);
    pthread_mutex_unlock (&q->mu);
    return r;
}

static int rank_wait (struct dc_comm *c, struct dc_comm_req *r,
                      dc_error_t *errp)
{
    struct sumq *q = c->data;

    pthread_mutex_lock (&q->mu);
    while (!r->done)
        pthread_cond_wait (&q->cv, &q->mu);
    pthread_mutex_unlock (&q->mu);
    int rc = r->rc;
    if (rc < 0) {
        errno = r->err;
        errprintf (errp, "%s", r->e.text);
    }
    free (r);
    return rc;
}

static int rank_allreduce (struct dc_comm *c, float *buf, size_t n,
                           dc_error_t *errp)
{
    struct sumq *q = c->data;
    bool running;

    pthread_mutex_lock (&q->mu);
    running = q->running;
    pthread_mutex_unlock (&q->mu);
    if (!running) /* nothing queued can come before it */
        return sum_now (buf, n, errp);
    struct dc_comm_req *r = rank_iallreduce (c, buf, n, errp);
    return r ? rank_wait (c, r, errp) : -1;
}

static void sumq_stop (struct sumq *q)
{
    pthread_mutex_lock (&q->mu);
    q->stop = true;
    pthread_cond_broadcast (&q->cv);
    bool running = q->running;
    pthread_mutex_unlock (&q->mu);
    if (running)
        pthread_join (q->th, NULL); /* after the sums queued */
    pthread_mutex_destroy (&q->mu);
    pthread_cond_destroy (&q->cv);
    free (q);
}

static int no_allreduce (struct dc_comm *c, float *buf, size_t n,
                         dc_error_t *errp)
{
    (void)c;
    (void)buf;
    (void)n;
    errno = EINVAL;
    return errprintf (errp, "comm: the hub takes no part in reductions");
}

static int hub_drop (struct dc_comm *c, int rank, const char *why)
{
    (void)c;
    (void)why;
    /* MPI cannot lose one rank and go on: end the job */
    MPI_Abort (MPI_COMM_WORLD, 1);
    (void)rank;
    return -1;
}

static const char *hub_lost_reason (struct dc_comm *c, int rank)
{
    (void)c;
    (void)rank;
    return "";
}

static void mpi_destroy (struct dc_comm *c)
{
    if (c && c->rank == DC_COMM_HUB)
        reap_sends (true);
    if (c && c->data)
        sumq_stop (c->data);
    free (c);
}

static const struct dc_comm_ops hub_ops = {
    .name = "mpi",
    .send = hub_send,
    .recv = hub_recv,
    .allreduce = no_allreduce,
    .drop = hub_drop,
    .lost_reason = hub_lost_reason,
    .destroy = mpi_destroy,
};

static const struct dc_comm_ops rank_ops = {
    .name = "mpi",
    .send = rank_send,
    .recv = rank_recv,
    .allreduce = rank_allreduce,
    .iallreduce = rank_iallreduce,
    .wait = rank_wait,
    .destroy = mpi_destroy,
};

static struct dc_comm *create (const struct dc_comm_ops *ops, int rank,
                               dc_error_t *errp)
{
    struct dc_comm *c;

    if (c_up == MPI_COMM_NULL) {
        errno = EINVAL;
        errprintf (errp, "comm: MPI is not initialised");
        return NULL;
    }
    if (!(c = calloc (1, sizeof (*c)))) {
        errprintf (errp, "comm: out of memory");
        return NULL;
    }
    c->ops = ops;
    c->rank = rank;
    c->size = world_size;
    return c;
}

struct dc_comm *dc_comm_mpi_hub_create (dc_error_t *errp)
{
    if (world_rank != 0) {
        errno = EINVAL;
        errprintf (errp, "comm: the hub is MPI rank 0");
        return NULL;
    }
    return create (&hub_ops, DC_COMM_HUB, errp);
}

struct dc_comm *dc_comm_mpi_rank_create (dc_error_t *errp)
{
    struct dc_comm *c = create (&rank_ops, world_rank, errp);
    struct sumq *q;

    if (!c)
        return NULL;
    if (!(q = calloc (1, sizeof (*q)))) {
        free (c);
        errprintf (errp, "comm: out of memory");
        return NULL;
    }
    pthread_mutex_init (&q->mu, NULL);
    pthread_cond_init (&q->cv, NULL);
    c->data = q;
    return c;
}

#else /* !HAVE_MPI */

bool dc_comm_mpi_wanted (void)
{
    return false;
}

int dc_comm_mpi_init (int *rank, int *size, dc_error_t *errp)
{
    (void)rank;
    (void)size;
    errno = ENOTSUP;
    return errprintf (errp, "comm: MPI is not compiled in");
}

void dc_comm_mpi_finalize (void)
{
}

void dc_comm_mpi_abort (int code)
{
    (void)code; /* no MPI job to end: dc_comm_mpi_wanted () is false */
}

struct dc_comm *dc_comm_mpi_hub_create (dc_error_t *errp)
{
    errno = ENOTSUP;
    errprintf (errp, "comm: MPI is not compiled in");
    return NULL;
}

struct dc_comm *dc_comm_mpi_rank_create (dc_error_t *errp)
{
    return dc_comm_mpi_hub_create (errp);
}

#endif
