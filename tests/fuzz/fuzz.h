/* fuzz.h - helpers shared by the libFuzzer harnesses of tests/fuzz/ */
#ifndef DC_FUZZ_H
#define DC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A NUL-terminated copy of the input (caller frees). */
static inline char *fuzz_cstr (const uint8_t *data, size_t size)
{
    char *s = malloc (size + 1);

    if (!s)
        abort ();
    memcpy (s, data, size);
    s[size] = '\0';
    return s;
}

/* The input as a file: a memfd, named by "/proc/self/fd/N" in path.
 * Returns the fd (close it), or -1. */
static inline int fuzz_file (const uint8_t *data, size_t size, char *path,
                             size_t pathlen)
{
    int fd = memfd_create ("fuzz", MFD_CLOEXEC);

    if (fd < 0)
        return -1;
    for (size_t off = 0; off < size;) {
        ssize_t n = write (fd, data + off, size - off);
        if (n <= 0) {
            close (fd);
            return -1;
        }
        off += (size_t)n;
    }
    snprintf (path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
