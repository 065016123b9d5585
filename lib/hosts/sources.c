/* sources.c - host lists from -H, the Slurm allocation and $PBS_NODEFILE */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/hosts/hostlist.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/sources.h"

/* Add slots to host name (merging with an earlier entry of the same name). */
static int add_slots (struct dc_hosts *hosts, const char *name,
                      const char *user, int port, long slots, bool dflt,
                      dc_error_t *errp)
{
    long i = dc_hosts_find (hosts, name, port);

    if (i >= 0) {
        if (hosts->v[i].slots + slots > DC_MAX_SLOTS) {
            errno = EINVAL;
            return errprintf (errp, "%s: more than %d slots", name,
                              DC_MAX_SLOTS);
        }
        hosts->v[i].slots += (int)slots;
        hosts->v[i].slots_default = false; /* named twice: 2 slots */
        return 0;
    }
    struct dc_host h = {
        .name = (char *)name,
        .user = (char *)user,
        .port = port,
        .slots = (int)slots,
        .slots_default = dflt,
    };
    if (dc_hosts_add (hosts, &h) < 0) {
        if (errno == E2BIG)
            return errprintf (errp, "more than %d hosts", DC_HOSTS_MAX);
        return errprintf (errp, "out of memory");
    }
    return 0;
}

static int parse_slots (const char *s, long *val)
{
    char *end;

    if (!isdigit ((unsigned char)*s))
        return -1;
    errno = 0;
    *val = strtol (s, &end, 10);
    if (errno || *end || *val < 1 || *val > DC_MAX_SLOTS)
        return -1;
    return 0;
}

struct dc_hosts *dc_hosts_parse_list (const char *list, dc_error_t *errp)
{
    struct dc_hosts *hosts;
    char *copy, *p, *start;
    int depth = 0;

    if (!list || !*list) {
        errno = EINVAL;
        errprintf (errp, "-H: empty host list");
        return NULL;
    }
    if (!(hosts = dc_hosts_create ("-H")) || !(copy = strdup (list))) {
        dc_hosts_destroy (hosts);
        errprintf (errp, "out of memory");
        return NULL;
    }
    start = copy;
    for (p = copy;; p++) {
        if (*p == '[')
            depth++;
        else if (*p == ']')
            depth--;
        if ((*p == ',' && depth <= 0) || *p == '\0') {
            bool last = *p == '\0';
            char *colon = NULL, *user = NULL, *host = start;
            long slots = 1;
            int d = 0, port = 0;
            *p = '\0';
            depth = 0;
            if (*start == '\0') {
                errno = EINVAL;
                errprintf (errp, "-H '%s': empty entry", list);
                goto fail;
            }
            char *at = strchr (start, '@');
            if (at) {
                *at = '\0';
                user = start;
                host = at + 1;
                if (!*user) {
                    errno = EINVAL;
                    errprintf (errp, "-H '%s': empty user name", list);
                    goto fail;
                }
            }
            for (char *q = host; *q; q++) {
                if (*q == '[')
                    d++;
                else if (*q == ']')
                    d--;
                else if (*q == ':' && d == 0)
                    colon = q;
            }
            if (colon && user) {
                /* user@host:N: N is the port, as in the hostfile */
                long v;
                *colon = '\0';
                if (parse_slots (colon + 1, &v) < 0 || v > 65535) {
                    errno = EINVAL;
                    errprintf (errp,
                               "-H '%s': expected a port from 1 to 65535 "
                               "after '%s@%s:'",
                               list, user, host);
                    goto fail;
                }
                port = (int)v;
            } else if (colon) {
                *colon = '\0';
                if (parse_slots (colon + 1, &slots) < 0) {
                    errno = EINVAL;
                    errprintf (errp,
                               "-H '%s': expected slots from 1 to %d after "
                               "'%s:'",
                               list, DC_MAX_SLOTS, host);
                    goto fail;
                }
            }
            struct dc_hostlist *hl = dc_hostlist_decode (host, errp);
            if (!hl)
                goto fail;
            for (size_t i = 0; i < dc_hostlist_count (hl); i++) {
                if (add_slots (hosts, dc_hostlist_nth (hl, i), user, port,
                               slots, !(colon && !user), errp) < 0) {
                    errprefix (errp, "-H: ");
                    dc_hostlist_destroy (hl);
                    goto fail;
                }
            }
            dc_hostlist_destroy (hl);
            if (last)
                break;
            start = p + 1;
        }
    }
    free (copy);
    return hosts;
fail:
    free (copy);
    dc_hosts_destroy (hosts);
    return NULL;
}

/* SLURM_TASKS_PER_NODE: "2(x3),1" -> counts for each node, in order. */
static int slurm_tasks (const char *tasks, size_t nnodes, long *counts,
                        dc_error_t *errp)
{
    const char *p = tasks;
    size_t i = 0;

    while (*p) {
        char *end;
        long n, rep = 1;
        if (!isdigit ((unsigned char)*p))
            goto bad;
        errno = 0;
        n = strtol (p, &end, 10);
        if (errno || n < 1 || n > DC_MAX_SLOTS)
            goto bad;
        p = end;
        if (*p == '(') {
            if (p[1] != 'x' || !isdigit ((unsigned char)p[2]))
                goto bad;
            rep = strtol (p + 2, &end, 10);
            if (errno || rep < 1 || *end != ')')
                goto bad;
            p = end + 1;
        }
        for (long r = 0; r < rep; r++) {
            if (i >= nnodes) {
                errno = EINVAL;
                return errprintf (errp,
                                  "SLURM_TASKS_PER_NODE '%s' names more nodes "
                                  "than SLURM_JOB_NODELIST (%zu)",
                                  tasks, nnodes);
            }
            counts[i++] = n;
        }
        if (*p == ',')
            p++;
        else if (*p)
            goto bad;
    }
    if (i != nnodes) {
        errno = EINVAL;
        return errprintf (errp,
                          "SLURM_TASKS_PER_NODE '%s' names %zu nodes, "
                          "SLURM_JOB_NODELIST has %zu",
                          tasks, i, nnodes);
    }
    return 0;
bad:
    errno = EINVAL;
    return errprintf (errp,
                      "SLURM_TASKS_PER_NODE '%s': expected a list like "
                      "2(x3),1",
                      tasks);
}

struct dc_hosts *dc_hosts_from_slurm (const char *nodelist, const char *tasks,
                                      dc_error_t *errp)
{
    struct dc_hostlist *hl;
    struct dc_hosts *hosts = NULL;
    long *counts = NULL;
    size_t n;

    if (!(hl = dc_hostlist_decode (nodelist, errp))) {
        errprefix (errp, "SLURM_JOB_NODELIST: ");
        return NULL;
    }
    n = dc_hostlist_count (hl);
    if (!(counts = calloc (n, sizeof (*counts))) ||
        !(hosts = dc_hosts_create ("Slurm allocation"))) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        counts[i] = 1;
    if (tasks && *tasks && slurm_tasks (tasks, n, counts, errp) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (add_slots (hosts, dc_hostlist_nth (hl, i), NULL, 0, counts[i],
                       false, errp) < 0) {
            errprefix (errp, "Slurm allocation: ");
            goto fail;
        }
    free (counts);
    dc_hostlist_destroy (hl);
    return hosts;
fail:
    free (counts);
    dc_hostlist_destroy (hl);
    dc_hosts_destroy (hosts);
    return NULL;
}

struct dc_hosts *dc_hosts_from_pbs (const char *path, dc_error_t *errp)
{
    FILE *f;
    char line[1024];
    struct dc_hosts *hosts;
    int lineno = 0;

    if (!(f = fopen (path, "r"))) {
        errprintf (errp, "PBS_NODEFILE %s: %s", path, strerror (errno));
        return NULL;
    }
    if (!(hosts = dc_hosts_create ("PBS_NODEFILE"))) {
        fclose (f);
        errprintf (errp, "out of memory");
        return NULL;
    }
    while (fgets (line, sizeof (line), f)) {
        size_t len = strlen (line);
        lineno++;
        if (len == sizeof (line) - 1 && line[len - 1] != '\n') {
            errno = EINVAL;
            errprintf (errp, "%s:%d:1: line too long", path, lineno);
            goto fail;
        }
        while (len > 0 && isspace ((unsigned char)line[len - 1]))
            line[--len] = '\0';
        char *s = line;
        while (isspace ((unsigned char)*s))
            s++;
        if (!*s)
            continue;
        for (char *q = s; *q; q++) {
            unsigned char c = (unsigned char)*q;
            if (!(isalnum (c) || c == '-' || c == '.' || c == '_')) {
                errno = EINVAL;
                errprintf (errp, "%s:%d:%d: invalid character in host name",
                           path, lineno, (int)(q - line) + 1);
                goto fail;
            }
        }
        if (strlen (s) > 255) {
            errno = EINVAL;
            errprintf (errp, "%s:%d:1: host name too long", path, lineno);
            goto fail;
        }
        if (add_slots (hosts, s, NULL, 0, 1, false, errp) < 0) {
            errprefix (errp, "%s:%d: ", path, lineno);
            goto fail;
        }
    }
    if (ferror (f)) {
        errprintf (errp, "%s: %s", path, strerror (errno));
        goto fail;
    }
    fclose (f);
    if (hosts->count == 0) {
        errno = EINVAL;
        errprintf (errp, "PBS_NODEFILE %s: no hosts", path);
        dc_hosts_destroy (hosts);
        return NULL;
    }
    return hosts;
fail:
    fclose (f);
    dc_hosts_destroy (hosts);
    return NULL;
}

struct dc_hosts *dc_hosts_exclude (const struct dc_hosts *hosts,
                                   const char *list, dc_error_t *errp)
{
    struct dc_hostlist *hl;
    struct dc_hosts *out;

    if (!hosts || !list || !*list) {
        errno = EINVAL;
        errprintf (errp, "--exclude: empty host list");
        return NULL;
    }
    if (!(hl = dc_hostlist_decode (list, errp))) {
        errprefix (errp, "--exclude: ");
        return NULL;
    }
    if (!(out = dc_hosts_create (hosts->origin))) {
        dc_hostlist_destroy (hl);
        errprintf (errp, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < hosts->count; i++) {
        bool drop = false;
        for (size_t k = 0; k < dc_hostlist_count (hl) && !drop; k++)
            drop = !strcmp (hosts->v[i].name, dc_hostlist_nth (hl, k));
        if (!drop && dc_hosts_add (out, &hosts->v[i]) < 0) {
            errprintf (errp, "out of memory");
            goto fail;
        }
    }
    if (out->count == 0) {
        errno = EINVAL;
        errprintf (errp, "--exclude '%s': no host of the list (%s) is left",
                   list, hosts->origin ? hosts->origin : "?");
        goto fail;
    }
    dc_hostlist_destroy (hl);
    return out;
fail:
    dc_hostlist_destroy (hl);
    dc_hosts_destroy (out);
    return NULL;
}
