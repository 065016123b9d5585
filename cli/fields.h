/* fields.h - options that set one field each, from a table
 *
 * Beside a command's cli_opt table, a table of fields turns its option
 * callback into a lookup: a path or word, a flag, a bounded number (the
 * usage error of cli_parse_long / cli_parse_double, named by the option),
 * a size or one of a list of words.  The fields are those of the lib/run
 * options the command fills, so nothing is copied afterwards.
 */
#ifndef DC_CLI_FIELDS_H
#define DC_CLI_FIELDS_H

#include <stddef.h>

#include "cli.h"

enum cli_field_kind {
    CLI_STR,    /* const char *: the word itself (borrowed from argv) */
    CLI_FLAG,   /* bool: true */
    CLI_LONG,   /* long, from min to max */
    CLI_INT,    /* int, from min to max */
    CLI_SIZE,   /* size_t, from min to max */
    CLI_I64,    /* int64_t, from min to max */
    CLI_DOUBLE, /* double, from min to max */
    CLI_WORD,   /* an enum: the value of one of words */
    CLI_BYTES,  /* long long, 1 to max (a whole number of K, M or G) with
                   the suffixes of dc_layout_parse_bytes */
};

/* A word an option takes and the value it sets; a list ends with word
 * NULL.  A word whose value an earlier word has is an alias: taken, but
 * left out of the usage error ("expected f4 or f2"). */
struct cli_word {
    const char *word;
    int value;
};

struct cli_field {
    int key; /* the option's key in the cli_opt table */
    enum cli_field_kind kind;
    size_t off;                   /* of the field in the callback's ctx */
    double min, max;              /* the numbers */
    const struct cli_word *words; /* CLI_WORD */
};

/* --io direct|relay|auto (enum dc_io_mode), for CLI_WORD. */
extern const struct cli_word cli_io_words[];

/* A field of struct T at member: CLI_FIELD (KEY, CLI_LONG, T, m, 1, 9). */
#define CLI_FIELD(k, kd, T, member, ...)                                       \
    {                                                                          \
        .key = (k), .kind = (kd), .off = offsetof (T, member), __VA_ARGS__     \
    }

/* Set the field of key in ctx from arg.  opts is the command's table (the
 * option's name in a usage error), fields ends with key 0.  Returns 0, -1
 * after a usage error, 1 when key has no field. */
int cli_field_set (const struct cli *cli, const struct cli_opt *opts,
                   const struct cli_field *fields, int key, const char *arg,
                   void *ctx);

#endif
