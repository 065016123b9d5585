/* fuzz_hostlist.c - hostlist expressions: expand, then compress and expand
 * again (the same hosts must come back). */
#include "fuzz.h"
#include "lib/hosts/hostlist.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr (data, size);
    dc_error_t err;
    struct dc_hostlist *hl = dc_hostlist_decode (s, &err);

    if (hl) {
        char *enc = dc_hostlist_encode (hl);
        if (enc && *enc) {
            struct dc_hostlist *again = dc_hostlist_decode (enc, &err);
            /* names with brackets or commas need not round-trip */
            if (again && dc_hostlist_count (again) == dc_hostlist_count (hl))
                for (size_t i = 0; i < dc_hostlist_count (hl); i++)
                    if (strcmp (dc_hostlist_nth (hl, i),
                                dc_hostlist_nth (again, i)))
                        abort ();
            dc_hostlist_destroy (again);
        }
        free (enc);
    }
    dc_hostlist_destroy (hl);
    free (s);
    return 0;
}
