/* test_topo_text.c - a topology as `dcrun probe` prints it (topo_text.h)
 *
 * Hand-made topologies, each text byte for byte: a host without GPUs (its
 * NUMA nodes, CUDA_VISIBLE_DEVICES), GPUs as hwloc sees them (unknowns as
 * "-"), GPUs the CUDA runtime saw (the CC and SMS columns), another name;
 * listings of several hosts as text and JSON with a host not probed (the
 * reason's first line only, a hostile name kept as a JSON string), and
 * NULL or empty input.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "lib/hosts/topo_text.h"

static struct dc_topo_numa numa[2] = {
    {.os_index = 0, .memory_bytes = 3LL << 30, .cpus = "0-3"},
    {.os_index = 1, .memory_bytes = 512LL << 20, .cpus = NULL},
};

static struct dc_topo plain = {
    .host = "n1",
    .packages = 1,
    .numa_nodes = 2,
    .cores = 4,
    .pus = 8,
    .memory_bytes = (7LL << 30) / 2,
    .cpus = "0-7",
    .numa = numa,
    .cuda_visible_devices = "",
};

static struct dc_topo_gpu hw_gpus[2] = {
    {.index = 0,
     .model = "NVIDIA A100",
     .memory_bytes = 40LL << 30,
     .pci_bus_id = "0000:07:00.0",
     .numa_node = 0,
     .cpus = "0-3",
     .cuda_index = -1},
    {.index = 1,
     .model = "GPU",
     .memory_bytes = -1,
     .numa_node = -1,
     .cuda_index = -1},
};

static struct dc_topo hw = {
    .host = "g1",
    .packages = 2,
    .numa_nodes = 1,
    .cores = 1,
    .pus = 1,
    .memory_bytes = 1LL << 20,
    .gpus = hw_gpus,
    .ngpus = 2,
};

static struct dc_topo_gpu cuda_gpus[2] = {
    {.index = 0,
     .model = "H200",
     .memory_bytes = 140LL << 30,
     .pci_bus_id = "0000:1a:00.0",
     .numa_node = 1,
     .cpus = "8-15",
     .cuda_index = 0,
     .cc_major = 9,
     .cc_minor = 0,
     .multiprocessors = 132},
    {.index = 1,
     .model = "T4",
     .memory_bytes = 16LL << 30,
     .numa_node = -1,
     .cuda_index = -1},
};

static struct dc_topo cuda = {
    .host = "c1",
    .packages = 1,
    .numa_nodes = 1,
    .cores = 16,
    .pus = 16,
    .memory_bytes = 64LL << 30,
    .cpus = "0-15",
    .gpus = cuda_gpus,
    .ngpus = 2,
};

static void expect_text (const struct dc_topo *t, const char *host,
                         const char *want)
{
    char *s = dc_topo_to_text (t, host);
    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (s, want);
    free (s);
}

START_TEST (test_no_gpu)
{
    expect_text (&plain, NULL,
                 "n1: no GPU\n"
                 "n1: 1 package, 2 NUMA nodes, 4 cores, 8 PUs (cpus 0-7), "
                 "3.5 GiB memory\n"
                 "  numa 0: 3.0 GiB, cpus 0-3\n"
                 "  numa 1: 512.0 MiB, cpus -\n"
                 "  CUDA_VISIBLE_DEVICES=\n");
}
END_TEST

START_TEST (test_hwloc_gpus)
{
    expect_text (&hw, "other",
                 "GPU  MODEL                        MEMORY     PCI BUS ID    "
                 "NUMA  CPUS\n"
                 "0    NVIDIA A100                  40.0 GiB   0000:07:00.0  "
                 "0     0-3\n"
                 "1    GPU                          -          -             "
                 "-     -\n"
                 "other: 2 packages, 1 NUMA node, 1 core, 1 PU (cpus -), "
                 "1.0 MiB memory\n");
}
END_TEST

START_TEST (test_cuda_gpus)
{
    expect_text (&cuda, NULL,
                 "GPU  MODEL                        MEMORY     PCI BUS ID    "
                 "NUMA  CC    SMS  CPUS\n"
                 "0    H200                         140.0 GiB  0000:1a:00.0  "
                 "1     9.0   132  8-15\n"
                 "1    T4                           16.0 GiB   -             "
                 "-     -     0    -\n"
                 "c1: 1 package, 1 NUMA node, 16 cores, 16 PUs (cpus 0-15), "
                 "64.0 GiB memory\n");
}
END_TEST

START_TEST (test_list_text)
{
    struct dc_topo_entry e[3] = {
        {"a", &plain, NULL},
        {"b", NULL, "cannot resolve\nhint: check the name"},
        {"c", NULL, NULL},
    };
    char *s = dc_topo_list_text (e, 3);
    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (s, "a: no GPU\n"
                         "a: 1 package, 2 NUMA nodes, 4 cores, 8 PUs (cpus "
                         "0-7), 3.5 GiB memory\n"
                         "  numa 0: 3.0 GiB, cpus 0-3\n"
                         "  numa 1: 512.0 MiB, cpus -\n"
                         "  CUDA_VISIBLE_DEVICES=\n"
                         "\n"
                         "b: not probed: cannot resolve\nhint: check the name\n"
                         "\n"
                         "c: not probed: \n");
    free (s);
}
END_TEST

START_TEST (test_list_json)
{
    struct dc_topo_entry e[2] = {
        {"as \"listed\"", &hw, "ignored"},
        {"b", NULL, "timeout\nhint: more"},
    };
    char *s = dc_topo_list_json (e, 2);
    ck_assert_ptr_nonnull (s);
    cJSON *o = cJSON_Parse (s);
    ck_assert_ptr_nonnull (o);
    cJSON *arr = cJSON_GetObjectItemCaseSensitive (o, "hosts");
    ck_assert_int_eq (cJSON_GetArraySize (arr), 2);
    cJSON *h0 = cJSON_GetArrayItem (arr, 0), *h1 = cJSON_GetArrayItem (arr, 1);
    /* the name as listed, in the first place, and the topology's members */
    ck_assert_str_eq (h0->child->string, "host");
    ck_assert_str_eq (h0->child->valuestring, "as \"listed\"");
    ck_assert_int_eq (
        cJSON_GetArraySize (cJSON_GetObjectItemCaseSensitive (h0, "gpus")), 2);
    ck_assert_ptr_null (cJSON_GetObjectItemCaseSensitive (h0, "error"));
    ck_assert_str_eq (
        cJSON_GetObjectItemCaseSensitive (h1, "host")->valuestring, "b");
    ck_assert_str_eq (
        cJSON_GetObjectItemCaseSensitive (h1, "error")->valuestring, "timeout");
    cJSON_Delete (o);
    free (s);
}
END_TEST

START_TEST (test_null_empty)
{
    struct dc_topo_entry bad[1] = {{NULL, &plain, NULL}};
    char *s;

    errno = 0;
    ck_assert_ptr_null (dc_topo_to_text (NULL, "x"));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (dc_topo_list_text (NULL, 1));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (dc_topo_list_json (NULL, 1));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (dc_topo_list_json (bad, 1));
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_ptr_null (dc_topo_list_text (bad, 1));
    s = dc_topo_list_text (NULL, 0);
    ck_assert_str_eq (s, "");
    free (s);
    s = dc_topo_list_json (NULL, 0);
    ck_assert_str_eq (s, "{\"hosts\":[]}");
    free (s);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("topo_text");
    TCase *tc = tcase_create ("text");

    tcase_add_test (tc, test_no_gpu);
    tcase_add_test (tc, test_hwloc_gpus);
    tcase_add_test (tc, test_cuda_gpus);
    tcase_add_test (tc, test_list_text);
    tcase_add_test (tc, test_list_json);
    tcase_add_test (tc, test_null_empty);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
