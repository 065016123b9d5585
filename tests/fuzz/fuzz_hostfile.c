/* fuzz_hostfile.c - the hostfile grammar (dc_hostfile_parse) */
#include "fuzz.h"
#include "lib/hosts/hostfile.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    dc_error_t err;
    struct dc_hosts *h =
        dc_hostfile_parse ((const char *)data, size, "fuzz.hosts", &err);

    if (h) {
        if (h->count == 0 || dc_hosts_slots (h) < (long)h->count)
            abort ();
        /* every host is found again at its first position */
        for (size_t i = 0; i < h->count; i++)
            if (dc_hosts_find (h, h->v[i].name, h->v[i].port) != (long)i)
                abort ();
    }
    dc_hosts_destroy (h);
    return 0;
}
