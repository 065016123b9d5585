/* launch_ssh.c - ranks over SSH with libssh2: non-blocking, many hosts at once
 *
 * One session per host (its ranks are channels of that session), up to
 * opts.fanout sessions connecting at once, each bounded by
 * opts.connect_timeout from connect to the last channel started.  Every
 * channel runs `dcrun worker ... -- CMD`; the channel's stdin is the worker's
 * control channel (signals as "signal N" lines, EOF kills the job there).
 *
 * Host keys are checked as OpenSSH does, against known_hosts read once at
 * init line by line (a line that cannot be parsed is an error naming the
 * file and line, never the silent end of the file): a key on an @revoked
 * line is refused for every host; a key that differs from the one known
 * for the host, or a host known only with keys of other types, is a
 * CHANGED key and always refused; an unknown host is refused unless
 * accept_new, which appends its key.  The handshake asks first for the
 * host key algorithms known_hosts holds for the host.  @cert-authority
 * lines are checked for form and otherwise ignored (libssh2 has no host
 * certificates).  Messages carry the key's SHA256 fingerprint.
 * Authentication: ssh-agent, then opts.ssh_key, then IdentityFile from the
 * config, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
 *
 * The client config (ssh_config.c) gives per host: HostName, User, Port,
 * keys, StrictHostKeyChecking (the host's policy for unknown keys),
 * UserKnownHostsFile (each file read once, struct khdb) and
 * ConnectTimeout; the command line wins over it.  ProxyJump: the jump
 * hosts are connected one after the other (blocking, within the host's
 * deadline), each with its own host-key check and login, then a
 * direct-tcpip channel to the next hop; a thread per hop copies between
 * that channel and a socketpair, whose other end is the next session's
 * socket.  After login a probe on its own channel looks for dcrun there;
 * missing, it is a launcher failure naming the path, or with copy_dcrun
 * this binary (and its GPU modules) is copied over the session into a
 * mkdtemp folder there, which host_close() removes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"
#include "lib/launch/control.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/launch/ssh_config.h"

#if HAVE_SSH

#define MAX_KEYS 16
#define CONFIG_MAX_BYTES (1024 * 1024)
#define CTL_MAX (DC_CTL_STDIN_MAX + 1024) /* one stdin frame + signals */

enum hstate {
    H_WAIT = 0, /* not started (fanout) */
    H_CONNECT,
    H_HANDSHAKE,
    H_AUTH,
    H_PROBE, /* is dcrun there? */
    H_CHANNELS,
    H_READY,
    H_FAILED,
    H_DONE,
};

struct sshrank;

struct sshhost {
    char *name;     /* as the host list gave it */
    char *hostname; /* after ~/.ssh/config HostName */
    char *user;
    int port;
    struct khdb *kh; /* its known_hosts */
    enum dc_ssh_strict strict;
    double timeout;         /* connect + login, seconds */
    char *proxyjump;        /* NULL: direct */
    char *tmpdir;           /* --copy-dcrun: the folder made there */
    char *dcrun;            /* dcrun there: remote_dcrun or tmpdir/dcrun */
    char *moddir;           /* "DCRUN_MODULE_DIR=tmpdir/modules" or NULL */
    LIBSSH2_CHANNEL *probe; /* the command that looks for dcrun */
    bool probe_started;
    char probe_out[256]; /* what it said (rank 0's host: the port) */
    size_t probe_outlen;
    char *keys[MAX_KEYS]; /* key files to try, in order */
    int nkeys;
    int sock;
    LIBSSH2_SESSION *s;
    LIBSSH2_AGENT *agent;
    struct libssh2_agent_publickey *ident;
    int auth_step; /* 0 agent, then keys[auth_step - 1] */
    enum hstate state;
    double deadline;
    struct sshrank **ranks;
    int nranks;
    int nopened; /* channels started */
    bool final;  /* the ranks' command lines made for the start */
    char err[1400];
};

struct sshrank {
    int rank;
    struct sshhost *h;
    const struct dc_launch_rank *src; /* during spawn */
    char *cmdline;
    LIBSSH2_CHANNEL *ch;
    bool opened; /* channel open, exec not yet done */
    bool started;
    bool eof;
    bool closing;
    bool reported;
    char *ctl; /* control bytes waiting for the channel (CTL_MAX) */
    size_t ctllen, ctlcap;
    bool stdin_data; /* its stdin is framed on the control channel */
    bool stdin_eof;  /* "stdin-eof" queued */
    bool in_place;   /* exec_in_place: no control lines; signals send EOF */
    char *env;       /* the rank environment for the worker's stdin */
    size_t envlen, envoff;
    bool want_eof, sent_eof;
};

struct ssh {
    struct sshhost *hosts;
    int nhosts;
    struct sshrank *ranks;
    int nranks;
    struct khdb **dbs; /* known_hosts files, [0] the default */
    int ndbs;
    struct jump **jumps; /* ProxyJump forwardings, their threads */
    int njumps;
    /* opts.port_var: rank 0's host, the port asked for, the one agreed */
    struct sshhost *porthost;
    int port_want, port;
};

/* One known_hosts file, read once. */
struct khdb {
    char known_hosts[4096];
    LIBSSH2_SESSION *khs;   /* an unconnected session that owns kh */
    LIBSSH2_KNOWNHOSTS *kh; /* the plain lines of known_hosts */
    struct khkey *revoked;  /* the keys of its @revoked lines */
    int nrevoked;
};

static int lib_refs;

static int jump_connect (struct dc_launch *l, struct sshhost *h);
static void jumps_free (struct ssh *ss);
static int prepare_dcrun (struct dc_launch *l, struct sshhost *h, int st);
static void remove_tmpdir (struct sshhost *h);
static void session_prefs (struct sshhost *h);
static int probe_step (struct dc_launch *l, struct sshhost *h, int *st);
static int run_remote (struct sshhost *h, const char *cmd, const char *in,
                       size_t inlen, char *out, size_t outsz, double deadline);
static char *quote1 (const char *s);
static int wdir_check (struct sshhost *h);
static char *port_cmd (struct dc_launch *l, const char *dcrun);
static const char *host_wdir (const struct sshhost *h);
static int no_wdir (struct sshhost *h);

static const char *home_dir (void)
{
    const char *h = getenv ("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid (getuid ());
    return pw && pw->pw_dir ? pw->pw_dir : "/";
}

/* ---- host key check ---- */

static void b64 (const unsigned char *in, size_t n, char *out, size_t outsz)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < outsz; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = t[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = t[v & 63];
    }
    out[o] = '\0';
}

/* Host key types: libssh2's two numberings, the name in known_hosts and
 * the algorithms that ask a server for a key of that type, in the order
 * the handshake prefers them. */
static const struct keytype {
    int hostkey; /* LIBSSH2_HOSTKEY_TYPE_* */
    int kh;      /* LIBSSH2_KNOWNHOST_KEY_* */
    const char *name;
    const char *algs; /* NULL: never asked for */
} keytypes[] = {
    {LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519",
     "ssh-ed25519"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
     "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
     "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
     "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"},
    {LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa",
     "rsa-sha2-512,rsa-sha2-256,ssh-rsa"},
    {LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss", NULL},
};
#define NKEYTYPES (sizeof (keytypes) / sizeof (keytypes[0]))

static const struct keytype *keytype_by_hostkey (int hostkey_type)
{
    for (size_t i = 0; i < NKEYTYPES; i++)
        if (keytypes[i].hostkey == hostkey_type)
            return &keytypes[i];
    return NULL;
}

static const struct keytype *keytype_by_name (const char *name, size_t len)
{
    for (size_t i = 0; i < NKEYTYPES; i++)
        if (strlen (keytypes[i].name) == len &&
            !memcmp (keytypes[i].name, name, len))
            return &keytypes[i];
    return NULL;
}

/* ---- known_hosts, read line by line ---- */

#define KH_LINE_MAX (64 * 1024)

struct khkey {
    unsigned char *blob;
    size_t len;
    int lineno;
};

/* Decode standard base64 (padding optional).  Returns the length, or -1
 * on a character or length that is not base64. */
static long b64_decode (const char *in, size_t n, unsigned char *out)
{
    unsigned v = 0;
    int bits = 0;
    size_t o = 0, pad = 0;

    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        int d;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad)
            return -1; /* data after padding */
        if (c >= 'A' && c <= 'Z')
            d = c - 'A';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            d = c - '0' + 52;
        else if (c == '+')
            d = 62;
        else if (c == '/')
            d = 63;
        else
            return -1;
        v = (v << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(v >> bits);
            v &= (1u << bits) - 1;
        }
    }
    if (pad > 2 || (n - pad) % 4 == 1 || (pad && n % 4 != 0) || v != 0)
        return -1;
    return (long)o;
}

/* One line of known_hosts, split in place. */
struct khline {
    enum { KH_PLAIN, KH_REVOKED, KH_CA } marker;
    const char *hosts, *type, *key; /* NUL-terminated fields */
    const char *rest;               /* "hosts type key [comment]" */
    unsigned char *blob;            /* the decoded key (caller frees) */
    size_t bloblen;
};

static char *next_field (char **p)
{
    char *f = *p, *e;

    while (*f == ' ' || *f == '\t')
        f++;
    if (!*f)
        return NULL;
    e = f;
    while (*e && *e != ' ' && *e != '\t')
        e++;
    *p = *e ? e + 1 : e;
    *e = '\0';
    return f;
}

/* Parse `line` (no newline).  1 with *kl filled, 0 for a line to skip
 * (blank, comment, an SSH-1 key), -1 with *why on a line that is not one
 * of known_hosts. */
static int kh_parse (char *line, char *copy, struct khline *kl,
                     const char **why)
{
    char *p = line, *f;

    memset (kl, 0, sizeof (*kl));
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p || *p == '#')
        return 0;
    if (*p == '@') {
        f = next_field (&p);
        if (!strcmp (f, "@revoked"))
            kl->marker = KH_REVOKED;
        else if (!strcmp (f, "@cert-authority"))
            kl->marker = KH_CA;
        else {
            *why = "unknown marker (expected @revoked or @cert-authority)";
            return -1;
        }
        while (*p == ' ' || *p == '\t')
            p++;
    }
    /* what libssh2 reads: the line from the host names on */
    kl->rest = copy + (p - line);
    if (!(kl->hosts = next_field (&p))) {
        *why = "no host names";
        return -1;
    }
    if (!(kl->type = next_field (&p))) {
        *why = "no key after the host names";
        return -1;
    }
    if (kl->type[0] >= '0' && kl->type[0] <= '9')
        return 0; /* SSH-1 "bits e n": no SSH-2 server offers it */
    if (!(kl->key = next_field (&p))) {
        *why = "no base64 key after the key type";
        return -1;
    }
    size_t n = strlen (kl->key);
    if (!(kl->blob = malloc (n / 4 * 3 + 3))) {
        *why = "out of memory";
        return -1;
    }
    long len = b64_decode (kl->key, n, kl->blob);
    if (len < 0) {
        *why = "the key is not valid base64";
        goto bad;
    }
    kl->bloblen = (size_t)len;
    /* the key blob starts with its own type: string type */
    uint32_t tl = len >= 4 ? ((uint32_t)kl->blob[0] << 24) |
                                 ((uint32_t)kl->blob[1] << 16) |
                                 ((uint32_t)kl->blob[2] << 8) | kl->blob[3]
                           : 0;
    if (len < 4 || tl > (uint64_t)len - 4 || tl != strlen (kl->type) ||
        memcmp (kl->blob + 4, kl->type, tl) != 0) {
        *why = "the key does not match its key type";
        goto bad;
    }
    return 1;
bad:
    free (kl->blob);
    kl->blob = NULL;
    return -1;
}

static int kh_error (dc_error_t *errp, const char *file, int lineno,
                     const char *why)
{
    errno = EINVAL;
    return errprintf (errp,
                      "ssh: %s:%d: cannot parse this known_hosts line: %s\n"
                      "hint: fix or remove line %d (dcrun reads no host key "
                      "from a file it cannot read completely)",
                      file, lineno, why, lineno);
}

/* Read known_hosts into ss->kh and ss->revoked.  A missing file is an
 * empty one. */
static int kh_load (struct khdb *ss, dc_error_t *errp)
{
    FILE *f;
    char *line = NULL, *copy = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;

    if (!(ss->khs = libssh2_session_init ()) ||
        !(ss->kh = libssh2_knownhost_init (ss->khs)))
        return errprintf (errp, "ssh: out of memory");
    if (!(f = fopen (ss->known_hosts, "re"))) {
        if (errno == ENOENT)
            return 0;
        return errprintf (errp, "ssh: %s: %s", ss->known_hosts,
                          strerror (errno));
    }
    while ((n = getline (&line, &cap, f)) >= 0) {
        struct khline kl;
        const char *why = NULL;
        lineno++;
        if (n > KH_LINE_MAX) {
            rc = kh_error (errp, ss->known_hosts, lineno, "longer than 64 KiB");
            break;
        }
        if (memchr (line, '\0', (size_t)n)) {
            rc = kh_error (errp, ss->known_hosts, lineno, "a NUL byte");
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        free (copy);
        if (!(copy = strdup (line))) {
            rc = errprintf (errp, "ssh: out of memory");
            break;
        }
        int k = kh_parse (line, copy, &kl, &why);
        if (k < 0) {
            rc = kh_error (errp, ss->known_hosts, lineno, why);
            break;
        }
        if (k == 0)
            continue;
        if (kl.marker == KH_REVOKED) {
            struct khkey *v =
                realloc (ss->revoked, (size_t)(ss->nrevoked + 1) * sizeof (*v));
            if (!v) {
                free (kl.blob);
                rc = errprintf (errp, "ssh: out of memory");
                break;
            }
            ss->revoked = v;
            v[ss->nrevoked++] = (struct khkey){
                .blob = kl.blob, .len = kl.bloblen, .lineno = lineno};
            continue;
        }
        free (kl.blob);
        /* @cert-authority: checked above, unused (no host certificates);
         * key types libssh2 does not know can never match: skipped */
        if (kl.marker == KH_CA || !keytype_by_name (kl.type, strlen (kl.type)))
            continue;
        if (libssh2_knownhost_readline (ss->kh, kl.rest, strlen (kl.rest),
                                        LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
            char *msg = NULL;
            libssh2_session_last_error (ss->khs, &msg, NULL, 0);
            rc = kh_error (errp, ss->known_hosts, lineno,
                           msg && *msg ? msg : "libssh2 refuses it");
            break;
        }
    }
    if (rc == 0 && ferror (f))
        rc = errprintf (errp, "ssh: %s: %s", ss->known_hosts, strerror (errno));
    free (line);
    free (copy);
    fclose (f);
    return rc;
}

static void kh_free (struct khdb *ss)
{
    for (int i = 0; i < ss->nrevoked; i++)
        free (ss->revoked[i].blob);
    free (ss->revoked);
    ss->revoked = NULL;
    ss->nrevoked = 0;
    if (ss->kh)
        libssh2_knownhost_free (ss->kh);
    ss->kh = NULL;
    if (ss->khs)
        libssh2_session_free (ss->khs);
    ss->khs = NULL;
}

/* Whether known_hosts holds a key of type t for the host (a dummy key
 * never matches: a host entry of that type answers MISMATCH). */
static bool kh_has_type (struct sshhost *h, const struct keytype *t)
{
    struct libssh2_knownhost *found = NULL;
    int rc = libssh2_knownhost_checkp (
        h->kh->kh, h->hostname, h->port ? h->port : 22, "\0", 1,
        LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | t->kh,
        &found);
    return rc == LIBSSH2_KNOWNHOST_CHECK_MATCH ||
           rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH;
}

/* The host key algorithms for the handshake: those of the types
 * known_hosts holds for the host first (as OpenSSH orders them), then the
 * others. */
static void hostkey_prefs (struct sshhost *h, char *out, size_t outsz)
{
    bool known[NKEYTYPES];
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < NKEYTYPES; i++)
        known[i] = keytypes[i].algs && kh_has_type (h, &keytypes[i]);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < NKEYTYPES; i++) {
            if (!keytypes[i].algs || known[i] != (pass == 0))
                continue;
            int k = snprintf (out + o, outsz - o, "%s%s", o ? "," : "",
                              keytypes[i].algs);
            if (k < 0 || (size_t)k >= outsz - o)
                return;
            o += (size_t)k;
        }
}

static int check_host_key (struct dc_launch *l, struct sshhost *h)
{
    struct khdb *ss = h->kh;
    size_t len;
    int type;
    const char *key = libssh2_session_hostkey (h->s, &len, &type);
    const unsigned char *sha = (const unsigned char *)libssh2_hostkey_hash (
        h->s, LIBSSH2_HOSTKEY_HASH_SHA256);
    char fp[64] = "?";
    int port = h->port ? h->port : 22;
    LIBSSH2_KNOWNHOSTS *kh = ss->kh;
    const struct keytype *kt = keytype_by_hostkey (type);

    if (!key) {
        snprintf (h->err, sizeof (h->err), "no host key from the server");
        return -1;
    }
    if (sha)
        b64 (sha, 32, fp, sizeof (fp));
    if (!kt) {
        snprintf (h->err, sizeof (h->err),
                  "host key SHA256:%s of an unknown type, refused", fp);
        return -1;
    }
    for (int i = 0; i < ss->nrevoked; i++)
        if (ss->revoked[i].len == len &&
            !memcmp (ss->revoked[i].blob, key, len)) {
            snprintf (h->err, sizeof (h->err),
                      "host key SHA256:%s is REVOKED (@revoked at "
                      "%.400s:%d), refused",
                      fp, ss->known_hosts, ss->revoked[i].lineno);
            return -1;
        }
    int mask =
        LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kt->kh;
    struct libssh2_knownhost *found = NULL;
    int rc = libssh2_knownhost_checkp (kh, h->hostname, port, key, len, mask,
                                       &found);
    char hostport[300];
    if (port == 22)
        snprintf (hostport, sizeof (hostport), "%s", h->hostname);
    else
        snprintf (hostport, sizeof (hostport), "[%s]:%d", h->hostname, port);
    if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH)
        return 0;
    if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
        snprintf (
            h->err, sizeof (h->err),
            "host key CHANGED (SHA256:%s), refused: it differs from "
            "the one in %.400s\nhint: if the host was reinstalled, remove "
            "its line with: ssh-keygen -R '%s' -f %.400s",
            fp, ss->known_hosts, hostport, ss->known_hosts);
        return -1;
    }
    /* no key of the offered type: a key of another type means the host
     * is known and its keys changed (as OpenSSH decides) */
    for (size_t i = 0; i < NKEYTYPES; i++) {
        if (&keytypes[i] == kt || !kh_has_type (h, &keytypes[i]))
            continue;
        snprintf (h->err, sizeof (h->err),
                  "host key CHANGED (SHA256:%s), refused: the server offers "
                  "a %s key and %.400s holds only keys of other types (%s) "
                  "for this host\nhint: if the host was reinstalled, remove "
                  "its lines with: ssh-keygen -R '%s' -f %.400s",
                  fp, kt->name, ss->known_hosts, keytypes[i].name, hostport,
                  ss->known_hosts);
        return -1;
    }
    (void)l;
    if (h->strict == DC_SSH_STRICT_NO)
        return 0; /* StrictHostKeyChecking no: accepted, not recorded */
    if (h->strict != DC_SSH_STRICT_ACCEPT_NEW) {
        snprintf (h->err, sizeof (h->err),
                  "unknown host key SHA256:%s, refused: not in %.400s\nhint: "
                  "check the fingerprint, then run again with "
                  "--ssh-accept-new to add it (or StrictHostKeyChecking "
                  "accept-new in the ssh config)",
                  fp, ss->known_hosts);
        return -1;
    }
    /* accept-new: append one line (never rewrite the file) */
    struct libssh2_knownhost *added = NULL;
    char line[8192];
    size_t outlen = 0;
    if (libssh2_knownhost_addc (kh, hostport, NULL, key, len, NULL, 0, mask,
                                &added) != 0 ||
        libssh2_knownhost_writeline (kh, added, line, sizeof (line), &outlen,
                                     LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
        snprintf (h->err, sizeof (h->err), "cannot add host key SHA256:%s", fp);
        return -1;
    }
    int fd =
        open (ss->known_hosts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || write (fd, line, outlen) != (ssize_t)outlen) {
        snprintf (h->err, sizeof (h->err), "cannot add host key to %.400s: %s",
                  ss->known_hosts, strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    close (fd);
    return 0;
}

/* ---- the worker's command line, the environment off it ---- */

/* `dcrun worker --env-stdin BYTES ...`: the rank environment goes to the
 * worker's stdin as NUL-terminated entries (*envp, *lenp), never on the
 * command line that ps shows on the host. */
static char *worker_cmdline (const char *dcrun,
                             const struct dc_launch_rank *rank, char **envp,
                             size_t *lenp)
{
    struct dc_launch_rank copy = *rank;
    char *const head_av[] = {(char *)dcrun, "worker", NULL};
    char *head = NULL, *tail = NULL, *line = NULL, *block = NULL;
    size_t len = 0;

    *envp = NULL;
    *lenp = 0;
    for (int i = 0; rank->env && rank->env[i]; i++)
        len += strlen (rank->env[i]) + 1;
    if (len > DC_ENV_BLOCK_MAX) {
        errno = E2BIG;
        return NULL;
    }
    copy.env = NULL;
    if (!(tail = dc_launch_worker_cmdline (dcrun, &copy)) || len == 0)
        return tail;
    if (!(head = dc_launch_shell_join (head_av)) ||
        strncmp (tail, head, strlen (head)) != 0 || !(block = malloc (len)) ||
        asprintf (&line, "%s --env-stdin %zu%s", head, len,
                  tail + strlen (head)) < 0) {
        free (head);
        free (tail);
        free (block);
        errno = ENOMEM;
        return NULL;
    }
    size_t o = 0;
    for (int i = 0; rank->env[i]; i++) {
        size_t k = strlen (rank->env[i]) + 1;
        memcpy (block + o, rank->env[i], k);
        o += k;
    }
    free (head);
    free (tail);
    *envp = block;
    *lenp = len;
    return line;
}

/* ---- connection state machine ---- */

static const char *ssh_errmsg (LIBSSH2_SESSION *s)
{
    char *msg = NULL;
    libssh2_session_last_error (s, &msg, NULL, 0);
    return msg && *msg ? msg : "unknown error";
}

static int host_fail (struct sshhost *h, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
static int host_fail (struct sshhost *h, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    if (fmt)
        vsnprintf (h->err, sizeof (h->err), fmt, ap);
    va_end (ap);
    h->state = H_FAILED;
    return -1;
}

static int start_connect (struct dc_launch *l, struct sshhost *h)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    int rc;

    h->deadline = dc_now () + h->timeout;
    if (h->proxyjump)
        return jump_connect (l, h);
    snprintf (port, sizeof (port), "%d", h->port ? h->port : 22);
    if ((rc = getaddrinfo (h->hostname, port, &hints, &ai)) != 0)
        return host_fail (h, "cannot resolve: %s", gai_strerror (rc));
    h->sock =
        socket (ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (h->sock < 0) {
        freeaddrinfo (ai);
        return host_fail (h, "socket: %s", strerror (errno));
    }
    int one = 1;
    setsockopt (h->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
    rc = connect (h->sock, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo (ai);
    if (rc < 0 && errno != EINPROGRESS)
        return host_fail (h, "connect to port %s: %s", port, strerror (errno));
    h->state = H_CONNECT;
    return 0;
}

static int next_auth (struct dc_launch *l, struct sshhost *h)
{
    const char *user = h->user;
    int rc;

    (void)l;
    /* step 0: the agent, one identity after another */
    if (h->auth_step == 0) {
        if (!getenv ("SSH_AUTH_SOCK")) {
            h->auth_step = 1;
        } else {
            if (!h->agent) {
                if (!(h->agent = libssh2_agent_init (h->s)) ||
                    libssh2_agent_connect (h->agent) != 0 ||
                    libssh2_agent_list_identities (h->agent) != 0) {
                    h->auth_step = 1;
                    return next_auth (l, h);
                }
                h->ident = NULL;
                if (libssh2_agent_get_identity (h->agent, &h->ident, NULL) !=
                    0) {
                    h->auth_step = 1;
                    return next_auth (l, h);
                }
            }
            rc = libssh2_agent_userauth (h->agent, user, h->ident);
            if (rc == LIBSSH2_ERROR_EAGAIN)
                return 0;
            if (rc == 0)
                return 1;
            struct libssh2_agent_publickey *prev = h->ident;
            if (libssh2_agent_get_identity (h->agent, &h->ident, prev) != 0)
                h->auth_step = 1;
            return next_auth (l, h);
        }
    }
    while (h->auth_step - 1 < h->nkeys) {
        const char *key = h->keys[h->auth_step - 1];
        if (access (key, R_OK) != 0) {
            h->auth_step++;
            continue;
        }
        rc = libssh2_userauth_publickey_fromfile_ex (
            h->s, user, (unsigned)strlen (user), NULL, key, NULL);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return 0;
        if (rc == 0)
            return 1;
        if (rc == LIBSSH2_ERROR_SOCKET_RECV ||
            rc == LIBSSH2_ERROR_SOCKET_SEND ||
            rc == LIBSSH2_ERROR_SOCKET_DISCONNECT)
            return host_fail (h, "connection lost during login: %s",
                              ssh_errmsg (h->s));
        h->auth_step++;
    }
    return host_fail (h,
                      "login as %s refused: no key accepted (tried the "
                      "ssh-agent%s and %d key file%s)",
                      user, getenv ("SSH_AUTH_SOCK") ? "" : " (none)", h->nkeys,
                      h->nkeys == 1 ? "" : "s");
}

/* The worker's command line for a copied dcrun: its path, and
 * DCRUN_MODULE_DIR for the copied modules unless the rank has one. */
/* The command line of r as it starts: its environment with opts.port_var
 * set to the port rank 0's host agreed to, and DCRUN_MODULE_DIR for a
 * copied dcrun.  NULL when out of memory. */
static char *final_cmdline (struct dc_launch *l, struct sshhost *h,
                            struct sshrank *r)
{
    struct ssh *ss = l->data;
    struct dc_launch_rank copy = *r->src;
    const char *var = l->opts.port_var;
    size_t vlen = var ? strlen (var) : 0;
    char portenv[160] = "";
    int n = 0, k = 0;
    bool has_mod = false;
    char **env;

    for (; copy.env && copy.env[n]; n++)
        has_mod |= !strncmp (copy.env[n], "DCRUN_MODULE_DIR=", 17);
    if (!(env = calloc ((size_t)n + 2, sizeof (*env))))
        return NULL;
    if (var && ss->port > 0)
        snprintf (portenv, sizeof (portenv), "%.100s=%d", var, ss->port);
    for (int i = 0; i < n; i++)
        env[k++] = portenv[0] && !strncmp (copy.env[i], var, vlen) &&
                           copy.env[i][vlen] == '='
                       ? portenv
                       : copy.env[i];
    if (h->moddir && !has_mod)
        env[k++] = h->moddir;
    copy.env = env;
    free (r->cmdline);
    free (r->env);
    r->env = NULL;
    r->envlen = 0;
    r->cmdline = worker_cmdline (h->dcrun, &copy, &r->env, &r->envlen);
    free (env);
    return r->cmdline;
}

/* What `dcrun worker --port-check` said on rank 0's host (out, its exit
 * status st): 0 with ss->port set, or -1 with h->err. */
static int port_answer (struct dc_launch *l, struct sshhost *h, char *out,
                        int st)
{
    struct ssh *ss = l->data;
    const char *var = l->opts.port_var;
    int got = 0;

    if (st == 0 && sscanf (out, "port %d", &got) == 1 && got > 0 &&
        got < 65536) {
        ss->port = got;
        dc_log (DC_LOG_INFO, "ssh: %s: %s %d, free there (rank 0's host)",
                h->name, var, got);
        return 0;
    }
    if (st == 0 && sscanf (out, "busy %d", &got) == 1)
        return host_fail (h,
                          "%s %d is in use there (rank 0's host)\nhint: "
                          "choose a free port, or let dcrun pick one",
                          var, got);
    out[strcspn (out, "\n")] = '\0';
    return host_fail (h, "cannot check %s there (status %d%s%.200s)", var, st,
                      out[0] ? ": " : "", out);
}

/* The port check as a command: "DCRUN worker --port-check N" (NULL when
 * out of memory). */
static char *port_cmd (struct dc_launch *l, const char *dcrun)
{
    struct ssh *ss = l->data;
    char *q = quote1 (dcrun), *cmd = NULL;

    if (q && asprintf (&cmd, "%s worker --port-check %d", q,
                       l->opts.port_fixed ? ss->port_want : 0) < 0)
        cmd = NULL;
    free (q);
    return cmd;
}

/* Rank 0's host after --copy-dcrun (the probe asked it otherwise): which
 * port is free there, or is the one given (blocking, within the host's
 * deadline).  0 with ss->port set, or -1 with h->err. */
static int port_check (struct dc_launch *l, struct sshhost *h)
{
    char *cmd = port_cmd (l, h->dcrun), out[256];

    if (!cmd)
        return host_fail (h, "out of memory");
    int st = run_remote (h, cmd, NULL, 0, out, sizeof (out), h->deadline);
    free (cmd);
    if (st < 0)
        return host_fail (h, "checking %s: %.1000s", l->opts.port_var, h->err);
    return port_answer (l, h, out, st);
}

/* H_PROBE: dcrun there (one command, not blocking), or copied there
 * (--copy-dcrun: blocking); the ranks' folder; on rank 0's host the port.
 * 1 when done, 0 to be called again, -1 when the host failed. */
static int probe_done (struct dc_launch *l, struct sshhost *h)
{
    struct ssh *ss = l->data;
    int st = -1, rc = probe_step (l, h, &st);

    if (rc <= 0)
        return rc;
    if (st == 4)
        return no_wdir (h);
    /* rank 0's host: the probe asked for the port too (status 5: that
     * failed), unless dcrun was missing */
    if (h == ss->porthost && st != 3 &&
        port_answer (l, h, h->probe_out, st == 5 ? 5 : 0) < 0)
        return -1;
    if (prepare_dcrun (l, h, st == 5 ? 0 : st) < 0)
        return -1;
    if (h->tmpdir && host_wdir (h) && wdir_check (h) < 0)
        return -1;
    if (h == ss->porthost && st == 3 && port_check (l, h) < 0)
        return -1;
    return 1;
}

/* H_CHANNELS: every rank's channel opened, its worker started and its
 * environment sent.  1 when done, 0 to be called again, -1 failed. */
static int channels_step (struct dc_launch *l, struct sshhost *h)
{
    struct ssh *ss = l->data;
    int rc;

    if (!h->final) {
        /* every rank's MASTER_PORT is the one rank 0's host agreed to:
         * wait for it (ssh_spawn steps us again) */
        if (ss->porthost && ss->port == 0)
            return 0;
        for (int i = 0; i < h->nranks; i++)
            if (!h->ranks[i]->src || !final_cmdline (l, h, h->ranks[i]))
                return host_fail (h, "out of memory");
        h->final = true;
    }
    while (h->nopened < h->nranks) {
        struct sshrank *r = h->ranks[h->nopened];
        if (!r->ch) {
            r->ch = libssh2_channel_open_session (h->s);
            if (!r->ch) {
                if (libssh2_session_last_errno (h->s) == LIBSSH2_ERROR_EAGAIN)
                    return 0;
                return host_fail (h, "cannot open a channel: %s",
                                  ssh_errmsg (h->s));
            }
        }
        if (!r->started) {
            rc = libssh2_channel_exec (r->ch, r->cmdline);
            if (rc == LIBSSH2_ERROR_EAGAIN)
                return 0;
            if (rc)
                return host_fail (h, "cannot start dcrun worker: %s",
                                  ssh_errmsg (h->s));
            r->started = true;
        }
        /* the environment, before anything else on stdin */
        while (r->envoff < r->envlen) {
            ssize_t w = libssh2_channel_write (r->ch, r->env + r->envoff,
                                               r->envlen - r->envoff);
            if (w == LIBSSH2_ERROR_EAGAIN)
                return 0;
            if (w < 0)
                return host_fail (h,
                                  "cannot send the environment of rank %d: "
                                  "%s",
                                  r->rank, ssh_errmsg (h->s));
            r->envoff += (size_t)w;
        }
        h->nopened++;
    }
    return 1;
}

/* Advance a host as far as it goes without blocking.  Returns -1 when it
 * failed, 0 otherwise. */
static int host_step (struct dc_launch *l, struct sshhost *h)
{
    int rc, one = 1;

    /* sshd sends with Nagle on: after a small reply it holds the next one
     * until that is ACKed, and a delayed ACK from here (40 ms) stalls the
     * login and the channel start.  Ask the kernel to ACK at once; it
     * leaves quick-ACK mode by itself, so set it again at every step. */
    if (h->sock >= 0)
        setsockopt (h->sock, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof (one));
    for (;;) {
        switch (h->state) {
        case H_CONNECT: {
            int err = 0;
            socklen_t elen = sizeof (err);
            struct pollfd pf = {.fd = h->sock, .events = POLLOUT};
            if (poll (&pf, 1, 0) <= 0)
                return 0;
            getsockopt (h->sock, SOL_SOCKET, SO_ERROR, &err, &elen);
            if (err)
                return host_fail (h, "connect to port %d: %s",
                                  h->port ? h->port : 22, strerror (err));
            if (!(h->s = libssh2_session_init ()))
                return host_fail (h, "out of memory");
            libssh2_session_set_blocking (h->s, 0);
            session_prefs (h);
            h->state = H_HANDSHAKE;
            break;
        }
        case H_HANDSHAKE:
            rc = libssh2_session_handshake (h->s, h->sock);
            if (rc == LIBSSH2_ERROR_EAGAIN)
                return 0;
            if (rc)
                return host_fail (h, "ssh handshake failed: %s",
                                  ssh_errmsg (h->s));
            if (check_host_key (l, h) < 0)
                return host_fail (h, NULL);
            h->state = H_AUTH;
            break;
        case H_AUTH:
            rc = next_auth (l, h);
            if (rc <= 0)
                return rc;
            h->state = H_PROBE;
            break;
        case H_PROBE:
            if ((rc = probe_done (l, h)) <= 0)
                return rc;
            h->state = H_CHANNELS;
            break;
        case H_CHANNELS:
            if ((rc = channels_step (l, h)) <= 0)
                return rc;
            h->state = H_READY;
            return 0;
        default:
            return 0;
        }
    }
}

static short host_events (struct sshhost *h)
{
    if (h->state == H_CONNECT)
        return POLLOUT;
    if (!h->s)
        return 0;
    int dir = libssh2_session_block_directions (h->s);
    short ev = POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        ev |= POLLOUT;
    return ev;
}

static void host_close (struct sshhost *h)
{
    if (h->probe) {
        libssh2_channel_free (h->probe);
        h->probe = NULL;
    }
    for (int i = 0; i < h->nranks; i++)
        if (h->ranks[i]->ch) {
            libssh2_channel_free (h->ranks[i]->ch);
            h->ranks[i]->ch = NULL;
        }
    if (h->agent) {
        libssh2_agent_disconnect (h->agent);
        libssh2_agent_free (h->agent);
        h->agent = NULL;
    }
    remove_tmpdir (h);
    if (h->s) {
        libssh2_session_disconnect (h->s, "dcrun: done");
        libssh2_session_free (h->s);
        h->s = NULL;
    }
    if (h->sock >= 0) {
        close (h->sock);
        h->sock = -1;
    }
}

/* ---- ops ---- */

/* The known_hosts file at path, read once (NULL: the default one). */
static struct khdb *kh_get (struct ssh *ss, const char *path, dc_error_t *errp)
{
    struct khdb *db, **v;

    if (!path)
        return ss->ndbs > 0 ? ss->dbs[0] : NULL;
    for (int i = 0; i < ss->ndbs; i++)
        if (!strcmp (ss->dbs[i]->known_hosts, path))
            return ss->dbs[i];
    if (!(v = realloc (ss->dbs, (size_t)(ss->ndbs + 1) * sizeof (*v)))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    ss->dbs = v;
    if (!(db = calloc (1, sizeof (*db)))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    snprintf (db->known_hosts, sizeof (db->known_hosts), "%s", path);
    if (kh_load (db, errp) < 0) {
        kh_free (db);
        free (db);
        return NULL;
    }
    ss->dbs[ss->ndbs++] = db;
    return db;
}

static void ssh_free_dbs (struct ssh *ss)
{
    for (int i = 0; i < ss->ndbs; i++) {
        kh_free (ss->dbs[i]);
        free (ss->dbs[i]);
    }
    free (ss->dbs);
    ss->dbs = NULL;
    ss->ndbs = 0;
}

static int ssh_init (struct dc_launch *l, dc_error_t *errp)
{
    struct ssh *ss;
    char path[4096];

    if (lib_refs++ == 0 && libssh2_init (0) != 0) {
        lib_refs--;
        errno = EIO;
        return errprintf (errp, "ssh: libssh2_init failed");
    }
    if (!(ss = calloc (1, sizeof (*ss)))) {
        if (--lib_refs == 0)
            libssh2_exit ();
        return errprintf (errp, "out of memory");
    }
    if (l->opts.known_hosts)
        snprintf (path, sizeof (path), "%s", l->opts.known_hosts);
    else
        snprintf (path, sizeof (path), "%s/.ssh/known_hosts", home_dir ());
    if (!kh_get (ss, path, errp)) {
        ssh_free_dbs (ss);
        free (ss);
        if (--lib_refs == 0)
            libssh2_exit ();
        return -1;
    }
    l->data = ss;
    return 0;
}

static const char *default_user (void)
{
    struct passwd *pw = getpwuid (getuid ());
    if (pw && pw->pw_name)
        return pw->pw_name;
    const char *u = getenv ("USER");
    return u ? u : "root";
}

/* Say once (with -v) what the config holds that dcrun does not use. */
/* The ssh config options dcrun does not understand, each said once per
 * process (the probe of hosts' slots and the launch read the same config
 * in launchers of their own, some in threads). */
static pthread_mutex_t notes_mu = PTHREAD_MUTEX_INITIALIZER;
static char *notes[64];
static int nnotes;

static void note_unknown (const struct dc_ssh_config *c, const char *host)
{
    pthread_mutex_lock (&notes_mu);
    for (int i = 0; i < c->nunknown; i++) {
        bool seen = false;
        for (int k = 0; k < nnotes && !seen; k++)
            seen = !strcmp (notes[k], c->unknown[i]);
        if (seen || nnotes >= (int)(sizeof (notes) / sizeof (notes[0])))
            continue;
        if (!(notes[nnotes] = strdup (c->unknown[i])))
            break;
        nnotes++;
        dc_log (DC_LOG_INFO,
                "ssh: %s (for %s): not understood by dcrun, ignored",
                c->unknown[i], host);
    }
    pthread_mutex_unlock (&notes_mu);
}

/* Fill h for the host `name` (user and port: NULL/0 unless the host list
 * gives them, which wins over the config, as ssh's command line does). */
static int setup_host (struct dc_launch *l, struct sshhost *h, const char *name,
                       const char *user, int port, dc_error_t *errp)
{
    struct ssh *ss = l->data;
    char path[4096];
    static const char *const defaults[] = {"id_ed25519", "id_ecdsa", "id_rsa"};
    struct dc_ssh_config c = {0};

    h->sock = -1;
    if (!(h->name = strdup (name)))
        return errprintf (errp, "out of memory");
    if (l->opts.ssh_key && h->nkeys < MAX_KEYS)
        h->keys[h->nkeys++] = strdup (l->opts.ssh_key);
    if (l->opts.ssh_config)
        snprintf (path, sizeof (path), "%s", l->opts.ssh_config);
    else
        snprintf (path, sizeof (path), "%s/.ssh/config", home_dir ());
    if (dc_ssh_config_read (path, name, l->opts.ssh_config != NULL, NULL, &c,
                            errp) < 0) {
        dc_ssh_config_free (&c);
        return -1;
    }
    note_unknown (&c, name);
    h->hostname = strdup (c.hostname ? c.hostname : name);
    h->user = user ? strdup (user) : c.user ? strdup (c.user) : NULL;
    h->port = port ? port : c.port;
    for (int i = 0; i < c.nkeys && h->nkeys < MAX_KEYS; i++) {
        h->keys[h->nkeys++] = c.keys[i];
        c.keys[i] = NULL;
    }
    h->proxyjump = c.proxyjump;
    c.proxyjump = NULL;
    /* the command line wins over the config */
    h->strict = l->opts.accept_new ? DC_SSH_STRICT_ACCEPT_NEW
                : c.strict         ? c.strict
                                   : DC_SSH_STRICT_YES;
    h->timeout = l->opts.connect_timeout_set || c.connect_timeout <= 0
                     ? l->opts.connect_timeout
                     : c.connect_timeout;
    h->kh = kh_get (ss, l->opts.known_hosts ? NULL : c.known_hosts, errp);
    dc_ssh_config_free (&c);
    if (!h->kh)
        return -1;
    for (size_t i = 0; i < 3 && h->nkeys < MAX_KEYS; i++) {
        snprintf (path, sizeof (path), "%s/.ssh/%s", home_dir (), defaults[i]);
        h->keys[h->nkeys++] = strdup (path);
    }
    if (!h->hostname || (!h->user && !(h->user = strdup (default_user ()))))
        return errprintf (errp, "out of memory");
    if (!h->port)
        h->port = l->opts.ssh_port ? l->opts.ssh_port : 22;
    return 0;
}

static void host_free (struct sshhost *h)
{
    free (h->name);
    free (h->hostname);
    free (h->user);
    free (h->proxyjump);
    free (h->tmpdir);
    free (h->dcrun);
    free (h->moddir);
    for (int k = 0; k < h->nkeys; k++)
        free (h->keys[k]);
    free (h->ranks);
    memset (h, 0, sizeof (*h));
    h->sock = -1;
}

/* ---- dcrun on the host: found, or copied there (--copy-dcrun) ---- */

/* Run cmd on h's session, blocking, bounded by the deadline: stdin from
 * in (then EOF), the first outsz - 1 bytes of stdout into out.  Returns
 * the exit status, or -1 with h->err set. */
static int run_remote (struct sshhost *h, const char *cmd, const char *in,
                       size_t inlen, char *out, size_t outsz, double deadline)
{
    LIBSSH2_CHANNEL *ch;
    size_t o = 0;
    int status = -1;
    long ms = (long)((deadline - dc_now ()) * 1000);

    libssh2_session_set_blocking (h->s, 1);
    libssh2_session_set_timeout (h->s, ms > 1 ? ms : 1);
    if (!(ch = libssh2_channel_open_session (h->s))) {
        snprintf (h->err, sizeof (h->err), "cannot open a channel: %s",
                  ssh_errmsg (h->s));
        goto out;
    }
    if (libssh2_channel_exec (ch, cmd) != 0) {
        snprintf (h->err, sizeof (h->err), "cannot run a command: %s",
                  ssh_errmsg (h->s));
        goto out;
    }
    for (size_t off = 0; off < inlen;) {
        ssize_t w = libssh2_channel_write (ch, in + off, inlen - off);
        if (w < 0) {
            snprintf (h->err, sizeof (h->err), "cannot send: %s",
                      ssh_errmsg (h->s));
            goto out;
        }
        off += (size_t)w;
    }
    libssh2_channel_send_eof (ch);
    for (;;) {
        char buf[4096];
        ssize_t n = libssh2_channel_read (ch, buf, sizeof (buf));
        if (n == 0)
            break;
        if (n < 0) {
            snprintf (h->err, sizeof (h->err), "connection: %s",
                      ssh_errmsg (h->s));
            goto out;
        }
        for (ssize_t i = 0; i < n && out && o + 1 < outsz; i++)
            out[o++] = buf[i];
    }
    libssh2_channel_close (ch);
    libssh2_channel_wait_closed (ch);
    status = libssh2_channel_get_exit_status (ch);
out:
    if (out && outsz)
        out[o] = '\0';
    if (ch)
        libssh2_channel_free (ch);
    libssh2_session_set_blocking (h->s, 0);
    return status;
}

static char *quote1 (const char *s)
{
    char *const av[] = {(char *)s, NULL};
    return dc_launch_shell_join (av);
}

/* A whole file's bytes (at most 1 GiB). */
static char *read_whole (const char *path, size_t *lenp)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    size_t o = 0;

    if (fd < 0 || fstat (fd, &st) < 0 || st.st_size <= 0 ||
        st.st_size > 1024L * 1024 * 1024 ||
        !(buf = malloc ((size_t)st.st_size))) {
        if (fd >= 0)
            close (fd);
        return NULL;
    }
    while (o < (size_t)st.st_size) {
        ssize_t n = read (fd, buf + o, (size_t)st.st_size - o);
        if (n <= 0) {
            free (buf);
            close (fd);
            return NULL;
        }
        o += (size_t)n;
    }
    close (fd);
    *lenp = o;
    return buf;
}

/* The folder of this program's GPU modules, as gpu/module.c looks for it
 * (gpu/module.h: DCRUN_MODULE_DIR, the build tree, LIBDIR/dcrun relative
 * to the program, then under the prefix): the first that holds one.
 * Empty when there is none. */
static const char *const module_names[] = {"dcrun_cuda.so", "dcrun_cudart.so"};

static void module_dir (char *out, size_t outsz)
{
    char exe[4096], dirs[4][4096 + 64];
    const char *env = getenv ("DCRUN_MODULE_DIR");
    int n = 0;
    ssize_t k = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);

    out[0] = '\0';
    exe[k > 0 ? k : 0] = '\0';
    if (strrchr (exe, '/'))
        *strrchr (exe, '/') = '\0';
    if (env && *env)
        snprintf (dirs[n++], sizeof (dirs[0]), "%s", env);
    else {
        size_t rl = strlen (DCRUN_BUILD_ROOT);
        if (exe[0] && !strncmp (exe, DCRUN_BUILD_ROOT, rl) &&
            (exe[rl] == '/' || !exe[rl]))
            snprintf (dirs[n++], sizeof (dirs[0]), "%s",
                      DCRUN_BUILD_MODULE_DIR);
        if (exe[0] && DCRUN_MODULE_RELDIR[0])
            snprintf (dirs[n++], sizeof (dirs[0]), "%s/%s", exe,
                      DCRUN_MODULE_RELDIR);
        snprintf (dirs[n++], sizeof (dirs[0]), "%s", DCRUN_MODULE_INSTDIR);
    }
    for (int i = 0; i < n; i++)
        for (size_t m = 0; m < 2; m++) {
            char *f = NULL;
            size_t dl = strlen (dirs[i]);
            if (asprintf (&f, "%s/%s", dirs[i], module_names[m]) < 0)
                return;
            bool found = access (f, R_OK) == 0;
            free (f);
            if (found && dl < outsz) {
                memcpy (out, dirs[i], dl + 1);
                return;
            }
        }
}

/* Copy the GPU modules (those that exist) to h->tmpdir/modules. */
static int copy_modules (struct sshhost *h)
{
    char dir[4096], path[4200], *cmd = NULL, *q;
    int copied = 0;

    module_dir (dir, sizeof (dir));
    if (!dir[0])
        return 0;
    for (size_t m = 0; m < 2; m++) {
        size_t len = 0;
        char *bytes;
        snprintf (path, sizeof (path), "%s/%s", dir, module_names[m]);
        if (!(bytes = read_whole (path, &len)))
            continue;
        snprintf (path, sizeof (path), "%s/modules/%s", h->tmpdir,
                  module_names[m]);
        if (!(q = quote1 (path)) ||
            asprintf (&cmd,
                      "umask 077 && mkdir -p \"$(dirname %s)\" && cat > %s "
                      "&& [ \"$(wc -c < %s)\" -eq %zu ]",
                      q, q, q, len) < 0) {
            free (q);
            free (bytes);
            return host_fail (h, "out of memory");
        }
        free (q);
        int st = run_remote (h, cmd, bytes, len, NULL, 0, dc_now () + 60);
        free (cmd);
        free (bytes);
        if (st != 0)
            return host_fail (h, "--copy-dcrun: cannot copy %s there%s%.1000s",
                              module_names[m], st < 0 ? ": " : "",
                              st < 0 ? h->err : "");
        copied++;
    }
    if (copied &&
        asprintf (&h->moddir, "DCRUN_MODULE_DIR=%s/modules", h->tmpdir) < 0) {
        h->moddir = NULL;
        return host_fail (h, "out of memory");
    }
    return 0;
}

/* The command that says whether dcrun is there (exit status 0). */
/* The folder the ranks of h start in (they share it), NULL: the login
 * folder. */
static const char *host_wdir (const struct sshhost *h)
{
    return h->nranks > 0 && h->ranks[0]->src ? h->ranks[0]->src->wdir : NULL;
}

/* Is dcrun there (status 3 when not), the ranks' folder (status 4 when
 * it is missing), and on rank 0's host, which port (the output; status 5
 * when the check failed)? */
static char *probe_cmd (struct dc_launch *l, struct sshhost *h)
{
    struct ssh *ss = l->data;
    const char *want = l->opts.remote_dcrun ? l->opts.remote_dcrun : "dcrun";
    const char *wdir = host_wdir (h);
    char *q = quote1 (want), *qw = wdir ? quote1 (wdir) : NULL, *cmd = NULL;
    char *port = h == ss->porthost ? port_cmd (l, want) : NULL;

    if (q && (!wdir || qw) && (h != ss->porthost || port) &&
        asprintf (&cmd,
                  want[0] == '/'
                      ? "{ test -f %s && test -x %s; } || exit 3%s%s%s%s%s%s"
                      : "command -v %s >/dev/null 2>&1 || exit "
                        "3%.0s%s%s%s%s%s%s",
                  q, q, wdir ? "; cd -- " : "", wdir ? qw : "",
                  wdir ? " 2>/dev/null || exit 4" : "", port ? "; " : "",
                  port ? port : "", port ? " || exit 5" : "") < 0)
        cmd = NULL;
    free (q);
    free (qw);
    free (port);
    return cmd;
}

/* The ranks' folder is missing there: a launch failure naming it. */
static int no_wdir (struct sshhost *h)
{
    return host_fail (h,
                      "no folder '%.1000s' there to start the ranks in\nhint: "
                      "ranks start in the caller's folder on every host; "
                      "--wdir DIR names one that exists there",
                      host_wdir (h));
}

/* Run the probe on its own channel without blocking: 1 with its exit
 * status in *st when done, 0 to be called again, -1 when it failed. */
static int probe_step (struct dc_launch *l, struct sshhost *h, int *st)
{
    char buf[256];
    int rc;

    if (!h->probe) {
        if (!(h->probe = libssh2_channel_open_session (h->s))) {
            if (libssh2_session_last_errno (h->s) == LIBSSH2_ERROR_EAGAIN)
                return 0;
            return host_fail (h, "cannot open a channel: %s",
                              ssh_errmsg (h->s));
        }
    }
    if (!h->probe_started) {
        char *cmd = probe_cmd (l, h);
        if (!cmd)
            return host_fail (h, "out of memory");
        rc = libssh2_channel_exec (h->probe, cmd);
        free (cmd);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return 0;
        if (rc)
            return host_fail (h, "cannot run a command: %s", ssh_errmsg (h->s));
        h->probe_started = true;
    }
    for (;;) {
        ssize_t n = libssh2_channel_read (h->probe, buf, sizeof (buf));
        for (ssize_t i = 0;
             i < n && h->probe_outlen + 1 < sizeof (h->probe_out); i++)
            h->probe_out[h->probe_outlen++] = buf[i];
        if (n > 0)
            continue;
        if (n == LIBSSH2_ERROR_EAGAIN)
            return 0;
        if (n < 0)
            return host_fail (h, "connection: %s", ssh_errmsg (h->s));
        break;
    }
    rc = libssh2_channel_close (h->probe);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return 0;
    rc = libssh2_channel_wait_closed (h->probe);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return 0;
    *st = libssh2_channel_get_exit_status (h->probe);
    libssh2_channel_free (h->probe);
    h->probe = NULL;
    return 1;
}

/* Make sure dcrun is there: h->dcrun set.  0, or -1 with h->err. */
static int prepare_dcrun (struct dc_launch *l, struct sshhost *h, int st)
{
    const char *want = l->opts.remote_dcrun ? l->opts.remote_dcrun : "dcrun";
    char *cmd = NULL, out[4200];

    if (st == 0)
        return (h->dcrun = strdup (want)) ? 0 : host_fail (h, "out of memory");
    if (!l->opts.copy_dcrun)
        return host_fail (h,
                          "no dcrun at '%.1000s' there\nhint: install dcrun "
                          "there, or use --copy-dcrun",
                          want);
    size_t len = 0;
    char *self = read_whole ("/proc/self/exe", &len);
    if (!self)
        return host_fail (h, "--copy-dcrun: cannot read this program "
                             "(/proc/self/exe)");
    /* a private folder (0700) under the remote TMPDIR; removed again if
     * the copy is short */
    if (asprintf (
            &cmd,
            "umask 077 && d=$(mktemp -d \"${TMPDIR:-/tmp}/dcrun.XXXXXX\") "
            "&& { cat > \"$d/dcrun\" && chmod 700 \"$d/dcrun\" && "
            "[ \"$(wc -c < \"$d/dcrun\")\" -eq %zu ] && echo \"$d\" || "
            "{ rm -rf \"$d\"; exit 1; }; }",
            len) < 0) {
        free (self);
        return host_fail (h, "out of memory");
    }
    /* a copy of a few MB: give it a minute past the connect timeout */
    st = run_remote (h, cmd, self, len, out, sizeof (out), dc_now () + 60);
    free (cmd);
    free (self);
    if (st < 0)
        return host_fail (h, "--copy-dcrun: %.1000s", h->err);
    out[strcspn (out, "\n")] = '\0';
    if (st != 0 || out[0] != '/')
        return host_fail (h,
                          "--copy-dcrun: cannot copy dcrun to a temporary "
                          "folder there (status %d)",
                          st);
    if (!(h->tmpdir = strdup (out)) ||
        asprintf (&h->dcrun, "%s/dcrun", out) < 0) {
        h->dcrun = NULL;
        return host_fail (h, "out of memory");
    }
    if (copy_modules (h) < 0)
        return -1;
    dc_log (DC_LOG_INFO, "ssh: %s: dcrun copied to %s%s", h->name, h->dcrun,
            h->moddir ? " (and its GPU modules)" : "");
    return 0;
}

/* After --copy-dcrun (the probe stopped at dcrun): the ranks' folder. */
static int wdir_check (struct sshhost *h)
{
    char *q = quote1 (host_wdir (h)), *cmd = NULL;
    int st;

    if (!q || asprintf (&cmd, "cd -- %s", q) < 0) {
        free (q);
        return host_fail (h, "out of memory");
    }
    st = run_remote (h, cmd, NULL, 0, NULL, 0, h->deadline);
    free (q);
    free (cmd);
    if (st < 0)
        return host_fail (h, NULL);
    return st == 0 ? 0 : no_wdir (h);
}

/* Remove the folder --copy-dcrun made (bounded: 3 s). */
static void remove_tmpdir (struct sshhost *h)
{
    char *q, *cmd = NULL;

    if (!h->tmpdir || !h->s)
        return;
    if ((q = quote1 (h->tmpdir)) && asprintf (&cmd, "rm -rf %s", q) >= 0)
        run_remote (h, cmd, NULL, 0, NULL, 0, dc_now () + 3);
    free (q);
    free (cmd);
    free (h->tmpdir);
    h->tmpdir = NULL;
}

/* ---- ProxyJump: a session to each jump host, a direct-tcpip channel to
 * the next, bridged to a socketpair by a thread; the next session runs on
 * the other end of the pair as if it were a TCP socket ---- */

#define MAX_HOPS 8

struct jump {
    LIBSSH2_SESSION *s;
    LIBSSH2_CHANNEL *ch;
    int sock; /* to the jump host (or the previous hop's pair) */
    int pair; /* this end of the socketpair */
    pthread_t th;
};

static void *jump_pump (void *arg)
{
    struct jump *j = arg;
    char in[32768], out[32768];
    size_t outlen = 0, outoff = 0;

    libssh2_session_set_blocking (j->s, 0);
    for (;;) {
        bool busy = false;
        ssize_t n = libssh2_channel_read (j->ch, in, sizeof (in));
        if (n > 0) {
            busy = true;
            for (ssize_t o = 0; o < n;) {
                ssize_t w =
                    send (j->pair, in + o, (size_t)(n - o), MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    goto done;
                o += w;
            }
        } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
            break;
        else if (libssh2_channel_eof (j->ch))
            break;
        if (outlen == 0) {
            ssize_t r = recv (j->pair, out, sizeof (out), MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (r > 0) {
                outlen = (size_t)r;
                outoff = 0;
                busy = true;
            }
        }
        while (outoff < outlen) {
            ssize_t w =
                libssh2_channel_write (j->ch, out + outoff, outlen - outoff);
            if (w == LIBSSH2_ERROR_EAGAIN)
                break;
            if (w < 0)
                goto done;
            outoff += (size_t)w;
            busy = true;
        }
        if (outoff == outlen)
            outlen = 0;
        if (busy)
            continue;
        int dir = libssh2_session_block_directions (j->s);
        struct pollfd pf[2] = {
            {.fd = j->sock,
             .events =
                 (short)(POLLIN |
                         (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND ? POLLOUT : 0))},
            {.fd = j->pair, .events = outlen ? 0 : POLLIN},
        };
        /* a write that found the window full may have read packets that
         * libssh2 keeps: look again soon */
        if (poll (pf, 2, outlen ? 10 : 1000) < 0 && errno != EINTR)
            break;
    }
done:
    shutdown (j->pair, SHUT_RDWR);
    libssh2_session_set_blocking (j->s, 1);
    libssh2_session_set_timeout (j->s, 1000);
    libssh2_channel_free (j->ch);
    j->ch = NULL;
    libssh2_session_disconnect (j->s, "dcrun: done");
    libssh2_session_free (j->s);
    j->s = NULL;
    close (j->sock);
    j->sock = -1;
    return NULL;
}

static void jumps_free (struct ssh *ss)
{
    /* the last hop first: closing its pair ends the one before */
    for (int i = ss->njumps - 1; i >= 0; i--) {
        pthread_join (ss->jumps[i]->th, NULL);
        close (ss->jumps[i]->pair);
        free (ss->jumps[i]);
    }
    free (ss->jumps);
    ss->jumps = NULL;
    ss->njumps = 0;
}

/* A blocking TCP connection to host:port within the deadline. */
static int tcp_connect (const char *host, int port, double deadline, char *err,
                        size_t errsz)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    char ps[16];
    int rc, fd;

    snprintf (ps, sizeof (ps), "%d", port);
    if ((rc = getaddrinfo (host, ps, &hints, &ai)) != 0) {
        snprintf (err, errsz, "cannot resolve: %s", gai_strerror (rc));
        return -1;
    }
    fd = socket (ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (fd < 0) {
        freeaddrinfo (ai);
        snprintf (err, errsz, "socket: %s", strerror (errno));
        return -1;
    }
    rc = connect (fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo (ai);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int ms = (int)((deadline - dc_now ()) * 1000) + 1;
        int e = 0;
        socklen_t el = sizeof (e);
        if (ms <= 0 || poll (&pf, 1, ms) <= 0) {
            snprintf (err, errsz, "no answer (connect timeout)");
            close (fd);
            return -1;
        }
        getsockopt (fd, SOL_SOCKET, SO_ERROR, &e, &el);
        errno = e;
        rc = e ? -1 : 0;
    }
    if (rc < 0) {
        snprintf (err, errsz, "connect to port %d: %s", port, strerror (errno));
        close (fd);
        return -1;
    }
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static void session_prefs (struct sshhost *h)
{
    char prefs[256];
    libssh2_session_method_pref (
        h->s, LIBSSH2_METHOD_KEX,
        "curve25519-sha256,curve25519-sha256@libssh.org,"
        "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
        "diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,"
        "diffie-hellman-group-exchange-sha256");
    hostkey_prefs (h, prefs, sizeof (prefs));
    libssh2_session_method_pref (h->s, LIBSSH2_METHOD_HOSTKEY, prefs);
}

/* "[user@]host[:port]" into its parts (in place); an IPv6 address in
 * brackets ("[::1]:22"), or bare without a port. */
static void split_hop (char *spec, char **user, char **host, int *port)
{
    char *at = strrchr (spec, '@'), *colon = NULL;
    *user = NULL;
    *port = 0;
    if (at) {
        *at = '\0';
        *user = spec;
        spec = at + 1;
    }
    *host = spec;
    if (spec[0] == '[' && strchr (spec, ']')) {
        char *close = strchr (spec, ']');
        *close = '\0';
        *host = spec + 1;
        if (close[1] == ':')
            colon = close + 1;
    } else if ((colon = strchr (spec, ':')) && strchr (colon + 1, ':'))
        colon = NULL; /* a bare IPv6 address */
    if (colon) {
        char *end;
        long v = strtol (colon + 1, &end, 10);
        if (!*end && v > 0 && v < 65536) {
            *colon = '\0';
            *port = (int)v;
        }
    }
}

/* Connect h through its ProxyJump hosts: h->sock becomes the end of the
 * last hop's forwarding.  Blocking, bounded by h->deadline. */
static int jump_connect (struct dc_launch *l, struct sshhost *h)
{
    struct ssh *ss = l->data;
    struct sshhost hops[MAX_HOPS];
    char *list = strdup (h->proxyjump), *save = NULL;
    int nhops = 0, fd = -1, rc = -1;
    dc_error_t error;

    memset (hops, 0, sizeof (hops));
    if (!list)
        return host_fail (h, "out of memory");
    for (char *p = strtok_r (list, ",", &save); p;
         p = strtok_r (NULL, ",", &save)) {
        char *user, *host;
        int port;
        if (nhops == MAX_HOPS) {
            host_fail (h, "ProxyJump: more than %d jump hosts", MAX_HOPS);
            goto out;
        }
        split_hop (p, &user, &host, &port);
        if (!*host) {
            host_fail (h, "ProxyJump '%.200s': no host", h->proxyjump);
            goto out;
        }
        if (setup_host (l, &hops[nhops++], host, user, port, &error) < 0) {
            host_fail (h, "ProxyJump %.200s: %.1000s", host, error.text);
            goto out;
        }
    }
    for (int i = 0; i < nhops; i++) {
        struct sshhost *j = &hops[i];
        const char *to = i + 1 < nhops ? hops[i + 1].hostname : h->hostname;
        int toport = i + 1 < nhops ? hops[i + 1].port : h->port;
        int sp[2];
        if (fd < 0 && (fd = tcp_connect (j->hostname, j->port, h->deadline,
                                         j->err, sizeof (j->err))) < 0)
            goto hopfail;
        j->sock = fd;
        if (!(j->s = libssh2_session_init ())) {
            snprintf (j->err, sizeof (j->err), "out of memory");
            goto hopfail;
        }
        libssh2_session_set_blocking (j->s, 1);
        long ms = (long)((h->deadline - dc_now ()) * 1000);
        libssh2_session_set_timeout (j->s, ms > 1 ? ms : 1);
        session_prefs (j);
        if (libssh2_session_handshake (j->s, fd) != 0) {
            snprintf (j->err, sizeof (j->err), "ssh handshake failed: %s",
                      ssh_errmsg (j->s));
            goto hopfail;
        }
        if (check_host_key (l, j) < 0 || next_auth (l, j) != 1)
            goto hopfail;
        if (j->agent) {
            libssh2_agent_disconnect (j->agent);
            libssh2_agent_free (j->agent);
            j->agent = NULL;
        }
        LIBSSH2_CHANNEL *ch =
            libssh2_channel_direct_tcpip_ex (j->s, to, toport, "127.0.0.1", 22);
        if (!ch) {
            snprintf (j->err, sizeof (j->err),
                      "cannot forward to %.200s port %d: %s", to, toport,
                      ssh_errmsg (j->s));
            goto hopfail;
        }
        struct jump *jp = calloc (1, sizeof (*jp));
        struct jump **v =
            realloc (ss->jumps, (size_t)(ss->njumps + 1) * sizeof (*v));
        if (v)
            ss->jumps = v;
        if (!jp || !v ||
            socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
            free (jp);
            libssh2_channel_free (ch);
            snprintf (j->err, sizeof (j->err), "socketpair: %s",
                      strerror (errno));
            goto hopfail;
        }
        *jp = (struct jump){.s = j->s, .ch = ch, .sock = fd, .pair = sp[0]};
        if (pthread_create (&jp->th, NULL, jump_pump, jp) != 0) {
            close (sp[0]);
            close (sp[1]);
            free (jp);
            libssh2_channel_free (ch);
            snprintf (j->err, sizeof (j->err), "cannot start a thread");
            goto hopfail;
        }
        ss->jumps[ss->njumps++] = jp;
        j->s = NULL; /* the thread's now, with fd */
        j->sock = -1;
        fd = sp[1];
        continue;
    hopfail:
        host_fail (h, "ProxyJump %.200s%s%.200s: %.1000s", j->name,
                   strcmp (j->name, j->hostname) ? " " : "",
                   strcmp (j->name, j->hostname) ? j->hostname : "", j->err);
        if (j->s) {
            libssh2_session_free (j->s);
            j->s = NULL;
        }
        if (fd >= 0)
            close (fd);
        fd = -1;
        j->sock = -1;
        goto out;
    }
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
    h->sock = fd;
    h->state = H_CONNECT;
    rc = 0;
out:
    for (int i = 0; i < nhops; i++) {
        if (hops[i].agent) {
            libssh2_agent_disconnect (hops[i].agent);
            libssh2_agent_free (hops[i].agent);
        }
        host_free (&hops[i]);
    }
    free (list);
    return rc;
}

static void abort_all (struct ssh *ss)
{
    for (int i = 0; i < ss->nhosts; i++)
        host_close (&ss->hosts[i]);
}

/* One session per distinct (host, user, port), each rank a channel of its
 * host's; the port_var of rank 0 noted.  0, or -1 with errp. */
static int spawn_hosts (struct dc_launch *l, const struct dc_launch_rank *ranks,
                        int n, dc_error_t *errp)
{
    struct ssh *ss = l->data;

    if (!(ss->ranks = calloc ((size_t)(n ? n : 1), sizeof (*ss->ranks))) ||
        !(ss->hosts = calloc ((size_t)(n ? n : 1), sizeof (*ss->hosts))))
        return errprintf (errp, "out of memory");
    ss->nranks = n;
    for (int i = 0; i < n; i++) {
        struct sshrank *r = &ss->ranks[i];
        struct sshhost *h = NULL;
        r->rank = ranks[i].rank;
        for (int k = 0; k < ss->nhosts && !h; k++) {
            struct sshhost *c = &ss->hosts[k];
            if (!strcmp (c->name, ranks[i].host) && c->port &&
                (ranks[i].port ? ranks[i].port : c->port) == c->port &&
                (!ranks[i].user || !strcmp (ranks[i].user, c->user)))
                h = c;
        }
        if (!h) {
            h = &ss->hosts[ss->nhosts++];
            if (setup_host (l, h, ranks[i].host, ranks[i].user, ranks[i].port,
                            errp) < 0)
                return -1;
        }
        struct sshrank **v =
            realloc (h->ranks, (size_t)(h->nranks + 1) * sizeof (*v));
        if (!v)
            return errprintf (errp, "out of memory");
        h->ranks = v;
        h->ranks[h->nranks++] = r;
        r->h = h;
        r->in_place = ranks[i].exec_in_place;
        r->stdin_data = ranks[i].stdin_data && !r->in_place;
        r->src = &ranks[i];
        if (!(r->cmdline = worker_cmdline (
                  l->opts.remote_dcrun ? l->opts.remote_dcrun : "dcrun",
                  &ranks[i], &r->env, &r->envlen)))
            return errprintf (errp, "rank %d: %s", ranks[i].rank,
                              errno == E2BIG ? "environment too large"
                                             : "no command");
        /* MASTER_PORT: agreed with rank 0's host before any rank starts */
        size_t vlen = l->opts.port_var ? strlen (l->opts.port_var) : 0;
        if (ranks[i].rank != 0 || !vlen)
            continue;
        ss->porthost = h;
        for (int e = 0; ranks[i].env && ranks[i].env[e]; e++)
            if (!strncmp (ranks[i].env[e], l->opts.port_var, vlen) &&
                ranks[i].env[e][vlen] == '=')
                ss->port_want = atoi (ranks[i].env[e] + vlen + 1);
    }
    return 0;
}

/* The hosts connecting at once (fanout) and how far they are. */
struct conn {
    struct pollfd *fds;
    int *idx; /* the host of each fds entry, -1 for cancel_fd */
    int next, active, ready;
    struct sshhost *bad; /* the host that failed */
    bool interrupted;    /* cancel_fd was readable */
};

/* Step h; count it when it is ready, note it when it failed. */
static void conn_step (struct dc_launch *l, struct conn *c, struct sshhost *h)
{
    if (host_step (l, h) < 0)
        c->bad = h;
    else if (h->state == H_READY) {
        c->ready++;
        c->active--;
    }
}

/* One round: start hosts up to the fanout, poll, step those with news,
 * and the ones that waited for rank 0's port once it is known. */
static void conn_round (struct dc_launch *l, struct conn *c)
{
    struct ssh *ss = l->data;
    int k = 0, timeout = -1;
    double t = dc_now ();

    while (c->active < l->opts.fanout && c->next < ss->nhosts && !c->bad) {
        struct sshhost *h = &ss->hosts[c->next++];
        c->active++;
        if (start_connect (l, h) < 0)
            c->bad = h;
        else
            conn_step (l, c, h);
    }
    if (l->opts.cancel_fd >= 0) {
        c->fds[k] = (struct pollfd){.fd = l->opts.cancel_fd, .events = POLLIN};
        c->idx[k++] = -1;
    }
    for (int i = 0; i < c->next && !c->bad; i++) {
        struct sshhost *h = &ss->hosts[i];
        if (h->state == H_READY)
            continue;
        if (t >= h->deadline) {
            host_fail (h, "no answer within %g s (connect timeout)",
                       h->timeout);
            c->bad = h;
        }
        int ms = (int)((h->deadline - t) * 1000) + 1;
        if (timeout < 0 || ms < timeout)
            timeout = ms;
        c->fds[k] = (struct pollfd){.fd = h->sock, .events = host_events (h)};
        c->idx[k++] = i;
    }
    if (c->bad || k == 0 ||
        (poll (c->fds, (nfds_t)k, timeout) < 0 && errno != EINTR))
        return;
    bool port_known = ss->port > 0;
    for (int i = 0; i < k && !c->bad && !c->interrupted; i++) {
        if (c->idx[i] < 0)
            c->interrupted = (c->fds[i].revents & POLLIN) != 0;
        else if (c->fds[i].revents)
            conn_step (l, c, &ss->hosts[c->idx[i]]);
    }
    /* the port just agreed: the hosts that waited for it go on */
    for (int i = 0; i < c->next && !c->bad && !port_known && ss->port > 0; i++)
        if (ss->hosts[i].state == H_CHANNELS && !ss->hosts[i].final)
            conn_step (l, c, &ss->hosts[i]);
}

static int ssh_spawn (struct dc_launch *l, const struct dc_launch_rank *ranks,
                      int n, dc_error_t *errp)
{
    struct ssh *ss = l->data;
    struct conn c = {0};

    if (ss->ranks) {
        errno = EBUSY;
        return errprintf (errp, "ranks already started");
    }
    if (spawn_hosts (l, ranks, n, errp) < 0)
        return -1;
    if (!(c.fds = calloc ((size_t)ss->nhosts + 1, sizeof (*c.fds))) ||
        !(c.idx = calloc ((size_t)ss->nhosts + 1, sizeof (*c.idx)))) {
        free (c.fds);
        return errprintf (errp, "out of memory");
    }
    while (c.ready < ss->nhosts && !c.bad && !c.interrupted)
        conn_round (l, &c);
    free (c.fds);
    free (c.idx);
    for (int i = 0; i < ss->nranks; i++)
        ss->ranks[i].src = NULL;
    if (c.interrupted) {
        abort_all (ss);
        errno = EINTR;
        return errprintf (errp, "ssh: interrupted while connecting");
    }
    if (c.bad) {
        struct sshhost *bad = c.bad;
        char msg[sizeof (bad->err)];
        /* the reason may carry a hint on a second line: keep it there */
        memcpy (msg, bad->err, sizeof (msg));
        abort_all (ss);
        errno = EHOSTUNREACH;
        return errprintf (
            errp, "ssh: %s%s%s: %s", bad->name,
            strcmp (bad->name, bad->hostname) ? " " : "",
            strcmp (bad->name, bad->hostname) ? bad->hostname : "", msg);
    }
    l->port = ss->port;
    return 0;
}

static int ssh_pollfds (struct dc_launch *l, struct pollfd *fds, int max,
                        int *timeout_ms)
{
    struct ssh *ss = l->data;
    int k = 0;

    (void)timeout_ms;
    for (int i = 0; i < ss->nhosts && k < max; i++) {
        struct sshhost *h = &ss->hosts[i];
        if (h->state != H_READY || h->sock < 0)
            continue;
        fds[k++] = (struct pollfd){.fd = h->sock, .events = host_events (h)};
    }
    return k;
}

static int signum (const char *name)
{
    for (int s = 1; s < NSIG; s++) {
        const char *a = sigabbrev_np (s);
        if (a && !strcmp (a, name))
            return s;
    }
    return SIGKILL;
}

static void report (struct dc_launch *l, struct sshrank *r, const char *lost)
{
    struct dc_launch_status st = {.rank = r->rank};
    char *sig = NULL;
    size_t siglen = 0;

    r->reported = true;
    if (lost) {
        st.failed_start = true;
        st.code = 255;
        snprintf (st.reason, sizeof (st.reason), "%.250s", lost);
    } else if (r->ch &&
               libssh2_channel_get_exit_signal (r->ch, &sig, &siglen, NULL,
                                                NULL, NULL, NULL) == 0 &&
               sig && siglen > 0) {
        st.signaled = true;
        st.sig = signum (sig);
    } else
        st.code = r->ch ? libssh2_channel_get_exit_status (r->ch) : 255;
    free (sig);
    if (l->opts.on_exit)
        l->opts.on_exit (&st, l->opts.arg);
}

static void flush_ctl (struct sshrank *r)
{
    if (r->want_eof && !r->sent_eof && r->ch && !r->closing) {
        int rc = libssh2_channel_send_eof (r->ch);
        if (rc != LIBSSH2_ERROR_EAGAIN)
            r->sent_eof = true;
    }
    while (r->ctllen > 0 && r->ch && !r->closing) {
        ssize_t w = libssh2_channel_write (r->ch, r->ctl, r->ctllen);
        if (w <= 0)
            return;
        memmove (r->ctl, r->ctl + w, r->ctllen - (size_t)w);
        r->ctllen -= (size_t)w;
    }
}

/* Read what a channel has; returns -1 when the session is broken. */
static int pump (struct dc_launch *l, struct sshrank *r)
{
    char buf[32768];

    if (r->reported || !r->ch)
        return 0;
    flush_ctl (r);
    for (int stream = 0; stream <= 1; stream++) {
        for (int loops = 0; loops < 64; loops++) {
            ssize_t n = libssh2_channel_read_ex (
                r->ch, stream ? SSH_EXTENDED_DATA_STDERR : 0, buf,
                sizeof (buf));
            if (n > 0) {
                if (l->opts.on_output)
                    l->opts.on_output (
                        r->rank, stream ? DC_LAUNCH_STDERR : DC_LAUNCH_STDOUT,
                        buf, (size_t)n, l->opts.arg);
                continue;
            }
            if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
                break;
            return -1;
        }
    }
    if (!r->closing && libssh2_channel_eof (r->ch))
        r->closing = true;
    if (r->closing) {
        int rc = libssh2_channel_close (r->ch);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return 0;
        rc = libssh2_channel_wait_closed (r->ch);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return 0;
        report (l, r, NULL);
    }
    return 0;
}

static int ssh_progress (struct dc_launch *l, const struct pollfd *fds, int n)
{
    struct ssh *ss = l->data;
    int running = 0;

    (void)fds;
    (void)n;
    for (int i = 0; i < ss->nhosts; i++) {
        struct sshhost *h = &ss->hosts[i];
        if (h->state != H_READY)
            continue;
        bool broken = false;
        for (int k = 0; k < h->nranks; k++)
            if (pump (l, h->ranks[k]) < 0)
                broken = true;
        if (broken) {
            char why[300];
            snprintf (why, sizeof (why), "connection to %s lost: %s", h->name,
                      ssh_errmsg (h->s));
            for (int k = 0; k < h->nranks; k++)
                if (!h->ranks[k]->reported)
                    report (l, h->ranks[k], why);
        }
        bool left = false;
        for (int k = 0; k < h->nranks; k++)
            if (!h->ranks[k]->reported) {
                left = true;
                running++;
            }
        if (!left) {
            host_close (h);
            h->state = H_DONE;
        }
    }
    return running;
}

static struct sshrank *find (struct ssh *ss, int rank)
{
    for (int i = 0; i < ss->nranks; i++)
        if (ss->ranks[i].rank == rank)
            return &ss->ranks[i];
    return NULL;
}

/* Queue control bytes (a message is queued whole or not at all); the
 * buffer grows as needed, to CTL_MAX. */
static bool ctl_queue (struct sshrank *r, const char *data, size_t len)
{
    size_t need = r->ctllen + len;

    if (need > CTL_MAX)
        return false;
    if (need > r->ctlcap) {
        size_t cap = need < 64 ? 64 : need;
        char *b = realloc (r->ctl, cap);
        if (!b)
            return false;
        r->ctl = b;
        r->ctlcap = cap;
    }
    memcpy (r->ctl + r->ctllen, data, len);
    r->ctllen += len;
    return true;
}

/* A rank that runs under `dcrun worker --exec` reads the channel raw; the
 * others get their stdin framed on the control channel (control.h). */
static ssize_t ssh_write (struct dc_launch *l, int rank, const void *buf,
                          size_t len)
{
    struct sshrank *r = find (l->data, rank);
    char hdr[32];

    if (!r || !r->ch || r->reported || (!r->in_place && !r->stdin_data) ||
        r->stdin_eof) {
        errno = r ? EPIPE : ENOENT;
        return -1;
    }
    flush_ctl (r);
    if (r->ctllen > 0) {
        errno = EAGAIN;
        return -1;
    }
    if (!r->in_place) {
        size_t n = len < DC_CTL_STDIN_MAX ? len : DC_CTL_STDIN_MAX;
        int h = dc_ctl_stdin_header (hdr, sizeof (hdr), n);
        if (h < 0 || !ctl_queue (r, hdr, (size_t)h) || !ctl_queue (r, buf, n)) {
            errno = h < 0 ? EINVAL : ENOMEM;
            return -1;
        }
        flush_ctl (r);
        return (ssize_t)n;
    }
    ssize_t w = libssh2_channel_write (r->ch, buf, len);
    if (w == LIBSSH2_ERROR_EAGAIN) {
        errno = EAGAIN;
        return -1;
    }
    if (w < 0) {
        errno = EPIPE;
        return -1;
    }
    return w;
}

/* --exec ranks: EOF on the channel; the others: "stdin-eof" for a rank
 * that reads stdin, nothing for one that reads /dev/null. */
static int ssh_close_stdin (struct dc_launch *l, int rank)
{
    struct sshrank *r = find (l->data, rank);
    char msg[32];

    if (!r) {
        errno = ENOENT;
        return -1;
    }
    if (!r->ch || r->reported)
        return 0;
    if (r->in_place)
        libssh2_channel_send_eof (r->ch);
    else if (r->stdin_data && !r->stdin_eof) {
        int n = dc_ctl_stdin_eof (msg, sizeof (msg));
        r->stdin_eof = n > 0 && ctl_queue (r, msg, (size_t)n);
        flush_ctl (r);
    }
    return 0;
}

static int ssh_signal (struct dc_launch *l, int rank, int sig)
{
    struct ssh *ss = l->data;
    char line[32];
    int len = dc_ctl_signal (line, sizeof (line), sig);

    for (int i = 0; i < ss->nranks; i++) {
        struct sshrank *r = &ss->ranks[i];
        if ((rank >= 0 && r->rank != rank) || r->reported || !r->ch)
            continue;
        if (r->in_place) {
            /* the command reads the channel itself: EOF ends it.  SIGKILL
             * closes the channel: the rank's agent there (dcrun worker
             * --exec) sees it and kills the rank's tree, even a rank that
             * is stopped or does not read */
            r->want_eof = true;
            if (sig == SIGKILL)
                r->closing = true;
            flush_ctl (r);
            continue;
        }
        if (len > 0)
            ctl_queue (r, line, (size_t)len);
        flush_ctl (r);
        /* SIGKILL that cannot get through (the channel full of stdin that
         * the rank does not read): close the channel, the worker sees its
         * stdout hang up and kills the rank's tree */
        if (sig == SIGKILL && r->ctllen > 0)
            r->closing = true;
    }
    return 0;
}

static void ssh_fini (struct dc_launch *l)
{
    struct ssh *ss = l->data;

    if (!ss)
        return;
    for (int i = 0; i < ss->nhosts; i++) {
        struct sshhost *h = &ss->hosts[i];
        host_close (h);
        host_free (h);
    }
    jumps_free (ss);
    for (int i = 0; i < ss->nranks; i++) {
        free (ss->ranks[i].cmdline);
        free (ss->ranks[i].env);
        free (ss->ranks[i].ctl);
    }
    free (ss->hosts);
    free (ss->ranks);
    ssh_free_dbs (ss);
    free (ss);
    l->data = NULL;
    if (--lib_refs == 0)
        libssh2_exit ();
}

const struct dc_launch_ops dc_launch_ssh = {
    .name = "ssh",
    .summary = "libssh2 sessions to every host, dcrun worker on each",
    .init = ssh_init,
    .spawn = ssh_spawn,
    .pollfds = ssh_pollfds,
    .progress = ssh_progress,
    .write = ssh_write,
    .close_stdin = ssh_close_stdin,
    .signal = ssh_signal,
    .fini = ssh_fini,
};

int dc_launch_ssh_hostname (const struct dc_launch_opts *o, const char *host,
                            char *buf, size_t len, dc_error_t *errp)
{
    char path[4096];
    struct dc_ssh_config c = {0};
    int rc;

    if (o->ssh_config)
        snprintf (path, sizeof (path), "%s", o->ssh_config);
    else
        snprintf (path, sizeof (path), "%s/.ssh/config", home_dir ());
    rc = dc_ssh_config_read (path, host, o->ssh_config != NULL, NULL, &c, errp);
    if (rc == 0)
        snprintf (buf, len, "%s", c.hostname ? c.hostname : host);
    dc_ssh_config_free (&c);
    return rc < 0 ? -1 : 0;
}

#endif /* HAVE_SSH */
