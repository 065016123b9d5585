/* sha256.h - SHA-256 digests (OpenSSL libcrypto EVP underneath) */
#ifndef DC_SHA256_H
#define DC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

#define DC_SHA256_HEXLEN 64

struct dc_sha256;

struct dc_sha256 *dc_sha256_create (void);
int dc_sha256_update (struct dc_sha256 *h, const void *p, size_t n);
/* Finish into hex (65 bytes: 64 lower-case hex digits and a NUL). */
int dc_sha256_final (struct dc_sha256 *h, char *hex);
void dc_sha256_destroy (struct dc_sha256 *h); /* accepts NULL */

/* Digest of the bytes [0, size) of an open file (pread, fd not moved). */
int dc_sha256_fd (int fd, uint64_t size, char *hex, dc_error_t *errp);

/* Digest of a whole file. */
int dc_sha256_file (const char *path, char *hex, dc_error_t *errp);

#endif
