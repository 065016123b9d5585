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
#include <stdlib.h>
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

/* ---- the optional ops, with their fall-backs ---- */

void *dc_compute_host_alloc (const struct dc_compute_ops *ops,
                             struct dc_compute *c, size_t bytes,
                             dc_error_t *errp)
{
    void *p = NULL;
    int e;

    if (!ops || !c || bytes == 0) {
        errno = EINVAL;
        errprintf (errp, "host_alloc: %s",
                   bytes == 0 ? "zero bytes" : "no back-end instance");
        return NULL;
    }
    if (ops->host_alloc)
        return ops->host_alloc (c, bytes, errp);
    if ((e = posix_memalign (&p, 64, bytes)) != 0) {
        errno = e;
        errprintf (errp, "%s: host_alloc: cannot allocate %zu bytes", ops->name,
                   bytes);
        return NULL;
    }
    return p;
}

void dc_compute_host_free (const struct dc_compute_ops *ops,
                           struct dc_compute *c, void *p)
{
    if (!p)
        return;
    if (ops && ops->host_alloc && ops->host_free)
        ops->host_free (c, p);
    else
        free (p);
}

static int bad_slot (const struct dc_compute_ops *ops, struct dc_compute *c,
                     struct dc_mlp_dev *net, int slot, const char *op,
                     dc_error_t *errp)
{
    if (ops && c && net && slot >= 0 && slot < DC_COMPUTE_SLOTS)
        return 0;
    errno = EINVAL;
    if (!ops || !c || !net)
        return errprintf (errp, "%s: NULL argument", op);
    return errprintf (errp, "%s: %s: slot %d out of range (0 to %d)", ops->name,
                      op, slot, DC_COMPUTE_SLOTS - 1);
}

int dc_compute_mlp_submit (const struct dc_compute_ops *ops,
                           struct dc_compute *c, struct dc_mlp_dev *net,
                           int slot, const float *x, size_t rows, size_t row0,
                           float *y, dc_error_t *errp)
{
    if (bad_slot (ops, c, net, slot, "mlp_submit", errp) < 0)
        return -1;
    if (ops->mlp_submit && ops->mlp_wait)
        return ops->mlp_submit (c, net, slot, x, rows, row0, y, errp);
    return ops->mlp_infer (c, net, x, rows, row0, y, errp);
}

int dc_compute_mlp_wait (const struct dc_compute_ops *ops, struct dc_compute *c,
                         struct dc_mlp_dev *net, int slot, dc_error_t *errp)
{
    if (bad_slot (ops, c, net, slot, "mlp_wait", errp) < 0)
        return -1;
    if (ops->mlp_submit && ops->mlp_wait)
        return ops->mlp_wait (c, net, slot, errp);
    return 0;
}
