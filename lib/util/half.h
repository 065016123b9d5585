/* half.h - IEEE binary16 (f16) and bfloat16 (bf16) <-> float32
 *
 * Conversions to the 16-bit formats round to nearest, ties to even, as
 * NumPy's astype(np.float16) and PyTorch's .to(torch.bfloat16) do; NaN stays
 * NaN (quiet), infinities and signed zeros are kept.
 */
#ifndef DC_HALF_H
#define DC_HALF_H

#include <stddef.h>
#include <stdint.h>

float dc_half_to_float (uint16_t h);
uint16_t dc_half_from_float (float f);
float dc_bfloat_to_float (uint16_t h);
uint16_t dc_bfloat_from_float (float f);

/* Array forms; src and dst must not overlap. */
void dc_half_to_float_n (const uint16_t *src, float *dst, size_t n);
void dc_half_from_float_n (const float *src, uint16_t *dst, size_t n);
void dc_bfloat_to_float_n (const uint16_t *src, float *dst, size_t n);
void dc_bfloat_from_float_n (const float *src, uint16_t *dst, size_t n);

#endif
