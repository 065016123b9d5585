/* comm_loop.c - comm "loop": every endpoint in one process (tests)
 *
 * The in-process transport behind the comm interface, as flux-core's
 * connector_loop.c is for its connectors: the hub and the ranks are
 * endpoints of one shared struct, each with a message queue, guarded by one
 * mutex and one condition variable.  The hub and each rank run in threads
 * of their own; the coordinator, the workers and the pipeline stages run
 * over it unchanged, so their protocol is unit-tested in milliseconds
 * without sshd, pipes or MPI.
 *
 * A rank whose endpoint is destroyed (its thread ended) or that the hub
 * drops is lost: the hub receives DC_COMM_LOST for it once, after every
 * message the rank sent before; messages to it are dropped; its own send
 * and recv fail.  Allreduce sums the contributions of the live ranks in
 * rank order (deterministic) and is cancelled (ECANCELED) when a rank is
 * lost during it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util/clock.h"
#include "lib/comm/comm.h"
#include "lib/comm/comm_loop.h"

struct lmsg {
    struct lmsg *next;
    int src, type;
    uint8_t *data;
    size_t len;
};

struct lqueue {
    struct lmsg *head, *tail;
};

struct lrank {
    struct lqueue q;
    bool attached; /* its endpoint exists (or existed) */
    bool lost;
    bool reported; /* DC_COMM_LOST delivered to the hub */
    char why[128];
    float *contrib; /* allreduce: the waiting rank's buffer */
};

struct loop {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast on every change */
    int size;
    int refs; /* endpoints not yet destroyed */
    bool hub_gone;
    struct lqueue hubq;
    struct lrank *r;
    /* allreduce round */
    size_t ar_n;
    int ar_arrived;
    unsigned ar_gen;       /* bumped when a round ends */
    bool ar_cancelled;     /* how the last round ended */
    uint64_t ar_epoch;     /* of the round under way (0: none) */
    uint64_t aborted_upto; /* rounds <= this were cancelled */
    uint64_t last_done;    /* the last round completed */
};

struct endpoint {
    struct loop *lp;
    uint64_t epoch; /* a rank's allreduce calls so far */
};

static void q_push (struct lqueue *q, struct lmsg *m)
{
    m->next = NULL;
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
}

static struct lmsg *q_pop (struct lqueue *q)
{
    struct lmsg *m = q->head;
    if (m) {
        q->head = m->next;
        if (!q->head)
            q->tail = NULL;
    }
    return m;
}

static void q_clear (struct lqueue *q)
{
    struct lmsg *m;
    while ((m = q_pop (q))) {
        free (m->data);
        free (m);
    }
}

static struct loop *loop_of (struct dc_comm *c)
{
    return ((struct endpoint *)c->data)->lp;
}

/* A rank was lost: cancel the round under way, or else the next one (the
 * lost rank may hold a share of it), as the stream hub does; mu held. */
static void ar_cancel (struct loop *lp)
{
    if (lp->ar_arrived == 0) {
        if (lp->aborted_upto < lp->last_done + 1)
            lp->aborted_upto = lp->last_done + 1;
    } else {
        /* a rank that comes late to this round is cancelled at once, as
         * over the stream hub (every rank counts its calls alike) */
        lp->aborted_upto = lp->ar_epoch;
        lp->ar_epoch = 0;
        lp->ar_arrived = 0;
        lp->ar_cancelled = true;
        lp->ar_gen++;
        for (int i = 0; i < lp->size; i++)
            lp->r[i].contrib = NULL;
    }
}

/* Mark rank lost with why; mu held. */
static void lose (struct loop *lp, int rank, const char *why)
{
    struct lrank *r = &lp->r[rank];
    if (r->lost)
        return;
    r->lost = true;
    strncpy (r->why, why ? why : "", sizeof (r->why) - 1);
    q_clear (&r->q);
    ar_cancel (lp);
    pthread_cond_broadcast (&lp->cv);
}

static int loop_send (struct dc_comm *c, int dst, int type, const void *buf,
                      size_t len, dc_error_t *errp)
{
    struct loop *lp = loop_of (c);
    struct lmsg *m;
    int rc = 0;

    if ((dst != DC_COMM_HUB && (dst < 0 || dst >= lp->size)) ||
        (c->rank == DC_COMM_HUB && dst == DC_COMM_HUB) || (len && !buf)) {
        errno = EINVAL;
        return errprintf (errp, "loop: send to %d: bad argument", dst);
    }
    if (!(m = calloc (1, sizeof (*m))) || (len && !(m->data = malloc (len)))) {
        free (m);
        errno = ENOMEM;
        return errprintf (errp, "loop: out of memory");
    }
    if (len)
        memcpy (m->data, buf, len);
    m->src = c->rank;
    m->type = type;
    m->len = len;

    pthread_mutex_lock (&lp->mu);
    if (c->rank != DC_COMM_HUB && lp->r[c->rank].lost) {
        errno = EPIPE;
        rc = errprintf (errp, "loop: rank %d: %s", c->rank,
                        lp->r[c->rank].why[0] ? lp->r[c->rank].why
                                              : "dropped by the hub");
    } else if (dst == DC_COMM_HUB) {
        if (lp->hub_gone) {
            errno = EPIPE;
            rc = errprintf (errp, "loop: the coordinator went away");
        } else {
            q_push (&lp->hubq, m);
            m = NULL;
        }
    } else if (!lp->r[dst].lost) {
        q_push (&lp->r[dst].q, m);
        m = NULL;
    } /* else: to a lost rank, dropped */
    pthread_cond_broadcast (&lp->cv);
    pthread_mutex_unlock (&lp->mu);
    if (m) {
        free (m->data);
        free (m);
    }
    return rc;
}

/* The hub's next message, or a lost rank not yet reported; mu held. */
static struct lmsg *hub_next (struct loop *lp, struct lmsg *lost)
{
    struct lmsg *m = q_pop (&lp->hubq);
    if (m)
        return m;
    for (int i = 0; i < lp->size; i++) {
        struct lrank *r = &lp->r[i];
        if (r->attached && r->lost && !r->reported) {
            r->reported = true;
            memset (lost, 0, sizeof (*lost));
            lost->src = i;
            lost->type = DC_COMM_LOST;
            return lost;
        }
    }
    return NULL;
}

static int loop_recv (struct dc_comm *c, struct dc_comm_msg *msg,
                      int timeout_ms, dc_error_t *errp)
{
    struct loop *lp = loop_of (c);
    struct lmsg lost, *m = NULL;
    struct timespec ts;
    int rc = 0;

    if (timeout_ms > 0)
        dc_deadline (&ts, timeout_ms);
    pthread_mutex_lock (&lp->mu);
    for (;;) {
        if (c->rank == DC_COMM_HUB) {
            m = hub_next (lp, &lost);
        } else {
            struct lrank *r = &lp->r[c->rank];
            if (r->lost) {
                errno = EPIPE;
                rc = errprintf (errp, "loop: rank %d: %s", c->rank,
                                r->why[0] ? r->why : "dropped by the hub");
                break;
            }
            m = q_pop (&r->q);
            if (!m && lp->hub_gone) {
                errno = ECONNRESET;
                rc = errprintf (errp, "loop: the coordinator went away");
                break;
            }
        }
        if (m || timeout_ms == 0)
            break;
        if (timeout_ms < 0)
            pthread_cond_wait (&lp->cv, &lp->mu);
        else if (pthread_cond_timedwait (&lp->cv, &lp->mu, &ts) == ETIMEDOUT) {
            if (c->rank == DC_COMM_HUB)
                m = hub_next (lp, &lost);
            else if (!lp->r[c->rank].lost)
                m = q_pop (&lp->r[c->rank].q);
            break;
        }
    }
    pthread_mutex_unlock (&lp->mu);
    if (rc < 0)
        return -1;
    if (!m)
        return 0;
    msg->src = m->src;
    msg->type = m->type;
    msg->data = m->data;
    msg->len = m->len;
    if (m != &lost)
        free (m);
    return 1;
}

static int loop_allreduce (struct dc_comm *c, float *buf, size_t n,
                           dc_error_t *errp)
{
    struct loop *lp = loop_of (c);
    uint64_t epoch = ++((struct endpoint *)c->data)->epoch;
    int live = 0, rc = 0;

    if (c->rank == DC_COMM_HUB || (n && !buf)) {
        errno = EINVAL;
        return errprintf (errp, "loop: allreduce: bad argument");
    }
    pthread_mutex_lock (&lp->mu);
    if (lp->r[c->rank].lost) {
        pthread_mutex_unlock (&lp->mu);
        errno = EPIPE;
        return errprintf (errp, "loop: rank %d is lost", c->rank);
    }
    if (epoch <= lp->aborted_upto) {
        pthread_mutex_unlock (&lp->mu);
        errno = ECANCELED;
        return errprintf (errp, "loop: allreduce: a rank was lost");
    }
    if (lp->ar_arrived == 0) {
        lp->ar_n = n;
        lp->ar_epoch = epoch;
    } else if (lp->ar_n != n || lp->ar_epoch != epoch) {
        pthread_mutex_unlock (&lp->mu);
        errno = EINVAL;
        return errprintf (errp,
                          "loop: allreduce %llu of %zu floats while "
                          "the others are in %llu of %zu",
                          (unsigned long long)epoch, n,
                          (unsigned long long)lp->ar_epoch, lp->ar_n);
    }
    lp->r[c->rank].contrib = buf;
    lp->ar_arrived++;
    for (int i = 0; i < lp->size; i++)
        if (!lp->r[i].lost) /* every rank of the job takes part */
            live++;
    if (lp->ar_arrived >= live) {
        /* the last one sums in rank order into rank 0's slot... */
        float *sum = NULL;
        for (int i = 0; i < lp->size; i++) {
            float *p = lp->r[i].contrib;
            if (!p)
                continue;
            if (!sum)
                sum = p;
            else
                for (size_t k = 0; k < n; k++)
                    sum[k] += p[k];
        }
        /* ...and hands every contributor the sum */
        for (int i = 0; i < lp->size; i++) {
            if (lp->r[i].contrib && lp->r[i].contrib != sum)
                memcpy (lp->r[i].contrib, sum, n * sizeof (float));
            lp->r[i].contrib = NULL;
        }
        lp->ar_arrived = 0;
        lp->last_done = lp->ar_epoch;
        lp->ar_epoch = 0;
        lp->ar_cancelled = false;
        lp->ar_gen++;
        pthread_cond_broadcast (&lp->cv);
    } else {
        unsigned gen = lp->ar_gen;
        while (lp->ar_gen == gen)
            pthread_cond_wait (&lp->cv, &lp->mu);
        if (lp->ar_cancelled) {
            errno = ECANCELED;
            rc = errprintf (errp, "loop: allreduce: a rank was lost");
        }
    }
    pthread_mutex_unlock (&lp->mu);
    return rc;
}

static int loop_drop (struct dc_comm *c, int rank, const char *why)
{
    struct loop *lp = loop_of (c);

    if (c->rank != DC_COMM_HUB || rank < 0 || rank >= lp->size) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock (&lp->mu);
    lose (lp, rank, why && why[0] ? why : "dropped by the hub");
    pthread_mutex_unlock (&lp->mu);
    return 0;
}

static const char *loop_lost_reason (struct dc_comm *c, int rank)
{
    struct loop *lp = loop_of (c);
    const char *why = "";

    if (rank < 0 || rank >= lp->size)
        return "";
    pthread_mutex_lock (&lp->mu);
    if (lp->r[rank].lost)
        why = lp->r[rank].why; /* set once, never changes after */
    pthread_mutex_unlock (&lp->mu);
    return why;
}

static void loop_free (struct loop *lp)
{
    q_clear (&lp->hubq);
    for (int i = 0; i < lp->size; i++)
        q_clear (&lp->r[i].q);
    pthread_cond_destroy (&lp->cv);
    pthread_mutex_destroy (&lp->mu);
    free (lp->r);
    free (lp);
}

static void loop_destroy (struct dc_comm *c)
{
    struct loop *lp = loop_of (c);
    bool last;

    pthread_mutex_lock (&lp->mu);
    if (c->rank == DC_COMM_HUB) {
        lp->hub_gone = true;
        q_clear (&lp->hubq);
    } else
        lose (lp, c->rank, "exited");
    pthread_cond_broadcast (&lp->cv);
    last = --lp->refs == 0;
    pthread_mutex_unlock (&lp->mu);
    if (last)
        loop_free (lp);
    free (c->data);
    free (c);
}

static const struct dc_comm_ops loop_ops = {
    .name = "loop",
    .reports_exit = true,
    .send = loop_send,
    .recv = loop_recv,
    .allreduce = loop_allreduce,
    .drop = loop_drop,
    .lost_reason = loop_lost_reason,
    .destroy = loop_destroy,
};

static struct dc_comm *endpoint (struct loop *lp, int rank, int size,
                                 dc_error_t *errp)
{
    struct dc_comm *c = calloc (1, sizeof (*c));
    struct endpoint *e = calloc (1, sizeof (*e));

    if (!c || !e) {
        free (c);
        free (e);
        errno = ENOMEM;
        errprintf (errp, "loop: out of memory");
        return NULL;
    }
    e->lp = lp;
    c->ops = &loop_ops;
    c->rank = rank;
    c->size = size;
    c->data = e;
    return c;
}

struct dc_comm *dc_comm_loop_create (int size, dc_error_t *errp)
{
    struct loop *lp;
    struct dc_comm *hub;
    pthread_condattr_t ca;

    if (size <= 0 || size > 1 << 20) {
        errno = EINVAL;
        errprintf (errp, "loop: bad size %d", size);
        return NULL;
    }
    if (!(lp = calloc (1, sizeof (*lp))) ||
        !(lp->r = calloc ((size_t)size, sizeof (*lp->r)))) {
        free (lp);
        errno = ENOMEM;
        errprintf (errp, "loop: out of memory");
        return NULL;
    }
    lp->size = size;
    pthread_mutex_init (&lp->mu, NULL);
    pthread_condattr_init (&ca);
    pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
    pthread_cond_init (&lp->cv, &ca);
    pthread_condattr_destroy (&ca);
    if (!(hub = endpoint (lp, DC_COMM_HUB, size, errp))) {
        loop_free (lp);
        return NULL;
    }
    lp->refs = 1;
    return hub;
}

struct dc_comm *dc_comm_loop_rank (struct dc_comm *hub, int rank,
                                   dc_error_t *errp)
{
    struct loop *lp;
    struct dc_comm *c;

    if (!hub || hub->ops != &loop_ops || hub->rank != DC_COMM_HUB) {
        errno = EINVAL;
        errprintf (errp, "loop: not a loop hub");
        return NULL;
    }
    lp = loop_of (hub);
    if (rank < 0 || rank >= lp->size) {
        errno = EINVAL;
        errprintf (errp, "loop: rank %d out of [0, %d)", rank, lp->size);
        return NULL;
    }
    pthread_mutex_lock (&lp->mu);
    if (lp->r[rank].attached) {
        pthread_mutex_unlock (&lp->mu);
        errno = EEXIST;
        errprintf (errp, "loop: rank %d already has an endpoint", rank);
        return NULL;
    }
    if ((c = endpoint (lp, rank, lp->size, errp))) {
        lp->r[rank].attached = true;
        lp->refs++;
    }
    pthread_mutex_unlock (&lp->mu);
    return c;
}

int dc_comm_loop_kill (struct dc_comm *hub, int rank, const char *why)
{
    return loop_drop (hub, rank, why && why[0] ? why : "killed");
}

int dc_comm_loop_reducing (struct dc_comm *hub)
{
    struct loop *lp = loop_of (hub);
    int n;

    pthread_mutex_lock (&lp->mu);
    n = lp->ar_arrived;
    pthread_mutex_unlock (&lp->mu);
    return n;
}
