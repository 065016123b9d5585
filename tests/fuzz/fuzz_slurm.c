/* fuzz_slurm.c - a Slurm allocation: SLURM_JOB_NODELIST, a newline, then
 * SLURM_TASKS_PER_NODE ("2(x3),1"); no newline: no task list. */
#include "fuzz.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/sources.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr (data, size);
    char *nl = strchr (s, '\n');
    const char *tasks = NULL;
    dc_error_t err;

    if (nl) {
        *nl = '\0';
        tasks = nl + 1;
    }
    struct dc_hosts *h = dc_hosts_from_slurm (s, tasks, &err);
    if (h && h->count == 0)
        abort ();
    dc_hosts_destroy (h);
    free (s);
    return 0;
}
