/* atomicfile.h - write a file under a temporary name, rename when complete
 *
 * The temporary file lives in the target's folder (".NAME.XXXXXX"), so the
 * final rename(2) is atomic: readers see either no file or the whole file,
 * and a failed run never leaves a partial file under the final name.
 * Writes go at explicit offsets (pwrite), so several producers (chunks of
 * an output array) can fill the file in any order.
 *
 *     struct dc_atomicfile *f = dc_atomicfile_create ("out.npy", &err);
 *     dc_atomicfile_pwrite (f, buf, n, 0, &err);
 *     dc_atomicfile_commit (f, &err);   // rename to out.npy
 *     dc_atomicfile_destroy (f);        // without commit: unlinks the temp
 *
 * No fsync: like np.save, the data reaches the disk when the kernel writes
 * it back; the rename still guarantees no partial file under the name.
 */
#ifndef DC_ATOMICFILE_H
#define DC_ATOMICFILE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

struct dc_atomicfile;

/* Create a temporary file next to path.  NULL with errp on failure. */
struct dc_atomicfile *dc_atomicfile_create (const char *path,
                                            dc_error_t *errp);

/* Write all n bytes at offset off (retries short writes and EINTR). */
int dc_atomicfile_pwrite (struct dc_atomicfile *f, const void *buf, size_t n,
                          uint64_t off, dc_error_t *errp);

/* Set the file size (preallocates the array so chunks can land anywhere). */
int dc_atomicfile_truncate (struct dc_atomicfile *f, uint64_t size,
                            dc_error_t *errp);

/* The open descriptor of the temporary file (borrowed), for readers. */
int dc_atomicfile_fd (const struct dc_atomicfile *f);

/* Final and temporary paths (borrowed). */
const char *dc_atomicfile_path (const struct dc_atomicfile *f);
const char *dc_atomicfile_tmppath (const struct dc_atomicfile *f);

/* Give the file the permissions of a newly created file (0666 & ~umask),
 * close it and rename it to the final path.  After a failure the temporary
 * file is removed by destroy. */
int dc_atomicfile_commit (struct dc_atomicfile *f, dc_error_t *errp);

/* Close; unless committed, unlink the temporary file.  Accepts NULL. */
void dc_atomicfile_destroy (struct dc_atomicfile *f);

/* Read a whole regular file of at most max bytes (caller frees).  NULL with
 * errp ("FILE: reason"). */
uint8_t *dc_file_read (const char *path, size_t max, size_t *lenp,
                       dc_error_t *errp);

#endif
