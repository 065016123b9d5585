/* half.c - f16 / bf16 conversions, bit-exact round to nearest even */
#include <string.h>

#include "lib/util/half.h"

static inline uint32_t fbits (float f)
{
    uint32_t u;
    memcpy (&u, &f, 4);
    return u;
}

static inline float bitsf (uint32_t u)
{
    float f;
    memcpy (&f, &u, 4);
    return f;
}

float dc_half_to_float (uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;

    if (exp == 0x1f) /* inf or nan */
        return bitsf (sign | 0x7f800000 | (man << 13) | (man ? 0x400000 : 0));
    if (exp == 0) {
        if (man == 0)
            return bitsf (sign);
        /* subnormal: man * 2^-24 is exact in float */
        float v = (float)man * bitsf (0x33800000); /* 2^-24 */
        return sign ? -v : v;
    }
    return bitsf (sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t dc_half_from_float (float f)
{
    uint32_t u = fbits (f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffff;

    if (a >= 0x7f800000) /* inf, nan */
        return sign | 0x7c00 | (a > 0x7f800000 ? 0x200 : 0);
    if (a >= 0x477ff000) /* rounds to >= 65520: overflow to inf */
        return sign | 0x7c00;
    if (a < 0x38800000) {   /* below the smallest normal half, 2^-14 */
        if (a < 0x33000000) /* below half of the smallest subnormal */
            return sign;
        /* subnormal: shift the 24-bit significand into 10 bits */
        uint32_t e = a >> 23;
        uint32_t m = (a & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (127-e) - 1 - ... */
        /* value = m * 2^(e-150); half subnormal unit = 2^-24;
         * result = m * 2^(e-126) -> shift right by 126-e */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (r & 1)))
            r++;
        return sign | (uint16_t)r;
    }
    /* normal: rebias 127 -> 15 and round 23 -> 10 mantissa bits */
    uint32_t r = a - 0x38000000; /* exponent - 112 */
    uint32_t rem = r & 0x1fff;
    r >>= 13;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++; /* may carry into the exponent: correct */
    return sign | (uint16_t)r;
}

float dc_bfloat_to_float (uint16_t h)
{
    return bitsf ((uint32_t)h << 16);
}

uint16_t dc_bfloat_from_float (float f)
{
    uint32_t u = fbits (f);

    if ((u & 0x7fffffff) > 0x7f800000) /* nan: keep it quiet */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void dc_half_to_float_n (const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = dc_half_to_float (src[i]);
}

void dc_half_from_float_n (const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = dc_half_from_float (src[i]);
}

void dc_bfloat_to_float_n (const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = dc_bfloat_to_float (src[i]);
}

void dc_bfloat_from_float_n (const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = dc_bfloat_from_float (src[i]);
}
