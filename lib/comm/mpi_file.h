/* mpi_file.h - MPI-IO for the direct I/O of a rank started by mpirun or
 * srun (the engine for parallel file I/O on clusters: ROMIO knows Lustre's
 * and GPFS's striping)
 *
 * Each rank opens the shared files on MPI_COMM_SELF (the hub schedules:
 * ranks read and write different chunks, no collective calls), reads its
 * chunks' rows with MPI_File_read_at and writes its results with
 * MPI_File_write_at.  Without MPI compiled in, usable() is false and the
 * rest fails with ENOTSUP.
 */
#ifndef DC_MPI_FILE_H
#define DC_MPI_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/comm/comm.h"
#include "lib/util/error.h"

struct dc_mpi_file;

/* True when c talks MPI (this process is an MPI rank): MPI-IO is there. */
bool dc_mpi_file_usable (const struct dc_comm *c);

/* Open path to read (write false) or to read and write (an existing file).
 * NULL with errp ("PATH: MPI_File_open: ..."). */
struct dc_mpi_file *dc_mpi_file_open (const char *path, bool write,
                                      dc_error_t *errp);
/* All n bytes at offset off: 0, or -1 with errp (a short read is an
 * error: the file shrank). */
int dc_mpi_file_read_at (struct dc_mpi_file *f, uint64_t off, void *buf,
                         size_t n, dc_error_t *errp);
int dc_mpi_file_write_at (struct dc_mpi_file *f, uint64_t off, const void *buf,
                          size_t n, dc_error_t *errp);
/* MPI_File_sync: the bytes written reach the storage other hosts read. */
int dc_mpi_file_sync (struct dc_mpi_file *f, dc_error_t *errp);
void dc_mpi_file_close (struct dc_mpi_file *f); /* accepts NULL */

#endif
