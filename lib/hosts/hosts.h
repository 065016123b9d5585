/* hosts.h - the host list of a job and where it comes from
 *
 * Resolution order (DESIGN.md section 2), first that applies:
 *   -f FILE, -H LIST, $DCRUN_HOSTFILE, the Slurm allocation
 *   (SLURM_JOB_NODELIST + SLURM_TASKS_PER_NODE), $PBS_NODEFILE,
 *   else this host with one slot per GPU (one slot when it has none).
 */
#ifndef DC_HOSTS_H
#define DC_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/util/error.h"

#define DC_MAX_SLOTS 1000000
#define DC_MAX_GPUS 1024
#define DC_HOSTS_MAX 1000000 /* hosts in one list, as DC_HOSTLIST_MAX */

struct dc_host {
    char *name;    /* host name, ranges expanded */
    char *user;    /* ssh user, NULL for the default */
    int port;      /* ssh port, 0 for the default */
    int slots;     /* >= 1 */
    int max_slots; /* 0 when not given */
    int *gpus;     /* explicit gpus= list, NULL when not given */
    int ngpus;     /* entries in gpus */
    int line;      /* hostfile line, 0 when not from a file */
    /* no slots given (-H host, a hostfile line without slots=): 1, or
     * one per GPU as the host's own probe sees them */
    bool slots_default;
};

struct dc_hosts_index; /* private to hosts.c */

struct dc_hosts {
    struct dc_host *v;
    size_t count;
    size_t cap;
    char *origin; /* where the list came from: "hostfile FILE", "-H", ... */
    /* Private: a hash of (name, port) kept by dc_hosts_add for
     * dc_hosts_find.  Do not rename hosts in v after adding them. */
    struct dc_hosts_index *index;
};

struct dc_hosts *dc_hosts_create (const char *origin);
void dc_hosts_destroy (struct dc_hosts *hosts); /* accepts NULL */

/* Append a copy of h (strings and gpus are duplicated).  -1 with errno
 * set (ENOMEM, or E2BIG beyond DC_HOSTS_MAX hosts); nothing added then. */
int dc_hosts_add (struct dc_hosts *hosts, const struct dc_host *h);

/* Index of the first host with this name and port, or -1.  Constant time
 * on average (a hash kept by dc_hosts_add), so that duplicate checks of a
 * million hosts stay linear. */
long dc_hosts_find (const struct dc_hosts *hosts, const char *name, int port);

/* Total slots. */
long dc_hosts_slots (const struct dc_hosts *hosts);

/* Parse "0-3,6" into a new array (caller frees).  -1 on a bad list or a
 * value twice.  max_value is at most DC_INT_LIST_MAX (a bitmap of that
 * many bits finds duplicates). */
#define DC_INT_LIST_MAX (1 << 20)
int dc_parse_int_list (const char *s, int max_value, int **listp, int *np,
                       dc_error_t *errp);

#endif
