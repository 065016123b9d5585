/* h2d.c - the device and its plain copy rates, the peer of `dcrun infer`
 *
 *   h2d [MiB] [ITERS]
 *
 * Device 0's name, SMs, SM clock and memory, then cudaMemcpy of MiB
 * (default 256) host-to-device from pinned memory (cudaHostAlloc), from
 * pageable memory (malloc), and device-to-host into pinned memory, each
 * ITERS times (default 10) after one warm-up, timed with CUDA events.
 * Prints one JSON object (rates in GB/s, 1e9 bytes); exit 0 ok, 2 usage,
 * 5 CUDA failure.
 *
 * Build: gcc -O2 -I/usr/local/cuda/include h2d.c -L/usr/local/cuda/lib64
 *            -lcudart
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ok (cudaError_t e, const char *call)
{
    if (e == cudaSuccess)
        return 1;
    printf ("{\"error\":\"%s: %s\"}\n", call, cudaGetErrorName (e));
    fprintf (stderr, "h2d: %s: %s\n", call, cudaGetErrorString (e));
    return 0;
}

#define CK(call)                                                               \
    do {                                                                       \
        if (!ok ((call), #call))                                               \
            return -1.0;                                                       \
    } while (0)

/* GB/s of ITERS copies of bytes */
static double rate (void *dst, const void *src, size_t bytes,
                    enum cudaMemcpyKind kind, int iters)
{
    cudaEvent_t e0, e1;
    float ms = 0;

    CK (cudaEventCreate (&e0));
    CK (cudaEventCreate (&e1));
    CK (cudaMemcpy (dst, src, bytes, kind)); /* warm-up */
    CK (cudaEventRecord (e0, 0));
    for (int i = 0; i < iters; i++)
        CK (cudaMemcpy (dst, src, bytes, kind));
    CK (cudaEventRecord (e1, 0));
    CK (cudaEventSynchronize (e1));
    CK (cudaEventElapsedTime (&ms, e0, e1));
    cudaEventDestroy (e0);
    cudaEventDestroy (e1);
    return (double)bytes * iters / (ms / 1e3) / 1e9;
}

int main (int argc, char **argv)
{
    long mib = argc > 1 ? atol (argv[1]) : 256;
    int iters = argc > 2 ? atoi (argv[2]) : 10;
    struct cudaDeviceProp p;
    int clock_khz = 0, mem_khz = 0, bus = 0;
    size_t bytes;
    void *pin, *page, *dev;
    double hp, hpage, dp;

    if (argc > 3 || mib <= 0 || mib > 65536 || iters <= 0 || iters > 1000) {
        fprintf (stderr, "usage: h2d [MiB (1..65536)] [ITERS (1..1000)]\n");
        return 2;
    }
    bytes = (size_t)mib << 20;
    if (!ok (cudaGetDeviceProperties (&p, 0), "cudaGetDeviceProperties"))
        return 5;
    cudaDeviceGetAttribute (&clock_khz, cudaDevAttrClockRate, 0);
    cudaDeviceGetAttribute (&mem_khz, cudaDevAttrMemoryClockRate, 0);
    cudaDeviceGetAttribute (&bus, cudaDevAttrGlobalMemoryBusWidth, 0);
    if (!ok (cudaHostAlloc (&pin, bytes, cudaHostAllocDefault),
             "cudaHostAlloc") ||
        !ok (cudaMalloc (&dev, bytes), "cudaMalloc"))
        return 5;
    if (!(page = malloc (bytes))) {
        fprintf (stderr, "h2d: out of host memory\n");
        return 5;
    }
    memset (pin, 1, bytes);
    memset (page, 1, bytes);
    if ((hp = rate (dev, pin, bytes, cudaMemcpyHostToDevice, iters)) < 0 ||
        (hpage = rate (dev, page, bytes, cudaMemcpyHostToDevice, iters)) < 0 ||
        (dp = rate (pin, dev, bytes, cudaMemcpyDeviceToHost, iters)) < 0)
        return 5;
    /* HBM: two transfers per clock (DDR) over the bus */
    printf ("{\"device\":\"%s\",\"cc\":\"%d.%d\",\"sms\":%d,"
            "\"sm_clock_mhz\":%.0f,\"memory_bytes\":%zu,"
            "\"memory_peak_gbs\":%.1f,\"bytes\":%zu,\"iters\":%d,"
            "\"h2d_pinned_gbs\":%.3f,\"h2d_pageable_gbs\":%.3f,"
            "\"d2h_pinned_gbs\":%.3f}\n",
            p.name, p.major, p.minor, p.multiProcessorCount, clock_khz / 1e3,
            p.totalGlobalMem, 2.0 * mem_khz * 1e3 * (bus / 8) / 1e9, bytes,
            iters, hp, hpage, dp);
    cudaFreeHost (pin);
    cudaFree (dev);
    free (page);
    return 0;
}
