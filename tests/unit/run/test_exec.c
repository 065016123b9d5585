/* test_exec.c - the engine of `dcrun exec` (lib/run/exec.c) with the local
 * launcher running real /bin/sh ranks: tagged lines per rank and stream,
 * a last line without its newline, a line longer than DC_EXEC_LINE_MAX,
 * the first failing rank's status, signals, the timeout, stdin to rank 0
 * or to all, --output-dir and --trace/--report, hostile paths.  The
 * ranks' lines go to temporary files that are read back.
 */
#include <check.h>
#include <errno.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/hosts/hosts.h"
#include "lib/hosts/plan.h"
#include "lib/hosts/sources.h"
#include "lib/run/exec.h"
#include "lib/run/status.h"

#define MAXR 3

static char tmpdir[] = "/tmp/test_exec.XXXXXX";

/* What one run gave: its status, result fields, both streams' bytes. */
struct got {
    int status, code, first_fail, interrupted;
    bool timed_out, ran;
    char out[65536], err[4096];
    size_t outlen;
    dc_error_t e;
};

struct run {
    int n;
    const char *sh[MAXR]; /* rank r runs sh -c sh[r] (or sh[0]); NULL
                             sh[0]: argv0 itself, no shell */
    const char *argv0;
    const char *in; /* this stdin's bytes, NULL: none */
    enum dc_exec_stdin to;
    bool no_tag, exit_any;
    double timeout;
    const char *output_dir;
    bool tty; /* this stdin is a terminal (a pty) that holds in */
};

/* A pty: *master, and its terminal end opened (returned). */
static int pty_open (int *master)
{
    *master = posix_openpt (O_RDWR | O_NOCTTY);
    ck_assert_int_ge (*master, 0);
    ck_assert_int_eq (grantpt (*master), 0);
    ck_assert_int_eq (unlockpt (*master), 0);
    int fd = open (ptsname (*master), O_RDWR | O_NOCTTY);
    ck_assert_int_ge (fd, 0);
    return fd;
}

static int tmp_fd (void)
{
    char path[64];
    snprintf (path, sizeof (path), "%s/fd.XXXXXX", tmpdir);
    int fd = mkstemp (path);
    ck_assert_int_ge (fd, 0);
    unlink (path);
    return fd;
}

static size_t read_back (int fd, char *buf, size_t cap)
{
    ssize_t n = pread (fd, buf, cap - 1, 0);
    ck_assert_int_ge (n, 0);
    buf[n] = '\0';
    close (fd);
    return (size_t)n;
}

/* The plan of n ranks on localhost (caller destroys plan and hosts). */
static struct dc_plan *plan_of (int n, struct dc_hosts **hp)
{
    struct dc_plan_opts po = {.np = 0};
    char list[32];
    dc_error_t err;

    snprintf (list, sizeof (list), "localhost:%d", n);
    *hp = dc_hosts_parse_list (list, &err);
    ck_assert_msg (*hp != NULL, "%s", err.text);
    struct dc_plan *p = dc_plan_create (*hp, &po, &err);
    ck_assert_msg (p != NULL, "%s", err.text);
    ck_assert_int_eq (p->size, n);
    return p;
}

/* Run rn through the engine; with rec, also --trace/--report into rec[0]
 * and rec[1] (rec[2] gets dc_exec_record's return). */
static void run (const struct run *rn, struct got *g, const char **rec,
                 int *recrc)
{
    struct dc_hosts *h;
    struct dc_plan *plan = plan_of (rn->n, &h);
    struct dc_launch_rank lr[MAXR] = {{0}};
    char envs[MAXR][16], *env[MAXR][2];
    char *argv[MAXR][4];
    int out = tmp_fd (), err = tmp_fd (), in[2] = {-1, -1};

    for (int r = 0; r < rn->n; r++) {
        const char *sh = rn->sh[r] ? rn->sh[r] : rn->sh[0];
        snprintf (envs[r], sizeof (envs[r]), "R=%d", r);
        env[r][0] = envs[r];
        env[r][1] = NULL;
        argv[r][0] = sh ? "/bin/sh" : (char *)rn->argv0;
        argv[r][1] = sh ? "-c" : NULL;
        argv[r][2] = (char *)sh;
        argv[r][3] = NULL;
        lr[r] = (struct dc_launch_rank){
            .rank = r, .host = "localhost", .env = env[r], .argv = argv[r]};
    }
    if (rn->tty)
        in[0] = pty_open (&in[1]);
    else
        ck_assert_int_eq (pipe (in), 0);
    if (rn->in)
        ck_assert_int_eq (write (in[1], rn->in, strlen (rn->in)),
                          (ssize_t)strlen (rn->in));
    if (!rn->tty)
        close (in[1]);
    struct dc_exec_opts o = {
        .launcher = "local",
        .lo = {.cancel_fd = -1},
        .plan = plan,
        .ranks = lr,
        .out_fd = out,
        .err_fd = err,
        .in_fd = in[0],
        .stdin_to = rn->in ? rn->to : DC_EXEC_STDIN_NONE,
        .no_tag = rn->no_tag,
        .output_dir = rn->output_dir,
        .kill_on_bad_exit = true,
        .timeout = rn->timeout,
        .kill_grace = 1,
        .exit_any = rn->exit_any,
    };
    struct dc_exec *x = dc_exec_create (&o, &g->e);
    ck_assert_msg (x != NULL, "%s", g->e.text);
    g->status = dc_exec_run (x, &g->e);
    const struct dc_exec_result *res = dc_exec_result (x);
    g->code = res->code;
    g->first_fail = res->first_fail;
    g->interrupted = res->interrupted;
    g->timed_out = res->timed_out;
    g->ran = res->ran;
    if (rec)
        *recrc = dc_exec_record (x, rec[0], rec[1], &g->e);
    dc_exec_destroy (x);
    close (in[0]);
    if (rn->tty)
        close (in[1]);
    g->outlen = read_back (out, g->out, sizeof (g->out));
    read_back (err, g->err, sizeof (g->err));
    dc_plan_destroy (plan);
    dc_hosts_destroy (h);
}

/* ---- the table ---- */

static const struct {
    const char *name;
    struct run rn;
    int status, code, first_fail; /* code, first_fail: -2 not checked */
    const char *out[2];           /* in stdout; "=X": stdout is X */
    const char *err;              /* in stderr; "=X": stderr is X */
    const char *nout;             /* never in stdout */
    const char *text;             /* in the error text */
} cases[] = {
    {"two ranks, a tagged line each",
     {.n = 2, .sh = {"echo hello $R"}},
     DC_STATUS_OK,
     0,
     -1,
     {"0@localhost: hello 0\n", "1@localhost: hello 1\n"},
     "=",
     NULL,
     NULL},
    {"stderr is its own stream",
     {.n = 1, .sh = {"echo oops >&2"}},
     DC_STATUS_OK,
     0,
     -1,
     {"="},
     "=0@localhost: oops\n",
     NULL,
     NULL},
    {"a last line without its newline ends whole",
     {.n = 1, .sh = {"printf 'prompt? '"}},
     DC_STATUS_OK,
     0,
     -1,
     {"=0@localhost: prompt? \n"},
     "=",
     NULL,
     NULL},
    {"an empty line is still tagged",
     {.n = 1, .sh = {"echo; echo x"}},
     DC_STATUS_OK,
     0,
     -1,
     {"=0@localhost: \n0@localhost: x\n"},
     NULL,
     NULL,
     NULL},
    {"hostile: a rank that writes another's tag and a CR",
     {.n = 1, .sh = {"printf '1@other: fake\\r\\n'"}},
     DC_STATUS_OK,
     0,
     -1,
     {"=0@localhost: 1@other: fake\r\n"},
     NULL,
     NULL,
     NULL},
    {"--no-tag",
     {.n = 1, .sh = {"echo plain"}, .no_tag = true},
     DC_STATUS_OK,
     0,
     -1,
     {"=plain\n"},
     NULL,
     NULL,
     NULL},
    {"the first failing rank's status; the others stopped",
     {.n = 2, .sh = {"sleep 30", "exit 3"}},
     DC_STATUS_FAIL,
     3,
     1,
     {NULL},
     NULL,
     NULL,
     "exec: rank 1 on localhost exited with status 3"},
    {"a signal: 128+N",
     {.n = 1, .sh = {"kill -9 $$"}},
     DC_STATUS_FAIL,
     137,
     0,
     {NULL},
     NULL,
     NULL,
     "exec: rank 0 on localhost killed by signal 9 (SIGKILL)"},
    {"--exit-status any: 1",
     {.n = 1, .sh = {"exit 7"}, .exit_any = true},
     DC_STATUS_FAIL,
     1,
     0,
     {NULL},
     NULL,
     NULL,
     "exited with status 7"},
    {"hostile: a command that does not exist",
     {.n = 1, .sh = {NULL}, .argv0 = "/nonexistent/dcrun-test-cmd"},
     DC_STATUS_FAIL,
     -2,
     0,
     {NULL},
     NULL,
     NULL,
     "exec: rank 0 on localhost: "},
    {"the timeout stops the job",
     {.n = 1, .sh = {"echo before; sleep 30"}, .timeout = 0.3},
     DC_STATUS_FAIL,
     1,
     0,
     {"=0@localhost: before\n"},
     NULL,
     NULL,
     "exec: timed out after 0.3 s"},
    {"--stdin rank0: rank 0 reads it, rank 1 gets EOF",
     {.n = 2,
      .sh = {"cat; echo end $R"},
      .in = "abc\n",
      .to = DC_EXEC_STDIN_RANK0},
     DC_STATUS_OK,
     0,
     -1,
     {"0@localhost: abc\n", "1@localhost: end 1\n"},
     NULL,
     "1@localhost: abc",
     NULL},
    {"--stdin all: every rank reads it",
     {.n = 2, .sh = {"cat"}, .in = "abc\n", .to = DC_EXEC_STDIN_ALL},
     DC_STATUS_OK,
     0,
     -1,
     {"0@localhost: abc\n", "1@localhost: abc\n"},
     NULL,
     NULL,
     NULL},
    {"--stdin none: /dev/null",
     {.n = 1, .sh = {"cat; echo end"}, .in = NULL},
     DC_STATUS_OK,
     0,
     -1,
     {"=0@localhost: end\n"},
     NULL,
     NULL,
     NULL},
    {"hostile: --output-dir under a missing folder",
     {.n = 1, .sh = {"echo x"}, .output_dir = "/nonexistent/dcrun-test/out"},
     DC_STATUS_INPUT,
     -2,
     -1,
     {"="},
     NULL,
     NULL,
     "exec: /nonexistent/dcrun-test/out: No such file or directory"},
};

static void check_text (const char *what, const char *name, const char *got,
                        const char *want)
{
    if (!want)
        return;
    if (want[0] == '=')
        ck_assert_msg (!strcmp (got, want + 1), "%s: %s is '%s', not '%s'",
                       name, what, got, want + 1);
    else
        ck_assert_msg (strstr (got, want) != NULL, "%s: %s '%s' lacks '%s'",
                       name, what, got, want);
}

START_TEST (t_cases)
{
    static struct got g;
    const char *name = cases[_i].name;

    memset (&g, 0, sizeof (g));
    run (&cases[_i].rn, &g, NULL, NULL);
    ck_assert_msg (g.status == cases[_i].status, "%s: status %d (%s)", name,
                   g.status, g.e.text);
    if (cases[_i].code != -2)
        ck_assert_msg (g.code == cases[_i].code, "%s: code %d", name, g.code);
    if (cases[_i].first_fail != -2)
        ck_assert_msg (g.first_fail == cases[_i].first_fail,
                       "%s: first_fail %d", name, g.first_fail);
    for (int i = 0; i < 2; i++)
        check_text ("stdout", name, g.out, cases[_i].out[i]);
    check_text ("stderr", name, g.err, cases[_i].err);
    if (cases[_i].nout)
        ck_assert_msg (!strstr (g.out, cases[_i].nout), "%s: '%s' has '%s'",
                       name, g.out, cases[_i].nout);
    if (cases[_i].status == DC_STATUS_OK)
        ck_assert_msg (g.e.text[0] == '\0', "%s: says '%s'", name, g.e.text);
    check_text ("error", name, g.e.text, cases[_i].text);
    ck_assert_int_eq (g.ran, cases[_i].status != DC_STATUS_INPUT);
    ck_assert (!g.interrupted);
    ck_assert_int_eq (g.timed_out, cases[_i].rn.timeout > 0);
}
END_TEST

/* A line of 20000 bytes: a piece of DC_EXEC_LINE_MAX, then the rest, each
 * tagged and written whole. */
START_TEST (t_long_line)
{
    static struct got g;
    struct run rn = {.n = 1,
                     .sh = {"head -c 20000 /dev/zero | tr '\\0' x; echo"}};
    const char *tag = "0@localhost: ";
    size_t tl = strlen (tag);

    run (&rn, &g, NULL, NULL);
    ck_assert_int_eq (g.status, DC_STATUS_OK);
    ck_assert_uint_eq (g.outlen, 2 * tl + 20000 + 2);
    ck_assert (!strncmp (g.out, tag, tl));
    ck_assert_int_eq (g.out[tl + DC_EXEC_LINE_MAX], '\n');
    ck_assert (!strncmp (g.out + tl + DC_EXEC_LINE_MAX + 1, tag, tl));
    ck_assert_int_eq (g.out[g.outlen - 1], '\n');
    for (size_t i = tl; i < tl + DC_EXEC_LINE_MAX; i++)
        ck_assert_int_eq (g.out[i], 'x');
}
END_TEST

/* A prompt on a terminal: shown before its line ends, and not tagged
 * again when the rest of the line comes.  When this machine is too slow
 * to show it before the answer, the bytes are the same: no flake. */
START_TEST (t_prompt)
{
    static struct got g;
    struct run rn = {.n = 1,
                     .sh = {"printf 'name? '; sleep 1; read x; echo \"hi $x\""},
                     .in = "bob\n",
                     .to = DC_EXEC_STDIN_RANK0,
                     .tty = true};
    int m = posix_openpt (O_RDWR | O_NOCTTY);

    if (m < 0) { /* a container without /dev/pts */
        fprintf (stderr, "# SKIP t_prompt: no pty: %s\n", strerror (errno));
        return;
    }
    close (m);
    run (&rn, &g, NULL, NULL);
    ck_assert_msg (g.status == DC_STATUS_OK, "%s", g.e.text);
    ck_assert_str_eq (g.out, "0@localhost: name? hi bob\n");
}
END_TEST

/* --output-dir: each rank's raw bytes, untagged; a link where a file goes
 * is refused and its target left alone. */
START_TEST (t_output_dir)
{
    static struct got g;
    char dir[128], path[160], buf[64] = "", target[160];
    struct run rn = {.n = 2, .sh = {"echo out $R; echo err $R >&2"}};

    snprintf (dir, sizeof (dir), "%s/out", tmpdir);
    rn.output_dir = dir;
    run (&rn, &g, NULL, NULL);
    ck_assert_msg (g.status == DC_STATUS_OK, "%s", g.e.text);
    snprintf (path, sizeof (path), "%s/rank-1.err", dir);
    int fd = open (path, O_RDONLY);
    ck_assert_int_ge (fd, 0);
    read_back (fd, buf, sizeof (buf));
    ck_assert_str_eq (buf, "err 1\n");
    ck_assert (strstr (g.out, "1@localhost: out 1\n"));

    /* hostile: rank-0.out is a link to a file that must stay as it is */
    snprintf (target, sizeof (target), "%s/keep", tmpdir);
    fd = open (target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_eq (write (fd, "keep\n", 5), 5);
    close (fd);
    snprintf (path, sizeof (path), "%s/rank-0.out", dir);
    unlink (path);
    ck_assert_int_eq (symlink (target, path), 0);
    memset (&g, 0, sizeof (g));
    run (&rn, &g, NULL, NULL);
    ck_assert_int_eq (g.status, DC_STATUS_INPUT);
    ck_assert_msg (strstr (g.e.text, "rank-0.out"), "%s", g.e.text);
    ck_assert_str_eq (g.out, "");
    fd = open (target, O_RDONLY);
    ck_assert_int_ge (fd, 0);
    read_back (fd, buf, sizeof (buf));
    ck_assert_str_eq (buf, "keep\n");
}
END_TEST

static cJSON *read_json (const char *path)
{
    static char buf[65536];
    int fd = open (path, O_RDONLY);
    ck_assert_msg (fd >= 0, "%s missing", path);
    read_back (fd, buf, sizeof (buf));
    cJSON *j = cJSON_Parse (buf);
    ck_assert_msg (j != NULL, "%s: not JSON", path);
    return j;
}

/* --trace and --report of a run where rank 1 fails; an unwritable path. */
START_TEST (t_record)
{
    static struct got g;
    char trace[128], report[128];
    const char *rec[2] = {trace, report};
    struct run rn = {.n = 2, .sh = {"exit 0", "exit 4"}};
    int rc = -9;

    snprintf (trace, sizeof (trace), "%s/t.json", tmpdir);
    snprintf (report, sizeof (report), "%s/r.json", tmpdir);
    run (&rn, &g, rec, &rc);
    ck_assert_int_eq (g.status, DC_STATUS_FAIL);
    ck_assert_int_eq (g.code, 4);
    ck_assert_int_eq (rc, 0);
    cJSON *t = read_json (trace), *r = read_json (report);
    char *ts = cJSON_PrintUnformatted (t), *rs = cJSON_PrintUnformatted (r);
    ck_assert (strstr (ts, "\"rank 1\"") && strstr (ts, "\"failed\""));
    ck_assert (strstr (rs, "\"exec\""));
    free (ts);
    free (rs);
    cJSON_Delete (t);
    cJSON_Delete (r);

    const char *bad[2] = {NULL, "/nonexistent/dcrun-test/r.json"};
    memset (&g, 0, sizeof (g));
    run (&rn, &g, bad, &rc);
    ck_assert_int_eq (rc, -1);
    ck_assert_msg (!strncmp (g.e.text, "exec: ", 6), "%s", g.e.text);
}
END_TEST

START_TEST (t_stdin_wanted)
{
    static const struct {
        enum dc_exec_stdin to;
        int r;
        bool want;
    } c[] = {
        {DC_EXEC_STDIN_RANK0, 0, true},   {DC_EXEC_STDIN_RANK0, 1, false},
        {DC_EXEC_STDIN_ALL, 0, true},     {DC_EXEC_STDIN_ALL, 7, true},
        {DC_EXEC_STDIN_NONE, 0, false},   {DC_EXEC_STDIN_NONE, 3, false},
        {DC_EXEC_STDIN_RANK0, -1, false},
    };
    for (size_t i = 0; i < sizeof (c) / sizeof (c[0]); i++)
        ck_assert_int_eq (dc_exec_stdin_wanted (c[i].to, c[i].r), c[i].want);
    dc_exec_destroy (NULL);
}
END_TEST

START_TEST (t_stdin_parse)
{
    static const struct {
        const char *word;
        int rc;
        enum dc_exec_stdin to;
    } c[] = {
        {"rank0", 0, DC_EXEC_STDIN_RANK0},
        {"0", 0, DC_EXEC_STDIN_RANK0},
        {"all", 0, DC_EXEC_STDIN_ALL},
        {"none", 0, DC_EXEC_STDIN_NONE},
        {"", -1, 99},
        {"ALL", -1, 99},
        {"rank1", -1, 99},
        {"all ", -1, 99},
        {"none\nall", -1, 99},
        {NULL, -1, 99},
    };
    for (size_t i = 0; i < sizeof (c) / sizeof (c[0]); i++) {
        enum dc_exec_stdin to = (enum dc_exec_stdin)99;
        ck_assert_int_eq (dc_exec_stdin_parse (c[i].word, &to), c[i].rc);
        ck_assert_int_eq (to, c[i].to);
    }
}
END_TEST

/* Which ranks read frames of this stdin, per launcher; the rank fields. */
START_TEST (t_ranks)
{
    static const struct {
        const char *launcher;
        enum dc_exec_stdin to;
        bool fwd, want[2];
    } c[] = {
        {"local", DC_EXEC_STDIN_ALL, true, {false, false}},
        {"ssh", DC_EXEC_STDIN_RANK0, true, {true, false}},
        {"ssh", DC_EXEC_STDIN_ALL, true, {true, true}},
        {"ssh", DC_EXEC_STDIN_RANK0, false, {false, false}},
        {"mpi", DC_EXEC_STDIN_RANK0, true, {true, true}},
        {"slurm", DC_EXEC_STDIN_NONE, true, {true, true}},
    };
    char *cmd[] = {"true", NULL};
    struct dc_hosts *h;
    struct dc_plan *plan = plan_of (2, &h);

    for (size_t i = 0; i < sizeof (c) / sizeof (c[0]); i++) {
        struct dc_exec_opts o = {
            .launcher = c[i].launcher, .plan = plan, .stdin_to = c[i].to};
        struct dc_launch_rank lr[2] = {{0}};
        dc_exec_ranks (&o, lr, cmd, "/wd", true, c[i].fwd);
        for (int r = 0; r < 2; r++) {
            ck_assert_msg (lr[r].stdin_data == c[i].want[r], "case %zu rank %d",
                           i, r);
            ck_assert_int_eq (lr[r].rank, r);
            ck_assert_str_eq (lr[r].host, "localhost");
            ck_assert (lr[r].argv == cmd && lr[r].cpus == NULL);
            ck_assert (lr[r].wdir ==
                       (strcmp (c[i].launcher, "ssh") ? NULL : "/wd"));
        }
    }
    dc_plan_destroy (plan);
    dc_hosts_destroy (h);
}
END_TEST

/* MASTER_PORT: ssh asks rank 0's host; here a port in use is refused. */
START_TEST (t_master_port)
{
    struct dc_hosts *h;
    struct dc_plan *plan = plan_of (1, &h);
    struct dc_exec_opts o = {.launcher = "ssh", .plan = plan};
    dc_error_t err;
    int port = -1, fd = -1;

    ck_assert_int_eq (dc_exec_master_port (&o, 0, true, &err), DC_STATUS_OK);
    ck_assert_str_eq (o.lo.port_var, "MASTER_PORT");
    ck_assert (!o.lo.port_fixed);
    ck_assert_int_eq (dc_exec_master_port (&o, 5000, true, &err), DC_STATUS_OK);
    ck_assert (o.lo.port_fixed);

    /* a port this test listens on */
    for (int tries = 0; tries < 20 && fd < 0; tries++) {
        port = dc_launch_free_port ();
        fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons ((uint16_t)port)};
        if (bind (fd, (struct sockaddr *)&sa, sizeof (sa)) < 0 ||
            listen (fd, 1) < 0) {
            close (fd);
            fd = -1;
        }
    }
    ck_assert_int_ge (fd, 0);
    o = (struct dc_exec_opts){.launcher = "local", .plan = plan};
    ck_assert_int_eq (dc_exec_master_port (&o, port, true, &err),
                      DC_STATUS_LAUNCH);
    ck_assert_msg (strstr (err.text, "is in use on this host") &&
                       strstr (err.text, "\nhint: "),
                   "%s", err.text);
    ck_assert (o.lo.port_var == NULL);
    /* --dry-run checks nothing; no port given: dcrun picks */
    ck_assert_int_eq (dc_exec_master_port (&o, port, false, &err),
                      DC_STATUS_OK);
    ck_assert_int_eq (dc_exec_master_port (&o, 0, true, &err), DC_STATUS_OK);
    close (fd);
    dc_plan_destroy (plan);
    dc_hosts_destroy (h);
}
END_TEST

/* --dry-run's text for the local launcher and --json of a run. */
START_TEST (t_dry_run_and_json)
{
    struct dc_hosts *h;
    struct dc_plan *plan = plan_of (2, &h);
    char *env0[] = {"A=1", NULL}, *argv[] = {"/bin/sh", "-c", "exit 1", NULL};
    struct dc_launch_rank lr[2] = {
        {.rank = 0, .host = "localhost", .env = env0, .argv = argv},
        {.rank = 1, .host = "localhost", .env = env0, .argv = argv}};
    struct dc_exec_opts o = {.launcher = "local",
                             .plan = plan,
                             .ranks = lr,
                             .out_fd = -1,
                             .err_fd = -1,
                             .stdin_to = DC_EXEC_STDIN_NONE,
                             .kill_grace = 1,
                             .master_port = 1234};
    dc_error_t err;

    char *text = dc_exec_dry_run (&o);
    ck_assert (text != NULL);
    ck_assert_msg (!strncmp (text, "launcher: local\nRANK ", 21), "%s", text);
    ck_assert_msg (strstr (text, "\nrank 1: env A=1 /bin/sh -c 'exit 1'\n"),
                   "%s", text);
    free (text);

    struct dc_exec *x = dc_exec_create (&o, &err);
    ck_assert (x != NULL);
    ck_assert_int_eq (dc_exec_run (x, &err), DC_STATUS_FAIL);
    ck_assert_int_eq (dc_exec_result (x)->code, 1);
    char *json = dc_exec_json (x, 1, 0.5);
    ck_assert (json != NULL);
    cJSON *j = cJSON_Parse (json);
    ck_assert (j != NULL);
    ck_assert_int_eq (cJSON_GetObjectItem (j, "exit")->valueint, 1);
    ck_assert_int_eq (cJSON_GetObjectItem (j, "master_port")->valueint, 1234);
    cJSON *ranks = cJSON_GetObjectItem (j, "ranks");
    ck_assert_int_eq (cJSON_GetArraySize (ranks), 2);
    cJSON *r1 = cJSON_GetArrayItem (ranks, 1);
    ck_assert_str_eq (cJSON_GetObjectItem (r1, "host")->valuestring,
                      "localhost");
    ck_assert (cJSON_IsNull (cJSON_GetObjectItem (r1, "signal")));
    cJSON_Delete (j);
    free (json);
    dc_exec_destroy (x);
    dc_plan_destroy (plan);
    dc_hosts_destroy (h);
}
END_TEST

static void setup (void)
{
    ck_assert (mkdtemp (tmpdir) != NULL);
}

static void teardown (void)
{
    char cmd[128];
    snprintf (cmd, sizeof (cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq (system (cmd), 0);
    strcpy (tmpdir, "/tmp/test_exec.XXXXXX");
}

int main (void)
{
    Suite *s = suite_create ("exec");
    TCase *tc = tcase_create ("engine");
    SRunner *sr;
    int nf;

    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_loop_test (tc, t_cases, 0, sizeof (cases) / sizeof (cases[0]));
    tcase_add_test (tc, t_long_line);
    tcase_add_test (tc, t_prompt);
    tcase_add_test (tc, t_output_dir);
    tcase_add_test (tc, t_record);
    tcase_add_test (tc, t_stdin_wanted);
    tcase_add_test (tc, t_stdin_parse);
    tcase_add_test (tc, t_ranks);
    tcase_add_test (tc, t_master_port);
    tcase_add_test (tc, t_dry_run_and_json);
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
