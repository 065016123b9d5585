/* module_cudart.c - the entry point of dcrun_cudart.so (see module.h)
 *
 * The CUDA runtime part of the probe: the device count and the properties
 * of each device.  Links libcudart only, so that probing (dcrun probe, the
 * placement of ranks, --device auto) does not map cuBLAS.  The one
 * exported symbol is dc_probe_cudart_module().
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "gpu/module.h"

static int device_count (dc_error_t *errp)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount (&n);

    if (e != cudaSuccess) {
        const char *why = e == cudaErrorInsufficientDriver ? "no CUDA driver"
                          : e == cudaErrorNoDevice         ? "no CUDA device"
                          : e == cudaErrorStubLibrary      ? "CUDA stub library"
                                                           : "CUDA unavailable";
        errprintf (errp, "cuda: %s (cudaGetDeviceCount: %s, error %d)", why,
                   cudaGetErrorString (e), (int)e);
        return 0;
    }
    if (n <= 0)
        errprintf (errp, "cuda: no CUDA device");
    return n > 0 ? n : 0;
}

static int device_info (int i, struct dc_cuda_device *d, dc_error_t *errp)
{
    struct cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties (&p, i);

    if (e != cudaSuccess)
        return errprintf (errp,
                          "cuda: device %d: cudaGetDeviceProperties: "
                          "%s",
                          i, cudaGetErrorString (e));
    memset (d, 0, sizeof (*d));
    p.name[sizeof (p.name) - 1] = '\0';
    snprintf (d->name, sizeof (d->name), "%s", p.name);
    d->memory_bytes = (long long)p.totalGlobalMem;
    d->cc_major = p.major;
    d->cc_minor = p.minor;
    d->multiprocessors = p.multiProcessorCount;
    snprintf (d->pci_bus_id, sizeof (d->pci_bus_id), "%04x:%02x:%02x.0",
              (unsigned)p.pciDomainID, (unsigned)p.pciBusID,
              (unsigned)p.pciDeviceID);
    return 0;
}

static const struct dc_cudart_module cudart_module = {
    .head = {.version = DCRUN_VERSION, .size = sizeof (struct dc_cuda_device)},
    .device_count = device_count,
    .device_info = device_info,
};

__attribute__ ((visibility ("default"))) const struct dc_cudart_module *
dc_probe_cudart_module (void);

const struct dc_cudart_module *dc_probe_cudart_module (void)
{
    return &cudart_module;
}
