/* probe.c - host topology and GPUs from hwloc, enriched by the CUDA runtime */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "gpu/module.h"
#include "lib/util/log.h"
#include "probe.h"

const char *dc_probe_hwloc_version (void)
{
    static char buf[32];
    unsigned v = hwloc_get_api_version ();
    snprintf (buf, sizeof (buf), "hwloc %u.%u.%u", v >> 16, (v >> 8) & 0xff,
              v & 0xff);
    return buf;
}

/* ---- validation of saved topologies ---------------------------------- */

static bool is_io_or_misc (const char *type)
{
    static const char *const io[] = {"Bridge", "PCIDev", "OSDev", "Misc", NULL};
    for (int i = 0; io[i]; i++)
        if (!strcmp (type, io[i]))
            return true;
    return false;
}

static int node_error (dc_error_t *errp, const char *name, xmlNode *n,
                       const char *fmt, const char *arg, const char *arg2)
{
    char msg[256];
    snprintf (msg, sizeof (msg), fmt, arg, arg2);
    return errprintf (errp, "%s:%ld:1: %s", name, n ? xmlGetLineNo (n) : 0L,
                      msg);
}

/* A bitmap as hwloc writes it: "0x0000000f,0x00000001" (32-bit chunks,
 * most significant first; a zero chunk between two others may be empty,
 * "0x00000303,,0x03030303"), optionally after "0xf...f," (an infinite set),
 * or "0xf...f" alone.  hwloc_bitmap_sscanf() asserts on a leading comma
 * and reads past the end of an empty string, so nothing else reaches it. */
#define MAX_BITMAP_CHUNKS 131072 /* 4 Mi bits */

static bool valid_bitmap (const char *s)
{
    size_t chunks = 0;

    if (!strncmp (s, "0xf...f", 7)) {
        s += 7;
        if (*s == '\0')
            return true;
        if (*s++ != ',')
            return false;
    }
    for (;;) {
        size_t digits = 0;
        bool prefix = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
        if (prefix)
            s += 2;
        while (isxdigit ((unsigned char)*s) && digits <= 8) {
            s++;
            digits++;
        }
        if (digits > 8 || ++chunks > MAX_BITMAP_CHUNKS)
            return false;
        /* empty only between two chunks */
        if (digits == 0 && (prefix || chunks == 1 || *s != ','))
            return false;
        if (*s == '\0')
            return true;
        if (*s++ != ',')
            return false;
    }
}

/* Attributes hwloc parses as bitmaps, on any element (objects, cpukind,
 * memattr values). */
static const char *const bitmap_attrs[] = {
    "cpuset",          "complete_cpuset",  "allowed_cpuset",
    "online_cpuset",   "nodeset",          "complete_nodeset",
    "allowed_nodeset", "initiator_cpuset", NULL};

static int check_bitmaps (xmlNode *n, const char *name, dc_error_t *errp)
{
    for (xmlAttr *a = n->properties; a; a = a->next) {
        const char *an = (const char *)a->name;
        for (int i = 0; bitmap_attrs[i]; i++) {
            if (strcmp (an, bitmap_attrs[i]))
                continue;
            xmlChar *v = xmlGetProp (n, a->name);
            int rc = 0;
            if (!v || !valid_bitmap ((const char *)v))
                rc = node_error (errp, name, n, "%s: invalid bitmap '%.40s'",
                                 an, v ? (const char *)v : "");
            xmlFree (v);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

#define MAX_OS_INDEX (1UL << 20)

/* hwloc allocates nbobjs * nbobjs values for a distance matrix */
#define MAX_DISTANCE_OBJS 4096

static int check_distances (xmlNode *n, const char *name, dc_error_t *errp)
{
    xmlChar *v = xmlGetProp (n, (const xmlChar *)"nbobjs");
    int rc = 0;

    if (v) {
        char *end;
        errno = 0;
        unsigned long k = strtoul ((const char *)v, &end, 10);
        if (!isdigit (v[0]) || *end || errno || k > MAX_DISTANCE_OBJS)
            rc = node_error (errp, name, n,
                             "nbobjs: expected a number of at most 4096, "
                             "not '%.40s'%s",
                             (const char *)v, "");
    }
    xmlFree (v);
    return rc;
}

/* Every non-I/O object needs its four bitmaps; every bitmap attribute of
 * any element must be one hwloc parses safely. */

/* A NUMA node as hwloc_type_sscanf reads a type: by its first two letters,
 * in any case ("NUMANode", "Node", "nu=ma..."), so that no spelling slips
 * past the os_index check (found by fuzz_topo) */
static bool numa_type (const char *t)
{
    return !strncasecmp (t, "nu", 2) || !strncasecmp (t, "no", 2);
}

static int check_objects (xmlNode *n, const char *name, int depth,
                          int *machines, int *numas, dc_error_t *errp)
{
    static const char *const sets[] = {"cpuset", "complete_cpuset", "nodeset",
                                       "complete_nodeset", NULL};

    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (depth > 128)
            return node_error (errp, name, n, "elements nested too deep%s%s",
                               "", "");
        if (check_bitmaps (n, name, errp) < 0)
            return -1;
        if (!strncmp ((const char *)n->name, "distances", 9) &&
            check_distances (n, name, errp) < 0)
            return -1;
        if (!strcmp ((const char *)n->name, "object")) {
            xmlChar *type = xmlGetProp (n, (const xmlChar *)"type");
            int rc = 0;
            if (!type || !type[0])
                rc = node_error (errp, name, n,
                                 "object without a type attribute%s%s", "", "");
            else if (!strcmp ((const char *)type, "Machine") ||
                     !strcmp ((const char *)type, "System"))
                (*machines)++;
            else if (numa_type ((const char *)type))
                (*numas)++;
            /* hwloc sets the bit of a NUMA node's or PU's os_index in a
             * bitmap: an absent one (4294967295) costs it 512 MiB */
            if (rc == 0 && (numa_type ((const char *)type) ||
                            !strncasecmp ((const char *)type, "pu", 2))) {
                xmlChar *v = xmlGetProp (n, (const xmlChar *)"os_index");
                char *end = NULL;
                unsigned long k = 0;
                if (v && isdigit (v[0])) {
                    errno = 0;
                    k = strtoul ((const char *)v, &end, 10);
                }
                if (!v || !end || *end || errno || k > MAX_OS_INDEX)
                    rc = node_error (errp, name, n,
                                     "%s object without an os_index from 0 "
                                     "to 1048576 ('%.20s')",
                                     (const char *)type,
                                     v ? (const char *)v : "");
                xmlFree (v);
            }
            if (rc == 0 && !is_io_or_misc ((const char *)type)) {
                for (int i = 0; sets[i] && rc == 0; i++) {
                    xmlChar *v = xmlGetProp (n, (const xmlChar *)sets[i]);
                    if (!v)
                        rc = node_error (errp, name, n, "%s object without %s",
                                         (const char *)type, sets[i]);
                    xmlFree (v);
                }
            }
            xmlFree (type);
            if (rc < 0)
                return -1;
        }
        if (check_objects (n->children, name, depth + 1, machines, numas,
                           errp) < 0)
            return -1;
    }
    return 0;
}

/* libxml2 keeps one error handler per thread.  hwloc's libxml plugin sets
 * its own and is unloaded with the topology, leaving the handler pointing
 * into unmapped code: before and after every parse of ours, install a
 * handler that lives in this binary (and prints nothing: lib/ never
 * prints). */
static void xml_quiet_generic (void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void xml_quiet_structured (void *ctx, xmlErrorPtr e)
{
    (void)ctx;
    (void)e;
}

static void xml_own_handlers (void)
{
    xmlSetGenericErrorFunc (NULL, xml_quiet_generic);
    xmlSetStructuredErrorFunc (NULL, xml_quiet_structured);
}

int dc_probe_validate_xml (const char *xml, size_t len, const char *name,
                           dc_error_t *errp)
{
    xmlParserCtxtPtr ctxt;
    xmlDocPtr doc = NULL;
    xmlNode *root;
    xmlChar *version = NULL;
    int machines = 0, numas = 0, rc = -1;
    long major = 1;

    if (!name)
        name = "topology";
    if (!xml || len == 0)
        return errprintf (errp, "%s: empty file", name);
    if (len > DC_PROBE_MAX_XML || len > INT_MAX)
        return errprintf (errp, "%s: larger than %d bytes", name,
                          DC_PROBE_MAX_XML);
    xml_own_handlers ();
    if (!(ctxt = xmlNewParserCtxt ()))
        return errprintf (errp, "out of memory");
    doc = xmlCtxtReadMemory (ctxt, xml, (int)len, name, NULL,
                             XML_PARSE_NONET | XML_PARSE_NOERROR |
                                 XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError (ctxt);
        char msg[200] = "not an XML file";
        if (e && e->message) {
            snprintf (msg, sizeof (msg), "%s", e->message);
            msg[strcspn (msg, "\n")] = '\0';
        }
        errprintf (errp, "%s:%d:%d: %s", name, e ? e->line : 0,
                   e && e->int2 > 0 ? e->int2 : 1, msg);
        goto out;
    }
    /* hwloc's libxml reader crashes on entity references: no declarations
     * (the usual <!DOCTYPE topology SYSTEM "hwloc2.dtd"> has none) */
    if (doc->intSubset && doc->intSubset->children) {
        node_error (errp, name, (xmlNode *)doc->intSubset,
                    "DOCTYPE declarations are not supported in a "
                    "topology%s%s",
                    "", "");
        goto out;
    }
    root = xmlDocGetRootElement (doc);
    if (!root || strcmp ((const char *)root->name, "topology")) {
        node_error (errp, name, root,
                    "not an hwloc topology (root element <%s>, expected "
                    "<topology>)%s",
                    root ? (const char *)root->name : "", "");
        goto out;
    }
    version = xmlGetProp (root, (const xmlChar *)"version");
    if (version) {
        char *end;
        major = strtol ((const char *)version, &end, 10);
        if (end == (char *)version || major < 1 ||
            major > HWLOC_API_VERSION >> 16) {
            node_error (errp, name, root,
                        "topology XML version %.20s is not supported "
                        "(hwloc %s reads versions 1.x and 2.x)",
                        (const char *)version, HWLOC_VERSION);
            goto out;
        }
    }
    if (check_objects (root->children, name, 0, &machines, &numas, errp) < 0)
        goto out;
    if (machines != 1) {
        node_error (errp, name, root, "expected one Machine object, found %s%s",
                    machines ? "several" : "none", "");
        goto out;
    }
    if (major >= 2 && numas == 0) {
        node_error (errp, name, root, "no NUMANode object%s%s", "", "");
        goto out;
    }
    rc = 0;
out:
    xmlFree (version);
    xmlFreeDoc (doc);
    xmlFreeParserCtxt (ctxt);
    xml_own_handlers ();
    return rc;
}

/* ---- reading the topology -------------------------------------------- */

static char *bitmap_list (hwloc_const_bitmap_t b)
{
    char *s = NULL;
    if (!b || hwloc_bitmap_list_asprintf (&s, b) < 0)
        return NULL;
    return s;
}

static const char *osdev_info (hwloc_obj_t pci, const char *key)
{
    for (hwloc_obj_t c = pci->io_first_child; c; c = c->next_sibling) {
        const char *v;
        if (c->type == HWLOC_OBJ_OS_DEVICE &&
            (v = hwloc_obj_get_info_by_name (c, key)))
            return v;
    }
    return NULL;
}

static bool prefix (const char *s, const char *p)
{
    return s && !strncmp (s, p, strlen (p));
}

/* A CUDA, NVML or OpenCL GPU OS device. */
static bool is_gpu_osdev (hwloc_obj_t o)
{
    const char *st = o->subtype;

    if (o->attr->osdev.type != HWLOC_OBJ_OSDEV_GPU &&
        o->attr->osdev.type != HWLOC_OBJ_OSDEV_COPROC)
        return false;
    if (st)
        return !strcmp (st, "CUDA") || !strcmp (st, "NVML") ||
               !strcmp (st, "OpenCL");
    return prefix (o->name, "cuda") || prefix (o->name, "nvml") ||
           prefix (o->name, "opencl");
}

static bool is_nvidia_gpu_pcidev (hwloc_obj_t o)
{
    unsigned cls = o->attr->pcidev.class_id;
    return o->attr->pcidev.vendor_id == 0x10de &&
           (cls == 0x0300 || cls == 0x0302);
}

static int cmp_pci (const void *a, const void *b)
{
    const struct hwloc_pcidev_attr_s *x =
        &(*(hwloc_obj_t const *)a)->attr->pcidev;
    const struct hwloc_pcidev_attr_s *y =
        &(*(hwloc_obj_t const *)b)->attr->pcidev;
    unsigned long kx = ((unsigned long)x->domain << 24) | (x->bus << 16) |
                       (x->dev << 8) | x->func;
    unsigned long ky = ((unsigned long)y->domain << 24) | (y->bus << 16) |
                       (y->dev << 8) | y->func;
    return kx < ky ? -1 : kx > ky;
}

static int add_unique (hwloc_obj_t *v, int *n, hwloc_obj_t o)
{
    for (int i = 0; i < *n; i++)
        if (v[i] == o)
            return 0;
    if (*n >= DC_TOPO_MAX_GPUS)
        return -1;
    v[(*n)++] = o;
    return 0;
}

static int gpu_from_pci (hwloc_topology_t t, hwloc_obj_t pci, int index,
                         struct dc_topo *topo)
{
    const struct hwloc_pcidev_attr_s *p = &pci->attr->pcidev;
    struct dc_topo_gpu g = {
        .index = index, .cuda_index = -1, .memory_bytes = -1, .numa_node = -1};
    char model[128];
    const char *v;
    hwloc_obj_t anc;
    int rc = 0;

    if ((v = osdev_info (pci, "GPUModel")))
        snprintf (model, sizeof (model), "%s", v);
    else if ((v = hwloc_obj_get_info_by_name (pci, "PCIDevice")))
        snprintf (model, sizeof (model), "%s", v);
    else
        snprintf (model, sizeof (model), "%s [%04x:%04x]",
                  p->vendor_id == 0x10de ? "NVIDIA GPU" : "GPU", p->vendor_id,
                  p->device_id);
    g.model = model;
    if ((v = osdev_info (pci, "CUDAGlobalMemorySize")) ||
        (v = osdev_info (pci, "OpenCLGlobalMemorySize"))) {
        char *end;
        long long kib = strtoll (v, &end, 10);
        if (end != v && kib > 0 && kib < (1LL << 42))
            g.memory_bytes = kib * 1024;
    }
    if ((v = osdev_info (pci, "CUDAMultiProcessors")))
        g.multiprocessors = atoi (v);
    snprintf (g.pci_bus_id, sizeof (g.pci_bus_id), "%04x:%02x:%02x.%x",
              p->domain, p->bus, p->dev, p->func);
    anc = hwloc_get_non_io_ancestor_obj (t, pci);
    if (anc && anc->cpuset && !(g.cpus = bitmap_list (anc->cpuset)))
        return -1;
    if (anc && anc->nodeset && hwloc_bitmap_weight (anc->nodeset) == 1)
        g.numa_node = hwloc_bitmap_first (anc->nodeset) <= 1 << 20
                          ? hwloc_bitmap_first (anc->nodeset)
                          : -1;
    if (!dc_topo_add_gpu (topo, &g))
        rc = -1;
    free (g.cpus);
    return rc;
}

static int find_gpus (hwloc_topology_t t, struct dc_topo *topo)
{
    hwloc_obj_t *v, o = NULL;
    int n = 0, rc = 0;

    if (!(v = calloc (DC_TOPO_MAX_GPUS, sizeof (*v))))
        return -1;
    while ((o = hwloc_get_next_osdev (t, o))) {
        hwloc_obj_t pci = o->parent;
        if (!is_gpu_osdev (o))
            continue;
        while (pci && pci->type != HWLOC_OBJ_PCI_DEVICE &&
               pci->type == HWLOC_OBJ_OS_DEVICE)
            pci = pci->parent;
        if (pci && pci->type == HWLOC_OBJ_PCI_DEVICE)
            add_unique (v, &n, pci);
    }
    if (n == 0) {
        o = NULL;
        while ((o = hwloc_get_next_pcidev (t, o)))
            if (is_nvidia_gpu_pcidev (o))
                add_unique (v, &n, o);
    }
    qsort (v, (size_t)n, sizeof (*v), cmp_pci);
    for (int i = 0; i < n && rc == 0; i++)
        rc = gpu_from_pci (t, v[i], i, topo);
    free (v);
    return rc;
}

/* The objects of a type, wherever they are: hwloc_get_nbobjs_by_type()
 * says -1 when a hostile topology puts a type at several depths.  Returns
 * a new array (NULL when there are none) and the count, or -1. */
static int objs_of_type (hwloc_topology_t t, hwloc_obj_type_t type, int max,
                         hwloc_obj_t **vp)
{
    int depth = hwloc_get_type_depth (t, type);
    int depths[64], ndepths = 0, n = 0, k = 0;

    *vp = NULL;
    if (depth == HWLOC_TYPE_DEPTH_UNKNOWN)
        return 0;
    if (depth != HWLOC_TYPE_DEPTH_MULTIPLE) {
        depths[ndepths++] = depth; /* also NUMA's virtual depth */
    } else {
        int top = hwloc_topology_get_depth (t);
        for (int d = 0; d < top && ndepths < 64; d++)
            if (hwloc_get_depth_type (t, d) == type)
                depths[ndepths++] = d;
    }
    for (int i = 0; i < ndepths; i++) {
        int m = hwloc_get_nbobjs_by_depth (t, depths[i]);
        if (m < 0 || m > max - n)
            return -1;
        n += m;
    }
    if (n == 0)
        return 0;
    if (!(*vp = calloc ((size_t)n, sizeof (**vp))))
        return -1;
    for (int i = 0; i < ndepths; i++) {
        int m = hwloc_get_nbobjs_by_depth (t, depths[i]);
        for (int j = 0; j < m; j++)
            (*vp)[k++] = hwloc_get_obj_by_depth (t, depths[i], (unsigned)j);
    }
    return n;
}

static int host_facts (hwloc_topology_t t, struct dc_topo *topo)
{
    hwloc_obj_t root = hwloc_get_root_obj (t);
    hwloc_obj_t *v = NULL;
    int n;

    if ((n = objs_of_type (t, HWLOC_OBJ_PACKAGE, 1 << 20, &v)) < 0)
        return -1;
    if (n > 0 && !(topo->package_cpus = calloc ((size_t)n, sizeof (char *)))) {
        free (v);
        return -1;
    }
    topo->packages = n;
    for (int i = 0; i < n; i++)
        if (!(topo->package_cpus[i] = bitmap_list (v[i]->cpuset))) {
            free (v);
            return -1;
        }
    free (v);
    if ((n = objs_of_type (t, HWLOC_OBJ_PU, 1 << 22, &v)) < 0)
        return -1;
    free (v);
    topo->pus = n;
    topo->memory_bytes = (long long)root->total_memory;
    if (!(topo->cpus = bitmap_list (root->cpuset)))
        return -1;

    if ((n = objs_of_type (t, HWLOC_OBJ_NUMANODE, DC_TOPO_MAX_NUMA, &v)) < 0)
        return -1;
    if (n > 0 && !(topo->numa = calloc ((size_t)n, sizeof (*topo->numa)))) {
        free (v);
        return -1;
    }
    topo->numa_nodes = n;
    for (int i = 0; i < n; i++) {
        topo->numa[i].os_index = v[i]->os_index > 1 << 20
                                     ? -1 /* unknown: refused by probe () */
                                     : (int)v[i]->os_index;
        topo->numa[i].memory_bytes =
            (long long)v[i]->attr->numanode.local_memory;
        if (!(topo->numa[i].cpus = bitmap_list (v[i]->cpuset))) {
            free (v);
            return -1;
        }
    }
    free (v);

    /* cores; a topology without Core objects counts each PU as one */
    if ((n = objs_of_type (t, HWLOC_OBJ_CORE, DC_TOPO_MAX_CORES, &v)) < 0)
        return -1;
    if (n == 0 &&
        (n = objs_of_type (t, HWLOC_OBJ_PU, DC_TOPO_MAX_CORES, &v)) < 0)
        return -1;
    if (n > 0 && !(topo->core_cpus = calloc ((size_t)n, sizeof (char *)))) {
        free (v);
        return -1;
    }
    topo->cores = n;
    for (int i = 0; i < n; i++) {
        if (!(topo->core_cpus[i] = bitmap_list (v[i]->cpuset))) {
            free (v);
            return -1;
        }
    }
    free (v);
    return 0;
}

static int check_hwloc_version (dc_error_t *errp)
{
    unsigned v = hwloc_get_api_version ();
    if ((v >> 16) != (HWLOC_API_VERSION >> 16)) {
        errno = ENOTSUP;
        return errprintf (errp,
                          "hwloc: the library is version %u.%u but dcrun was "
                          "built against %u.x\nhint: rebuild dcrun against "
                          "the installed hwloc",
                          v >> 16, (v >> 8) & 0xff, HWLOC_API_VERSION >> 16);
    }
    return 0;
}

/* Load (xml, len) or this host when xml is NULL, and describe it. */
static struct dc_topo *probe (const char *xml, size_t len, const char *name,
                              dc_error_t *errp)
{
    hwloc_topology_t t = NULL;
    struct dc_topo *topo = NULL;
    char *buf = NULL;
    const char *hn;

    if (check_hwloc_version (errp) < 0)
        return NULL;
    if (hwloc_topology_init (&t) < 0) {
        errprintf (errp, "hwloc: cannot initialise a topology");
        return NULL;
    }
    hwloc_topology_set_io_types_filter (t, HWLOC_TYPE_FILTER_KEEP_ALL);
    if (xml) {
        /* hwloc wants a NUL-terminated buffer, its size counting the NUL */
        if (!(buf = malloc (len + 1))) {
            errprintf (errp, "out of memory");
            goto fail;
        }
        memcpy (buf, xml, len);
        buf[len] = '\0';
        if (hwloc_topology_set_xmlbuffer (t, buf, (int)len + 1) < 0) {
            errprintf (errp, "%s: hwloc cannot read this topology", name);
            goto fail;
        }
    }
    errno = 0;
    if (hwloc_topology_load (t) < 0) {
        if (xml)
            errprintf (errp, "%s: hwloc cannot load this topology%s%s", name,
                       errno && errno != EINVAL ? ": " : "",
                       errno && errno != EINVAL ? strerror (errno) : "");
        else
            errprintf (errp, "hwloc: cannot load this host's topology: %s",
                       strerror (errno));
        goto fail;
    }
    if (!(topo = dc_topo_create ()) || host_facts (t, topo) < 0 ||
        find_gpus (t, topo) < 0) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    /* what dc_topo_from_json reads back (a remote probe ships it) */
    if (topo->pus < 1) {
        errno = EINVAL;
        errprintf (errp, "%s: the topology has no PU object", name);
        goto fail;
    }
    for (int i = 0; i < topo->numa_nodes; i++)
        if (topo->numa[i].os_index < 0 || topo->numa[i].os_index > 1 << 20) {
            errno = EINVAL;
            errprintf (errp, "%s: a NUMA node without a valid os_index", name);
            goto fail;
        }
    hn = hwloc_obj_get_info_by_name (hwloc_get_root_obj (t), "HostName");
    if (xml && hn) {
        topo->host = strdup (hn);
    } else if (xml) {
        /* the file's name without its folder and .xml */
        const char *base = strrchr (name, '/');
        size_t l;
        base = base ? base + 1 : name;
        l = strlen (base);
        if (l > 4 && !strcmp (base + l - 4, ".xml"))
            l -= 4;
        topo->host = strndup (base, l);
    } else {
        char h[256] = "";
        if (gethostname (h, sizeof (h) - 1) < 0 || !h[0])
            snprintf (h, sizeof (h), "%s", hn ? hn : "localhost");
        topo->host = strdup (h);
    }
    if (!topo->host) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    hwloc_topology_destroy (t);
    free (buf);
    return topo;
fail:
    dc_topo_destroy (topo);
    if (t)
        hwloc_topology_destroy (t);
    free (buf);
    return NULL;
}

struct dc_topo *dc_probe_xml_buffer (const char *xml, size_t len,
                                     const char *name, dc_error_t *errp)
{
    if (!name)
        name = "topology";
    if (dc_probe_validate_xml (xml, len, name, errp) < 0) {
        errno = EINVAL;
        return NULL;
    }
    return probe (xml, len, name, errp);
}

/* Read a regular file of at most DC_PROBE_MAX_XML bytes. */
static char *read_file (const char *path, size_t *lenp, dc_error_t *errp)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd;

    if ((fd = open (path, O_RDONLY | O_CLOEXEC)) < 0) {
        errprintf (errp, "%s: %s", path, strerror (errno));
        return NULL;
    }
    if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)) {
        errprintf (errp, "%s: not a regular file", path);
        errno = EINVAL;
        goto fail;
    }
    if (st.st_size > DC_PROBE_MAX_XML) {
        errprintf (errp, "%s: larger than %d bytes", path, DC_PROBE_MAX_XML);
        errno = EFBIG;
        goto fail;
    }
    if (!(buf = malloc ((size_t)st.st_size + 1))) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read (fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errprintf (errp, "%s: %s", path, strerror (errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close (fd);
    *lenp = len;
    return buf;
fail:
    free (buf);
    close (fd);
    return NULL;
}

/* ---- CUDA runtime ----------------------------------------------------- */

int dc_probe_cuda_count (dc_error_t *errp)
{
    const struct dc_cudart_module *m = dc_cudart_module_load (errp);

    return m ? m->device_count (errp) : 0;
}

/* Replace the hwloc GPU list by the CUDA runtime's devices (from the CUDA
 * module), each with the locality of the hwloc GPU of the same PCI bus id. */
static int cuda_enrich (const struct dc_cudart_module *m, struct dc_topo *topo,
                        int n)
{
    struct dc_topo *c = dc_topo_create ();

    if (!c)
        return -1;
    for (int i = 0; i < n && i < DC_TOPO_MAX_GPUS; i++) {
        struct dc_cuda_device p;
        struct dc_topo_gpu g = {
            .index = i, .cuda_index = i, .memory_bytes = -1, .numa_node = -1};
        if (m->device_info (i, &p, NULL) < 0) {
            dc_info ("cuda: device %d: cannot read its properties", i);
            continue;
        }
        g.model = p.name;
        g.memory_bytes = p.memory_bytes;
        g.cc_major = p.cc_major;
        g.cc_minor = p.cc_minor;
        g.multiprocessors = p.multiprocessors;
        snprintf (g.pci_bus_id, sizeof (g.pci_bus_id), "%s", p.pci_bus_id);
        for (int j = 0; j < topo->ngpus; j++) {
            if (!strcmp (topo->gpus[j].pci_bus_id, g.pci_bus_id)) {
                g.numa_node = topo->gpus[j].numa_node;
                g.cpus = topo->gpus[j].cpus;
                break;
            }
        }
        if (!g.cpus)
            dc_info ("cuda: device %d (%s): no hwloc PCI device matches, "
                     "locality unknown",
                     i, g.pci_bus_id);
        if (!dc_topo_add_gpu (c, &g)) {
            dc_topo_destroy (c);
            return -1;
        }
    }
    /* swap the GPU lists */
    struct dc_topo_gpu *v = topo->gpus;
    int k = topo->ngpus;
    topo->gpus = c->gpus;
    topo->ngpus = c->ngpus;
    c->gpus = v;
    c->ngpus = k;
    dc_topo_destroy (c);
    return 0;
}

/* Without a CUDA runtime, keep the GPUs a numeric CUDA_VISIBLE_DEVICES
 * names, in its order, renumbered from 0 (what CUDA does with
 * CUDA_DEVICE_ORDER=PCI_BUS_ID).  UUIDs and MIG names are left alone. */
static int apply_visible (struct dc_topo *topo, const char *vis)
{
    struct dc_topo_gpu *v;
    int n = 0;
    const char *s = vis;

    for (const char *q = vis; *q; q++)
        if (!strchr ("0123456789,- ", *q)) {
            dc_info ("CUDA_VISIBLE_DEVICES=%s: not indices, GPUs not "
                     "filtered",
                     vis);
            return 0;
        }
    if (!(v = calloc ((size_t)topo->ngpus + 1, sizeof (*v))))
        return -1;
    while (*s && n < topo->ngpus) {
        char *end;
        long i = strtol (s, &end, 10);
        bool dup = false;
        if (end == s || i < 0 || i >= topo->ngpus)
            break; /* CUDA ignores the rest of the list */
        for (int j = 0; j < n; j++)
            if (v[j].index == (int)i)
                dup = true;
        if (dup)
            break;
        v[n] = topo->gpus[i];
        n++;
        s = end;
        while (*s == ',' || *s == ' ')
            s++;
    }
    for (int i = 0; i < topo->ngpus; i++) {
        bool kept = false;
        for (int j = 0; j < n; j++)
            if (v[j].model == topo->gpus[i].model)
                kept = true;
        if (!kept) {
            free (topo->gpus[i].model);
            free (topo->gpus[i].cpus);
        }
    }
    for (int j = 0; j < n; j++)
        v[j].index = j;
    free (topo->gpus);
    topo->gpus = v;
    topo->ngpus = n;
    return 0;
}

static int enrich_live (struct dc_topo *topo, dc_error_t *errp)
{
    const char *vis = getenv ("CUDA_VISIBLE_DEVICES");
    dc_error_t why = {{0}};
    int n = dc_probe_cuda_count (&why);

    if (vis && !(topo->cuda_visible_devices = strdup (vis)))
        return errprintf (errp, "out of memory");
    if (n == 0) {
        dc_info ("%s", why.text);
        if (vis && apply_visible (topo, vis) < 0)
            return errprintf (errp, "out of memory");
        return 0;
    }
    dc_info ("cuda: %d device%s", n, n == 1 ? "" : "s");
    if (cuda_enrich (dc_cudart_module_load (NULL), topo, n) < 0)
        return errprintf (errp, "out of memory");
    return 0;
}

struct dc_topo *dc_probe_host (const char *xmlfile, dc_error_t *errp)
{
    struct dc_topo *topo;
    char *xml;
    size_t len = 0;

    if (!xmlfile || !xmlfile[0]) {
        const char *e = getenv (DC_PROBE_XML_ENV);
        if (!e || !e[0])
            e = getenv ("HWLOC_XMLFILE");
        xmlfile = e && e[0] ? e : NULL;
    }
    if (xmlfile) {
        if (!(xml = read_file (xmlfile, &len, errp)))
            return NULL;
        topo = dc_probe_xml_buffer (xml, len, xmlfile, errp);
        free (xml);
        return topo;
    }
    if (!(topo = probe (NULL, 0, "localhost", errp)))
        return NULL;
    if (enrich_live (topo, errp) < 0) {
        dc_topo_destroy (topo);
        return NULL;
    }
    return topo;
}
