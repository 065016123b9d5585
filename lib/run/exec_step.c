/* exec_step.c - `dcrun exec` as one task of a Slurm step (exec_step.h) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_step.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/rankenv.h"
#include "lib/hosts/sources.h"
#include "lib/launch/launch.h"

static const char *env_or (const char *name, const char *dflt)
{
    const char *v = getenv (name);
    return v ? v : dflt;
}

void dc_exec_step_master (int master_port)
{
    const char *nl = getenv ("SLURM_STEP_NODELIST");
    char port[16];

    if (!nl)
        nl = getenv ("SLURM_JOB_NODELIST");
    if (nl) {
        dc_error_t err;
        struct dc_hosts *h = dc_hosts_from_slurm (nl, NULL, &err);
        char ip[64];
        /* a numeric address every task reaches, not a name */
        if (h && h->count > 0)
            setenv ("MASTER_ADDR",
                    dc_rankenv_host_ip (h->v[0].name, ip, sizeof (ip), NULL) ==
                            0
                        ? ip
                        : h->v[0].name,
                    0);
        dc_hosts_destroy (h);
    }
    if (master_port > 0) {
        snprintf (port, sizeof (port), "%d", master_port);
        setenv ("MASTER_PORT", port, 1);
    }
    if (!getenv ("MASTER_PORT")) {
        unsigned long job = strtoul (env_or ("SLURM_JOB_ID", "0"), NULL, 10);
        unsigned long step = strtoul (env_or ("SLURM_STEP_ID", "0"), NULL, 10);
        snprintf (port, sizeof (port), "%lu",
                  20000 + (job * 31 + step) % 20000);
        setenv ("MASTER_PORT", port, 1);
    }
}

int dc_exec_step_port_busy (char *host, size_t size)
{
    const char *pr = getenv ("SLURM_PROCID");
    int mp = atoi (env_or ("MASTER_PORT", "0"));

    if (!pr || strcmp (pr, "0") || mp <= 0 || dc_launch_port_free (mp))
        return 0;
    memset (host, 0, size);
    snprintf (host, size, "?");
    if (getenv ("SLURMD_NODENAME"))
        snprintf (host, size, "%s", getenv ("SLURMD_NODENAME"));
    else if (size > 1)
        gethostname (host, size - 1);
    return mp;
}

void dc_exec_step_cancel (void)
{
    char step[64];

    snprintf (step, sizeof (step), "%s.%s", env_or ("SLURM_JOB_ID", "0"),
              env_or ("SLURM_STEP_ID", "0"));
    signal (SIGTERM, SIG_IGN);
    pid_t pid = fork ();
    if (pid == 0) {
        execlp ("scancel", "scancel", "-Q", "--signal", "TERM", step,
                (char *)NULL);
        _exit (127);
    }
    if (pid > 0)
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
            ;
}

char **dc_exec_step_argv (const char *self, const char *wdir,
                          char *const *exports, int nexports, char **cmd)
{
    int n = 0, k = 0;

    while (cmd && cmd[n])
        n++;
    char **av = calloc ((size_t)(n + 2 * nexports + 8), sizeof (char *));
    if (!av)
        return NULL;
    av[k++] = (char *)self;
    av[k++] = "worker";
    av[k++] = "--control";
    av[k++] = "none";
    if (wdir) {
        av[k++] = "--wdir";
        av[k++] = (char *)wdir;
    }
    for (int i = 0; i < nexports; i++)
        if (strchr (exports[i], '=')) {
            av[k++] = "-e";
            av[k++] = exports[i];
        }
    av[k++] = "--";
    for (int i = 0; i < n; i++)
        av[k++] = cmd[i];
    av[k] = NULL;
    return av;
}
