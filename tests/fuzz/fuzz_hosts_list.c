/* fuzz_hosts_list.c - -H lists ([user@]host[:slots],...) */
#include "fuzz.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/sources.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr (data, size);
    dc_error_t err;
    struct dc_hosts *h = dc_hosts_parse_list (s, &err);

    if (h && (h->count == 0 || dc_hosts_slots (h) < (long)h->count))
        abort ();
    dc_hosts_destroy (h);
    free (s);
    return 0;
}
