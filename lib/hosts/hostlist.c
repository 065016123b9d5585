/* hostlist.c - Slurm hostlist expressions, expansion and compression */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hosts/hostlist.h"
#include "lib/util/strbuf.h"

#define MAX_DIGITS 18 /* keeps every value below 10^18 < UINT64_MAX */
#define MAX_GROUPS 16 /* bracket groups in one term */

struct dc_hostlist {
    char **hosts;
    size_t count;
    size_t cap;
};

struct range {
    uint64_t lo, hi;
    int width; /* digits of the low end: zero padding */
};

struct group {
    size_t first; /* index into the term's range array */
    size_t nranges;
    uint64_t count; /* hosts this group expands to */
};

struct dc_hostlist *dc_hostlist_create (void)
{
    return calloc (1, sizeof (struct dc_hostlist));
}

void dc_hostlist_destroy (struct dc_hostlist *hl)
{
    if (hl) {
        int saved_errno = errno;
        for (size_t i = 0; i < hl->count; i++)
            free (hl->hosts[i]);
        free (hl->hosts);
        free (hl);
        errno = saved_errno;
    }
}

size_t dc_hostlist_count (const struct dc_hostlist *hl)
{
    return hl ? hl->count : 0;
}

const char *dc_hostlist_nth (const struct dc_hostlist *hl, size_t i)
{
    if (!hl || i >= hl->count)
        return NULL;
    return hl->hosts[i];
}

static int grow (struct dc_hostlist *hl, size_t need)
{
    if (need <= hl->cap)
        return 0;
    size_t cap = hl->cap ? hl->cap : 16;
    while (cap < need)
        cap *= 2;
    char **p = realloc (hl->hosts, cap * sizeof (*p));
    if (!p)
        return -1;
    hl->hosts = p;
    hl->cap = cap;
    return 0;
}

static bool valid_host_char (unsigned char c)
{
    return isalnum (c) || c == '-' || c == '.' || c == '_' || c == '@' ||
           c == ':';
}

static void truncate_rollback (struct dc_hostlist *hl, size_t count)
{
    while (hl->count > count)
        free (hl->hosts[--hl->count]);
}

/* Parse a number of at most MAX_DIGITS digits at s[*pos]. */
static int parse_num (const char *s, size_t *pos, uint64_t *val, int *width)
{
    size_t i = *pos;
    uint64_t v = 0;
    int n = 0;

    while (isdigit ((unsigned char)s[i])) {
        if (++n > MAX_DIGITS)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (n == 0)
        return -1;
    *pos = i;
    *val = v;
    *width = n;
    return 0;
}

/* One term while it is parsed: literal pieces around bracket groups. */
struct term {
    const char *expr; /* the whole expression, for messages */
    const char *s;    /* the term */
    size_t len;
    size_t col0; /* column of s[0] in expr, from 1 */
    struct range *ranges;
    size_t nranges, rcap;
    struct group groups[MAX_GROUPS];
    const char *lit[MAX_GROUPS + 1];
    size_t litlen[MAX_GROUPS + 1];
    int ngroups;
    uint64_t total; /* hosts the term expands to */
};

static int term_push_range (struct term *t, const struct range *r,
                            dc_error_t *errp)
{
    if (t->nranges == t->rcap) {
        size_t ncap = t->rcap ? t->rcap * 2 : 8;
        struct range *p = realloc (t->ranges, ncap * sizeof (*p));
        if (!p)
            return errprintf (errp, "hostlist: out of memory");
        t->ranges = p;
        t->rcap = ncap;
    }
    t->ranges[t->nranges++] = *r;
    return 0;
}

/* Parse one number or lo-hi range inside brackets at t->s[*i]. */
static int parse_range (struct term *t, size_t *i, struct range *r,
                        dc_error_t *errp)
{
    const char *expr = t->expr;
    int w2;

    if (*i >= t->len)
        return errprintf (errp, "hostlist '%s': unbalanced '[' at column %zu",
                          expr, t->col0 + *i);
    if (parse_num (t->s, i, &r->lo, &r->width) < 0) {
        if (isdigit ((unsigned char)t->s[*i]))
            return errprintf (errp,
                              "hostlist '%s': number too long at column %zu",
                              expr, t->col0 + *i);
        return errprintf (errp,
                          "hostlist '%s': expected a number at column %zu",
                          expr, t->col0 + *i);
    }
    r->hi = r->lo;
    if (*i < t->len && t->s[*i] == '-') {
        (*i)++;
        if (parse_num (t->s, i, &r->hi, &w2) < 0)
            return errprintf (errp,
                              "hostlist '%s': expected the end of a range at "
                              "column %zu",
                              expr, t->col0 + *i);
        if (r->hi < r->lo)
            return errprintf (errp, "hostlist '%s': reversed range %llu-%llu",
                              expr, (unsigned long long)r->lo,
                              (unsigned long long)r->hi);
    }
    return 0;
}

/* Parse the bracket group opening at t->s[*i] == '['. */
static int parse_group (struct term *t, size_t *i, dc_error_t *errp)
{
    const char *expr = t->expr;

    if (t->ngroups == MAX_GROUPS)
        return errprintf (errp,
                          "hostlist '%s': more than %d bracket groups in one "
                          "name",
                          expr, MAX_GROUPS);
    struct group *g = &t->groups[t->ngroups];
    g->first = t->nranges;
    g->nranges = 0;
    g->count = 0;
    (*i)++;
    for (;;) {
        struct range r;
        if (parse_range (t, i, &r, errp) < 0 ||
            term_push_range (t, &r, errp) < 0)
            return -1;
        g->nranges++;
        g->count += r.hi - r.lo + 1;
        if (g->count > DC_HOSTLIST_MAX)
            return errprintf (errp,
                              "hostlist '%s': expands to more than %d hosts",
                              expr, DC_HOSTLIST_MAX);
        if (*i < t->len && t->s[*i] == ',') {
            (*i)++;
            continue;
        }
        if (*i < t->len && t->s[*i] == ']') {
            (*i)++;
            break;
        }
        if (*i >= t->len)
            return errprintf (
                errp, "hostlist '%s': unbalanced '[' (missing ']')", expr);
        return errprintf (errp,
                          "hostlist '%s': expected ',' or ']' at column %zu",
                          expr, t->col0 + *i);
    }
    t->total *= g->count;
    if (t->total > DC_HOSTLIST_MAX)
        return errprintf (errp, "hostlist '%s': expands to more than %d hosts",
                          expr, DC_HOSTLIST_MAX);
    t->ngroups++;
    t->lit[t->ngroups] = t->s + *i;
    t->litlen[t->ngroups] = 0;
    return 0;
}

/* A byte of a literal piece at column col: a host name character or an error.
 */
static int check_literal (const struct term *t, unsigned char c, size_t col,
                          dc_error_t *errp)
{
    if (c == ']')
        return errprintf (errp, "hostlist '%s': unbalanced ']' at column %zu",
                          t->expr, col);
    if (valid_host_char (c))
        return 0;
    if (c >= 0x80 || !isprint (c))
        return errprintf (errp,
                          "hostlist '%s': invalid byte 0x%02x in host name at "
                          "column %zu",
                          t->expr, c, col);
    return errprintf (errp,
                      "hostlist '%s': invalid character '%c' in host name at "
                      "column %zu",
                      t->expr, c, col);
}

/* Split t->s into literal pieces and bracket groups. */
static int parse_term (struct term *t, dc_error_t *errp)
{
    size_t i = 0;

    if (t->len == 0)
        return errprintf (errp, "hostlist '%s': empty host name at column %zu",
                          t->expr, t->col0);
    t->lit[0] = t->s;
    t->litlen[0] = 0;
    t->total = 1;
    while (i < t->len) {
        unsigned char c = (unsigned char)t->s[i];
        if (c == '[') {
            if (parse_group (t, &i, errp) < 0)
                return -1;
            continue;
        }
        if (check_literal (t, c, t->col0 + i, errp) < 0)
            return -1;
        t->litlen[t->ngroups]++;
        i++;
    }
    return 0;
}

/* Write the name at the odometer position (ridx, val) into name; -1 when
 * it would be longer than DC_HOSTNAME_MAX. */
static int term_name (const struct term *t, const size_t *ridx,
                      const uint64_t *val, char name[DC_HOSTNAME_MAX + 2])
{
    size_t n = 0;

    for (int g = 0; g <= t->ngroups; g++) {
        if (n + t->litlen[g] > DC_HOSTNAME_MAX)
            return -1;
        memcpy (name + n, t->lit[g], t->litlen[g]);
        n += t->litlen[g];
        if (g < t->ngroups) {
            char num[32];
            const struct range *r = &t->ranges[t->groups[g].first + ridx[g]];
            int k = snprintf (num, sizeof (num), "%0*llu", r->width,
                              (unsigned long long)val[g]);
            if (n + (size_t)k > DC_HOSTNAME_MAX)
                return -1;
            memcpy (name + n, num, (size_t)k);
            n += (size_t)k;
        }
    }
    name[n] = '\0';
    return 0;
}

/* Advance the odometer over the groups, last group fastest. */
static void term_advance (const struct term *t, size_t *ridx, uint64_t *val)
{
    for (int g = t->ngroups - 1; g >= 0; g--) {
        const struct group *gr = &t->groups[g];
        const struct range *r = &t->ranges[gr->first + ridx[g]];
        if (val[g] < r->hi) {
            val[g]++;
            return;
        }
        if (ridx[g] + 1 < gr->nranges) {
            ridx[g]++;
            val[g] = t->ranges[gr->first + ridx[g]].lo;
            return;
        }
        ridx[g] = 0;
        val[g] = t->ranges[gr->first].lo;
    }
}

/* Append every name of the parsed term t to hl. */
static int term_expand (struct dc_hostlist *hl, const struct term *t,
                        dc_error_t *errp)
{
    const char *expr = t->expr;

    if (hl->count + t->total > DC_HOSTLIST_MAX)
        return errprintf (errp, "hostlist '%s': more than %d hosts in all",
                          expr, DC_HOSTLIST_MAX);
    if (grow (hl, hl->count + (size_t)t->total) < 0)
        return errprintf (errp, "hostlist: out of memory");
    /* Odometer over the groups, first group outermost. */
    size_t ridx[MAX_GROUPS] = {0};
    uint64_t val[MAX_GROUPS];
    for (int g = 0; g < t->ngroups; g++)
        val[g] = t->ranges[t->groups[g].first].lo;
    for (uint64_t h = 0; h < t->total; h++) {
        char name[DC_HOSTNAME_MAX + 2];
        if (term_name (t, ridx, val, name) < 0)
            return errprintf (errp,
                              "hostlist '%s': host name longer than %d "
                              "characters",
                              expr, DC_HOSTNAME_MAX);
        if (!(hl->hosts[hl->count] = strdup (name)))
            return errprintf (errp, "hostlist: out of memory");
        hl->count++;
        term_advance (t, ridx, val);
    }
    return 0;
}

/* Expand one term (no top-level comma) of length len into hl. */
static int expand_term (struct dc_hostlist *hl, const char *expr,
                        const char *term, size_t len, dc_error_t *errp)
{
    struct term t = {
        .expr = expr,
        .s = term,
        .len = len,
        .col0 = (size_t)(term - expr) + 1,
    };
    int rc = -1;

    if (parse_term (&t, errp) == 0 && term_expand (hl, &t, errp) == 0)
        rc = 0;
    free (t.ranges);
    return rc;
}

int dc_hostlist_append (struct dc_hostlist *hl, const char *expr,
                        dc_error_t *errp)
{
    size_t count0;
    const char *p, *start;
    int depth = 0;

    if (!hl || !expr) {
        errno = EINVAL;
        return errprintf (errp, "hostlist: no host list given");
    }
    if (*expr == '\0') {
        errno = EINVAL;
        return errprintf (errp, "hostlist: empty host list");
    }
    count0 = hl->count;
    start = expr;
    for (p = expr;; p++) {
        if (*p == '[')
            depth++;
        else if (*p == ']')
            depth--;
        if ((*p == ',' && depth <= 0) || *p == '\0') {
            if (expand_term (hl, expr, start, (size_t)(p - start), errp) < 0) {
                truncate_rollback (hl, count0);
                errno = EINVAL;
                return -1;
            }
            if (*p == '\0')
                break;
            start = p + 1;
            depth = 0;
        }
    }
    return 0;
}

int dc_hostlist_push (struct dc_hostlist *hl, const char *host,
                      dc_error_t *errp)
{
    if (!hl || !host || !*host) {
        errno = EINVAL;
        return errprintf (errp, "hostlist: empty host name");
    }
    if (strlen (host) > DC_HOSTNAME_MAX) {
        errno = EINVAL;
        return errprintf (errp, "host name longer than %d characters",
                          DC_HOSTNAME_MAX);
    }
    if (hl->count >= DC_HOSTLIST_MAX) {
        errno = E2BIG;
        return errprintf (errp, "more than %d hosts", DC_HOSTLIST_MAX);
    }
    if (grow (hl, hl->count + 1) < 0 || !(hl->hosts[hl->count] = strdup (host)))
        return errprintf (errp, "hostlist: out of memory");
    hl->count++;
    return 0;
}

struct dc_hostlist *dc_hostlist_decode (const char *expr, dc_error_t *errp)
{
    struct dc_hostlist *hl = dc_hostlist_create ();

    if (!hl) {
        errprintf (errp, "hostlist: out of memory");
        return NULL;
    }
    if (dc_hostlist_append (hl, expr, errp) < 0) {
        dc_hostlist_destroy (hl);
        return NULL;
    }
    return hl;
}

/* ---- compression ---- */

/* The longest compressed list: every host apart. */
#define ENCODE_MAX ((size_t)DC_HOSTLIST_MAX * (DC_HOSTNAME_MAX + 1))

/* An entry during compression: prefix + [ranges] + suffix, or a plain name
 * (nr == 0).  The "split point" is the last digit run outside brackets. */
struct entry {
    char *prefix; /* up to the split number */
    char *suffix; /* after it */
    struct range *r;
    size_t nr;
    size_t rcap; /* allocated ranges: doubling keeps merging linear */
    char *text;  /* plain text when not splittable */
};

static void entry_free (struct entry *e)
{
    free (e->prefix);
    free (e->suffix);
    free (e->r);
    free (e->text);
}

/* Find the last run of digits outside brackets in s. */
static bool split_last_number (const char *s, size_t *start, size_t *end)
{
    size_t n = strlen (s);
    int depth = 0;
    bool found = false;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '[')
            depth++;
        else if (s[i] == ']')
            depth--;
        else if (depth == 0 && isdigit ((unsigned char)s[i])) {
            size_t j = i;
            while (j < n && isdigit ((unsigned char)s[j]))
                j++;
            if (j - i <= MAX_DIGITS) {
                *start = i;
                *end = j;
                found = true;
            }
            i = j - 1;
        }
    }
    return found;
}

static char *render (const struct entry *e)
{
    struct dc_strbuf b = DC_STRBUF_INIT (ENCODE_MAX);

    if (e->nr == 0)
        return strdup (e->text);
    dc_strbuf_str (&b, e->prefix);
    bool bracket = e->nr > 1 || e->r[0].lo != e->r[0].hi;
    if (bracket)
        dc_strbuf_str (&b, "[");
    for (size_t i = 0; i < e->nr; i++) {
        if (i > 0)
            dc_strbuf_str (&b, ",");
        if (e->r[i].lo == e->r[i].hi)
            dc_strbuf_printf (&b, "%0*llu", e->r[i].width,
                              (unsigned long long)e->r[i].lo);
        else
            dc_strbuf_printf (&b, "%0*llu-%0*llu", e->r[i].width,
                              (unsigned long long)e->r[i].lo, e->r[i].width,
                              (unsigned long long)e->r[i].hi);
    }
    if (bracket)
        dc_strbuf_str (&b, "]");
    dc_strbuf_str (&b, e->suffix);
    return dc_strbuf_take (&b);
}

static int make_entry (struct entry *e, char *text)
{
    size_t s, t;

    memset (e, 0, sizeof (*e));
    if (!split_last_number (text, &s, &t)) {
        e->text = text;
        return 0;
    }
    e->r = malloc (sizeof (*e->r));
    e->prefix = strndup (text, s);
    e->suffix = strdup (text + t);
    if (!e->r || !e->prefix || !e->suffix) {
        free (text);
        return -1;
    }
    e->nr = 1;
    e->rcap = 1;
    e->r[0].width = (int)(t - s);
    e->r[0].lo = strtoull (text + s, NULL, 10);
    e->r[0].hi = e->r[0].lo;
    free (text);
    return 0;
}

/* Does number string (value v, digits w) continue range r? */
static bool continues (const struct range *r, const struct range *single)
{
    if (single->lo != r->hi + 1)
        return false;
    /* v printed with r's width must give back the same digits */
    char a[32], b[32];
    snprintf (a, sizeof (a), "%0*llu", r->width,
              (unsigned long long)single->lo);
    snprintf (b, sizeof (b), "%0*llu", single->width,
              (unsigned long long)single->lo);
    return strcmp (a, b) == 0;
}

/* One pass: merge consecutive single-number entries sharing prefix and
 * suffix.  Returns the new number of entries, or -1. */
static long merge_pass (struct entry *e, size_t n, bool *changed)
{
    size_t out = 0;

    for (size_t i = 0; i < n; i++) {
        struct entry *cur = &e[i];
        if (out > 0) {
            struct entry *prev = &e[out - 1];
            if (prev->nr > 0 && cur->nr == 1 && cur->r[0].lo == cur->r[0].hi &&
                !strcmp (prev->prefix, cur->prefix) &&
                !strcmp (prev->suffix, cur->suffix)) {
                struct range *last = &prev->r[prev->nr - 1];
                if (continues (last, &cur->r[0])) {
                    last->hi = cur->r[0].lo;
                } else {
                    if (prev->nr == prev->rcap) {
                        size_t cap = prev->rcap * 2;
                        struct range *p = realloc (prev->r, cap * sizeof (*p));
                        if (!p)
                            return -1;
                        prev->r = p;
                        prev->rcap = cap;
                    }
                    prev->r[prev->nr++] = cur->r[0];
                }
                entry_free (cur);
                *changed = true;
                continue;
            }
        }
        if (out != i)
            e[out] = *cur;
        out++;
    }
    return (long)out;
}

char *dc_hostlist_encode (const struct dc_hostlist *hl)
{
    struct entry *e;
    size_t n;
    struct dc_strbuf b = DC_STRBUF_INIT (ENCODE_MAX);
    bool changed = true;

    if (!hl) {
        errno = EINVAL;
        return NULL;
    }
    n = hl->count;
    if (n == 0)
        return strdup ("");
    if (!(e = calloc (n, sizeof (*e))))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char *t = strdup (hl->hosts[i]);
        if (!t || make_entry (&e[i], t) < 0) {
            n = i;
            goto fail;
        }
    }
    /* Merge on the last number, then re-split the rendered names on the
     * previous number (rack1-gpu[01-16],rack2-gpu[01-16] -> rack[1-2]-...). */
    while (changed) {
        changed = false;
        long m = merge_pass (e, n, &changed);
        if (m < 0)
            goto fail;
        n = (size_t)m;
        if (!changed)
            break;
        for (size_t i = 0; i < n; i++) {
            char *t = render (&e[i]);
            if (!t)
                goto fail;
            entry_free (&e[i]);
            if (make_entry (&e[i], t) < 0)
                goto fail;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char *t = render (&e[i]);
        if (!t)
            goto fail;
        if (i > 0)
            dc_strbuf_str (&b, ",");
        dc_strbuf_str (&b, t);
        free (t);
    }
    for (size_t i = 0; i < n; i++)
        entry_free (&e[i]);
    free (e);
    return dc_strbuf_take (&b); /* NULL with errno when an append failed */
fail:
    for (size_t i = 0; i < n; i++)
        entry_free (&e[i]);
    free (e);
    dc_strbuf_free (&b);
    errno = ENOMEM;
    return NULL;
}
