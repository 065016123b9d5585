/* module.h - the CUDA code as loadable modules (dcrun_cuda.so, dcrun_cudart.so)
 *
 * libcublas and libcublasLt cost about 100 ms to map and relocate, so dcrun
 * does not link the CUDA libraries.  Two modules hold the CUDA code, each
 * opened with dlopen() the first time it is needed:
 *   dcrun_cudart.so  the CUDA runtime part of the probe (device count and
 *                    properties); links libcudart only (about 2 ms).  Used
 *                    by the probe and by the "auto" device choice.
 *   dcrun_cuda.so    the "cuda" compute back-end (compute_cuda.c and
 *                    kernels.cu); links libcudart, libcublas, libcublasLt.
 *                    Opened when a CUDA device is used.
 * `dcrun worker` and the other commands that never touch a GPU open
 * neither.
 *
 * Each module exports one symbol, a function that returns its table.  A
 * module is looked for in this order:
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

#include "lib/util/error.h"

struct dc_compute_ops; /* gpu/compute.h */

#define DC_CUDA_MODULE_NAME "dcrun_cuda.so"
#define DC_CUDA_MODULE_SYMBOL "dc_compute_cuda_module"
#define DC_CUDART_MODULE_NAME "dcrun_cudart.so"
#define DC_CUDART_MODULE_SYMBOL "dc_probe_cudart_module"
#define DC_MODULE_DIR_ENV "DCRUN_MODULE_DIR"

/* First member of every module's table, checked before any other. */
struct dc_module_head {
    const char *version; /* DCRUN_VERSION the module was built from */
    size_t size;         /* the size of the table's main struct there */
};

/* dcrun_cuda.so: the compute back-end. */
struct dc_cuda_module {
    struct dc_module_head head;       /* size: struct dc_compute_ops */
    const struct dc_compute_ops *ops; /* the "cuda" back-end */
};

/* What the CUDA runtime says of one device (the probe's view). */
struct dc_cuda_device {
    char name[256];
    long long memory_bytes;
    int cc_major, cc_minor;
    int multiprocessors;
    char pci_bus_id[32]; /* "0000:17:00.0" */
};

/* dcrun_cudart.so: the CUDA runtime part of the probe. */
struct dc_cudart_module {
    struct dc_module_head head; /* size: struct dc_cuda_device */

    /* Number of devices the CUDA runtime sees; 0 with errp saying why
     * (no driver, no device, stub library).  Never fails. */
    int (*device_count) (dc_error_t *errp);

    /* Properties of device i (0 <= i < device_count).  0, or -1 with errp
     * filled. */
    int (*device_info) (int i, struct dc_cuda_device *d, dc_error_t *errp);
};

/* The modules, each loaded on its first call (thread-safe); later calls
 * return the same pointer, or fail again with the same reason.  NULL with
 * errp "cuda: not available: REASON" (the dlerror() text, or the folders
 * searched) when it cannot be loaded or dcrun was built without CUDA.
 * Never unloaded. */
/* ops_size: sizeof (struct dc_compute_ops) of the caller, which the
 * module's table must match. */
const struct dc_cuda_module *dc_cuda_module_load (size_t ops_size,
                                                  dc_error_t *errp);
const struct dc_cudart_module *dc_cudart_module_load (dc_error_t *errp);

#endif
