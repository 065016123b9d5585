/* topo.c - host description, its JSON form */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hosts/topo.h"
#include "lib/util/json.h"

struct dc_topo *dc_topo_create (void)
{
    return calloc (1, sizeof (struct dc_topo));
}

void dc_topo_destroy (struct dc_topo *topo)
{
    if (!topo)
        return;
    int saved_errno = errno;
    for (int i = 0; i < topo->ngpus; i++) {
        free (topo->gpus[i].model);
        free (topo->gpus[i].cpus);
    }
    free (topo->gpus);
    if (topo->numa)
        for (int i = 0; i < topo->numa_nodes; i++)
            free (topo->numa[i].cpus);
    free (topo->numa);
    if (topo->core_cpus)
        for (int i = 0; i < topo->cores; i++)
            free (topo->core_cpus[i]);
    free (topo->core_cpus);
    if (topo->package_cpus)
        for (int i = 0; i < topo->packages; i++)
            free (topo->package_cpus[i]);
    free (topo->package_cpus);
    free (topo->host);
    free (topo->cpus);
    free (topo->cuda_visible_devices);
    free (topo);
    errno = saved_errno;
}

static char *dup_or_null (const char *s)
{
    return s ? strdup (s) : NULL;
}

struct dc_topo_gpu *dc_topo_add_gpu (struct dc_topo *topo,
                                     const struct dc_topo_gpu *gpu)
{
    struct dc_topo_gpu *v, *g;

    if (!topo || !gpu || topo->ngpus >= DC_TOPO_MAX_GPUS) {
        errno = EINVAL;
        return NULL;
    }
    v = realloc (topo->gpus, (size_t)(topo->ngpus + 1) * sizeof (*v));
    if (!v)
        return NULL;
    topo->gpus = v;
    g = &v[topo->ngpus];
    *g = *gpu;
    g->model = strdup (gpu->model ? gpu->model : "unknown");
    g->cpus = dup_or_null (gpu->cpus);
    if (!g->model || (gpu->cpus && !g->cpus)) {
        free (g->model);
        free (g->cpus);
        errno = ENOMEM;
        return NULL;
    }
    topo->ngpus++;
    return g;
}

int dc_topo_find_gpu (const struct dc_topo *topo, int index)
{
    if (!topo)
        return -1;
    for (int i = 0; i < topo->ngpus; i++)
        if (topo->gpus[i].index == index)
            return i;
    return -1;
}

/* cJSON_Add* return NULL on failure; this keeps the builders short. */
static bool add_num (cJSON *o, const char *k, double v)
{
    return cJSON_AddNumberToObject (o, k, v) != NULL;
}

static bool add_str_or_null (cJSON *o, const char *k, const char *v)
{
    return (v ? cJSON_AddStringToObject (o, k, v)
              : cJSON_AddNullToObject (o, k)) != NULL;
}

static cJSON *gpu_json (const struct dc_topo_gpu *g)
{
    cJSON *j = cJSON_CreateObject ();
    bool ok = j && add_num (j, "index", g->index) &&
              add_str_or_null (j, "model", g->model);
    if (ok)
        ok = g->memory_bytes >= 0
                 ? add_num (j, "memory_bytes", (double)g->memory_bytes)
                 : cJSON_AddNullToObject (j, "memory_bytes") != NULL;
    if (ok)
        ok = add_str_or_null (j, "pci_bus_id",
                              g->pci_bus_id[0] ? g->pci_bus_id : NULL);
    if (ok)
        ok = g->numa_node >= 0 ? add_num (j, "numa_node", g->numa_node)
                               : cJSON_AddNullToObject (j, "numa_node") != NULL;
    if (ok)
        ok = add_str_or_null (j, "cpus", g->cpus);
    if (ok && g->cuda_index >= 0) {
        char cc[32];
        snprintf (cc, sizeof (cc), "%d.%d", g->cc_major, g->cc_minor);
        ok = add_num (j, "cuda_index", g->cuda_index) &&
             cJSON_AddStringToObject (j, "compute_capability", cc) &&
             add_num (j, "multiprocessors", g->multiprocessors);
    }
    if (!ok) {
        cJSON_Delete (j);
        return NULL;
    }
    return j;
}

char *dc_topo_to_json (const struct dc_topo *topo, int flags)
{
    cJSON *o, *gpus;

    if (!topo) {
        errno = EINVAL;
        return NULL;
    }
    if (!(o = cJSON_CreateObject ()))
        return NULL;
    if (!add_str_or_null (o, "host", topo->host) ||
        !add_num (o, "packages", topo->packages) ||
        !add_num (o, "numa_nodes", topo->numa_nodes) ||
        !add_num (o, "cores", topo->cores) || !add_num (o, "pus", topo->pus) ||
        !add_num (o, "memory_bytes", (double)topo->memory_bytes) ||
        !(gpus = cJSON_AddArrayToObject (o, "gpus")))
        goto out;
    for (int i = 0; i < topo->ngpus; i++) {
        cJSON *g = gpu_json (&topo->gpus[i]);
        if (!dc_json_push (gpus, g))
            goto out;
    }
    if (topo->cuda_visible_devices &&
        !cJSON_AddStringToObject (o, "cuda_visible_devices",
                                  topo->cuda_visible_devices))
        goto out;
    if (flags & DC_TOPO_JSON_FULL) {
        if (topo->cpus && !cJSON_AddStringToObject (o, "cpus", topo->cpus))
            goto out;
        if (topo->numa) {
            cJSON *a = cJSON_AddArrayToObject (o, "numa");
            if (!a)
                goto out;
            for (int i = 0; i < topo->numa_nodes; i++) {
                cJSON *n = cJSON_CreateObject ();
                if (!n)
                    goto out;
                cJSON_AddItemToArray (a, n);
                if (!add_num (n, "os_index", topo->numa[i].os_index) ||
                    !add_num (n, "memory_bytes",
                              (double)topo->numa[i].memory_bytes) ||
                    !add_str_or_null (n, "cpus", topo->numa[i].cpus))
                    goto out;
            }
        }
        if (topo->core_cpus) {
            cJSON *a = cJSON_AddArrayToObject (o, "core_cpus");
            if (!a)
                goto out;
            for (int i = 0; i < topo->cores; i++) {
                cJSON *c = cJSON_CreateString (topo->core_cpus[i]);
                if (!c)
                    goto out;
                cJSON_AddItemToArray (a, c);
            }
        }
    }
    return dc_json_take (o);
out:
    cJSON_Delete (o);
    errno = ENOMEM;
    return NULL;
}

/* JSON readers: each checks type and range and says which key is wrong. */
static int get_int (const cJSON *o, const char *key, bool nullable,
                    long long min, long long max, long long *v,
                    const char *name, dc_error_t *errp)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive (o, key);

    if (nullable && cJSON_IsNull (j)) {
        *v = -1;
        return 0;
    }
    if (!cJSON_IsNumber (j) || !isfinite (j->valuedouble) ||
        j->valuedouble != floor (j->valuedouble) || j->valuedouble < min ||
        j->valuedouble > max)
        return errprintf (errp,
                          "%s: \"%s\": expected an integer from %lld "
                          "to %lld%s",
                          name, key, min, max, nullable ? " or null" : "");
    *v = (long long)j->valuedouble;
    return 0;
}

static int get_str (const cJSON *o, const char *key, bool nullable, char **v,
                    const char *name, dc_error_t *errp)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive (o, key);

    *v = NULL;
    if (nullable && (!j || cJSON_IsNull (j)))
        return 0;
    if (!cJSON_IsString (j))
        return errprintf (errp, "%s: \"%s\": expected a string%s", name, key,
                          nullable ? " or null" : "");
    if (!(*v = strdup (j->valuestring)))
        return errprintf (errp, "out of memory");
    return 0;
}

#define MAX_BYTES 9007199254740992LL /* 2^53: exact in a JSON number */

static int parse_gpu (const cJSON *j, struct dc_topo *topo, const char *name,
                      dc_error_t *errp)
{
    struct dc_topo_gpu g = {.cuda_index = -1};
    char *bus = NULL;
    long long v = 0;
    int rc = -1;

    if (!cJSON_IsObject (j))
        return errprintf (errp, "%s: \"gpus\": expected objects", name);
    if (get_int (j, "index", false, 0, DC_TOPO_MAX_GPUS - 1, &v, name, errp) <
        0)
        goto out;
    g.index = (int)v;
    if (dc_topo_find_gpu (topo, g.index) >= 0) {
        errprintf (errp, "%s: GPU index %d given twice", name, g.index);
        goto out;
    }
    if (get_str (j, "model", false, &g.model, name, errp) < 0 ||
        get_int (j, "memory_bytes", true, 0, MAX_BYTES, &g.memory_bytes, name,
                 errp) < 0 ||
        get_str (j, "pci_bus_id", true, &bus, name, errp) < 0 ||
        get_int (j, "numa_node", true, 0, 1 << 20, &v, name, errp) < 0)
        goto out;
    g.numa_node = (int)v;
    if (bus && strlen (bus) >= sizeof (g.pci_bus_id)) {
        errprintf (errp, "%s: \"pci_bus_id\": too long", name);
        goto out;
    }
    if (bus)
        strcpy (g.pci_bus_id, bus);
    if (get_str (j, "cpus", true, &g.cpus, name, errp) < 0)
        goto out;
    if (cJSON_HasObjectItem (j, "cuda_index")) {
        const cJSON *cc =
            cJSON_GetObjectItemCaseSensitive (j, "compute_capability");
        if (get_int (j, "cuda_index", false, 0, DC_TOPO_MAX_GPUS - 1, &v, name,
                     errp) < 0)
            goto out;
        g.cuda_index = (int)v;
        if (!cJSON_IsString (cc) ||
            sscanf (cc->valuestring, "%d.%d", &g.cc_major, &g.cc_minor) != 2) {
            errprintf (errp, "%s: \"compute_capability\": expected \"M.m\"",
                       name);
            goto out;
        }
        if (get_int (j, "multiprocessors", false, 0, 1 << 20, &v, name, errp) <
            0)
            goto out;
        g.multiprocessors = (int)v;
    }
    if (!dc_topo_add_gpu (topo, &g)) {
        errprintf (errp, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free (g.model);
    free (g.cpus);
    free (bus);
    return rc;
}

static int parse_full (const cJSON *o, struct dc_topo *topo, const char *name,
                       dc_error_t *errp)
{
    const cJSON *a, *e;
    long long v = 0;
    int i;

    if (get_str (o, "cpus", true, &topo->cpus, name, errp) < 0)
        return -1;
    a = cJSON_GetObjectItemCaseSensitive (o, "numa");
    if (a) {
        if (!cJSON_IsArray (a) || cJSON_GetArraySize (a) != topo->numa_nodes)
            return errprintf (errp, "%s: \"numa\": expected %d objects", name,
                              topo->numa_nodes);
        if (topo->numa_nodes > 0 &&
            !(topo->numa =
                  calloc ((size_t)topo->numa_nodes, sizeof (*topo->numa))))
            return errprintf (errp, "out of memory");
        i = 0;
        cJSON_ArrayForEach (e, a)
        {
            struct dc_topo_numa *n = &topo->numa[i++];
            if (!cJSON_IsObject (e))
                return errprintf (errp, "%s: \"numa\": expected objects", name);
            if (get_int (e, "os_index", false, 0, 1 << 20, &v, name, errp) < 0)
                return -1;
            n->os_index = (int)v;
            if (get_int (e, "memory_bytes", false, 0, MAX_BYTES,
                         &n->memory_bytes, name, errp) < 0 ||
                get_str (e, "cpus", true, &n->cpus, name, errp) < 0)
                return -1;
        }
    }
    a = cJSON_GetObjectItemCaseSensitive (o, "core_cpus");
    if (a) {
        if (!cJSON_IsArray (a) || cJSON_GetArraySize (a) != topo->cores)
            return errprintf (errp, "%s: \"core_cpus\": expected %d strings",
                              name, topo->cores);
        if (topo->cores > 0 &&
            !(topo->core_cpus = calloc ((size_t)topo->cores, sizeof (char *))))
            return errprintf (errp, "out of memory");
        i = 0;
        cJSON_ArrayForEach (e, a)
        {
            if (!cJSON_IsString (e))
                return errprintf (errp, "%s: \"core_cpus\": expected strings",
                                  name);
            if (!(topo->core_cpus[i++] = strdup (e->valuestring)))
                return errprintf (errp, "out of memory");
        }
    }
    return 0;
}

struct dc_topo *dc_topo_from_json (const char *text, size_t len,
                                   const char *name, dc_error_t *errp)
{
    struct dc_topo *topo = NULL;
    cJSON *o = NULL;
    const cJSON *gpus, *g;
    long long v = 0;

    if (!name)
        name = "topology";
    if (!text || len == 0 || len > DC_TOPO_MAX_JSON) {
        errno = EINVAL;
        errprintf (errp, "%s: empty or too large (at most %d bytes)", name,
                   DC_TOPO_MAX_JSON);
        return NULL;
    }
    if (!(o = cJSON_ParseWithLength (text, len)) || !cJSON_IsObject (o)) {
        errno = EINVAL;
        errprintf (errp, "%s: not a JSON object", name);
        goto fail;
    }
    if (!(topo = dc_topo_create ())) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    if (get_str (o, "host", false, &topo->host, name, errp) < 0)
        goto einval;
    if (get_int (o, "packages", false, 0, 1 << 20, &v, name, errp) < 0)
        goto einval;
    topo->packages = (int)v;
    if (get_int (o, "numa_nodes", false, 0, DC_TOPO_MAX_NUMA, &v, name, errp) <
        0)
        goto einval;
    topo->numa_nodes = (int)v;
    if (get_int (o, "cores", false, 0, DC_TOPO_MAX_CORES, &v, name, errp) < 0)
        goto einval;
    topo->cores = (int)v;
    if (get_int (o, "pus", false, 0, 1 << 22, &v, name, errp) < 0)
        goto einval;
    topo->pus = (int)v;
    if (get_int (o, "memory_bytes", false, 0, MAX_BYTES, &topo->memory_bytes,
                 name, errp) < 0)
        goto einval;
    gpus = cJSON_GetObjectItemCaseSensitive (o, "gpus");
    if (!cJSON_IsArray (gpus)) {
        errprintf (errp, "%s: \"gpus\": expected an array", name);
        goto einval;
    }
    if (cJSON_GetArraySize (gpus) > DC_TOPO_MAX_GPUS) {
        errprintf (errp, "%s: more than %d GPUs", name, DC_TOPO_MAX_GPUS);
        goto einval;
    }
    cJSON_ArrayForEach (g, gpus)
    {
        if (parse_gpu (g, topo, name, errp) < 0)
            goto einval;
    }
    if (get_str (o, "cuda_visible_devices", true, &topo->cuda_visible_devices,
                 name, errp) < 0 ||
        parse_full (o, topo, name, errp) < 0)
        goto einval;
    cJSON_Delete (o);
    return topo;
einval:
    errno = EINVAL;
fail:
    cJSON_Delete (o);
    dc_topo_destroy (topo);
    return NULL;
}
