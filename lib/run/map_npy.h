/* map_npy.h - .npy arrays of any plain dtype, as raw rows, for dcrun map
 *
 * lib/formats/npy reads and writes the float and int64 arrays of infer
 * and train, converting as it goes.  `dcrun map` never looks inside a
 * row: the input's rows go to CMD and CMD's rows come back as bytes, so
 * this reader takes any dtype NumPy writes with a plain descr ('<f4',
 * '|u1', '<c16', '|S10', '<U3', '<M8[ns]'...) and tells its item size;
 * structured and object dtypes are refused.  The writer puts the output
 * under a temporary name and renames it when complete (lib/util/file.h).
 */
#ifndef DC_MAP_NPY_H
#define DC_MAP_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

#define DC_MAP_MAXDIM 32
#define DC_MAP_MAXHEADER 65536

struct dc_map_arr {
    char descr[64];
    size_t itemsize;
    bool fortran;
    int ndim;
    int64_t shape[DC_MAP_MAXDIM];
    uint64_t rows;      /* shape[0]; 0-D arrays are refused */
    uint64_t row_bytes; /* itemsize x shape[1:] */
    uint64_t data_offset;
};

/* The item size of a plain dtype ("<f4": 4, "<U3": 12): 0 with errp when
 * it is not one. */
size_t dc_map_itemsize (const char *descr, dc_error_t *errp);

/* Parse the header at the start of buf (len bytes of a file of file_size
 * bytes); checks that the data is all there.  -1 with errp (no file name
 * in the text). */
int dc_map_npy_parse (const uint8_t *buf, size_t len, uint64_t file_size,
                      struct dc_map_arr *a, dc_error_t *errp);

/* Open path and parse its header: the open fd, or -1 with errp
 * ("PATH: reason"). */
int dc_map_npy_open (const char *path, struct dc_map_arr *a, dc_error_t *errp);

/* A trailing shape in words, "(rows, 3, 4)", into buf (len bytes). */
void dc_map_shape_str (int ndim, const int64_t *shape, char *buf, size_t len);

/* An .npy header (version 1.0, 64-byte aligned) for descr and shape:
 * the bytes written to out (of outsize), 0 when it does not fit. */
size_t dc_map_npy_header (const char *descr, int ndim, const int64_t *shape,
                          uint8_t *out, size_t outsize);

struct dc_map_out;

/* The output path's temporary file, sized for rows of descr and the
 * trailing shape. */
struct dc_map_out *dc_map_out_create (const char *path, const char *descr,
                                      uint64_t rows, int ndim,
                                      const int64_t *trailing,
                                      uint64_t row_bytes, dc_error_t *errp);
/* The same in two steps: the temporary file first (shared: a named one
 * that ranks open by dc_map_out_tmppath and write, --io direct; ENOTSUP
 * for a device or FIFO), then its header and size, once the first
 * result tells them; data_offset is where row 0 goes. */
struct dc_map_out *dc_map_out_open (const char *path, bool shared,
                                    dc_error_t *errp);
int dc_map_out_shape (struct dc_map_out *w, const char *descr, uint64_t rows,
                      int ndim, const int64_t *trailing, uint64_t row_bytes,
                      dc_error_t *errp);
const char *dc_map_out_tmppath (const struct dc_map_out *w);
uint64_t dc_map_out_data_offset (const struct dc_map_out *w);
int dc_map_out_write (struct dc_map_out *w, uint64_t row0, uint64_t rows,
                      const uint8_t *data, dc_error_t *errp);
/* fsync, sha256 (hex, 65 bytes), rename. */
int dc_map_out_commit (struct dc_map_out *w, char *sha256, dc_error_t *errp);
void dc_map_out_destroy (struct dc_map_out *w); /* uncommitted: no file */

#endif
