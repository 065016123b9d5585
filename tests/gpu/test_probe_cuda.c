/* test_probe_cuda.c - the probe's CUDA runtime path on a live GPU host
 *
 * Every device the CUDA runtime reports is in the probe, in CUDA order,
 * with its name, memory, compute capability and multiprocessors, and the
 * locality of the hwloc PCI device of the same bus id; CUDA_VISIBLE_DEVICES
 * is honoured and reported.  Skips (exit 77) with the reason when the CUDA
 * back-end is not built in or no device is usable (no driver: error 35).
 *
 * CUDA must not be initialised before Check forks, so the skip decision is
 * taken in a child process.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "config.h"
#include "gpu/probe.h"
#include "lib/hosts/topo.h"

static void clear_env (void)
{
    unsetenv (DC_PROBE_XML_ENV);
    unsetenv ("HWLOC_XMLFILE");
}

START_TEST (t_devices)
{
    dc_error_t err = {{0}};
    struct dc_topo *t;
    int n;

    clear_env ();
    unsetenv ("CUDA_VISIBLE_DEVICES");
    t = dc_probe_host (NULL, &err);
    ck_assert_msg (t != NULL, "%s", err.text);
    n = dc_probe_cuda_count (&err);
    ck_assert_int_gt (n, 0);
    ck_assert_int_eq (t->ngpus, n);
    for (int i = 0; i < n; i++) {
        const struct dc_topo_gpu *g = &t->gpus[i];
        unsigned d, b, s, f;
        ck_assert_int_eq (g->index, i);
        ck_assert_int_eq (g->cuda_index, i);
        ck_assert_str_ne (g->model, "");
        ck_assert_int_gt (g->memory_bytes, 1LL << 28);
        ck_assert_int_ge (g->cc_major, 3);
        ck_assert_int_gt (g->multiprocessors, 0);
        ck_assert_int_eq (sscanf (g->pci_bus_id, "%x:%x:%x.%x", &d, &b, &s, &f),
                          4);
        /* matched to hwloc by bus id: the locality is known */
        ck_assert_msg (g->cpus != NULL, "GPU %d (%s): no hwloc PCI device", i,
                       g->pci_bus_id);
        printf ("# GPU %d: %s, %lld MiB, cc %d.%d, %d SMs, %s, NUMA %d, "
                "cpus %s\n",
                i, g->model, g->memory_bytes >> 20, g->cc_major, g->cc_minor,
                g->multiprocessors, g->pci_bus_id, g->numa_node, g->cpus);
    }
    char *s = dc_topo_to_json (t, 0);
    ck_assert_ptr_nonnull (strstr (s, "\"cuda_index\":0"));
    ck_assert_ptr_nonnull (strstr (s, "\"compute_capability\":\""));
    free (s);
    dc_topo_destroy (t);
}
END_TEST

/* With CUDA_VISIBLE_DEVICES naming the last device only, the probe lists
 * one GPU, index 0, with the bus id the full list gives the last one. */
START_TEST (t_visible)
{
    const char *bdir = getenv ("DCRUN_BUILDDIR");
    char cmd[4096], out[1 << 16], vis[16];
    dc_error_t err = {{0}};
    struct dc_topo *all, *t;
    cJSON *j, *host;
    char *hs;
    size_t len;
    FILE *p;

    if (getenv ("CK_FORK") && !strcmp (getenv ("CK_FORK"), "no")) {
        printf ("# skipped: needs CK_FORK (CUDA reads the variable once)\n");
        return;
    }
    clear_env ();
    snprintf (cmd, sizeof (cmd),
              "env -u CUDA_VISIBLE_DEVICES %s/cli/dcrun probe --json",
              bdir ? bdir : ".");
    ck_assert_ptr_nonnull (p = popen (cmd, "r"));
    len = fread (out, 1, sizeof (out) - 1, p);
    out[len] = '\0';
    ck_assert_int_eq (pclose (p), 0);
    ck_assert_ptr_nonnull (j = cJSON_Parse (out));
    host = cJSON_GetArrayItem (cJSON_GetObjectItem (j, "hosts"), 0);
    hs = cJSON_PrintUnformatted (host);
    all = dc_topo_from_json (hs, strlen (hs), "dcrun probe", &err);
    ck_assert_msg (all != NULL, "%s", err.text);
    ck_assert_int_gt (all->ngpus, 0);
    free (hs);
    cJSON_Delete (j);

    snprintf (vis, sizeof (vis), "%d", all->ngpus - 1);
    setenv ("CUDA_VISIBLE_DEVICES", vis, 1);
    t = dc_probe_host (NULL, &err);
    ck_assert_msg (t != NULL, "%s", err.text);
    ck_assert_int_eq (t->ngpus, 1);
    ck_assert_int_eq (t->gpus[0].index, 0);
    ck_assert_str_eq (t->gpus[0].pci_bus_id,
                      all->gpus[all->ngpus - 1].pci_bus_id);
    ck_assert_str_eq (t->cuda_visible_devices, vis);
    dc_topo_destroy (t);
    dc_topo_destroy (all);
}
END_TEST

/* The CUDA device count, found in a child so that this process does not
 * initialise CUDA before Check forks.  why gets the reason when 0. */
static int cuda_count_in_child (char *why, size_t len)
{
    int fd[2], status, n = 0;
    pid_t pid;

    if (pipe (fd) < 0 || (pid = fork ()) < 0) {
        snprintf (why, len, "cannot fork");
        return 0;
    }
    if (pid == 0) {
        dc_error_t err = {{0}};
        char buf[sizeof (err.text) + 16];
        int c = dc_probe_cuda_count (&err);
        int l = snprintf (buf, sizeof (buf), "%d %s", c, err.text);
        if (write (fd[1], buf, (size_t)l) < 0)
            _exit (1);
        _exit (0);
    }
    close (fd[1]);
    char buf[1024] = "";
    ssize_t r = read (fd[0], buf, sizeof (buf) - 1);
    close (fd[0]);
    waitpid (pid, &status, 0);
    if (r <= 0) {
        snprintf (why, len, "the CUDA probe died");
        return 0;
    }
    buf[r] = '\0';
    n = atoi (buf);
    snprintf (why, len, "%s", strchr (buf, ' ') ? strchr (buf, ' ') + 1 : "");
    return n;
}

int main (void)
{
    char why[1024];

    if (!HAVE_CUDA)
        return dc_check_skip ("dcrun was built without the CUDA back-end");
    if (cuda_count_in_child (why, sizeof (why)) == 0)
        return dc_check_skip (why[0] ? why : "no CUDA device");
    Suite *s = suite_create ("probe_cuda");
    TCase *tc = tcase_create ("cuda");
    tcase_add_test (tc, t_devices);
    tcase_add_test (tc, t_visible);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
