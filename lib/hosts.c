/* hosts.c - host lists: -H, Slurm, PBS, resolution order */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostfile.h"
#include "hostlist.h"
#include "hosts.h"

/* ---- the (name, port) index: open addressing, linear probing ---- */

struct index_slot {
    size_t pos;    /* position in v + 1, 0 when empty */
    uint64_t hash; /* of the host there: most mismatches need no strcmp */
};

struct dc_hosts_index {
    struct index_slot *slot;
    size_t cap; /* a power of two, at least twice the entries */
    size_t n;
};

static uint64_t host_hash (const char *name, int port)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    h ^= (uint64_t)(unsigned)port;
    h *= 1099511628211ULL;
    /* FNV's low bits depend on the low bits of the bytes only: mix
     * (murmur3's finalizer) before the table takes the low bits */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

static bool same_host (const struct dc_host *h, const char *name, int port)
{
    return h->port == port && !strcmp (h->name, name);
}

/* Where (name, port) of this hash is, or the empty slot where it would
 * go. */
static size_t index_probe (const struct dc_hosts *hosts, const char *name,
                           int port, uint64_t hash)
{
    const struct dc_hosts_index *x = hosts->index;
    size_t mask = x->cap - 1;
    size_t i = (size_t)hash & mask;

    while (x->slot[i].pos
           && (x->slot[i].hash != hash
               || !same_host (&hosts->v[x->slot[i].pos - 1], name, port)))
        i = (i + 1) & mask;
    return i;
}

static int index_grow (struct dc_hosts *hosts)
{
    struct dc_hosts_index *x = hosts->index;
    struct dc_hosts_index old;
    size_t cap;

    if (!x) {
        if (!(x = calloc (1, sizeof (*x))))
            return -1;
        hosts->index = x;
    }
    if (x->cap >= 2 * (x->n + 1))
        return 0;
    cap = x->cap ? x->cap * 2 : 64;
    old = *x;
    if (!(x->slot = calloc (cap, sizeof (*x->slot)))) {
        x->slot = old.slot;
        return -1;
    }
    x->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slot[i].pos) {
            /* all different: the first empty slot from the hash */
            size_t j = (size_t)old.slot[i].hash & (cap - 1);
            while (x->slot[j].pos)
                j = (j + 1) & (cap - 1);
            x->slot[j] = old.slot[i];
        }
    free (old.slot);
    return 0;
}

static void index_destroy (struct dc_hosts_index *x)
{
    if (x) {
        free (x->slot);
        free (x);
    }
}

struct dc_hosts *dc_hosts_create (const char *origin)
{
    struct dc_hosts *hosts = calloc (1, sizeof (*hosts));

    if (!hosts)
        return NULL;
    if (!(hosts->origin = strdup (origin ? origin : ""))) {
        free (hosts);
        return NULL;
    }
    return hosts;
}

void dc_hosts_destroy (struct dc_hosts *hosts)
{
    if (hosts) {
        int saved_errno = errno;
        for (size_t i = 0; i < hosts->count; i++) {
            free (hosts->v[i].name);
            free (hosts->v[i].user);
            free (hosts->v[i].gpus);
        }
        free (hosts->v);
        free (hosts->origin);
        index_destroy (hosts->index);
        free (hosts);
        errno = saved_errno;
    }
}

int dc_hosts_add (struct dc_hosts *hosts, const struct dc_host *h)
{
    struct dc_host c = *h;

    if (!hosts || !h || !h->name) {
        errno = EINVAL;
        return -1;
    }
    if (hosts->count >= DC_HOSTS_MAX) {
        errno = E2BIG;
        return -1;
    }
    if (hosts->count == hosts->cap) {
        size_t cap = hosts->cap ? hosts->cap * 2 : 16;
        struct dc_host *v = realloc (hosts->v, cap * sizeof (*v));
        if (!v)
            return -1;
        hosts->v = v;
        hosts->cap = cap;
    }
    if (index_grow (hosts) < 0)
        return -1;
    c.name = strdup (h->name);
    c.user = h->user ? strdup (h->user) : NULL;
    c.gpus = NULL;
    if (h->ngpus > 0) {
        c.gpus = malloc ((size_t)h->ngpus * sizeof (int));
        if (c.gpus)
            memcpy (c.gpus, h->gpus, (size_t)h->ngpus * sizeof (int));
    }
    if (!c.name || (h->user && !c.user) || (h->ngpus > 0 && !c.gpus)) {
        free (c.name);
        free (c.user);
        free (c.gpus);
        errno = ENOMEM;
        return -1;
    }
    /* the first of equal hosts stays the one dc_hosts_find returns */
    uint64_t hash = host_hash (c.name, c.port);
    size_t i = index_probe (hosts, c.name, c.port, hash);
    hosts->v[hosts->count++] = c;
    if (!hosts->index->slot[i].pos) {
        hosts->index->slot[i].pos = hosts->count;
        hosts->index->slot[i].hash = hash;
        hosts->index->n++;
    }
    return 0;
}

long dc_hosts_find (const struct dc_hosts *hosts, const char *name, int port)
{
    size_t i;

    if (!hosts || !name || !hosts->index)
        return -1;
    i = index_probe (hosts, name, port, host_hash (name, port));
    return hosts->index->slot[i].pos ? (long)hosts->index->slot[i].pos - 1
                                     : -1;
}

long dc_hosts_slots (const struct dc_hosts *hosts)
{
    long n = 0;

    for (size_t i = 0; hosts && i < hosts->count; i++)
        n += hosts->v[i].slots;
    return n;
}

int dc_parse_int_list (const char *s, int max_value, int **listp, int *np,
                       dc_error_t *errp)
{
    int *list = NULL;
    int n = 0, cap = 0;
    const char *p = s;
    unsigned char *seen; /* a bit per value: duplicates in linear time */

    if (!s || !*s) {
        errno = EINVAL;
        return errprintf (errp, "empty list");
    }
    if (max_value < 0 || max_value > DC_INT_LIST_MAX) {
        errno = EINVAL;
        return errprintf (errp, "list values beyond %d", DC_INT_LIST_MAX);
    }
    if (!(seen = calloc ((size_t)max_value / 8 + 1, 1)))
        return errprintf (errp, "out of memory");
    while (*p) {
        long lo, hi;
        char *end;
        if (!isdigit ((unsigned char)*p))
            goto bad;
        errno = 0;
        lo = strtol (p, &end, 10);
        if (errno || lo > max_value)
            goto range;
        hi = lo;
        p = end;
        if (*p == '-') {
            p++;
            if (!isdigit ((unsigned char)*p))
                goto bad;
            hi = strtol (p, &end, 10);
            if (errno || hi > max_value)
                goto range;
            if (hi < lo) {
                free (list);
                free (seen);
                errno = EINVAL;
                return errprintf (errp, "reversed range %ld-%ld", lo, hi);
            }
            p = end;
        }
        for (long v = lo; v <= hi; v++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                if (cap > max_value + 1)
                    cap = max_value + 1;
                int *q = realloc (list, (size_t)cap * sizeof (*q));
                if (!q) {
                    free (list);
                    free (seen);
                    return errprintf (errp, "out of memory");
                }
                list = q;
            }
            if (seen[v / 8] & (1u << (v % 8))) {
                free (list);
                free (seen);
                errno = EINVAL;
                return errprintf (errp, "%ld appears twice", v);
            }
            seen[v / 8] |= (unsigned char)(1u << (v % 8));
            list[n++] = (int)v;
        }
        if (*p == ',') {
            p++;
            if (!*p)
                goto bad;
        } else if (*p)
            goto bad;
    }
    free (seen);
    *listp = list;
    *np = n;
    return 0;
bad:
    free (seen);
    free (list);
    errno = EINVAL;
    return errprintf (errp, "expected numbers and ranges like 0-3,6 in '%s'",
                      s);
range:
    free (seen);
    free (list);
    errno = EINVAL;
    return errprintf (errp, "number out of range (0 to %d) in '%s'", max_value,
                      s);
}

/* Add slots to host name (merging with an earlier entry of the same name). */
static int add_slots (struct dc_hosts *hosts, const char *name,
                      const char *user, long slots, dc_error_t *errp)
{
    long i = dc_hosts_find (hosts, name, 0);

    if (i >= 0) {
        if (hosts->v[i].slots + slots > DC_MAX_SLOTS) {
            errno = EINVAL;
            return errprintf (errp, "%s: more than %d slots", name,
                              DC_MAX_SLOTS);
        }
        hosts->v[i].slots += (int)slots;
        return 0;
    }
    struct dc_host h = {
        .name = (char *)name,
        .user = (char *)user,
        .slots = (int)slots,
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
            int d = 0;
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
            if (colon) {
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
                if (add_slots (hosts, dc_hostlist_nth (hl, i), user, slots,
                               errp)
                    < 0) {
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
    if (!(counts = calloc (n, sizeof (*counts)))
        || !(hosts = dc_hosts_create ("Slurm allocation"))) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        counts[i] = 1;
    if (tasks && *tasks && slurm_tasks (tasks, n, counts, errp) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (add_slots (hosts, dc_hostlist_nth (hl, i), NULL, counts[i], errp)
            < 0) {
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
        if (add_slots (hosts, s, NULL, 1, errp) < 0) {
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
    if (((s = env ("SLURM_JOB_NODELIST")) && *s)
        || ((s = env ("SLURM_NODELIST")) && *s))
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
    if (!(hosts = dc_hosts_create ("this host")) || dc_hosts_add (hosts, &h) < 0) {
        dc_hosts_destroy (hosts);
        errprintf (errp, "out of memory");
        return NULL;
    }
    return hosts;
}
