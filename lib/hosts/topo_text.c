/* topo_text.c - a host's topology as `dcrun probe` prints it (see
 * topo_text.h) */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hosts/topo_text.h"
#include "lib/util/strbuf.h"
#include "lib/util/json.h"

/* DC_TOPO_MAX_GPUS rows per host, well under this */
#define TEXT_MAX ((size_t)256 << 20)

static const char *human_bytes (long long b, char *buf, size_t len)
{
    if (b < 0)
        snprintf (buf, len, "-");
    else if (b >= (1LL << 30))
        snprintf (buf, len, "%.1f GiB", (double)b / (1 << 30));
    else
        snprintf (buf, len, "%.1f MiB", (double)b / (1 << 20));
    return buf;
}

static const char *plural (int n)
{
    return n == 1 ? "" : "s";
}

static void gpus_text (struct dc_strbuf *b, const struct dc_topo *t)
{
    char mem[32];
    bool cuda = false;

    for (int i = 0; i < t->ngpus; i++)
        if (t->gpus[i].cuda_index >= 0)
            cuda = true;
    dc_strbuf_printf (b, "%-4s %-28s %-10s %-13s %-5s %sCPUS\n", "GPU", "MODEL",
                      "MEMORY", "PCI BUS ID", "NUMA",
                      cuda ? "CC    SMS  " : "");
    for (int i = 0; i < t->ngpus; i++) {
        const struct dc_topo_gpu *g = &t->gpus[i];
        char numa[16] = "-", cc[16] = "-";
        if (g->numa_node >= 0)
            snprintf (numa, sizeof (numa), "%d", g->numa_node);
        dc_strbuf_printf (b, "%-4d %-28s %-10s %-13s %-5s ", g->index, g->model,
                          human_bytes (g->memory_bytes, mem, sizeof (mem)),
                          g->pci_bus_id[0] ? g->pci_bus_id : "-", numa);
        if (cuda) {
            if (g->cuda_index >= 0)
                snprintf (cc, sizeof (cc), "%d.%d", g->cc_major, g->cc_minor);
            dc_strbuf_printf (b, "%-5s %-4d ", cc, g->multiprocessors);
        }
        dc_strbuf_printf (b, "%s\n", g->cpus ? g->cpus : "-");
    }
}

static void table (struct dc_strbuf *b, const struct dc_topo *t,
                   const char *host)
{
    char mem[32];

    if (t->ngpus == 0)
        dc_strbuf_printf (b, "%s: no GPU\n", host);
    else
        gpus_text (b, t);
    dc_strbuf_printf (b,
                      "%s: %d package%s, %d NUMA node%s, %d core%s, %d PU%s "
                      "(cpus %s), %s memory\n",
                      host, t->packages, plural (t->packages), t->numa_nodes,
                      plural (t->numa_nodes), t->cores, plural (t->cores),
                      t->pus, plural (t->pus), t->cpus ? t->cpus : "-",
                      human_bytes (t->memory_bytes, mem, sizeof (mem)));
    for (int i = 0; t->numa && i < t->numa_nodes; i++)
        dc_strbuf_printf (
            b, "  numa %d: %s, cpus %s\n", t->numa[i].os_index,
            human_bytes (t->numa[i].memory_bytes, mem, sizeof (mem)),
            t->numa[i].cpus ? t->numa[i].cpus : "-");
    if (t->cuda_visible_devices)
        dc_strbuf_printf (b, "  CUDA_VISIBLE_DEVICES=%s\n",
                          t->cuda_visible_devices);
}

char *dc_topo_to_text (const struct dc_topo *t, const char *host)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    if (!t) {
        errno = EINVAL;
        return NULL;
    }
    table (&b, t, host ? host : t->host);
    return dc_strbuf_take (&b);
}

static bool entries_ok (const struct dc_topo_entry *e, size_t n)
{
    if (!e && n > 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!e[i].host)
            return false;
    return true;
}

char *dc_topo_list_text (const struct dc_topo_entry *e, size_t n)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    if (!entries_ok (e, n)) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (i)
            dc_strbuf_str (&b, "\n");
        if (e[i].topo)
            table (&b, e[i].topo, e[i].host);
        else
            dc_strbuf_printf (&b, "%s: not probed: %s\n", e[i].host,
                              e[i].reason ? e[i].reason : "");
    }
    return dc_strbuf_take (&b);
}

/* the host's object: its topology named as listed, or why there is none */
static cJSON *entry_json (const struct dc_topo_entry *e)
{
    cJSON *h;

    if (e->topo) {
        char *text = dc_topo_to_json (e->topo, 0);
        cJSON *name = cJSON_CreateString (e->host);
        h = text && name ? cJSON_Parse (text) : NULL;
        free (text);
        /* the name as listed, in the place of the probed one */
        if (!h || !cJSON_ReplaceItemInObjectCaseSensitive (h, "host", name))
            cJSON_Delete (name);
        return h;
    }
    const char *r = e->reason ? e->reason : "";
    char *line = strndup (r, strcspn (r, "\n"));
    if (line && (h = cJSON_CreateObject ()) &&
        (!cJSON_AddStringToObject (h, "host", e->host) ||
         !cJSON_AddStringToObject (h, "error", line))) {
        cJSON_Delete (h);
        h = NULL;
    }
    free (line);
    return line ? h : NULL;
}

char *dc_topo_list_json (const struct dc_topo_entry *e, size_t n)
{
    cJSON *o, *arr;

    if (!entries_ok (e, n)) {
        errno = EINVAL;
        return NULL;
    }
    if (!(o = cJSON_CreateObject ()) ||
        !(arr = cJSON_AddArrayToObject (o, "hosts")))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!dc_json_push (arr, entry_json (&e[i])))
            goto out;
    }
    return dc_json_take (o);
out:
    cJSON_Delete (o);
    errno = ENOMEM;
    return NULL;
}
