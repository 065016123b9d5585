/* hostfile.c - parse hostfiles (dcrun-hostfile(5)) */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/hosts/hostfile.h"
#include "lib/hosts/hostlist.h"

struct pctx {
    const char *name; /* file name for messages */
    int line;
    size_t gpu_entries; /* gpus= entries of all hosts so far */
    const char *linestart;
    dc_error_t *errp;
};

static int perr (struct pctx *p, const char *at, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int perr (struct pctx *p, const char *at, const char *fmt, ...)
{
    char msg[DC_ERROR_SIZE];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof (msg), fmt, ap);
    va_end (ap);
    errno = EINVAL;
    return errprintf (p->errp, "%s:%d:%d: %s", p->name, p->line,
                      (int)(at - p->linestart) + 1, msg);
}

/* Parse a positive decimal integer of exactly len bytes. */
static int parse_pos_int (const char *s, size_t len, long max, long *val)
{
    long v = 0;

    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit ((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > max)
        return -1;
    *val = v;
    return 0;
}

struct entry {
    char hostexpr[4096];
    char user[256];
    long colon; /* value after ':' or -1 */
    const char *colon_at;
    long slots;     /* -1 when not given */
    long max_slots; /* -1 when not given */
    int *gpus;
    int ngpus;
    bool gpus_given;
};

static int parse_host_field (struct pctx *p, const char *tok, size_t len,
                             struct entry *e)
{
    const char *host = tok;
    size_t hlen = len;
    const char *at = memchr (tok, '@', len);
    int depth = 0;
    const char *colon = NULL;

    if (at) {
        size_t ulen = (size_t)(at - tok);
        if (ulen == 0)
            return perr (p, tok, "expected a user name before '@'");
        if (ulen >= sizeof (e->user))
            return perr (p, tok, "user name too long");
        for (size_t i = 0; i < ulen; i++) {
            unsigned char c = (unsigned char)tok[i];
            if (!(isalnum (c) || c == '_' || c == '-' || c == '.'))
                return perr (p, tok + i, "invalid character in user name");
        }
        memcpy (e->user, tok, ulen);
        e->user[ulen] = '\0';
        host = at + 1;
        hlen = len - ulen - 1;
    }
    for (size_t i = 0; i < hlen; i++) {
        if (host[i] == '[')
            depth++;
        else if (host[i] == ']')
            depth--;
        else if (host[i] == ':' && depth == 0)
            colon = host + i;
    }
    if (colon) {
        const char *num = colon + 1;
        size_t nlen = hlen - (size_t)(num - host);
        if (parse_pos_int (num, nlen, DC_MAX_SLOTS, &e->colon) < 0)
            return perr (p, num,
                         "expected a number after ':' "
                         "(slots, or the port with user@)");
        e->colon_at = num;
        hlen = (size_t)(colon - host);
    }
    if (hlen == 0)
        return perr (p, host, "expected a host name");
    if (hlen >= sizeof (e->hostexpr))
        return perr (p, host, "host field too long");
    memcpy (e->hostexpr, host, hlen);
    e->hostexpr[hlen] = '\0';
    return 0;
}

static int parse_key (struct pctx *p, const char *tok, size_t len,
                      struct entry *e)
{
    const char *eq = memchr (tok, '=', len);
    const char *val;
    size_t klen, vlen;

    if (!eq)
        return perr (p, tok,
                     "expected key=value (slots=, max_slots= or gpus=)");
    klen = (size_t)(eq - tok);
    val = eq + 1;
    vlen = len - klen - 1;
    if (vlen == 0)
        return perr (p, val, "expected a value after '='");
#define KEY(s) (klen == strlen (s) && !strncmp (tok, s, klen))
    if (KEY ("slots")) {
        if (e->slots != -1)
            return perr (p, tok, "slots given twice");
        if (parse_pos_int (val, vlen, DC_MAX_SLOTS, &e->slots) < 0)
            return perr (p, val, "slots must be a number from 1 to %d",
                         DC_MAX_SLOTS);
    } else if (KEY ("max_slots") || KEY ("max-slots")) {
        if (e->max_slots != -1)
            return perr (p, tok, "max_slots given twice");
        if (parse_pos_int (val, vlen, DC_MAX_SLOTS, &e->max_slots) < 0)
            return perr (p, val, "max_slots must be a number from 1 to %d",
                         DC_MAX_SLOTS);
    } else if (KEY ("gpus")) {
        char buf[4096];
        dc_error_t err;
        if (e->gpus_given)
            return perr (p, tok, "gpus given twice");
        if (vlen >= sizeof (buf))
            return perr (p, val, "gpus list too long");
        memcpy (buf, val, vlen);
        buf[vlen] = '\0';
        if (dc_parse_int_list (buf, DC_MAX_GPUS - 1, &e->gpus, &e->ngpus,
                               &err) < 0)
            return perr (p, val, "gpus: %s", err.text);
        e->gpus_given = true;
    } else {
        char key[64];
        snprintf (key, sizeof (key), "%.*s", (int)(klen < 60 ? klen : 60), tok);
        return perr (p, tok,
                     "unknown key '%s' (expected slots=, max_slots= or gpus=)",
                     key);
    }
#undef KEY
    return 0;
}

static int add_entry (struct pctx *p, struct dc_hosts *hosts, struct entry *e,
                      const char *hostcol)
{
    struct dc_hostlist *hl;
    dc_error_t err;
    struct dc_host h = {0};
    int rc = -1;

    if (e->colon != -1) {
        if (e->user[0] || e->slots != -1) {
            h.port = (int)e->colon;
            if (e->colon > 65535)
                return perr (p, e->colon_at, "port must be 1 to 65535");
        } else
            e->slots = e->colon;
    }
    h.slots = e->slots == -1 ? 1 : (int)e->slots;
    h.slots_default = e->slots == -1 && !e->ngpus;
    h.max_slots = e->max_slots == -1 ? 0 : (int)e->max_slots;
    if (h.max_slots && h.max_slots < h.slots)
        return perr (p, hostcol, "max_slots=%d is less than slots=%d",
                     h.max_slots, h.slots);
    h.user = e->user[0] ? e->user : NULL;
    h.gpus = e->gpus;
    h.ngpus = e->ngpus;
    h.line = p->line;
    if (!(hl = dc_hostlist_decode (e->hostexpr, &err)))
        return perr (p, hostcol, "%s", err.text);
    size_t n = dc_hostlist_count (hl);
    if (n > DC_HOSTS_MAX - hosts->count) {
        perr (p, hostcol, "more than %d hosts in the hostfile", DC_HOSTS_MAX);
        goto out;
    }
    /* every host gets its own copy of gpus=: bound the sum */
    if ((size_t)h.ngpus * n > DC_HOSTFILE_MAX_GPU_ENTRIES - p->gpu_entries) {
        perr (p, hostcol, "more than %d gpus= entries in the hostfile",
              DC_HOSTFILE_MAX_GPU_ENTRIES);
        goto out;
    }
    p->gpu_entries += (size_t)h.ngpus * n;
    for (size_t i = 0; i < n; i++) {
        h.name = (char *)dc_hostlist_nth (hl, i);
        long dup = dc_hosts_find (hosts, h.name, h.port);
        if (dup >= 0) {
            perr (p, hostcol, "duplicate host '%s' (first on line %d)", h.name,
                  hosts->v[dup].line);
            goto out;
        }
        if (dc_hosts_add (hosts, &h) < 0) {
            errprintf (p->errp, "%s: out of memory", p->name);
            goto out;
        }
    }
    rc = 0;
out:
    dc_hostlist_destroy (hl);
    return rc;
}

static int parse_line (struct pctx *p, const char *s, size_t len,
                       struct dc_hosts *hosts)
{
    struct entry e;
    const char *end = s + len;
    const char *hostcol = NULL;
    int ntok = 0;
    int rc = -1;

    memset (&e, 0, sizeof (e));
    e.colon = e.slots = e.max_slots = -1;
    /* strip the comment */
    const char *hash = memchr (s, '#', len);
    if (hash)
        end = hash;
    const char *q = s;
    while (q < end) {
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q >= end)
            break;
        const char *t = q;
        while (q < end && *q != ' ' && *q != '\t' && *q != '\r')
            q++;
        size_t tlen = (size_t)(q - t);
        for (size_t i = 0; i < tlen; i++) {
            unsigned char c = (unsigned char)t[i];
            if (c < 0x20 || c >= 0x7f) {
                perr (p, t + i, "invalid byte 0x%02x", c);
                goto out;
            }
        }
        if (ntok++ == 0) {
            hostcol = t;
            if (parse_host_field (p, t, tlen, &e) < 0)
                goto out;
        } else if (parse_key (p, t, tlen, &e) < 0)
            goto out;
    }
    if (ntok == 0)
        return 0;
    rc = add_entry (p, hosts, &e, hostcol);
out:
    free (e.gpus);
    return rc;
}

struct dc_hosts *dc_hostfile_parse (const char *text, size_t len,
                                    const char *name, dc_error_t *errp)
{
    struct pctx p = {.name = name ? name : "hostfile", .errp = errp};
    struct dc_hosts *hosts;
    char origin[PATH_MAX + 16];
    size_t i = 0;

    if (!text) {
        errno = EINVAL;
        errprintf (errp, "%s: no text", p.name);
        return NULL;
    }
    snprintf (origin, sizeof (origin), "hostfile %s", p.name);
    if (!(hosts = dc_hosts_create (origin))) {
        errprintf (errp, "%s: out of memory", p.name);
        return NULL;
    }
    while (i < len) {
        const char *nl = memchr (text + i, '\n', len - i);
        size_t llen = nl ? (size_t)(nl - (text + i)) : len - i;
        p.line++;
        p.linestart = text + i;
        if (llen > DC_HOSTFILE_MAX_LINE) {
            perr (&p, text + i, "line longer than %d bytes",
                  DC_HOSTFILE_MAX_LINE);
            goto fail;
        }
        if (memchr (text + i, '\0', llen)) {
            perr (&p, memchr (text + i, '\0', llen), "NUL byte in hostfile");
            goto fail;
        }
        if (parse_line (&p, text + i, llen, hosts) < 0)
            goto fail;
        i += llen + 1;
    }
    if (hosts->count == 0) {
        errno = EINVAL;
        errprintf (errp, "%s: no hosts in hostfile", p.name);
        goto fail;
    }
    return hosts;
fail:
    dc_hosts_destroy (hosts);
    return NULL;
}

struct dc_hosts *dc_hostfile_load (const char *path, dc_error_t *errp)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd;
    struct dc_hosts *hosts;

    if (!path || !*path) {
        errno = EINVAL;
        errprintf (errp, "hostfile: no file name given");
        return NULL;
    }
    if ((fd = open (path, O_RDONLY | O_CLOEXEC)) < 0) {
        errprintf (errp, "%s: %s", path, strerror (errno));
        return NULL;
    }
    if (fstat (fd, &st) < 0 || S_ISDIR (st.st_mode)) {
        if (S_ISDIR (st.st_mode))
            errno = EISDIR;
        errprintf (errp, "%s: %s", path, strerror (errno));
        close (fd);
        return NULL;
    }
    /* read with a cap, not trusting st_size (pipes, /proc) */
    size_t cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= DC_HOSTFILE_MAX_BYTES) {
                errno = EFBIG;
                errprintf (errp, "%s: larger than %d bytes", path,
                           DC_HOSTFILE_MAX_BYTES);
                goto fail;
            }
            cap = cap ? cap * 2 : 8192;
            char *p = realloc (buf, cap + 1);
            if (!p) {
                errprintf (errp, "%s: out of memory", path);
                goto fail;
            }
            buf = p;
        }
        ssize_t n = read (fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            errprintf (errp, "%s: %s", path, strerror (errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close (fd);
    hosts = dc_hostfile_parse (buf ? buf : "", len, path, errp);
    free (buf);
    return hosts;
fail:
    close (fd);
    free (buf);
    return NULL;
}
