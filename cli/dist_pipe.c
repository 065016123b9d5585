/* dist_pipe.c - layouts (data, layers, hybrid, auto) for infer and train */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist_pipe.h"
#include "gpu/probe.h"
#include "lib/run/pipeline.h"
#include "lib/formats/report.h"
#include "lib/hosts/topo.h"

int cli_split_parse (const struct cli *cli, const char *arg,
                     struct cli_split *s)
{
    if (dc_split_parse (arg, &s->split) < 0)
        return cli_usage_error (cli,
                                "--split '%s': expected data, layers, "
                                "hybrid or auto",
                                arg);
    return 0;
}

int cli_split_parse_mem (const struct cli *cli, const char *arg,
                         struct cli_split *s)
{
    if (dc_layout_parse_bytes (arg, &s->max_mem) < 0)
        return cli_usage_error (cli,
                                "--max-device-memory '%s': expected "
                                "bytes, with K, M, G or T for powers "
                                "of 1024",
                                arg);
    return 0;
}

bool cli_split_wanted (const struct cli_split *s)
{
    return s->split != DC_SPLIT_DATA || s->max_mem > 0 || s->stages > 0;
}

/* Device memory of every rank (see dist_pipe.h). */
static void rank_memory (const struct cli_ranks *rk, const char *device,
                         long long cap, long long *mem)
{
    const struct dc_plan *plan = rk->job.plan;
    struct dc_topo *topo = dc_probe_host (NULL, NULL);

    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *k = &plan->ranks[r];
        long long m = -1;
        if (topo && device && strcmp (device, "cpu") != 0)
            for (int i = 0; i < k->ngpus; i++) {
                int g = dc_topo_find_gpu (topo, k->gpus[i]);
                long long gm = g >= 0 ? topo->gpus[g].memory_bytes : -1;
                if (gm > 0 && (m < 0 || gm < m))
                    m = gm;
            }
        if (m < 0 && topo && topo->memory_bytes > 0)
            m = topo->memory_bytes / (k->local_size > 0 ? k->local_size : 1);
        if (cap > 0 && (m < 0 || m > cap))
            m = cap;
        mem[r] = m;
    }
    dc_topo_destroy (topo);
}

int cli_split_plan (struct cli_ranks *rk, const struct dc_model *m,
                    const struct cli_split *s, const char *device, size_t rows,
                    struct dc_layout **lop)
{
    int size = rk->job.plan->size;
    long long *mem = calloc ((size_t)size, sizeof (long long));
    struct dc_layout_layer *ly = calloc ((size_t)m->nlayers, sizeof (*ly));
    struct dc_layout_opts o = {
        .split = s->split, .stages = s->stages, .rows = rows};
    dc_error_t err;
    int ex = EXIT_OK;

    if (!mem || !ly) {
        ex = cli_error (EXIT_FAIL, "%s: out of memory", rk->cli->command);
        goto out;
    }
    rank_memory (rk, device, s->max_mem, mem);
    for (int i = 0; i < m->nlayers; i++) {
        ly[i].name = m->layers[i].name;
        ly[i].in = m->layers[i].in;
        ly[i].out = m->layers[i].out;
    }
    if (!(*lop = dc_layout_plan (ly, m->nlayers, mem, size, &o, &err)))
        ex = cli_error (errno == EFBIG ? EXIT_INPUT : EXIT_USAGE, "%s: %s",
                        rk->cli->command, err.text);
out:
    free (mem);
    free (ly);
    return ex;
}

void cli_split_print (const struct cli_ranks *rk, const struct dc_layout *lo,
                      const struct dc_model *m, size_t micro_rows,
                      size_t total_rows)
{
    char a[32], b[32], c[32];

    printf ("launcher: %s\n", rk->job.launcher);
    printf ("layout: %s, %d stage%s x %d group%s, %s of weights",
            dc_split_name (lo->split), lo->nstages, lo->nstages == 1 ? "" : "s",
            lo->ngroups, lo->ngroups == 1 ? "" : "s",
            dc_layout_fmt_bytes (lo->total_bytes, a, sizeof (a)));
    if (micro_rows > 0 && lo->nstages > 1)
        printf (", micro-batches of %zu rows (%zu)", micro_rows,
                total_rows ? (total_rows + micro_rows - 1) / micro_rows : 0);
    printf ("\n");
    for (int r = 0; r < lo->size; r++) {
        int s = dc_layout_stage (lo, r);
        printf ("rank %d on %s: stage %d group %d: layers %d-%d (", r,
                rk->job.host[r], s, dc_layout_group (lo, r), lo->l0[s],
                lo->l1[s] - 1);
        for (int i = lo->l0[s]; i < lo->l1[s]; i++)
            printf ("%s%s", i > lo->l0[s] ? ", " : "", m->layers[i].name);
        printf ("), weights %s, activations %s, memory %s, work %.1f%%\n",
                dc_layout_fmt_bytes (lo->weight_bytes[s], a, sizeof (a)),
                dc_layout_fmt_bytes (lo->act_bytes[s], b, sizeof (b)),
                lo->mem[r] > 0
                    ? dc_layout_fmt_bytes ((double)lo->mem[r], c, sizeof (c))
                    : "unknown",
                100.0 * dc_layout_share (lo, r));
    }
}

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress (size_t done, size_t total, int alive, void *arg)
{
    struct cli_ranks *d = arg;

    (void)total;
    (void)alive;
    cli_progress_update (&d->prog, done, NULL);
}

/* Default micro-batch: about 8 per rank, at least 64 rows, a multiple of
 * 64 (the cpu back-end's row block), at most 32 MiB of rows. */
static size_t default_micro (size_t rows, int size, int width)
{
    size_t mr = (rows + 8 * (size_t)size - 1) / (8 * (size_t)size);
    size_t cap = ((size_t)32 << 20) / ((size_t)width * 4);

    mr = (mr + 63) / 64 * 64;
    if (mr > cap)
        mr = cap > 0 ? cap : 1;
    if (mr > rows)
        mr = rows;
    return mr ? mr : 1;
}

int cli_pipe_infer (struct cli *cli, const struct dc_coord_infer_opts *io,
                    const struct cli_dist_opts *o, const struct cli_split *s)
{
    struct cli_ranks d;
    struct dc_coord_infer_opts po = *io;
    struct dc_pipe_infer *pi = NULL;
    struct dc_layout *lo = NULL;
    struct dc_report *rep = NULL;
    struct dc_coord_result res;
    dc_error_t err;
    int ex;
    double t0 = now_s ();

    if (dc_comm_mpi_wanted ()) {
        /* every MPI process would start ranks of its own */
        memset (&d, 0, sizeof (d));
        d.job.sfd = -1;
        ex = cli_error (EXIT_USAGE, "infer: --split and --max-device-memory "
                                    "are not available under mpirun or srun "
                                    "yet: run dcrun on the head node");
        goto out;
    }
    if ((ex = cli_ranks_init (cli, &d)) != EXIT_OK)
        goto out;
    int size = d.job.plan->size;
    po.hosts = d.job.host;
    po.check = cli_ranks_check;
    po.progress = progress;
    po.arg = &d;
    if (!(pi = dc_pipe_infer_create (&po, &err))) {
        ex = cli_error (EXIT_INPUT, "infer: %s", err.text);
        goto out;
    }
    const struct dc_model *m = dc_pipe_infer_model (pi);
    size_t rows = dc_pipe_infer_rows (pi);
    int width = dc_model_inputs (m);
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].out > width)
            width = m->layers[i].out;
    size_t micro = s->micro_rows > 0 ? (size_t)s->micro_rows
                   : io->chunk_rows  ? io->chunk_rows
                                     : default_micro (rows, size, width);
    if ((ex = cli_split_plan (&d, m, s, io->device, micro, &lo)) != EXIT_OK)
        goto out;
    if (cli->dry_run) {
        cli_split_print (&d, lo, m, micro, rows);
        ex = EXIT_OK;
        goto out;
    }
    if (lo->split == DC_SPLIT_DATA) {
        /* it fits: the data-parallel executor does the rest */
        dc_pipe_infer_destroy (pi);
        pi = NULL;
        dc_job_fini (&d.job);
        dc_layout_destroy (lo);
        return cli_dist_infer (cli, io, o);
    }
    if (!(rep = dc_report_create ("infer"))) {
        ex = cli_error (EXIT_FAIL, "infer: out of memory");
        goto out;
    }
    for (size_t h = 0; h < d.job.hosts->count; h++)
        dc_report_add_host (rep, d.job.hosts->v[h].name);
    dc_report_set_layout (rep, dc_split_name (lo->split));
    if ((ex = cli_ranks_launch (&d, o->heartbeat_timeout)) != EXIT_OK)
        goto out;
    dc_report_phase_add (rep, DC_PHASE_LAUNCH, now_s () - t0);
    cli_progress_init (&d.prog, o->progress, "rows", rows);
    int rc = dc_pipe_infer_run (pi, d.job.hub, lo, micro, rep, &res, &err);
    cli_progress_done (&d.prog, res.rows);
    if (rc < 0)
        dc_job_stop (&d.job);
    else
        cli_infer_warn (rep, io->output_path, NULL);
    dc_report_set_total_seconds (rep, now_s () - t0);
    if (rc == 0 && o->report && dc_report_write (rep, o->report, &err) < 0) {
        ex = cli_error (EXIT_FAIL, "infer: %s", err.text);
        goto out;
    }
    switch (res.status) {
    case DC_COORD_OK:
        ex = EXIT_OK;
        break;
    case DC_COORD_INTERRUPTED:
        ex = cli_error (128 + res.signal,
                        "infer: interrupted by SIG%s: every rank stopped, no "
                        "output written",
                        cli_signame (res.signal));
        break;
    case DC_COORD_ALL_LOST:
        ex = cli_error (EXIT_FAIL,
                        "infer: %s: every rank stopped, no output written",
                        res.lost);
        break;
    case DC_COORD_WORKER_ERROR:
        ex = cli_error (EXIT_GPU, "infer: %s: no output written", err.text);
        break;
    default:
        ex = cli_error (EXIT_FAIL, "infer: %s", err.text);
        break;
    }
out:
    dc_pipe_infer_destroy (pi); /* an output not committed is removed */
    dc_layout_destroy (lo);
    dc_job_fini (&d.job);
    dc_report_destroy (rep);
    return ex;
}
