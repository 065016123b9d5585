/* fuzz_npy.c - the .npy reader: open the input as a file, read its first
 * and last rows. */
#include "fuzz.h"
#include "lib/formats/npy.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file (data, size, path, sizeof (path));
    dc_error_t err;
    struct dc_npy *a;

    if (fd < 0)
        return 0;
    if ((a = dc_npy_open (path, &err))) {
        /* the header was checked against the file's size */
        if (a->data_offset + a->data_bytes > size)
            abort ();
        size_t row = a->row_elems;
        if (a->rows > 0 && row > 0 && row <= size) {
            size_t n = a->rows < 2 ? a->rows : 2;
            if (a->dtype == DC_NPY_I8) {
                int64_t *v = calloc (n * row, sizeof (*v));
                if (v) {
                    dc_npy_read_i64 (a, 0, n, v, &err);
                    dc_npy_read_i64 (a, a->rows - 1, 1, v, &err);
                }
                free (v);
            } else {
                float *v = calloc (n * row, sizeof (*v));
                if (v) {
                    dc_npy_read_f32 (a, 0, n, v, &err);
                    dc_npy_read_f32 (a, a->rows - 1, 1, v, &err);
                }
                free (v);
            }
        }
        dc_npy_close (a);
    }
    close (fd);
    return 0;
}
