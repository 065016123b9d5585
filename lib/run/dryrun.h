/* dryrun.h - the --dry-run plans of lib/run, as text for the CLI to print
 *
 * Each returns the whole text (malloc'd, lines ending in newlines), or NULL
 * when out of memory.  self: the program the ranks run (`SELF serve`).
 */
#ifndef DC_RUN_DRYRUN_H
#define DC_RUN_DRYRUN_H

#include <stddef.h>

#include "lib/model/layout.h"
#include "lib/model/model.h"
#include "lib/run/job.h"

/* Data parallel: the launcher, the rows in chunks, each rank's host, GPUs
 * and CPUs; job NULL: "rows: 0: nothing to run". */
char *dc_dryrun_data (const struct dc_job *job, size_t rows, size_t chunk_rows,
                      const char *self);

/* The launcher and each rank's host. */
char *dc_dryrun_ranks (const struct dc_job *job, const char *self);

/* A layer layout: stages, groups, weights, micro-batches, and each rank's
 * stage, layers, memory and share of the work. */
char *dc_dryrun_layout (const struct dc_job *job, const struct dc_layout *lo,
                        const struct dc_model *m, size_t micro_rows,
                        size_t total_rows);

#endif
