/* test_probe.c - hwloc probe: fixtures, real topologies, broken files, JSON */
#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "gpu/probe.h"
#include "lib/hosts/topo.h"

#define FIX(name) dc_srcpath ("tests/fixtures/" name)
/* the real topologies, next to the source tree when present */
#define REAL(name) dc_srcpath ("../shared/topologies/" name)

static char *slurp (const char *path, size_t *len)
{
    FILE *f = fopen (path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek (f, 0, SEEK_END);
    n = ftell (f);
    rewind (f);
    buf = malloc ((size_t)n + 1);
    ck_assert_ptr_nonnull (buf);
    ck_assert_int_eq (fread (buf, 1, (size_t)n, f), n);
    buf[n] = '\0';
    fclose (f);
    *len = (size_t)n;
    return buf;
}

static struct dc_topo *probe_ok (const char *path)
{
    dc_error_t err = {{0}};
    struct dc_topo *t = dc_probe_host (path, &err);
    ck_assert_msg (t != NULL, "%s: %s", path, err.text);
    return t;
}

/* ---- the fixtures ---------------------------------------------------- */

START_TEST (t_eight_gpus)
{
    struct dc_topo *t = probe_ok (FIX ("topo-2s-8gpu.xml"));
    static const char *const bus[8] = {
        "0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0",
        "0000:87:00.0", "0000:90:00.0", "0000:b7:00.0", "0000:bd:00.0"};

    ck_assert_str_eq (t->host, "gpu8");
    ck_assert_int_eq (t->packages, 2);
    ck_assert_int_eq (t->numa_nodes, 2);
    ck_assert_int_eq (t->cores, 16);
    ck_assert_int_eq (t->pus, 32);
    ck_assert_int_eq (t->memory_bytes, 64LL << 30);
    ck_assert_str_eq (t->cpus, "0-31");
    ck_assert_str_eq (t->core_cpus[0], "0,16");
    ck_assert_str_eq (t->core_cpus[15], "15,31");
    ck_assert_int_eq (t->numa[1].os_index, 1);
    ck_assert_int_eq (t->numa[1].memory_bytes, 32LL << 30);
    ck_assert_str_eq (t->numa[1].cpus, "8-15,24-31");
    ck_assert_int_eq (t->ngpus, 8); /* NVSwitch and NIC are not GPUs */
    for (int i = 0; i < 8; i++) {
        const struct dc_topo_gpu *g = &t->gpus[i];
        ck_assert_int_eq (g->index, i);
        ck_assert_str_eq (g->model, "NVIDIA A100-SXM4-40GB");
        ck_assert_int_eq (g->memory_bytes, 40LL << 30);
        ck_assert_str_eq (g->pci_bus_id, bus[i]);
        ck_assert_int_eq (g->numa_node, i < 4 ? 0 : 1);
        ck_assert_str_eq (g->cpus, i < 4 ? "0-7,16-23" : "8-15,24-31");
        ck_assert_int_eq (g->cuda_index, -1); /* a file: no runtime */
    }
    ck_assert_ptr_null (t->cuda_visible_devices);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_no_gpu)
{
    struct dc_topo *t = probe_ok (FIX ("topo-nogpu.xml"));
    ck_assert_str_eq (t->host, "cpuonly");
    ck_assert_int_eq (t->ngpus, 0); /* the BMC's VGA is not NVIDIA */
    ck_assert_int_eq (t->cores, 4);
    ck_assert_int_eq (t->pus, 4);
    ck_assert_int_eq (t->packages, 1);
    ck_assert_str_eq (t->cpus, "0-3");
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_pci_only)
{
    struct dc_topo *t = probe_ok (FIX ("topo-pcionly.xml"));
    ck_assert_int_eq (t->ngpus, 3); /* not NVSwitch, audio, Matrox */
    ck_assert_str_eq (t->gpus[0].pci_bus_id, "0000:18:00.0");
    ck_assert_str_eq (t->gpus[1].pci_bus_id, "0000:19:00.0"); /* VGA */
    ck_assert_str_eq (t->gpus[2].pci_bus_id, "0000:86:00.0");
    ck_assert_int_eq (t->gpus[0].numa_node, 0);
    ck_assert_int_eq (t->gpus[2].numa_node, 1);
    ck_assert_str_eq (t->gpus[2].cpus, "4-7");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq (t->gpus[i].memory_bytes, -1);
        ck_assert_ptr_nonnull (strstr (t->gpus[i].model, "NVIDIA GPU [10de:"));
    }
    dc_topo_destroy (t);
}
END_TEST

/* ---- broken files: an error with the file's position, never a crash ---- */

static const struct {
    const char *file;
    const char *msg;
} bad_files[] = {
    {"topo-bad-truncated.xml", "topo-bad-truncated.xml:28:"},
    {"topo-bad-nocompletecpuset.xml", ":10:1: Core object without "
                                      "complete_cpuset"},
    {"topo-bad-notxml.xml", "topo-bad-notxml.xml:1:1:"},
    {"topo-bad-version3.xml", "version 3.0 is not supported"},
    /* the review's reproducers: hwloc aborted or read past the end */
    {"topo-comma.xml", "topo-comma.xml:4:1: cpuset: invalid bitmap ',0x1'"},
    {"topo-assert.xml", "topo-assert.xml:20:1: complete_cpuset: invalid "
                        "bitmap ',0x20000000'"},
    {"topo-empty-cpuset.xml", "topo-empty-cpuset.xml:4:1: cpuset: invalid "
                              "bitmap ''"},
    {"topo-utf7.xml", "topo-utf7.xml:10:"},
    {"does-not-exist.xml", "No such file or directory"},
};

START_TEST (t_bad_files)
{
    dc_error_t err = {{0}};
    const char *path = FIX ("");
    char buf[4096];

    snprintf (buf, sizeof (buf), "%s%s", path, bad_files[_i].file);
    ck_assert_ptr_null (dc_probe_host (buf, &err));
    ck_assert_msg (strstr (err.text, bad_files[_i].msg) != NULL,
                   "%s: '%s' lacks '%s'", bad_files[_i].file, err.text,
                   bad_files[_i].msg);
}
END_TEST

START_TEST (t_not_regular)
{
    dc_error_t err = {{0}};
    ck_assert_ptr_null (dc_probe_host (dc_srcpath ("tests"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "not a regular file"));
}
END_TEST

#define MACHINE                                                                \
    "<object type=\"Machine\" os_index=\"0\" cpuset=\"0x1\" "                  \
    "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\">"        \
    "<object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x1\" "                 \
    "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\" "        \
    "local_memory=\"1073741824\"/>"                                            \
    "<object type=\"PU\" os_index=\"0\" cpuset=\"0x1\" "                       \
    "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\"/>"

#define TOPO_SET(attr, value)                                                  \
    "<topology version=\"2.0\"><object type=\"Machine\" os_index=\"0\" "       \
    "cpuset=\"0x1\" complete_cpuset=\"0x1\" nodeset=\"0x1\" "                  \
    "complete_nodeset=\"0x1\" " attr "=\"" value "\">"                         \
    "<object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x1\" "                 \
    "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\" "        \
    "local_memory=\"1073741824\"/>"                                            \
    "<object type=\"PU\" os_index=\"0\" cpuset=\"0x1\" "                       \
    "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\"/>"       \
    "</object></topology>"

static const struct {
    const char *xml; /* NULL: a NULL buffer */
    int ok;
    const char *msg;
} buffers[] = {
    {NULL, 0, "empty"},
    {"", 0, "empty"},
    {"<", 0, ":1:"},
    {"\x01\x02\xff\xfe", 0, ":1:"},
    {"<topology/>", 0, "expected one Machine object, found none"},
    {"<foo><object type=\"Machine\"/></foo>", 0, "root element <foo>"},
    {"<topology version=\"3.0\">" MACHINE "</object></topology>", 0,
     "version 3.0"},
    {"<topology version=\"x\">" MACHINE "</object></topology>", 0, "version x"},
    {"<topology version=\"2.0\">" MACHINE "</object></topology>", 1, NULL},
    {"<topology version=\"2.0\"><object type=\"Machine\" os_index=\"0\" "
     "cpuset=\"0x1\" complete_cpuset=\"0x1\" nodeset=\"0x1\" "
     "complete_nodeset=\"0x1\"/></topology>",
     0, "no NUMANode object"},
    {"<topology>" MACHINE "</object></topology>", 1, NULL},
    {"<topology version=\"2.0\">" MACHINE "</object>" MACHINE
     "</object></topology>",
     0, "found several"},
    {"<topology version=\"2.0\"><object type=\"Machine\" cpuset=\"0x1\" "
     "complete_cpuset=\"0x1\" nodeset=\"0x1\"/></topology>",
     0, "Machine object without complete_nodeset"},
    {"<topology version=\"2.0\"><object type=\"Machine\" cpuset=\"zz\" "
     "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\"/>"
     "</topology>",
     0, "cpuset: invalid bitmap 'zz'"},
    {"<topology version=\"2.0\">" MACHINE "<object cpuset=\"0x1\"/>"
     "</object></topology>",
     0, "object without a type"},
    {"<topology version=\"2.0\">" MACHINE
     "<object type=\"PCIDev\" pci_busid=\"0000:01:00.0\" "
     "pci_type=\"0302 [10de:1db8] [10de:131d] a1\"/></object></topology>",
     1, NULL},
    {"<!DOCTYPE t [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;"
     "&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
     "<topology version=\"2.0\">" MACHINE "<info name=\"x\" value=\"&c;\"/>"
     "</object></topology>",
     0, "DOCTYPE declarations are not supported"},
    {"<topology version=\"2.0\">" MACHINE "<info name=\"a&amp;b\" "
     "value=\"&lt;&#65;&gt;\"/></object></topology>",
     0, "hwloc cannot load this topology"},
    {"<topology version=\"2.0\">" MACHINE "</object>", 0, ":1:"},
    /* bitmaps: what hwloc writes is accepted, nothing else reaches it */
    {TOPO_SET ("allowed_cpuset", "0x00000001"), 1, NULL},
    {TOPO_SET ("allowed_cpuset", "0xf...f"), 1, NULL},
    {TOPO_SET ("allowed_cpuset", "0xf...f,0x1"), 1, NULL},
    {TOPO_SET ("allowed_nodeset", "0x00000000,0x1"), 1, NULL},
    /* valid, but node 32 alone: hwloc refuses it without crashing */
    {TOPO_SET ("allowed_nodeset", "0x1,0x00000000"), 0, "hwloc cannot load"},
    {TOPO_SET ("allowed_cpuset", ",0x1"), 0, "allowed_cpuset: invalid"},
    {TOPO_SET ("allowed_cpuset", ""), 0, "allowed_cpuset: invalid"},
    {TOPO_SET ("allowed_cpuset", "0x1,"), 0, "allowed_cpuset: invalid"},
    {TOPO_SET ("allowed_cpuset", "0x00000000,,0x1"), 1, NULL}, /* power8 */
    {TOPO_SET ("allowed_cpuset", "0x1,,"), 0, "allowed_cpuset: invalid"},
    {TOPO_SET ("allowed_cpuset", ",,0x1"), 0, "allowed_cpuset: invalid"},
    {TOPO_SET ("allowed_cpuset", "0x1,0x,0x1"), 0, "invalid"},
    {TOPO_SET ("allowed_cpuset", "0x"), 0, "allowed_cpuset: invalid"},
    {TOPO_SET ("allowed_cpuset", "0x123456789"), 0, "invalid bitmap"},
    {TOPO_SET ("allowed_cpuset", " 0x1"), 0, "invalid bitmap"},
    {TOPO_SET ("allowed_cpuset", "-1"), 0, "invalid bitmap"},
    {TOPO_SET ("allowed_cpuset", "0xf...f,"), 0, "invalid bitmap"},
    {TOPO_SET ("allowed_cpuset", "0xf...fx"), 0, "invalid bitmap"},
    {TOPO_SET ("allowed_nodeset", "0x1;"), 0, "allowed_nodeset: invalid"},
    {TOPO_SET ("online_cpuset", ","), 0, "online_cpuset: invalid"},
    {"<topology version=\"2.0\">" MACHINE "</object><cpukind cpuset=\"\"/>"
     "</topology>",
     0, "cpuset: invalid bitmap ''"},
    {"<topology version=\"2.0\">" MACHINE "</object><memattr name=\"x\" "
     "flags=\"5\"><memattr_value target_obj_gp_index=\"1\" "
     "target_obj_type=\"NUMANode\" value=\"1\" initiator_cpuset=\",1\"/>"
     "</memattr></topology>",
     0, "initiator_cpuset: invalid"},
    {"<topology version=\"2.0\">" MACHINE "</object><distances2 "
     "type=\"NUMANode\" nbobjs=\"4294967295\" kind=\"5\" "
     "indexing=\"os\"/></topology>",
     0, "nbobjs"},
    /* what the probe could not ship to the head node (fuzz finds) */
    {"<topology version=\"2.0\"><object type=\"Machine\" os_index=\"0\" "
     "cpuset=\"0x1\" complete_cpuset=\"0x1\" nodeset=\"0x1\" "
     "complete_nodeset=\"0x1\"><object type=\"NUMANode\" os_index=\"0\" "
     "cpuset=\"0x1\" complete_cpuset=\"0x1\" nodeset=\"0x1\" "
     "complete_nodeset=\"0x1\" local_memory=\"1\"/></object></topology>",
     0, "no PU object"},
    {"<topology version=\"2.0\"><object type=\"Machine\" os_index=\"0\" "
     "cpuset=\"0x1\" complete_cpuset=\"0x1\" nodeset=\"0x1\" "
     "complete_nodeset=\"0x1\"><object type=\"NUMANode\" "
     "cpuset=\"0x1\" complete_cpuset=\"0x1\" nodeset=\"0x1\" "
     "complete_nodeset=\"0x1\" local_memory=\"1\"/><object type=\"PU\" "
     "os_index=\"0\" cpuset=\"0x1\" complete_cpuset=\"0x1\" "
     "nodeset=\"0x1\" complete_nodeset=\"0x1\"/></object></topology>",
     0, "NUMANode object without an os_index"},
    {"<topology version=\"2.0\">" MACHINE "<object type=\"PU\" "
     "os_index=\"4294967295\" cpuset=\"0x1\" complete_cpuset=\"0x1\" "
     "nodeset=\"0x1\" complete_nodeset=\"0x1\"/></object></topology>",
     0, "PU object without an os_index from 0 to 1048576 ('4294967295')"},
    {"<topology version=\"2.0\">" MACHINE "<object type=\"PU\" "
     "os_index=\"1x\" cpuset=\"0x1\" complete_cpuset=\"0x1\" "
     "nodeset=\"0x1\" complete_nodeset=\"0x1\"/></object></topology>",
     0, "PU object without an os_index"},
    {"<topology version=\"2.0\"><object type=\"Machine\" os_index=\"0\" "
     "cpuset=\"\" complete_cpuset=\"0x1\" nodeset=\"0x1\" "
     "complete_nodeset=\"0x1\"/></topology>",
     0, ":1:1: cpuset: invalid bitmap ''"},
};

START_TEST (t_buffers)
{
    dc_error_t err = {{0}};
    const char *x = buffers[_i].xml;
    size_t len = x ? strlen (x) : 0;
    struct dc_topo *t = dc_probe_xml_buffer (x, len, "buf.xml", &err);

    if (buffers[_i].ok) {
        ck_assert_msg (t != NULL, "case %d: %s", _i, err.text);
        ck_assert_int_eq (t->pus, 1);
        ck_assert_str_eq (t->host, "buf");
    } else {
        ck_assert_msg (t == NULL, "case %d accepted", _i);
        ck_assert_msg (strstr (err.text, buffers[_i].msg) != NULL,
                       "case %d: '%s' lacks '%s'", _i, err.text,
                       buffers[_i].msg);
    }
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_deeply_nested)
{
    size_t n = 2000, len = 0;
    char *x = malloc (n * 40 + 2000);
    dc_error_t err = {{0}};

    len += sprintf (x + len, "<topology version=\"2.0\">" MACHINE);
    for (size_t i = 0; i < n; i++)
        len += sprintf (x + len, "<object type=\"Misc\">");
    for (size_t i = 0; i < n; i++)
        len += sprintf (x + len, "</object>");
    len += sprintf (x + len, "</object></topology>");
    ck_assert_ptr_null (dc_probe_xml_buffer (x, len, "deep.xml", &err));
    ck_assert_str_ne (err.text, "");
    free (x);
}
END_TEST

/* Remove attributes of the 8-GPU fixture, one at a time (the first few
 * occurrences of each name, to stay quick): hwloc must never see a file it
 * crashes on (Check reports a crash as an error). */
START_TEST (t_attribute_removal)
{
    static const char *const names[] = {
        "cpuset",    "complete_cpuset", "nodeset",    "complete_nodeset",
        "type",      "os_index",        "gp_index",   "local_memory",
        "pci_busid", "pci_type",        "osdev_type", "name",
        "value",     "bridge_type",     "bridge_pci", "depth",
        "version",   "subtype",         NULL};
    size_t len;
    char *x = slurp (FIX ("topo-2s-8gpu.xml"), &len);
    int tried = 0, refused = 0;

    ck_assert_ptr_nonnull (x);
    for (int k = 0; names[k]; k++) {
        char key[64];
        const char *p = x;
        snprintf (key, sizeof (key), " %s=\"", names[k]);
        for (int occ = 0; occ < 6 && (p = strstr (p, key)); occ++, p++) {
            const char *end = strchr (p + strlen (key), '"');
            size_t cut = (size_t)(end + 1 - p);
            char *y = malloc (len);
            dc_error_t err = {{0}};
            struct dc_topo *t;

            ck_assert_ptr_nonnull (end);
            memcpy (y, x, (size_t)(p - x));
            memcpy (y + (p - x), end + 1, len - (size_t)(end + 1 - x));
            t = dc_probe_xml_buffer (y, len - cut, "cut.xml", &err);
            tried++;
            if (!t) {
                refused++;
                ck_assert_str_ne (err.text, "");
            }
            dc_topo_destroy (t);
            free (y);
        }
    }
    ck_assert_int_ge (tried, 80);
    ck_assert_int_ge (refused, 24); /* the cpusets, nodesets, types */
    free (x);
}
END_TEST

/* A malformed document validated after a topology was loaded: libxml2's
 * error handler must not point into hwloc's plugin, unloaded with that
 * topology (SIGSEGV before; Check reports a crash as an error). */
START_TEST (t_second_document)
{
    size_t len;
    char *utf7 = slurp (FIX ("topo-utf7.xml"), &len);
    dc_error_t err = {{0}};

    ck_assert_ptr_nonnull (utf7);
    for (int i = 0; i < 3; i++) {
        struct dc_topo *t = probe_ok (FIX ("topo-nogpu.xml"));
        dc_topo_destroy (t);
        ck_assert_int_eq (dc_probe_validate_xml (utf7, len, "u.xml", &err), -1);
        ck_assert_msg (strstr (err.text, "u.xml:10:"), "%s", err.text);
        ck_assert_ptr_null (dc_probe_xml_buffer (utf7, len, "u.xml", &err));
        ck_assert_ptr_null (dc_probe_host (FIX ("topo-comma.xml"), &err));
        ck_assert_ptr_nonnull (strstr (err.text, "invalid bitmap"));
    }
    free (utf7);
}
END_TEST

/* Counts are never negative, whatever depths hwloc puts objects at. */
START_TEST (t_counts)
{
    static const char *const files[] = {"topo-2s-8gpu.xml", "topo-nogpu.xml",
                                        "topo-pcionly.xml", NULL};
    for (int f = 0; files[f]; f++) {
        char path[4096];
        snprintf (path, sizeof (path), "%s%s", dc_srcpath ("tests/fixtures/"),
                  files[f]);
        struct dc_topo *t = probe_ok (path);
        ck_assert_int_ge (t->packages, 1);
        ck_assert_int_ge (t->numa_nodes, 1);
        ck_assert_int_ge (t->cores, 1);
        ck_assert_int_ge (t->pus, t->cores);
        ck_assert_int_ge (t->ngpus, 0);
        char *j = dc_topo_to_json (t, 0);
        ck_assert_ptr_null (strstr (j, ":-1"));
        free (j);
        dc_topo_destroy (t);
    }
}
END_TEST

/* ---- the real topologies of ../shared (skipped when absent) ---------- */

/* Package (os_index) whose subtree holds the PCI device of bus id, from the
 * file's text: the last Package opened before it. */
static int package_in_file (const char *xml, const char *bus)
{
    char key[64];
    const char *at, *p = xml;
    int pkg = -1;

    snprintf (key, sizeof (key), "pci_busid=\"%s\"", bus);
    at = strstr (xml, key);
    ck_assert_msg (at != NULL, "%s not in the file", bus);
    while ((p = strstr (p, "<object type=\"Package\" os_index=\"")) && p < at) {
        pkg = atoi (p + strlen ("<object type=\"Package\" os_index=\""));
        p++;
    }
    return pkg;
}

START_TEST (t_real_dgx2)
{
    const char *path = REAL ("nvidia-dgx2-16xV100.xml");
    size_t len;
    char *xml;
    int per_pkg[2] = {0, 0};

    if (access (path, R_OK) != 0) {
        printf ("# skipped: %s not present\n", path);
        return;
    }
    struct dc_topo *t = probe_ok (path);
    xml = slurp (path, &len);
    ck_assert_int_eq (t->ngpus, 16); /* 12 NVSwitches left out */
    ck_assert_int_eq (t->packages, 2);
    for (int i = 0; i < t->ngpus; i++) {
        const struct dc_topo_gpu *g = &t->gpus[i];
        int pkg = package_in_file (xml, g->pci_bus_id);
        ck_assert_int_ge (pkg, 0);
        per_pkg[pkg]++;
        /* NUMA node os_index equals the package's in this file */
        ck_assert_int_eq (g->numa_node, pkg);
        ck_assert_str_eq (g->cpus, pkg == 0 ? "0-1" : "24-25");
        ck_assert_str_eq (g->model, "Tesla V100-SXM3-32GB-H");
        ck_assert_int_eq (g->memory_bytes, -1); /* NVML gives no memory */
    }
    ck_assert_int_eq (per_pkg[0], 8);
    ck_assert_int_eq (per_pkg[1], 8);
    free (xml);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_real_power8)
{
    const char *path = REAL ("ibm-power8-4xP100.xml");
    size_t len;
    char *xml;

    if (access (path, R_OK) != 0) {
        printf ("# skipped: %s not present\n", path);
        return;
    }
    struct dc_topo *t = probe_ok (path);
    xml = slurp (path, &len);
    /* CUDA, OpenCL and NVML devices of one GPU count once */
    ck_assert_int_eq (t->ngpus, 4);
    for (int i = 0; i < 4; i++) {
        const struct dc_topo_gpu *g = &t->gpus[i];
        int pkg = package_in_file (xml, g->pci_bus_id);
        ck_assert_int_eq (g->numa_node, pkg);
        ck_assert_int_eq (g->numa_node, i < 2 ? 0 : 1);
        ck_assert_str_eq (g->model, "Tesla P100-SXM2-16GB");
        ck_assert_int_eq (g->memory_bytes, 16671616LL * 1024);
        ck_assert_str_eq (g->cpus, t->numa[g->numa_node].cpus);
    }
    free (xml);
    dc_topo_destroy (t);
}
END_TEST

/* ---- this host, the environment -------------------------------------- */

START_TEST (t_live)
{
    dc_error_t err = {{0}};
    struct dc_topo *t;

    unsetenv (DC_PROBE_XML_ENV);
    unsetenv ("HWLOC_XMLFILE");
    t = dc_probe_host (NULL, &err);
    ck_assert_msg (t != NULL, "%s", err.text);
    ck_assert_int_ge (t->pus, 1);
    ck_assert_int_ge (t->cores, 1);
    ck_assert_int_le (t->cores, t->pus);
    ck_assert_int_eq (t->pus, sysconf (_SC_NPROCESSORS_ONLN));
    ck_assert_int_gt (t->memory_bytes, 0);
    ck_assert_str_ne (t->host, "");
    /* the GPU count agrees with the CUDA runtime when it sees devices */
    int n = dc_probe_cuda_count (&err);
    if (n > 0)
        ck_assert_int_eq (t->ngpus, n);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_env)
{
    dc_error_t err = {{0}};
    struct dc_topo *t;

    setenv (DC_PROBE_XML_ENV, FIX ("topo-pcionly.xml"), 1);
    t = dc_probe_host (NULL, &err);
    ck_assert_ptr_nonnull (t);
    ck_assert_str_eq (t->host, "pcigpu");
    dc_topo_destroy (t);
    /* an explicit file wins over the variable */
    t = dc_probe_host (FIX ("topo-nogpu.xml"), &err);
    ck_assert_str_eq (t->host, "cpuonly");
    dc_topo_destroy (t);
    /* hwloc's own variable is checked too */
    unsetenv (DC_PROBE_XML_ENV);
    setenv ("HWLOC_XMLFILE", FIX ("topo-bad-nocompletecpuset.xml"), 1);
    ck_assert_ptr_null (dc_probe_host (NULL, &err));
    ck_assert_ptr_nonnull (strstr (err.text, "without complete_cpuset"));
    unsetenv ("HWLOC_XMLFILE");
}
END_TEST

START_TEST (t_versions)
{
    char want[32];
    snprintf (want, sizeof (want), "hwloc %d.", HWLOC_API_VERSION >> 16);
    ck_assert_ptr_nonnull (strstr (dc_probe_hwloc_version (), want));
}
END_TEST

/* ---- JSON ------------------------------------------------------------ */

START_TEST (t_json_roundtrip)
{
    static const char *const files[] = {"topo-2s-8gpu.xml", "topo-nogpu.xml",
                                        "topo-pcionly.xml"};
    for (int f = 0; f < 3; f++) {
        char path[4096];
        snprintf (path, sizeof (path), "%s", dc_srcpath ("tests/fixtures/"));
        strncat (path, files[f], sizeof (path) - strlen (path) - 1);
        struct dc_topo *t = probe_ok (path), *u;
        dc_error_t err = {{0}};
        for (int full = 0; full < 2; full++) {
            char *a = dc_topo_to_json (t, full ? DC_TOPO_JSON_FULL : 0), *b;
            ck_assert_ptr_nonnull (a);
            u = dc_topo_from_json (a, strlen (a), "json", &err);
            ck_assert_msg (u != NULL, "%s", err.text);
            b = dc_topo_to_json (u, full ? DC_TOPO_JSON_FULL : 0);
            ck_assert_str_eq (a, b);
            ck_assert_int_eq (u->ngpus, t->ngpus);
            if (full)
                ck_assert_ptr_nonnull (u->core_cpus);
            else
                ck_assert_ptr_null (u->core_cpus);
            free (a);
            free (b);
            dc_topo_destroy (u);
        }
        dc_topo_destroy (t);
    }
}
END_TEST

START_TEST (t_json_schema)
{
    struct dc_topo *t = probe_ok (FIX ("topo-pcionly.xml"));
    char *s = dc_topo_to_json (t, 0);
    const char *want =
        "{\"host\":\"pcigpu\",\"packages\":2,\"numa_nodes\":2,\"cores\":8,"
        "\"pus\":8,\"memory_bytes\":17179869184,\"gpus\":[{\"index\":0,"
        "\"model\":\"NVIDIA GPU [10de:1db4]\",\"memory_bytes\":null,"
        "\"pci_bus_id\":\"0000:18:00.0\",\"numa_node\":0,\"cpus\":\"0-3\"},";
    ck_assert_msg (!strncmp (s, want, strlen (want)), "%s", s);
    free (s);
    dc_topo_destroy (t);
}
END_TEST

static const struct {
    const char *json;
    const char *msg;
} bad_json[] = {
    {"", "empty"},
    {"[]", "not a JSON object"},
    {"{\"host\": 1}", "\"host\": expected a string"},
    {"{\"host\":\"a\",\"packages\":-1}", "\"packages\""},
    {"{\"host\":\"a\",\"packages\":1.5}", "\"packages\""},
    {"{\"host\":\"a\",\"packages\":1,\"numa_nodes\":1,\"cores\":1e300}",
     "\"cores\""},
    {"{\"host\":\"a\",\"packages\":1,\"numa_nodes\":1,\"cores\":1,\"pus\":1,"
     "\"memory_bytes\":1}",
     "\"gpus\": expected an array"},
    {"{\"host\":\"a\",\"packages\":1,\"numa_nodes\":1,\"cores\":1,\"pus\":1,"
     "\"memory_bytes\":1,\"gpus\":[1]}",
     "expected objects"},
    {"{\"host\":\"a\",\"packages\":1,\"numa_nodes\":1,\"cores\":1,\"pus\":1,"
     "\"memory_bytes\":1,\"gpus\":[{\"index\":0,\"model\":\"m\",\"memory_"
     "bytes\":null,\"pci_bus_id\":null,\"numa_node\":null,\"cpus\":null},"
     "{\"index\":0,\"model\":\"m\",\"memory_bytes\":null,\"pci_bus_id\":null,"
     "\"numa_node\":null,\"cpus\":null}]}",
     "GPU index 0 given twice"},
    {"{\"host\":\"a\",\"packages\":1,\"numa_nodes\":1,\"cores\":2,\"pus\":1,"
     "\"memory_bytes\":1,\"gpus\":[],\"core_cpus\":[\"0\"]}",
     "\"core_cpus\": expected 2 strings"},
    {"{\"host\":\"a\",\"packages\":1,\"numa_nodes\":1,\"cores\":1,\"pus\":1,"
     "\"memory_bytes\":1,\"gpus\":[{\"index\":0,\"model\":\"m\",\"memory_"
     "bytes\":null,\"pci_bus_id\":\"0000:00:00.00000000000000000000000000000"
     "0000\",\"numa_node\":null,\"cpus\":null}]}",
     "too long"},
};

START_TEST (t_json_bad)
{
    dc_error_t err = {{0}};
    const char *s = bad_json[_i].json;

    errno = 0;
    ck_assert_ptr_null (dc_topo_from_json (s, strlen (s), "j", &err));
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_msg (strstr (err.text, bad_json[_i].msg) != NULL,
                   "case %d: '%s' lacks '%s'", _i, err.text, bad_json[_i].msg);
}
END_TEST

START_TEST (t_null)
{
    dc_error_t err = {{0}};
    dc_topo_destroy (NULL);
    ck_assert_ptr_null (dc_topo_to_json (NULL, 0));
    ck_assert_ptr_null (dc_topo_from_json (NULL, 10, NULL, &err));
    ck_assert_ptr_null (dc_topo_add_gpu (NULL, NULL));
    ck_assert_int_eq (dc_topo_find_gpu (NULL, 0), -1);
    ck_assert_int_eq (dc_probe_validate_xml (NULL, 0, NULL, &err), -1);
    ck_assert_int_ge (dc_probe_cuda_count (NULL), 0);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("probe");
    TCase *tc = tcase_create ("fixtures");
    tcase_add_test (tc, t_eight_gpus);
    tcase_add_test (tc, t_no_gpu);
    tcase_add_test (tc, t_pci_only);
    tcase_add_loop_test (tc, t_bad_files, 0,
                         sizeof (bad_files) / sizeof (bad_files[0]));
    tcase_add_test (tc, t_not_regular);
    tcase_add_loop_test (tc, t_buffers, 0,
                         sizeof (buffers) / sizeof (buffers[0]));
    tcase_add_test (tc, t_deeply_nested);
    tcase_add_test (tc, t_attribute_removal);
    tcase_add_test (tc, t_second_document);
    tcase_add_test (tc, t_counts);
    tcase_add_test (tc, t_real_dgx2);
    tcase_add_test (tc, t_real_power8);
    tcase_add_test (tc, t_live);
    tcase_add_test (tc, t_env);
    tcase_add_test (tc, t_versions);
    tcase_add_test (tc, t_json_roundtrip);
    tcase_add_test (tc, t_json_schema);
    tcase_add_loop_test (tc, t_json_bad, 0,
                         sizeof (bad_json) / sizeof (bad_json[0]));
    tcase_add_test (tc, t_null);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
