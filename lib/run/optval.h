/* optval.h - the values of options several commands take, checked
 *
 * Each returns 0 and sets *out, or -1 with errp saying what was expected in
 * the words the CLI prints as a usage error ("--device 'x': expected cpu,
 * cuda or auto"); *out is left alone then.  A NULL arg is refused.
 */
#ifndef DC_RUN_OPTVAL_H
#define DC_RUN_OPTVAL_H

#include "gpu/compute.h"
#include "lib/hosts/plan.h"
#include "lib/util/error.h"

/* --device cpu|cuda|auto (*device: arg itself) */
int dc_optval_device (const char *arg, const char **device, dc_error_t *errp);

/* --dtype f32|tf32|f16|bf16 */
int dc_optval_dtype (const char *arg, enum dc_dtype *dtype, dc_error_t *errp);

/* --activation relu|gelu|tanh|none (*activation: arg itself) */
int dc_optval_activation (const char *arg, const char **activation,
                          dc_error_t *errp);

/* --map-by slot|core|node (core: as slot) */
int dc_optval_map_by (const char *arg, enum dc_map_by *map_by,
                      dc_error_t *errp);

#endif
