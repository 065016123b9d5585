/* module.h - the CUDA back-end as a loadable module (dcrun_cuda.so)
 *
 * libcudart, libcublas and libcublasLt cost tens of milliseconds to map and
 * relocate, so dcrun does not link them: compute_cuda.c, kernels.cu and the
 * CUDA runtime part of the probe are built into the module dcrun_cuda.so,
 * which dc_cuda_module_load() opens with dlopen() the first time a CUDA
 * device is asked for or probed.  `dcrun worker`, `dcrun exec` and the
 * other commands that never touch a GPU start without them.
 *
 * The module exports one symbol, DC_CUDA_MODULE_SYMBOL, a function that
 * returns its struct dc_cuda_module.  It is looked for in this order:
 *   1. $DCRUN_MODULE_DIR when set and not empty (and only there);
 *   2. the build tree's gpu/ folder, when the program runs from the build
 *      tree (tests, ./build/cli/dcrun);
 *   3. LIBDIR/dcrun relative to the program's folder (a moved install);
 *   4. LIBDIR/dcrun of the configured prefix.
 * A module from another dcrun version is refused.
 */
#ifndef DC_MODULE_H
#define DC_MODULE_H

#include <stddef.h>

#include "gpu/compute.h"
#include "lib/error.h"

#define DC_CUDA_MODULE_NAME "dcrun_cuda.so"
#define DC_CUDA_MODULE_SYMBOL "dc_compute_cuda_module"
#define DC_MODULE_DIR_ENV "DCRUN_MODULE_DIR"

/* What the CUDA runtime says of one device (the probe's view). */
struct dc_cuda_device {
    char name[256];
    long long memory_bytes;
    int cc_major, cc_minor;
    int multiprocessors;
    char pci_bus_id[32]; /* "0000:17:00.0" */
};

struct dc_cuda_module {
    const char *version; /* DCRUN_VERSION the module was built from */
    size_t ops_size;     /* sizeof (struct dc_compute_ops) there */
    size_t device_size;  /* sizeof (struct dc_cuda_device) there */
    const struct dc_compute_ops *ops; /* the "cuda" back-end */

    /* Number of devices the CUDA runtime sees; 0 with errp saying why
     * (no driver, no device, stub library).  Never fails. */
    int (*device_count) (dc_error_t *errp);

    /* Properties of device i (0 <= i < device_count).  0, or -1 with errp
     * filled. */
    int (*device_info) (int i, struct dc_cuda_device *d, dc_error_t *errp);
};

typedef const struct dc_cuda_module *(*dc_cuda_module_f) (void);

/* The module, loaded on the first call (thread-safe); later calls return
 * the same pointer, or fail again with the same reason.  NULL with errp
 * "cuda: not available: REASON" (the dlerror() text, or the folders
 * searched) when it cannot be loaded or dcrun was built without CUDA.
 * Never unloaded. */
const struct dc_cuda_module *dc_cuda_module_load (dc_error_t *errp);

#endif
