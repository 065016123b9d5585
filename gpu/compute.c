/* compute.c - compute back-end registry
 *
 * The cpu back-end is linked in (OpenBLAS itself is opened on first use,
 * see compute_cpu.c); the cuda back-end lives in the module dcrun_cuda.so,
 * opened on the first lookup of "cuda", or of "auto" when the runtime
 * module dcrun_cudart.so counts a device (module.h), so that commands
 * that never compute do not map the CUDA libraries.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "gpu/compute.h"
#include "gpu/module.h"
#include "lib/util/log.h"

extern const struct dc_compute_ops dc_compute_cpu;

static const struct dc_compute_ops *cpu_ops (dc_error_t *errp)
{
    (void)errp;
    return &dc_compute_cpu;
}

#if HAVE_CUDA
static const struct dc_compute_ops *cuda_ops (dc_error_t *errp)
{
    const struct dc_cuda_module *m =
        dc_cuda_module_load (sizeof (struct dc_compute_ops), errp);

    return m ? m->ops : NULL;
}

/* For "auto": count the devices with the small runtime module first, so
 * that a host without a usable GPU never maps cuBLAS. */
static const struct dc_compute_ops *cuda_ops_if_device (dc_error_t *errp)
{
    const struct dc_cudart_module *rt = dc_cudart_module_load (errp);

    if (!rt || rt->device_count (errp) == 0)
        return NULL;
    return cuda_ops (errp);
}
#endif

/* Registry (curl vtls.c style): the back-ends compiled in, best first,
 * each found by a function that may load it. */
static const struct {
    const char *name;
    /* by name; for "auto" (NULL when not usable, errp saying why) */
    const struct dc_compute_ops *(*get) (dc_error_t *errp);
    const struct dc_compute_ops *(*get_auto) (dc_error_t *errp);
} backends[] = {
#if HAVE_CUDA
    {"cuda", cuda_ops, cuda_ops_if_device},
#endif
    {"cpu", cpu_ops, cpu_ops},
    {NULL, NULL, NULL},
};

const struct dc_compute_ops *dc_compute_find (const char *name,
                                              dc_error_t *errp)
{
    char names[128] = "";
    size_t n = 0;

    for (int i = 0; backends[i].name; i++) {
        const struct dc_compute_ops *ops;
        dc_error_t why = {{0}};
        if (name && strcmp (name, "auto") != 0) {
            if (!strcmp (backends[i].name, name))
                return backends[i].get (errp);
        } else if (!(ops = backends[i].get_auto (&why))) {
            dc_info ("%s", why.text);
        } else if (ops->probe (&why) == 1) {
            return ops;
        } else {
            dc_info ("%s: %s", ops->name, why.text);
        }
        n += (size_t)snprintf (names + n, sizeof (names) - n, "%s%s",
                               n ? ", " : "", backends[i].name);
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
