/* fields.c - options that set one field each (fields.h) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fields.h"
#include "lib/model/layout.h"
#include "lib/run/hub.h"

static int set_io (const struct cli *cli, const char *arg, enum dc_io_mode *m)
{
    static const enum dc_io_mode modes[] = {DC_IO_DIRECT, DC_IO_RELAY,
                                            DC_IO_AUTO};

    for (size_t i = 0; i < sizeof (modes) / sizeof (modes[0]); i++)
        if (!strcmp (arg, dc_io_mode_name (modes[i]))) {
            *m = modes[i];
            return 0;
        }
    return cli_usage_error (cli, "--io '%s': expected direct, relay or auto",
                            arg);
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

static int set_number (const struct cli *cli, const struct cli_field *f,
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

int cli_field_set (const struct cli *cli, const struct cli_opt *opts,
                   const struct cli_field *fields, int key, const char *arg,
                   void *ctx)
{
    const struct cli_field *f = fields;
    char opt[64] = "";

    while (f->key && f->key != key)
        f++;
    if (!f->key)
        return 1;
    void *p = (char *)ctx + f->off;
    switch (f->kind) {
    case CLI_STR:
        *(const char **)p = arg;
        return 0;
    case CLI_FLAG:
        *(bool *)p = true;
        return 0;
    case CLI_IO:
        return set_io (cli, arg, p);
    default:
        for (const struct cli_opt *o = opts; o->name; o++)
            if (o->key == key)
                snprintf (opt, sizeof (opt), "--%s", o->name);
        return set_number (cli, f, opt, arg, p);
    }
}
