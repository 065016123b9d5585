/* dtype.c - names of dtypes and activations (compute.h)
 *
 * Apart from the registry so that the CUDA module (dcrun_cuda.so) can have
 * its own copy without the cpu back-end.
 */
#include <errno.h>
#include <string.h>

#include "gpu/compute.h"

static const char *const dtype_names[] = {
    [DC_DTYPE_F32] = "f32",
    [DC_DTYPE_TF32] = "tf32",
    [DC_DTYPE_F16] = "f16",
    [DC_DTYPE_BF16] = "bf16",
};

static const char *const act_names[] = {
    [DC_ACT_NONE] = "none",
    [DC_ACT_RELU] = "relu",
    [DC_ACT_GELU] = "gelu",
    [DC_ACT_TANH] = "tanh",
};

int dc_dtype_parse (const char *s, enum dc_dtype *dtype)
{
    for (size_t i = 0; s && i < sizeof (dtype_names) / sizeof (*dtype_names);
         i++)
        if (!strcmp (s, dtype_names[i])) {
            *dtype = (enum dc_dtype)i;
            return 0;
        }
    errno = EINVAL;
    return -1;
}

const char *dc_dtype_name (enum dc_dtype dtype)
{
    if ((unsigned)dtype >= sizeof (dtype_names) / sizeof (*dtype_names))
        return "?";
    return dtype_names[dtype];
}

int dc_act_parse (const char *s, enum dc_act *act)
{
    for (size_t i = 0; s && i < sizeof (act_names) / sizeof (*act_names); i++)
        if (!strcmp (s, act_names[i])) {
            *act = (enum dc_act)i;
            return 0;
        }
    errno = EINVAL;
    return -1;
}

const char *dc_act_name (enum dc_act act)
{
    if ((unsigned)act >= sizeof (act_names) / sizeof (*act_names))
        return "?";
    return act_names[act];
}
