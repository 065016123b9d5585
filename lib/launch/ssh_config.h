/* ssh_config.h - the part of OpenSSH's client config that dcrun reads
 *
 * dc_ssh_config_read() reads a config file (~/.ssh/config) for one host
 * as OpenSSH does: `Host` patterns (with `!` and wildcards) match the
 * host as the user spelled it, the first value of each keyword wins
 * (so `Host *` at the end gives defaults), `Match all` applies, other
 * `Match` blocks do not, and `Include` reads further files in place
 * (globs; relative names are under ~/.ssh; at most 16 deep, which also
 * ends an Include loop).  A missing Include file is fine; a missing
 * explicit config file is an error.  A line longer than 64 KiB, a NUL
 * byte, a file over 1 MiB, a bad value of a keyword dcrun uses: errors
 * naming the file and line.
 *
 * Keywords used: HostName (%h), User, Port, IdentityFile, ProxyJump,
 * StrictHostKeyChecking, UserKnownHostsFile (its first file),
 * ConnectTimeout.  ProxyCommand (other than none) is an error: ignoring it
 * would connect elsewhere.  Every other keyword that applies to the host is
 * listed in `unknown` ("FILE:LINE: Keyword"), for the caller to show with -v.
 */
#ifndef DC_SSH_CONFIG_H
#define DC_SSH_CONFIG_H

#include <stdbool.h>

#include "lib/util/error.h"

#define DC_SSH_CONFIG_MAX_KEYS 16
#define DC_SSH_CONFIG_MAX_UNKNOWN 32
#define DC_SSH_CONFIG_MAX_DEPTH 16

enum dc_ssh_strict {
    DC_SSH_STRICT_UNSET = 0,
    DC_SSH_STRICT_YES,        /* an unknown host is refused */
    DC_SSH_STRICT_ACCEPT_NEW, /* an unknown host's key is added */
    DC_SSH_STRICT_NO,         /* an unknown host is accepted, not added */
};

struct dc_ssh_config {
    char *hostname;                     /* NULL: not set */
    char *user;                         /* NULL: not set */
    int port;                           /* 0: not set */
    char *keys[DC_SSH_CONFIG_MAX_KEYS]; /* IdentityFile, ~ expanded */
    int nkeys;
    char *proxyjump; /* NULL: not set or "none" */
    bool proxyjump_set;
    enum dc_ssh_strict strict;
    char *known_hosts;      /* UserKnownHostsFile's first file, ~ expanded */
    double connect_timeout; /* seconds, 0: not set */
    char *unknown[DC_SSH_CONFIG_MAX_UNKNOWN]; /* "FILE:LINE: Keyword" */
    int nunknown;
};

/* Read `path` for `host` into *c (zeroed by the caller, or holding values
 * that win over the file's).  `explicit`: a missing file is an error.
 * `home`: the folder whose .ssh holds relative Include files (NULL:
 * $HOME). */
int dc_ssh_config_read (const char *path, const char *host, bool explicit,
                        const char *home, struct dc_ssh_config *c,
                        dc_error_t *errp);

void dc_ssh_config_free (struct dc_ssh_config *c);

#endif /* !DC_SSH_CONFIG_H */
