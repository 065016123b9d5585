/* fields.c - what an option of a table sets (struct cli_opt, cli.h)
 *
 * A path or word, a flag, a count, a bounded number (the usage error of
 * cli_parse_long / cli_parse_double, named by the option), a size or one
 * of a list of words; or the option's own code.  The fields are those of
 * the lib/run options the command fills, so nothing is copied afterwards.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lib/hosts/rankenv.h"
#include "lib/model/layout.h"
#include "lib/run/hub.h"

const struct cli_word cli_io_words[] = {
    {"direct", DC_IO_DIRECT},
    {"relay", DC_IO_RELAY},
    {"auto", DC_IO_AUTO},
    {0},
};

const struct cli_word cli_gpu_bind_words[] = {
    {"host", DC_GPU_BIND_HOST},   {"rank", DC_GPU_BIND_RANK},
    {"none", DC_GPU_BIND_NONE},   {"local", DC_GPU_BIND_HOST},
    {"single", DC_GPU_BIND_RANK}, {0},
};

/* Whether w's value comes earlier in words. */
static bool alias (const struct cli_word *words, const struct cli_word *w)
{
    for (const struct cli_word *e = words; e < w; e++)
        if (e->value == w->value)
            return true;
    return false;
}

/* One of the words, or "--OPT 'ARG': expected A, B or C". */
static int set_word (const struct cli *cli, const struct cli_word *words,
                     const char *opt, const char *arg, int *v)
{
    char list[256] = "";
    size_t n = 0, shown = 0, len = 0;

    for (const struct cli_word *w = words; w->word; w++) {
        if (!strcmp (arg, w->word)) {
            *v = w->value;
            return 0;
        }
        n += !alias (words, w);
    }
    for (const struct cli_word *w = words; w->word && len < sizeof (list); w++)
        if (!alias (words, w)) {
            shown++;
            len += (size_t)snprintf (list + len, sizeof (list) - len, "%s%s",
                                     shown == 1   ? ""
                                     : shown == n ? " or "
                                                  : ", ",
                                     w->word);
        }
    return cli_usage_error (cli, "%s '%s': expected %s", opt, arg, list);
}

/* The error names the maximum in its own unit, and the suffixes up to it:
 * "expected a size from 1 to 64M (suffixes K, M)". */
static int set_bytes (const struct cli *cli, const char *opt, const char *arg,
                      long long max, long long *v)
{
    static const char *const units[] = {"K", "M", "G"};
    int u = 0;

    if (dc_layout_parse_bytes (arg, v) == 0 && *v <= max)
        return 0;
    while (u < 2 && max % (1LL << (10 * (u + 2))) == 0)
        u++;
    return cli_usage_error (
        cli, "%s '%s': expected a size from 1 to %lld%s (suffixes %s%s%s)", opt,
        arg, max >> (10 * (u + 1)), units[u], units[0], u > 0 ? ", M" : "",
        u > 1 ? ", G" : "");
}

static int set_number (const struct cli *cli, const struct cli_opt *f,
                       const char *opt, const char *arg, void *p)
{
    long v;

    if (f->kind == CLI_BYTES)
        return set_bytes (cli, opt, arg, (long long)f->max, p);
    if (f->kind == CLI_DOUBLE)
        return cli_parse_double (cli, opt, arg, f->min, f->max, p);
    if (cli_parse_long (cli, opt, arg, (long)f->min, (long)f->max, &v) < 0)
        return -1;
    if (f->kind == CLI_LONG)
        *(long *)p = v;
    else if (f->kind == CLI_INT)
        *(int *)p = (int)v;
    else if (f->kind == CLI_SIZE)
        *(size_t *)p = (size_t)v;
    else
        *(int64_t *)p = v;
    return 0;
}

int cli_opt_set (struct cli *cli, const struct cli_opt *o, const char *arg,
                 void *base)
{
    void *p = (char *)base + o->off;
    char opt[64];
    int v;

    /* named as given: -n, --np */
    if (o->key)
        snprintf (opt, sizeof (opt), "-%c", o->key);
    else
        snprintf (opt, sizeof (opt), "--%s", o->name);
    switch (o->kind) {
    case CLI_NONE:
        return o->fn ? o->fn (cli, arg, base) : 0;
    case CLI_STR:
        *(const char **)p = arg;
        return 0;
    case CLI_FLAG:
    case CLI_CLEAR:
        *(bool *)p = o->kind == CLI_FLAG;
        return 0;
    case CLI_COUNT:
        (*(int *)p)++;
        return 0;
    case CLI_WORD:
        return set_word (cli, o->words, opt, arg, p);
    case CLI_BWORD:
        if (set_word (cli, o->words, opt, arg, &v) < 0)
            return -1;
        *(bool *)p = v != 0;
        return 0;
    default:
        return set_number (cli, o, opt, arg, p);
    }
}
