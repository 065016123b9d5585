/* fuzz_topo.c - saved hwloc topologies: validation, then hwloc itself
 * (only what passed validation reaches it).  A real topology is loaded
 * first, so that libxml2's error handler has been set by hwloc's plugin
 * (and the plugin unloaded) before any input is parsed. */
#include "fuzz.h"
#include "gpu/probe.h"

static const char first[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<topology version=\"2.0\">"
    "<object type=\"Machine\" os_index=\"0\" cpuset=\"0x1\" "
    "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\">"
    "<object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x1\" "
    "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\" "
    "local_memory=\"1073741824\"/><object type=\"PU\" os_index=\"0\" "
    "cpuset=\"0x1\" complete_cpuset=\"0x1\" nodeset=\"0x1\" "
    "complete_nodeset=\"0x1\"/></object></topology>\n";

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static int loaded;
    dc_error_t err;

    if (!loaded++) {
        struct dc_topo *t =
            dc_probe_xml_buffer (first, sizeof (first) - 1, "first", &err);
        if (!t)
            abort ();
        dc_topo_destroy (t);
    }
    struct dc_topo *t =
        dc_probe_xml_buffer ((const char *)data, size, "fuzz.xml", &err);
    if (t) {
        if (t->packages < 0 || t->numa_nodes < 0 || t->cores < 0 ||
            t->pus < 0 || t->ngpus < 0)
            abort ();
        char *j = dc_topo_to_json (t, DC_TOPO_JSON_FULL);
        if (j) {
            struct dc_topo *u = dc_topo_from_json (j, strlen (j), "j", &err);
            if (!u)
                abort (); /* what we write, we read */
            dc_topo_destroy (u);
        }
        free (j);
        dc_topo_destroy (t);
    }
    return 0;
}
