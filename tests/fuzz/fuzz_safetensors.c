/* fuzz_safetensors.c - the safetensors reader and the model built from its
 * tensors (dc_model_load: shapes, dtypes, metadata). */
#include "fuzz.h"
#include "lib/model/model.h"
#include "lib/formats/safetensors.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file (data, size, path, sizeof (path));
    dc_error_t err;

    if (fd < 0)
        return 0;
    struct dc_safetensors *st = dc_safetensors_load (path, &err);
    if (st) {
        for (size_t i = 0; i < st->n; i++)
            if (dc_safetensors_find (st, st->v[i].name) == NULL)
                abort ();
        dc_safetensors_meta_get (st, "activation");
        dc_safetensors_destroy (st);
        struct dc_model *m = dc_model_load (path, NULL, &err);
        if (m) {
            if (dc_model_inputs (m) < 1 || dc_model_outputs (m) < 1)
                abort ();
            dc_model_nparams (m);
            dc_model_flops_per_row (m);
            dc_model_destroy (m);
        }
    }
    close (fd);
    return 0;
}
