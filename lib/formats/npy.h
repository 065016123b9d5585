/* npy.h - NumPy .npy arrays: read rows, write at offsets
 *
 * Formats 1.0, 2.0 and 3.0, C order, little-endian <f4, <f2, <f8 and <i8.
 * A reader parses and checks the header on open and then reads any range
 * of rows with pread(2), never the whole file.  f2 and f8 are converted to
 * float32 on read.  A "row" is the first axis: an array of shape
 * (rows, a, b) has rows rows of a*b elements; a 1-D array has rows of one
 * element; a 0-D array is one row of one element.
 *
 * A writer writes the header (64-byte aligned as NumPy writes it, version
 * 1.0 unless the header needs 2.0) into a temporary file in the target
 * folder (lib/util/file.h), takes rows at any offset, and renames the file
 * to its name on commit; destroy without commit leaves nothing behind.
 */
#ifndef DC_NPY_H
#define DC_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

#define DC_NPY_MAXDIM 32
#define DC_NPY_MAXHEADER (1 << 20) /* larger headers are rejected */

enum dc_npy_dtype {
    DC_NPY_F4 = 0,
    DC_NPY_F2,
    DC_NPY_F8,
    DC_NPY_I8,
};

struct dc_npy {
    enum dc_npy_dtype dtype;
    int version; /* major: 1, 2 or 3 */
    int ndim;
    int64_t shape[DC_NPY_MAXDIM];
    size_t rows;      /* shape[0] (1 for 0-D) */
    size_t row_elems; /* product of shape[1:] */
    size_t itemsize;  /* bytes per element on disk */
    uint64_t data_offset;
    uint64_t data_bytes;
    int fd;
    char *path;
};

/* Open and check an array file.  NULL with errp ("FILE: reason"). */
struct dc_npy *dc_npy_open (const char *path, dc_error_t *errp);
void dc_npy_close (struct dc_npy *a); /* accepts NULL */

/* Open an array file that this process writes rows into (the temporary
 * output of a run, created by dc_npy_writer_create_shared elsewhere):
 * checked like dc_npy_open, opened read-write, never through a link. */
struct dc_npy *dc_npy_open_write (const char *path, dc_error_t *errp);

/* Write rows [row0, row0 + nrows) of floats into an <f4 or <f2 array opened
 * with dc_npy_open_write (converted to f2 as NumPy rounds). */
int dc_npy_write_f32 (struct dc_npy *a, size_t row0, size_t nrows,
                      const float *src, dc_error_t *errp);

/* Parse a header from the first len bytes of a file of file_size bytes
 * into a (fd -1, path NULL).  What dc_npy_open does after reading. */
int dc_npy_parse (const void *buf, size_t len, uint64_t file_size,
                  struct dc_npy *a, dc_error_t *errp);

/* Read rows [row0, row0 + nrows) as float32 (f4, f2, f8 arrays) into dst,
 * which holds nrows * row_elems floats. */
int dc_npy_read_f32 (const struct dc_npy *a, size_t row0, size_t nrows,
                     float *dst, dc_error_t *errp);

/* Read rows of an <i8 array into dst (nrows * row_elems values). */
int dc_npy_read_i64 (const struct dc_npy *a, size_t row0, size_t nrows,
                     int64_t *dst, dc_error_t *errp);

/* "<f4" etc. for a dtype; NULL for an unknown value. */
const char *dc_npy_descr (enum dc_npy_dtype dtype);
size_t dc_npy_itemsize (enum dc_npy_dtype dtype);

struct dc_npy_writer;

/* Create path's temporary file with a header for dtype (F4, F2, F8 or I8)
 * and shape; the data area is sized (sparse) so rows can land anywhere.
 * With hash, a sha256 of the file is kept (see dc_npy_writer_sha256). */
struct dc_npy_writer *dc_npy_writer_create (const char *path,
                                            enum dc_npy_dtype dtype, int ndim,
                                            const int64_t *shape, bool hash,
                                            dc_error_t *errp);

/* Write rows [row0, row0 + nrows) from float32 values, converted to the
 * file's float dtype. */
int dc_npy_writer_write_f32 (struct dc_npy_writer *w, size_t row0, size_t nrows,
                             const float *src, dc_error_t *errp);

/* Write rows [row0, row0 + nrows) as they are (the file's dtype). */
int dc_npy_writer_write_raw (struct dc_npy_writer *w, size_t row0, size_t nrows,
                             const void *src, dc_error_t *errp);

/* A writer whose temporary file other processes open by its path
 * (dc_atomicfile_create_shared) and write with dc_npy_write_f32; its hash
 * is taken from the file on commit. */
struct dc_npy_writer *dc_npy_writer_create_shared (const char *path,
                                                   enum dc_npy_dtype dtype,
                                                   int ndim,
                                                   const int64_t *shape,
                                                   bool hash, dc_error_t *errp);
/* The temporary path of a shared writer (borrowed); NULL otherwise. */
const char *dc_npy_writer_tmppath (const struct dc_npy_writer *w);

/* Offset of the data and bytes per row, for writers of their own. */
uint64_t dc_npy_writer_data_offset (const struct dc_npy_writer *w);
size_t dc_npy_writer_row_bytes (const struct dc_npy_writer *w);

/* Rename to the final path.  With hash, the sha256 is final afterwards. */
int dc_npy_writer_commit (struct dc_npy_writer *w, dc_error_t *errp);

/* Lower-case hex sha256 of the committed file (borrowed), or NULL when
 * the writer was created without hash or is not committed. */
const char *dc_npy_writer_sha256 (const struct dc_npy_writer *w);

/* Without commit: removes the temporary file.  Accepts NULL. */
void dc_npy_writer_destroy (struct dc_npy_writer *w);

/* Whole-array convenience: write data (float32, converted to dtype, or
 * int64 for I8) under path atomically. */
int dc_npy_save (const char *path, enum dc_npy_dtype dtype, int ndim,
                 const int64_t *shape, const void *data, dc_error_t *errp);

#endif
