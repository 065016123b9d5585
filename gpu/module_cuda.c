/* module_cuda.c - the entry point of dcrun_cuda.so (see module.h)
 *
 * The module holds the "cuda" compute back-end (compute_cuda.c and
 * kernels.cu).  Everything else is hidden: the one exported symbol is
 * dc_compute_cuda_module().
 */
#include "config.h"
#include "gpu/compute.h"
#include "gpu/module.h"

extern const struct dc_compute_ops dc_compute_cuda;

static const struct dc_cuda_module cuda_module = {
    .head = {.version = DCRUN_VERSION, .size = sizeof (struct dc_compute_ops)},
    .ops = &dc_compute_cuda,
};

__attribute__ ((visibility ("default"))) const struct dc_cuda_module *
dc_compute_cuda_module (void);

const struct dc_cuda_module *dc_compute_cuda_module (void)
{
    return &cuda_module;
}
