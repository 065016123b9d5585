/* resolve.c - the host list of a command, first that applies: -f, -H,
 * $DCRUN_HOSTFILE, the Slurm allocation, $PBS_NODEFILE, this host */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/hosts/hostfile.h"
#include "lib/hosts/resolve.h"
#include "lib/hosts/sources.h"

static const char *env_default (const char *name)
{
    return getenv (name);
}

struct dc_hosts *dc_hosts_resolve (const struct dc_resolve_opts *o,
                                   dc_error_t *errp)
{
    dc_getenv_f env = o->getenv ? o->getenv : env_default;
    const char *s;

    if (o->hostfile)
        return dc_hostfile_load (o->hostfile, errp);
    if (o->hosts)
        return dc_hosts_parse_list (o->hosts, errp);
    if ((s = env ("DCRUN_HOSTFILE")) && *s)
        return dc_hostfile_load (s, errp);
    if (((s = env ("SLURM_JOB_NODELIST")) && *s) ||
        ((s = env ("SLURM_NODELIST")) && *s))
        return dc_hosts_from_slurm (s, env ("SLURM_TASKS_PER_NODE"), errp);
    if ((s = env ("PBS_NODEFILE")) && *s)
        return dc_hosts_from_pbs (s, errp);

    char name[HOST_NAME_MAX + 1];
    struct dc_hosts *hosts;
    if (gethostname (name, sizeof (name)) < 0)
        snprintf (name, sizeof (name), "localhost");
    name[sizeof (name) - 1] = '\0';
    struct dc_host h = {
        .name = name,
        .slots = o->local_gpus > 0 ? o->local_gpus : 1,
    };
    if (!(hosts = dc_hosts_create ("this host")) ||
        dc_hosts_add (hosts, &h) < 0) {
        dc_hosts_destroy (hosts);
        errprintf (errp, "out of memory");
        return NULL;
    }
    return hosts;
}
