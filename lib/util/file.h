/* file.h - write a file under a temporary name, rename when complete
 *
 * The temporary file lives in the target's folder (".NAME.XXXXXX"), so the
 * final rename(2) is atomic: readers see either no file or the whole file,
 * and a failed run never leaves a partial file under the final name.
 * Writes go at explicit offsets (pwrite), so several producers (chunks of
 * an output array) can fill the file in any order.
 *
 *     struct dc_atomicfile *f = dc_atomicfile_create ("out.npy", &err);
 *     dc_atomicfile_pwrite (f, buf, n, 0, &err);
 *     dc_atomicfile_commit (f, &err);   // fsync, rename to out.npy, fsync dir
 *     dc_atomicfile_destroy (f);        // without commit: unlinks the temp
 *
 * What the path names decides how it is written:
 * - nothing, or a regular file: a new file renamed over it;
 * - a symbolic link to a regular file: that file is replaced (same way, in
 *   its own folder); the link stays;
 * - a character device or a FIFO (/dev/null, a named pipe), directly or
 *   through links, and the names of open descriptors (/dev/stdout,
 *   /dev/stderr, /dev/fd/N, /proc/self/fd/N): written in place, never
 *   renamed over.  The target is opened on create; the bytes gather in an
 *   unnamed file under $TMPDIR (or /tmp) and are copied to it, in order, on
 *   commit, so a failed run writes nothing there;
 * - a symbolic link to nothing (dangling), a folder, a block device or a
 *   socket: refused.  Nothing is ever created through a symbolic link.
 */
#ifndef DC_ATOMICFILE_H
#define DC_ATOMICFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

struct dc_atomicfile;

/* Create a temporary file next to path (see above).  NULL with errp. */
struct dc_atomicfile *dc_atomicfile_create (const char *path, dc_error_t *errp);

/* The same, for a file that other processes (ranks, on this or other hosts
 * through a shared filesystem) open by its temporary path and write: always
 * a named ".NAME.dcrun-XXXXXX" file (mode 0600) in the target's folder,
 * locked (flock) while this process holds it.  A device, FIFO or
 * descriptor target is refused (ENOTSUP). */
struct dc_atomicfile *dc_atomicfile_create_shared (const char *path,
                                                   dc_error_t *errp);

/* Files to remove when a signal stops the process (SIGINT, SIGTERM,
 * SIGHUP: mpirun sends SIGTERM and, a second later, SIGKILL) or it exits
 * without removing them (OpenMPI ends a process with exit() when a peer
 * goes away): the named temporary files of a run.  At most 4 at a time; 0, or
 * -1 when full or too long.  dc_file_signal_cleanup is async-signal-safe: the
 * signal handler calls it. */
int dc_file_on_signal_unlink (const char *path);
void dc_file_on_signal_forget (const char *path);
void dc_file_signal_cleanup (void);

/* The absolute path of path's folder (links resolved) and its name, for
 * other processes that open it.  0, or -1 (errp). */
int dc_file_abs_path (const char *path, char *buf, size_t len,
                      dc_error_t *errp);

/* A token file next to near (a ".NAME.dcrun-XXXXXX" temporary path): the
 * same name with other last 6 characters, mode 0600, locked, removed by a
 * stopping signal (dc_file_on_signal_unlink), holding a random 128-bit
 * token in hex (token: 33 bytes).  Ranks that read it back see this
 * folder.  Its descriptor (close and unlink it when done), or -1 (errp,
 * nothing left). */
int dc_file_token_create (const char *near, char *path, size_t pathlen,
                          char *token, size_t toklen, dc_error_t *errp);

/* Remove the ".NAME.dcrun-XXXXXX" files next to path that a killed run left
 * (regular files of this user that no live process holds locked).  Their
 * names, ", "-separated, into names (may be NULL); returns how many. */
int dc_atomicfile_sweep (const char *path, char *names, size_t len);

/* Write all n bytes at offset off (retries short writes and EINTR). */
int dc_atomicfile_pwrite (struct dc_atomicfile *f, const void *buf, size_t n,
                          uint64_t off, dc_error_t *errp);

/* Set the file size (preallocates the array so chunks can land anywhere). */
int dc_atomicfile_truncate (struct dc_atomicfile *f, uint64_t size,
                            dc_error_t *errp);

/* The open descriptor of the temporary file (borrowed), for readers. */
int dc_atomicfile_fd (const struct dc_atomicfile *f);

/* Final and temporary paths (borrowed).  The final path is the file that
 * is replaced (a symbolic link's target); the temporary path is NULL when
 * the file is written in place. */
const char *dc_atomicfile_path (const struct dc_atomicfile *f);
const char *dc_atomicfile_tmppath (const struct dc_atomicfile *f);

/* True when the target is a device, FIFO or open descriptor. */
bool dc_atomicfile_in_place (const struct dc_atomicfile *f);

/* Give the file the permissions of a newly created file (0666 & ~umask),
 * fsync it, rename it to the final path and fsync the folder (in place:
 * copy the bytes to the target).  After a failure the temporary file is
 * removed by destroy. */
int dc_atomicfile_commit (struct dc_atomicfile *f, dc_error_t *errp);

/* Close; unless committed, unlink the temporary file.  Accepts NULL. */
void dc_atomicfile_destroy (struct dc_atomicfile *f);

/* Open a file to read: a regular file only, never blocking on a FIFO or a
 * device.  -1 with errp ("FILE: not a regular file", "FILE: reason"). */
int dc_file_open_regular (const char *path, dc_error_t *errp);

/* Read a whole regular file of at most max bytes (caller frees).  NULL with
 * errp ("FILE: reason"). */
uint8_t *dc_file_read (const char *path, size_t max, size_t *lenp,
                       dc_error_t *errp);

/* Open a file that grows as a run goes (a log), for writing: truncated, or
 * appended to with append.  The same rules as above, but written directly:
 * a new file is created with O_NOFOLLOW; a link to a regular file opens
 * that file; a device, FIFO or /dev/stdout is opened in place.  The fd is
 * the caller's; -1 with errp. */
int dc_file_open_log (const char *path, bool append, dc_error_t *errp);

/* The files of one command, checked together before any work. */
enum dc_file_role {
    DC_FILE_INPUT,  /* read: must be a regular file */
    DC_FILE_OUTPUT, /* written: its folder must take a new file */
    DC_FILE_INOUT,  /* may be read and is written later (a checkpoint) */
};

struct dc_file_use {
    const char *what; /* the option, "--input" (borrowed) */
    const char *path; /* NULL: not used, skipped */
    enum dc_file_role role;
};

/* Inputs exist and are regular files; outputs can be written (their folder
 * exists and takes a file, they are not dangling links, folders or block
 * devices); no output is the same file (device and inode, through links)
 * as another file of the list ("--output Y.npy and --input X.npy are the
 * same file").  Devices and FIFOs may be named by several outputs.
 * 0, or -1 with errp. */
int dc_file_check (const struct dc_file_use *v, size_t n, dc_error_t *errp);

/* True when fd's filesystem shows other hosts its writes only after a
 * flush (NFS, Lustre, GPFS, CIFS, SMB2, Ceph, BeeGFS, FUSE), or fstatfs
 * fails: what the ranks of --io direct fdatasync after each chunk. */
bool dc_file_network_fs (int fd);

/* Private folders of runs, as PARENT/PREFIX followed by 6 characters
 * (mkdtemp): dc_file_hold_dir holds one while its process lives (an
 * flock on the returned descriptor, close-on-exec, released when the
 * process ends however it ends) and writes its file "owner";
 * dc_file_sweep_dirs removes the folders of this user under parent that
 * hold "owner" and whose lock is free (their process was killed before it
 * could remove them), with what they hold, 8 levels deep at most.
 * dc_file_hold_dir: the descriptor, or -1 (errno). */
int dc_file_hold_dir (const char *dir);
void dc_file_sweep_dirs (const char *parent, const char *prefix);

#endif
