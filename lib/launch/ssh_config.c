/* ssh_config.c - the part of OpenSSH's client config that dcrun reads
 * (see ssh_config.h) */
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/launch/ssh_config.h"

#define LINE_MAX_BYTES (64 * 1024)
#define FILE_MAX_BYTES (1024 * 1024)

struct reader {
    const char *host;
    const char *home;
    struct dc_ssh_config *c;
    dc_error_t *errp;
};

static const char *home_of (const struct reader *r)
{
    if (r->home && *r->home)
        return r->home;
    const char *h = getenv ("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid (getuid ());
    return pw && pw->pw_dir ? pw->pw_dir : "/";
}

static char *expand_tilde (const struct reader *r, const char *p)
{
    char *s;
    if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
        if (asprintf (&s, "%s%s", home_of (r), p + 1) < 0)
            return NULL;
        return s;
    }
    return strdup (p);
}

/* OpenSSH's Host line: a list of patterns, a `!pattern` that matches
 * vetoes the line. */
static bool host_matches (char *patterns, const char *host)
{
    bool match = false;

    for (char *save, *p = strtok_r (patterns, " \t,", &save); p;
         p = strtok_r (NULL, " \t,", &save)) {
        bool neg = *p == '!';
        if (fnmatch (neg ? p + 1 : p, host, FNM_CASEFOLD) == 0) {
            if (neg)
                return false;
            match = true;
        }
    }
    return match;
}

static int bad_value (struct reader *r, const char *file, int lineno,
                      const char *kw, const char *val, const char *want)
{
    errno = EINVAL;
    return errprintf (r->errp, "ssh config: %s:%d: bad %s '%.200s' (%s)", file,
                      lineno, kw, val, want);
}

static int note_unknown (struct reader *r, const char *file, int lineno,
                         const char *kw)
{
    struct dc_ssh_config *c = r->c;
    if (c->nunknown >= DC_SSH_CONFIG_MAX_UNKNOWN)
        return 0;
    if (asprintf (&c->unknown[c->nunknown], "%s:%d: %.80s", file, lineno, kw) <
        0) {
        c->unknown[c->nunknown] = NULL;
        return errprintf (r->errp, "out of memory");
    }
    c->nunknown++;
    return 0;
}

static int set_str (struct reader *r, char **dst, const char *val)
{
    if (*dst)
        return 0;
    if (!(*dst = strdup (val)))
        return errprintf (r->errp, "out of memory");
    return 0;
}

static int read_file (struct reader *r, const char *path, bool explicit,
                      int depth);

static int do_include (struct reader *r, const char *file, int lineno,
                       char *val, int depth)
{
    if (depth + 1 >= DC_SSH_CONFIG_MAX_DEPTH) {
        errno = ELOOP;
        return errprintf (r->errp,
                          "ssh config: %s:%d: Include nested more than %d "
                          "deep (a loop?)",
                          file, lineno, DC_SSH_CONFIG_MAX_DEPTH);
    }
    for (char *save, *p = strtok_r (val, " \t", &save); p;
         p = strtok_r (NULL, " \t", &save)) {
        char *pat = NULL;
        glob_t g;
        if (p[0] == '~')
            pat = expand_tilde (r, p);
        else if (p[0] == '/')
            pat = strdup (p);
        else if (asprintf (&pat, "%s/.ssh/%s", home_of (r), p) < 0)
            pat = NULL;
        if (!pat)
            return errprintf (r->errp, "out of memory");
        int rc = glob (pat, 0, NULL, &g);
        free (pat);
        if (rc == GLOB_NOMATCH)
            continue;
        if (rc != 0)
            return errprintf (r->errp,
                              "ssh config: %s:%d: Include: cannot "
                              "read '%.200s'",
                              file, lineno, p);
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (read_file (r, g.gl_pathv[i], false, depth + 1) < 0) {
                globfree (&g);
                return -1;
            }
        globfree (&g);
    }
    return 0;
}

/* One line that applies to the host: keyword and value (quotes removed). */
static int apply (struct reader *r, const char *file, int lineno,
                  const char *kw, char *val, int depth)
{
    struct dc_ssh_config *c = r->c;

    if (!strcasecmp (kw, "Include"))
        return do_include (r, file, lineno, val, depth);
    if (!*val)
        return bad_value (r, file, lineno, kw, val, "no value");
    if (!strcasecmp (kw, "HostName")) {
        /* %h: the host as given, %%: a percent sign */
        char buf[1024];
        size_t o = 0;
        for (const char *q = val; *q; q++) {
            const char *add = q;
            size_t n = 1;
            if (*q == '%') {
                if (q[1] == 'h')
                    add = r->host, n = strlen (r->host);
                else if (q[1] != '%')
                    return bad_value (r, file, lineno, "HostName", val,
                                      "only %h and %% are known");
                q++;
            }
            if (o + n >= sizeof (buf))
                return bad_value (r, file, lineno, "HostName", val, "too long");
            memcpy (buf + o, add, n);
            o += n;
        }
        buf[o] = '\0';
        if (c->hostname)
            return 0;
        return set_str (r, &c->hostname, buf);
    }
    if (!strcasecmp (kw, "User"))
        return set_str (r, &c->user, val);
    if (!strcasecmp (kw, "Port")) {
        char *end;
        long v = strtol (val, &end, 10);
        if (*end || v < 1 || v > 65535)
            return bad_value (r, file, lineno, "Port", val, "1 to 65535");
        if (!c->port)
            c->port = (int)v;
        return 0;
    }
    if (!strcasecmp (kw, "IdentityFile")) {
        if (c->nkeys >= DC_SSH_CONFIG_MAX_KEYS)
            return 0;
        if (!(c->keys[c->nkeys] = expand_tilde (r, val)))
            return errprintf (r->errp, "out of memory");
        c->nkeys++;
        return 0;
    }
    if (!strcasecmp (kw, "ProxyJump")) {
        if (c->proxyjump_set)
            return 0;
        if (strchr (val, ' ') || strchr (val, '\t') || strstr (val, "://"))
            return bad_value (r, file, lineno, "ProxyJump", val,
                              "expected [user@]host[:port][,...] or none");
        c->proxyjump_set = true;
        if (!strcasecmp (val, "none"))
            return 0;
        return set_str (r, &c->proxyjump, val);
    }
    if (!strcasecmp (kw, "StrictHostKeyChecking")) {
        enum dc_ssh_strict s;
        if (!strcasecmp (val, "yes"))
            s = DC_SSH_STRICT_YES;
        else if (!strcasecmp (val, "accept-new"))
            s = DC_SSH_STRICT_ACCEPT_NEW;
        else if (!strcasecmp (val, "no") || !strcasecmp (val, "off"))
            s = DC_SSH_STRICT_NO;
        else if (!strcasecmp (val, "ask"))
            s = DC_SSH_STRICT_YES; /* no one to ask: as yes */
        else
            return bad_value (r, file, lineno, "StrictHostKeyChecking", val,
                              "yes, accept-new, no or ask");
        if (c->strict == DC_SSH_STRICT_UNSET)
            c->strict = s;
        return 0;
    }
    if (!strcasecmp (kw, "UserKnownHostsFile")) {
        if (c->known_hosts)
            return 0;
        val[strcspn (val, " \t")] = '\0';
        if (!(c->known_hosts = expand_tilde (r, val)))
            return errprintf (r->errp, "out of memory");
        return 0;
    }
    if (!strcasecmp (kw, "ConnectTimeout")) {
        char *end;
        double v = strtod (val, &end);
        if (*end || end == val || !(v > 0) || v > 3600)
            return bad_value (r, file, lineno, "ConnectTimeout", val,
                              "seconds, more than 0, at most 3600");
        if (c->connect_timeout == 0)
            c->connect_timeout = v;
        return 0;
    }
    if (!strcasecmp (kw, "ProxyCommand")) {
        /* one of ProxyJump and ProxyCommand: the first given wins */
        if (c->proxyjump_set)
            return 0;
        if (!strcasecmp (val, "none")) {
            c->proxyjump_set = true;
            return 0;
        }
        /* ignored, the connection would silently go elsewhere */
        errno = ENOTSUP;
        return errprintf (r->errp,
                          "ssh config: %s:%d: ProxyCommand is not supported "
                          "by dcrun (ProxyJump is)",
                          file, lineno);
    }
    return note_unknown (r, file, lineno, kw);
}

static int read_file (struct reader *r, const char *path, bool explicit,
                      int depth)
{
    FILE *f = fopen (path, "re");
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t n;
    bool active = true;
    int lineno = 0, rc = 0;

    if (!f) {
        if (errno == ENOENT && !explicit)
            return 0;
        return errprintf (r->errp, "ssh config: %s: %s", path,
                          strerror (errno));
    }
    struct stat st;
    if (fstat (fileno (f), &st) < 0 || !S_ISREG (st.st_mode)) {
        fclose (f);
        errno = EINVAL;
        return errprintf (r->errp, "ssh config: %s: not a regular file", path);
    }
    while ((n = getline (&line, &cap, f)) >= 0) {
        lineno++;
        total += (size_t)n;
        if (n > LINE_MAX_BYTES || total > FILE_MAX_BYTES) {
            errno = EFBIG;
            rc = errprintf (r->errp, "ssh config: %s:%d: %s", path, lineno,
                            n > LINE_MAX_BYTES ? "line longer than 64 KiB"
                                               : "file larger than 1 MiB");
            break;
        }
        if (memchr (line, '\0', (size_t)n)) {
            errno = EINVAL;
            rc = errprintf (r->errp, "ssh config: %s:%d: a NUL byte", path,
                            lineno);
            break;
        }
        char *p = line + strspn (line, " \t");
        p[strcspn (p, "\r\n")] = '\0';
        if (!*p || *p == '#')
            continue;
        char *kw = p;
        p += strcspn (p, " \t=");
        if (*p)
            *p++ = '\0';
        p += strspn (p, " \t");
        if (*p == '=')
            p++;
        p += strspn (p, " \t");
        char *val = p;
        size_t vl = strlen (val);
        while (vl > 0 && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
            val[--vl] = '\0';
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        if (!strcasecmp (kw, "Host")) {
            active = host_matches (val, r->host);
            continue;
        }
        if (!strcasecmp (kw, "Match")) {
            active = !strcasecmp (val, "all");
            if (!active && note_unknown (r, path, lineno, "Match") < 0) {
                rc = -1;
                break;
            }
            continue;
        }
        if (!active)
            continue;
        if (apply (r, path, lineno, kw, val, depth) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror (f))
        rc = errprintf (r->errp, "ssh config: %s: %s", path, strerror (errno));
    free (line);
    fclose (f);
    return rc;
}

int dc_ssh_config_read (const char *path, const char *host, bool explicit,
                        const char *home, struct dc_ssh_config *c,
                        dc_error_t *errp)
{
    struct reader r = {.host = host, .home = home, .c = c, .errp = errp};

    if (!path || !host || !c) {
        errno = EINVAL;
        return errprintf (errp, "ssh config: no file or host");
    }
    return read_file (&r, path, explicit, 0);
}

void dc_ssh_config_free (struct dc_ssh_config *c)
{
    if (!c)
        return;
    free (c->hostname);
    free (c->user);
    for (int i = 0; i < c->nkeys; i++)
        free (c->keys[i]);
    free (c->proxyjump);
    free (c->known_hosts);
    for (int i = 0; i < c->nunknown; i++)
        free (c->unknown[i]);
    memset (c, 0, sizeof (*c));
}
