/* plan_text.h - a rank map as `dcrun hosts` prints it
 *
 * The table: "RANK HOST LOCAL NODE GPUS CPUS" and a row per rank (GPUs as
 * "0,1", cut near 56 bytes; "-" for none or an unknown CPU set).  The JSON:
 *
 *   {"size": N, "ranks": [{"rank": 0, "host": "...", "local_rank": 0,
 *     "node_rank": 0, "gpus": [0, 1], "cpus": "0-11"}]}
 *
 * with "cpus" only when the CPU set is known (the schema of dcrun(1)).
 */
#ifndef DC_PLAN_TEXT_H
#define DC_PLAN_TEXT_H

#include "lib/hosts/plan.h"

/* The table or the JSON text (caller frees); NULL with errno (ENOMEM;
 * EINVAL for a NULL plan). */
char *dc_plan_to_text (const struct dc_plan *plan);
char *dc_plan_to_json (const struct dc_plan *plan);

#endif
