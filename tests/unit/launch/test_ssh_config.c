/* test_ssh_config.c - the ssh client config reader (ssh_config.c): a table
 * of config files, hostile ones included (Include loops, huge lines, NUL
 * bytes, missing files, bad values) */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/launch/ssh_config.h"

static char home[256];

static void put (const char *name, const char *text)
{
    char path[512];
    snprintf (path, sizeof (path), "%s/.ssh/%s", home, name);
    FILE *f = fopen (path, "w");
    ck_assert_ptr_nonnull (f);
    fputs (text, f);
    fclose (f);
}

static const struct tcase_cfg {
    const char *config;           /* ~/.ssh/config */
    const char *more_name, *more; /* a second file under ~/.ssh */
    const char *host;
    int rc;
    const char *err;             /* in the error text */
    const char *hostname, *user; /* NULL: not set */
    int port;
    const char *proxyjump;
    enum dc_ssh_strict strict;
    const char *known_hosts; /* after HOME/ */
    double timeout;
    int nunknown;
} cases[] = {
    /* first value wins; Host * at the end gives defaults */
    {.config = "Host a\n  HostName 10.0.0.1\n  Port 2200\nHost *\n  Port 22\n"
               "  User bob\n",
     .host = "a",
     .hostname = "10.0.0.1",
     .user = "bob",
     .port = 2200},
    {.config = "Host *\n  Port 2201\n  User carol\nHost a\n  Port 22\n",
     .host = "a",
     .user = "carol",
     .port = 2201},
    /* patterns: negation, wildcard, comma list, case */
    {.config = "Host n* !nx\n  User u1\nHost *\n  User u2\n",
     .host = "nx",
     .user = "u2"},
    {.config = "Host x,N?\n  User u1\n", .host = "n1", .user = "u1"},
    {.config = "Host = \"q\"\n  HostName=%h.example\n  HostName other\n",
     .host = "q",
     .hostname = "q.example"},
    {.config = "HostName %h\n", .host = "self", .hostname = "self"},
    {.config = "HostName a%%b\n", .host = "x", .hostname = "a%b"},
    {.config = "HostName %z\n", .host = "x", .rc = -1, .err = "bad HostName"},
    /* Include: relative to ~/.ssh, globs, only in an active block */
    {.config = "Include inc.d/*\nHost *\n  Port 1\n",
     .more_name = "inc.d/one",
     .more = "Host alias\n  HostName 127.0.0.3\n  Port 2022\n  User dave\n",
     .host = "alias",
     .hostname = "127.0.0.3",
     .user = "dave",
     .port = 2022},
    {.config = "Host other\n  Include inc.d/*\n",
     .more_name = "inc.d/one",
     .more = "Port 7\n",
     .host = "alias"},
    {.config = "Include nothing-here/*\nInclude missing\nPort 9\n",
     .host = "a",
     .port = 9},
    /* Include loops: bounded depth, an error */
    {.config = "Include config\n",
     .host = "a",
     .rc = -1,
     .err = "Include nested more than"},
    {.config = "Include inc.d/loop2\n",
     .more_name = "inc.d/loop2",
     .more = "Include config\n",
     .host = "a",
     .rc = -1,
     .err = "Include nested more than"},
    /* the keywords dcrun uses */
    {.config = "ProxyJump jump@127.0.0.1:2222,127.0.0.2\nProxyJump x\n",
     .host = "a",
     .proxyjump = "jump@127.0.0.1:2222,127.0.0.2"},
    {.config = "Host a\n  ProxyJump none\nHost *\n  ProxyJump j\n",
     .host = "a"},
    {.config = "ProxyJump ssh://j\n",
     .host = "a",
     .rc = -1,
     .err = "bad ProxyJump"},
    {.config = "StrictHostKeyChecking accept-new\n",
     .host = "a",
     .strict = DC_SSH_STRICT_ACCEPT_NEW},
    {.config = "StrictHostKeyChecking no\nStrictHostKeyChecking yes\n",
     .host = "a",
     .strict = DC_SSH_STRICT_NO},
    {.config = "StrictHostKeyChecking ask\n",
     .host = "a",
     .strict = DC_SSH_STRICT_YES},
    {.config = "StrictHostKeyChecking maybe\n",
     .host = "a",
     .rc = -1,
     .err = "bad StrictHostKeyChecking"},
    {.config = "UserKnownHostsFile ~/kh1 ~/kh2\n",
     .host = "a",
     .known_hosts = "kh1"},
    {.config = "ConnectTimeout 3\nConnectTimeout 9\n",
     .host = "a",
     .timeout = 3},
    {.config = "ConnectTimeout 0\n",
     .host = "a",
     .rc = -1,
     .err = "bad ConnectTimeout"},
    {.config = "ConnectTimeout 1x\n",
     .host = "a",
     .rc = -1,
     .err = "bad ConnectTimeout"},
    {.config = "Port 0\n", .host = "a", .rc = -1, .err = "bad Port"},
    {.config = "Port 65536\n", .host = "a", .rc = -1, .err = "bad Port"},
    {.config = "Port\n", .host = "a", .rc = -1, .err = "no value"},
    {.config = "Host a\n  ProxyCommand ssh -W %h:%p j\n",
     .host = "a",
     .rc = -1,
     .err = "ProxyCommand is not supported"},
    {.config = "Host b\n  ProxyCommand ssh -W %h:%p j\n", .host = "a"},
    {.config = "ProxyCommand none\nProxyJump j\n", .host = "a"},
    {.config = "ProxyJump j\nProxyCommand nc %h %p\n",
     .host = "a",
     .proxyjump = "j"},
    /* keywords dcrun does not use: listed, never applied */
    {.config = "Compression yes\nForwardAgent yes\nHost zzz\n  Ciphers x\n",
     .host = "a",
     .nunknown = 2},
    {.config = "Match host a\n  User m\nMatch all\n  User all\n",
     .host = "a",
     .user = "all",
     .nunknown = 1},
    /* blank, comments, CRLF */
    {.config = "# c\n\n   \r\nUser crlf\r\n", .host = "a", .user = "crlf"},
};

START_TEST (test_table)
{
    const struct tcase_cfg *t = &cases[_i];
    struct dc_ssh_config c = {0};
    dc_error_t err = {{0}};
    char path[512], want[512];

    put ("config", t->config);
    if (t->more_name) {
        snprintf (path, sizeof (path), "%s/.ssh/inc.d", home);
        mkdir (path, 0700);
        put (t->more_name, t->more);
    }
    snprintf (path, sizeof (path), "%s/.ssh/config", home);
    int rc = dc_ssh_config_read (path, t->host, true, home, &c, &err);
    ck_assert_msg (rc == t->rc, "case %d: rc %d (%s)", _i, rc, err.text);
    if (t->err)
        ck_assert_msg (strstr (err.text, t->err), "case %d: '%s'", _i,
                       err.text);
    if (rc == 0) {
#define STR_EQ(a, b)                                                           \
    ck_assert_msg ((!(a) && !(b)) || ((a) && (b) && !strcmp ((a), (b))),       \
                   "case %d: %s: '%s' != '%s'", _i, #a, (a) ? (a) : "NULL",    \
                   (b) ? (b) : "NULL")
        STR_EQ (c.hostname, t->hostname);
        STR_EQ (c.user, t->user);
        STR_EQ (c.proxyjump, t->proxyjump);
        ck_assert_int_eq (c.port, t->port);
        ck_assert_int_eq (c.strict, t->strict);
        ck_assert_int_eq (c.nunknown, t->nunknown);
        ck_assert (c.connect_timeout == t->timeout);
        if (t->known_hosts) {
            snprintf (want, sizeof (want), "%s/%s", home, t->known_hosts);
            const char *w = want;
            STR_EQ (c.known_hosts, w);
        } else
            ck_assert_ptr_null (c.known_hosts);
    }
    dc_ssh_config_free (&c);
    if (t->more_name) {
        snprintf (path, sizeof (path), "%s/.ssh/%s", home, t->more_name);
        unlink (path);
    }
}
END_TEST

START_TEST (test_hostile)
{
    struct dc_ssh_config c = {0};
    dc_error_t err = {{0}};
    char path[512];

    snprintf (path, sizeof (path), "%s/.ssh/config", home);
    /* a line over 64 KiB */
    FILE *f = fopen (path, "w");
    fputs ("User a", f);
    for (int i = 0; i < 70000; i++)
        fputc ('x', f);
    fputs ("\n", f);
    fclose (f);
    ck_assert_int_eq (dc_ssh_config_read (path, "h", true, home, &c, &err), -1);
    ck_assert (strstr (err.text, "longer than 64 KiB"));
    dc_ssh_config_free (&c);
    /* a NUL byte */
    f = fopen (path, "w");
    fwrite ("User a\0b\n", 1, 9, f);
    fclose (f);
    ck_assert_int_eq (dc_ssh_config_read (path, "h", true, home, &c, &err), -1);
    ck_assert (strstr (err.text, "NUL"));
    dc_ssh_config_free (&c);
    /* more than 1 MiB in short lines */
    f = fopen (path, "w");
    for (int i = 0; i < 70000; i++)
        fputs ("# a comment line\n", f);
    fclose (f);
    ck_assert_int_eq (dc_ssh_config_read (path, "h", true, home, &c, &err), -1);
    ck_assert (strstr (err.text, "larger than 1 MiB"));
    dc_ssh_config_free (&c);
    /* missing: an error when explicit, nothing otherwise */
    snprintf (path, sizeof (path), "%s/.ssh/none", home);
    ck_assert_int_eq (dc_ssh_config_read (path, "h", true, home, &c, &err), -1);
    ck_assert (strstr (err.text, "No such file"));
    ck_assert_int_eq (dc_ssh_config_read (path, "h", false, home, &c, &err), 0);
    /* a folder, NULL arguments */
    snprintf (path, sizeof (path), "%s/.ssh", home);
    ck_assert_int_eq (dc_ssh_config_read (path, "h", false, home, &c, &err),
                      -1);
    ck_assert_int_eq (dc_ssh_config_read (NULL, "h", false, home, &c, &err),
                      -1);
    ck_assert_int_eq (dc_ssh_config_read (path, NULL, false, home, &c, &err),
                      -1);
    ck_assert_int_eq (dc_ssh_config_read (path, "h", false, home, NULL, &err),
                      -1);
    dc_ssh_config_free (&c);
    dc_ssh_config_free (NULL);
}
END_TEST

int main (void)
{
    const char *tmp = getenv ("TMPDIR");
    char path[512];

    snprintf (home, sizeof (home), "%s/test_ssh_config.XXXXXX",
              tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp (home))
        return dc_check_skip ("cannot make a temporary folder");
    snprintf (path, sizeof (path), "%s/.ssh", home);
    mkdir (path, 0700);
    Suite *s = suite_create ("ssh_config");
    TCase *tc = tcase_create ("core");
    tcase_set_timeout (tc, 60);
    tcase_add_loop_test (tc, test_table, 0, sizeof (cases) / sizeof (cases[0]));
    tcase_add_test (tc, test_hostile);
    suite_add_tcase (s, tc);
    int rc = dc_check_run (s);
    char cmd[600];
    snprintf (cmd, sizeof (cmd), "rm -rf '%s'", home);
    if (system (cmd) != 0)
        rc = EXIT_FAILURE;
    return rc;
}
