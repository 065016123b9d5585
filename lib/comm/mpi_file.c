/* mpi_file.c - MPI-IO for a rank's direct I/O (mpi_file.h) */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lib/comm/mpi_file.h"

bool dc_mpi_file_usable (const struct dc_comm *c)
{
    /* the mpi ops are comm_mpi.c's own: known by their name */
    return HAVE_MPI && c && c->ops && c->ops->name &&
           !strcmp (c->ops->name, "mpi");
}

#if HAVE_MPI
#include <mpi.h>

struct dc_mpi_file {
    MPI_File fh;
    char *path;
};

static int mpierr (dc_error_t *errp, const char *path, const char *call, int rc)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;

    MPI_Error_string (rc, text, &len);
    errno = EIO;
    return errprintf (errp, "%s: %s: %.*s", path, call, len, text);
}

struct dc_mpi_file *dc_mpi_file_open (const char *path, bool write,
                                      dc_error_t *errp)
{
    struct dc_mpi_file *f = calloc (1, sizeof (*f));
    int rc;

    if (!f || !(f->path = strdup (path ? path : ""))) {
        free (f);
        errno = ENOMEM;
        errprintf (errp, "%s: out of memory", path ? path : "(null)");
        return NULL;
    }
    rc = MPI_File_open (MPI_COMM_SELF, path,
                        write ? MPI_MODE_RDWR : MPI_MODE_RDONLY, MPI_INFO_NULL,
                        &f->fh);
    if (rc != MPI_SUCCESS) {
        mpierr (errp, path, "MPI_File_open", rc);
        free (f->path);
        free (f);
        return NULL;
    }
    /* errors come back as return codes, never abort the rank */
    MPI_File_set_errhandler (f->fh, MPI_ERRORS_RETURN);
    return f;
}

/* MPI counts are int: at most 1 GiB a call */
#define STEP ((size_t)1 << 30)

int dc_mpi_file_read_at (struct dc_mpi_file *f, uint64_t off, void *buf,
                         size_t n, dc_error_t *errp)
{
    for (size_t done = 0; done < n;) {
        int want = (int)(n - done < STEP ? n - done : STEP), got = 0;
        MPI_Status st;
        int rc = MPI_File_read_at (f->fh, (MPI_Offset)(off + done),
                                   (char *)buf + done, want, MPI_BYTE, &st);
        if (rc != MPI_SUCCESS)
            return mpierr (errp, f->path, "MPI_File_read_at", rc);
        MPI_Get_count (&st, MPI_BYTE, &got);
        if (got <= 0) {
            errno = EIO;
            return errprintf (errp, "%s: MPI_File_read_at: the file shrank",
                              f->path);
        }
        done += (size_t)got;
    }
    return 0;
}

int dc_mpi_file_write_at (struct dc_mpi_file *f, uint64_t off, const void *buf,
                          size_t n, dc_error_t *errp)
{
    for (size_t done = 0; done < n;) {
        int want = (int)(n - done < STEP ? n - done : STEP), got = 0;
        MPI_Status st;
        int rc =
            MPI_File_write_at (f->fh, (MPI_Offset)(off + done),
                               (const char *)buf + done, want, MPI_BYTE, &st);
        if (rc != MPI_SUCCESS)
            return mpierr (errp, f->path, "MPI_File_write_at", rc);
        MPI_Get_count (&st, MPI_BYTE, &got);
        if (got <= 0) {
            errno = EIO;
            return errprintf (errp, "%s: MPI_File_write_at: no progress",
                              f->path);
        }
        done += (size_t)got;
    }
    return 0;
}

int dc_mpi_file_sync (struct dc_mpi_file *f, dc_error_t *errp)
{
    int rc = MPI_File_sync (f->fh);
    return rc == MPI_SUCCESS ? 0 : mpierr (errp, f->path, "MPI_File_sync", rc);
}

void dc_mpi_file_close (struct dc_mpi_file *f)
{
    if (!f)
        return;
    MPI_File_close (&f->fh);
    free (f->path);
    free (f);
}

#else /* !HAVE_MPI */

struct dc_mpi_file *dc_mpi_file_open (const char *path, bool write,
                                      dc_error_t *errp)
{
    (void)write;
    errno = ENOTSUP;
    errprintf (errp, "%s: MPI-IO: dcrun was built without MPI",
               path ? path : "(null)");
    return NULL;
}

int dc_mpi_file_read_at (struct dc_mpi_file *f, uint64_t off, void *buf,
                         size_t n, dc_error_t *errp)
{
    (void)f, (void)off, (void)buf, (void)n;
    errno = ENOTSUP;
    return errprintf (errp, "MPI-IO: dcrun was built without MPI");
}

int dc_mpi_file_write_at (struct dc_mpi_file *f, uint64_t off, const void *buf,
                          size_t n, dc_error_t *errp)
{
    (void)f, (void)off, (void)buf, (void)n;
    errno = ENOTSUP;
    return errprintf (errp, "MPI-IO: dcrun was built without MPI");
}

int dc_mpi_file_sync (struct dc_mpi_file *f, dc_error_t *errp)
{
    (void)f;
    errno = ENOTSUP;
    return errprintf (errp, "MPI-IO: dcrun was built without MPI");
}

void dc_mpi_file_close (struct dc_mpi_file *f)
{
    (void)f;
}

#endif
