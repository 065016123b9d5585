/* safetensors.h - read and write safetensors files
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 * {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *  "__metadata__": {"key": "value"}}, then the data area (offsets are
 * relative to it).  On load the header length (at most
 * DC_SAFETENSORS_MAXHEADER), every data_offsets range (inside the file, not
 * overlapping another, end - begin = product of shape x dtype size) and
 * the names (unique) are checked.
 *
 * F32, F16 and BF16 tensors are converted to float32 (t->data); tensors of
 * other dtypes are kept as their bytes (t->raw) and written back unchanged.
 * Save writes each tensor in its own dtype (float32 values rounded to
 * nearest even for F16/BF16), header and tensor order as
 * safetensors.torch.save_file writes them (dtype, then name; JSON padded
 * with spaces to 8 bytes), through a temporary file renamed when complete.
 */
#ifndef DC_SAFETENSORS_H
#define DC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

#define DC_SAFETENSORS_MAXHEADER 100000000 /* as the safetensors library */
#define DC_SAFETENSORS_MAXDIM 16

struct dc_tensor {
    char *name;
    char dtype[12]; /* as in the file: "F32", "F16", "BF16", "I64", ... */
    int ndim;
    int64_t shape[DC_SAFETENSORS_MAXDIM];
    size_t nelem;
    float *data; /* F32/F16/BF16: values as float32 (owned) */
    void *raw;   /* other dtypes: the bytes as stored (owned) */
    size_t raw_bytes;
};

struct dc_safetensors {
    size_t n;
    struct dc_tensor *v; /* in the file's data order */
    size_t nmeta;
    char **meta_keys; /* __metadata__, in file order */
    char **meta_vals;
};

struct dc_safetensors *dc_safetensors_create (void);
void dc_safetensors_destroy (struct dc_safetensors *st); /* accepts NULL */

/* Load and check a file.  NULL with errp ("FILE: reason"). */
struct dc_safetensors *dc_safetensors_load (const char *path, dc_error_t *errp);

/* Save (atomically: temporary file, then rename). */
int dc_safetensors_save (const struct dc_safetensors *st, const char *path,
                         dc_error_t *errp);

/* Add a float tensor of dtype F32, F16 or BF16 with a copy of data
 * (nelem floats; NULL: zeros).  Returns the tensor (borrowed). */
struct dc_tensor *dc_safetensors_add (struct dc_safetensors *st,
                                      const char *name, const char *dtype,
                                      int ndim, const int64_t *shape,
                                      const float *data, dc_error_t *errp);

/* The tensor called name (borrowed), NULL when absent. */
struct dc_tensor *dc_safetensors_find (const struct dc_safetensors *st,
                                       const char *name);

/* __metadata__ (borrowed value, NULL when absent); set replaces. */
const char *dc_safetensors_meta_get (const struct dc_safetensors *st,
                                     const char *key);
int dc_safetensors_meta_set (struct dc_safetensors *st, const char *key,
                             const char *val);

/* Bytes per element of a dtype name, 0 when unknown. */
size_t dc_safetensors_dtype_size (const char *dtype);

#endif
