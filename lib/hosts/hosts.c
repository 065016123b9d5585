/* hosts.c - the host list container: hosts in order, a (name, port) index */
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

    while (x->slot[i].pos &&
           (x->slot[i].hash != hash ||
            !same_host (&hosts->v[x->slot[i].pos - 1], name, port)))
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
    return hosts->index->slot[i].pos ? (long)hosts->index->slot[i].pos - 1 : -1;
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
