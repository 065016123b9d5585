/* comm.h - messages between the coordinator and the ranks, and a sum
 *
 * One interface (DESIGN.md section 5) with two implementations:
 *
 *   stream  over the launcher's byte channels (pipes for local, SSH channels
 *           for ssh).  The coordinator is the hub: every frame goes through
 *           it, rank-to-rank messages are relayed, and allreduce is a reduce
 *           at the hub followed by a broadcast.
 *   mpi     MPI point-to-point and MPI_Allreduce, when dcrun was started by
 *           mpirun or srun; the hub is a thread of MPI rank 0.
 *
 * Endpoints are ranks 0..size-1 and the hub (DC_COMM_HUB).  The coordinator
 * holds the hub endpoint, each worker a rank endpoint; neither knows which
 * implementation is under it.  A rank that is lost (its channel closed, its
 * process ended, its host gone) shows up at the hub as a DC_COMM_LOST
 * message from that rank, once.
 */
#ifndef DC_COMM_H
#define DC_COMM_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"
#include "lib/launch/launch.h"
#include "lib/comm/proto.h"

#define DC_COMM_HUB (-1)
#define DC_COMM_LOST 0x100 /* synthetic message type: a rank is gone */

struct dc_comm_msg {
    int src;       /* rank, or DC_COMM_HUB */
    int type;      /* enum dc_msg_type, or DC_COMM_LOST */
    uint8_t *data; /* the receiver's: free() it (NULL when len is 0) */
    size_t len;
};

struct dc_comm;
struct dc_comm_req; /* a sum under way (iallreduce) */

struct dc_comm_ops {
    const char *name;
    /* true when a rank's end reaches the hub (DC_COMM_LOST), so the hub can
     * wait for ranks to leave; MPI ends them all together instead */
    bool reports_exit;
    /* Send len bytes to dst (a rank, or DC_COMM_HUB from a rank).  May
     * queue; a message to a lost rank is dropped (0). */
    int (*send) (struct dc_comm *c, int dst, int type, const void *buf,
                 size_t len, dc_error_t *errp);
    /* Next message: 1 with *msg, 0 when timeout_ms passed (or a signal
     * arrived), -1 on error.  timeout_ms -1 waits for ever. */
    int (*recv) (struct dc_comm *c, struct dc_comm_msg *msg, int timeout_ms,
                 dc_error_t *errp);
    /* Ranks only: replace buf[n] with its sum over every live rank.
     * -1 with errno ECANCELED when a rank was lost during the reduction
     * (the hub then says what to do next). */
    int (*allreduce) (struct dc_comm *c, float *buf, size_t n,
                      dc_error_t *errp);
    /* Ranks only, may be NULL (callers then sum with allreduce once every
     * piece is there): start replacing buf[n] with its sum over every
     * rank and return at once, as PyTorch's DDP reduces gradient buckets
     * while the backward pass goes on.  buf is the comm's until wait.
     * Every rank starts the same sums in the same order.  NULL with errp
     * on error. */
    struct dc_comm_req *(*iallreduce) (struct dc_comm *c, float *buf, size_t n,
                                       dc_error_t *errp);
    /* Ranks only, with iallreduce: finish the sum req started and free
     * req; 0, or -1 with errp (errno ECANCELED as allreduce). */
    int (*wait) (struct dc_comm *c, struct dc_comm_req *req, dc_error_t *errp);
    /* Hub only, may be NULL: the same message to every live rank (the
     * stream hub queues one copy for all of them). */
    int (*bcast) (struct dc_comm *c, int type, const void *buf, size_t len,
                  dc_error_t *errp);
    /* Hub only: declare a rank lost (no heartbeat, a bad message): stop
     * it and report DC_COMM_LOST for it. */
    int (*drop) (struct dc_comm *c, int rank, const char *why);
    /* Hub only: how a lost rank ended ("killed by signal 9"), borrowed;
     * "" when it is not lost. */
    const char *(*lost_reason) (struct dc_comm *c, int rank);
    void (*destroy) (struct dc_comm *c);
};

struct dc_comm {
    const struct dc_comm_ops *ops;
    int rank; /* this endpoint: a rank or DC_COMM_HUB */
    int size; /* ranks */
    void *data;
};

static inline int dc_comm_send (struct dc_comm *c, int dst, int type,
                                const void *buf, size_t len, dc_error_t *errp)
{
    return c->ops->send (c, dst, type, buf, len, errp);
}

static inline int dc_comm_recv (struct dc_comm *c, struct dc_comm_msg *msg,
                                int timeout_ms, dc_error_t *errp)
{
    return c->ops->recv (c, msg, timeout_ms, errp);
}

static inline int dc_comm_allreduce (struct dc_comm *c, float *buf, size_t n,
                                     dc_error_t *errp)
{
    return c->ops->allreduce (c, buf, n, errp);
}

/* True when c can sum while the caller goes on (iallreduce). */
static inline bool dc_comm_can_overlap (const struct dc_comm *c)
{
    return c && c->ops->iallreduce && c->ops->wait;
}

/* NULL with errno ENOTSUP when c cannot (dc_comm_can_overlap). */
static inline struct dc_comm_req *
dc_comm_iallreduce (struct dc_comm *c, float *buf, size_t n, dc_error_t *errp)
{
    if (!dc_comm_can_overlap (c)) {
        errno = ENOTSUP;
        errprintf (errp, "comm: %s cannot sum in the background",
                   c ? c->ops->name : "(none)");
        return NULL;
    }
    return c->ops->iallreduce (c, buf, n, errp);
}

/* Accepts NULL (0): nothing was started. */
static inline int dc_comm_wait (struct dc_comm *c, struct dc_comm_req *req,
                                dc_error_t *errp)
{
    return req ? c->ops->wait (c, req, errp) : 0;
}

static inline int dc_comm_bcast (struct dc_comm *c, int type, const void *buf,
                                 size_t len, dc_error_t *errp)
{
    if (c->ops->bcast)
        return c->ops->bcast (c, type, buf, len, errp);
    for (int r = 0; r < c->size; r++)
        if (c->ops->send (c, r, type, buf, len, errp) < 0)
            return -1;
    return 0;
}

static inline int dc_comm_drop (struct dc_comm *c, int rank, const char *why)
{
    return c->ops->drop ? c->ops->drop (c, rank, why) : -1;
}

static inline const char *dc_comm_lost_reason (struct dc_comm *c, int rank)
{
    return c->ops->lost_reason ? c->ops->lost_reason (c, rank) : "";
}

void dc_comm_destroy (struct dc_comm *c); /* accepts NULL */

/* ---- stream ---- */

/* Rank side: frames on fd_in/fd_out (a worker's stdin and stdout).  A
 * reader thread keeps fd_in drained so the hub never blocks on us. */
struct dc_comm *dc_comm_stream_rank_create (int rank, int size, int fd_in,
                                            int fd_out, dc_error_t *errp);

/* Hub side, over a launcher's channels.  Create it first, put
 * dc_comm_stream_on_output / dc_comm_stream_on_exit (arg: the comm) into
 * the launcher's options, then attach the launcher once created.  A rank's
 * stderr goes to errout (may be NULL: dropped).  extra_fd (-1: none) is
 * polled too: when readable, recv returns 0 so the caller can look. */
typedef void (*dc_comm_stderr_f) (int rank, const char *data, size_t len,
                                  void *arg);
struct dc_comm *dc_comm_stream_hub_create (int size, dc_comm_stderr_f errout,
                                           void *arg, int extra_fd,
                                           dc_error_t *errp);
void dc_comm_stream_hub_attach (struct dc_comm *c, struct dc_launch *l);

/* Launcher callbacks (arg = the hub comm). */
void dc_comm_stream_on_output (int rank, enum dc_launch_stream stream,
                               const char *data, size_t len, void *arg);
void dc_comm_stream_on_exit (const struct dc_launch_status *st, void *arg);

/* Hub: a rank that sends nothing for this long is lost (0: never). */
void dc_comm_stream_set_heartbeat (struct dc_comm *c, double seconds);

/* Number of ranks the launcher still runs (hub). */
int dc_comm_stream_running (struct dc_comm *c);

/* ---- mpi ---- */

/* True when this process was started as one rank of many by mpirun or srun
 * (OMPI_COMM_WORLD_SIZE, or SLURM_PROCID in a job step of more than one
 * task) and MPI is compiled in. */
bool dc_comm_mpi_wanted (void);

/* MPI_Init_thread (MPI_THREAD_MULTIPLE): every process of the job calls
 * it.  *rank and *size: this process's rank and the number of ranks. */
int dc_comm_mpi_init (int *rank, int *size, dc_error_t *errp);
void dc_comm_mpi_finalize (void);
/* End every process of the MPI job with code (MPI_Abort). */
void dc_comm_mpi_abort (int code);

/* The hub endpoint (MPI rank 0 only, one thread) and a rank endpoint (each
 * rank, rank 0 in another thread): comm over MPI point-to-point on
 * communicators of their own; allreduce is MPI_Allreduce over every rank.
 * A lost rank ends the whole job under MPI (OpenMPI aborts it). */
struct dc_comm *dc_comm_mpi_hub_create (dc_error_t *errp);
struct dc_comm *dc_comm_mpi_rank_create (dc_error_t *errp);

#endif
