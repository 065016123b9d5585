/* sources.h - host lists from the places a job finds them: -H, the Slurm
 * allocation, $PBS_NODEFILE (the hostfile: lib/hosts/hostfile.h).  Each
 * returns a new list (caller's) or NULL with errp ("SOURCE: reason"). */
#ifndef DC_SOURCES_H
#define DC_SOURCES_H

#include "lib/hosts/hosts.h"
#include "lib/util/error.h"

/* -H LIST: comma-separated [user@]host[:slots] entries with hostlist ranges
 * ("node[01-04,07]:8,login:2").  A host named twice gets the slots of both
 * entries, as mpirun -H does. */
struct dc_hosts *dc_hosts_parse_list (const char *list, dc_error_t *errp);

/* Slurm allocation: "node[01-03]" and "2(x2),1". tasks may be NULL (one
 * task per node). */
struct dc_hosts *dc_hosts_from_slurm (const char *nodelist, const char *tasks,
                                      dc_error_t *errp);

/* $PBS_NODEFILE: one line per slot, a host's slots are its lines. */
struct dc_hosts *dc_hosts_from_pbs (const char *path, dc_error_t *errp);

/* A copy of hosts without those named in list (hostlist ranges: node[1-3]);
 * NULL with errp set on a bad list, or when no host is left. */
struct dc_hosts *dc_hosts_exclude (const struct dc_hosts *hosts,
                                   const char *list, dc_error_t *errp);

#endif
