/* train.h - `dcrun train` below the CLI
 *
 * dc_train_open checks the files (no output is an input or another output,
 * inputs are regular files), loads the model, the inputs and the targets,
 * checks them, makes the trainer, resumes from the checkpoint and opens
 * the --log; under mpirun or srun it starts MPI after the file check, and
 * every rank but 0 serves there and is done.
 * dc_train_run then picks how the gradients are computed: here (one
 * process), by the ranks of a job (data parallel, or a pipeline for
 * --split layers|hybrid|auto), by the ranks under MPI, or not at all
 * (DC_STATUS_DRIVER: a job whose launcher is mpi or slurm runs through
 * mpirun or srun); it trains, writes the model and the --report.
 * Across ranks this process keeps a replica of the model on the cpu
 * back-end: it applies the ranks' summed gradient and writes the
 * checkpoints and the trained model.  Nothing prints: steps, epochs,
 * notes and the --dry-run plans reach the caller through callbacks.
 */
#ifndef DC_RUN_TRAIN_H
#define DC_RUN_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/model/model.h"
#include "lib/run/infer.h"
#include "lib/run/job.h"

/* One step, for the --log line, the epoch line and progress. */
struct dc_train_step {
    const struct dc_train_pos *pos;
    size_t rows; /* rows of the step */
    double loss;
    int64_t epoch;  /* 1-based, the epoch of the step */
    int64_t epochs; /* of the run */
    int64_t batch;  /* 1-based within the epoch */
    bool epoch_end;
    double epoch_loss; /* the epoch's mean loss when epoch_end */
    size_t done;       /* rows done of epochs x rows */
};

struct dc_train_cfg {
    const char *model, *input, *target, *output, *report;
    const char *trace; /* --trace T.json (Chrome trace), NULL: none */
    const char *log;   /* --log: one line per step, appended when resuming */
    const char *checkpoint;   /* the checkpoint file, NULL: none, or
                                 ckpt_dir/DC_TRAIN_CKPT_NAME with ckpt_dir */
    const char *ckpt_dir;     /* its folder, made when missing */
    bool resume;              /* from checkpoint when it exists */
    int64_t epochs;           /* passes over the data */
    int64_t checkpoint_every; /* steps; 0: each epoch's end */
    struct dc_train_opts to;
    const char *device; /* cpu, cuda, auto */
    enum dc_dtype dtype;
    const char *activation; /* NULL: the model's */
    int threads;
    double heartbeat_timeout;
    struct dc_run_split split;
    bool dry_run;
    bool distributed; /* the caller will hand dc_train_run a job */
    /* data parallel: direct (each rank reads its rows from the input and
     * target files), relay (the head sends them), auto (direct for the
     * ranks that see the head's files) */
    enum dc_io_mode io_mode;
    void (*on_step) (const struct dc_train_step *s, void *arg);
    void (*progress) (enum dc_run_progress ev, const char *what, size_t done,
                      size_t total, int alive, void *arg);
    /* resuming, starting over (quiet: may be left out), ranks lost on
     * the way (always) */
    void (*note) (const char *text, bool always, void *arg);
    void (*dry_run_ranks) (const struct dc_job *job, void *arg);
    void (*dry_run_layout) (const struct dc_job *job,
                            const struct dc_layout *lo,
                            const struct dc_model *m, size_t micro_rows,
                            size_t rows, void *arg);
    void (*on_rank_error) (const char *text, void *arg); /* MPI rank 0 */
    void *arg;
};

struct dc_train_res {
    int signal;   /* of DC_STATUS_SIGNAL */
    bool served;  /* dc_train_open: an MPI rank that served: done */
    bool resumed; /* from a checkpoint at a step above 0 */
    bool stopped; /* on_step stopped the run */
    int64_t step; /* the position at the end */
};

struct dc_train;

/* The checkpoint's name in --checkpoint-dir. */
#define DC_TRAIN_CKPT_NAME "checkpoint.safetensors"

/* The options that cannot work together, before anything is read (no
 * --model, --input, --target or --output; --resume or --checkpoint-every
 * without --checkpoint-dir; --momentum with adam), and the default
 * learning rate for an lr of 0 (0.01 for sgd, 0.001 for adam).  0, or -1
 * with the reason in err (a usage error). */
int dc_train_check (struct dc_train_cfg *cfg, dc_error_t *err);

/* Returns a dc_status (err: the message with its subject); *tp to run. */
int dc_train_open (const struct dc_train_cfg *cfg, struct dc_train **tp,
                   struct dc_train_res *res, dc_error_t *err);

/* job: NULL for one process or under MPI, else a job from dc_job_init not
 * launched yet (the caller calls dc_job_fini after dc_train_close).  A
 * distributed run that lost ranks on the way and still ended says so in
 * err with DC_STATUS_OK. */
int dc_train_run (struct dc_train *t, struct dc_job *job,
                  struct dc_train_res *res, dc_error_t *err);

/* Free t; under MPI end the MPI job (a status not OK aborts it with that
 * exit status, abort_code). */
void dc_train_close (struct dc_train *t, int abort_code);

#endif
