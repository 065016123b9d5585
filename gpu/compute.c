/* compute.c - compute back-end registry and name tables */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "gpu/compute.h"

extern const struct dc_compute_ops dc_compute_cpu;
#if HAVE_CUDA
extern const struct dc_compute_ops dc_compute_cuda;
#endif

/* Registry (curl vtls.c style): the back-ends compiled in, best first. */
const struct dc_compute_ops *const dc_compute_backends[] = {
#if HAVE_CUDA
    &dc_compute_cuda,
#endif
    &dc_compute_cpu,
    NULL,
};

const struct dc_compute_ops *dc_compute_find (const char *name,
                                              dc_error_t *errp)
{
    char names[128] = "";
    size_t n = 0;

    for (int i = 0; dc_compute_backends[i]; i++) {
        const struct dc_compute_ops *ops = dc_compute_backends[i];
        if (name && strcmp (name, "auto") != 0) {
            if (!strcmp (ops->name, name))
                return ops;
        } else {
            dc_error_t why;
            if (ops->probe (&why) == 1)
                return ops;
        }
        n += (size_t)snprintf (names + n, sizeof (names) - n, "%s%s",
                               n ? ", " : "", ops->name);
        if (n >= sizeof (names))
            n = sizeof (names) - 1;
    }
    errno = ENOENT;
    if (!name || !strcmp (name, "auto")) {
        errprintf (errp, "no usable compute back-end (compiled in: %s)",
                   n ? names : "none");
        return NULL;
    }
    errprintf (errp, "unknown or not compiled-in device '%s' (compiled in: %s)",
               name, n ? names : "none");
    return NULL;
}

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
