// The AVX2/FMA scaled tanh, y = A·tanh(S·x) (see Kernels/Tanh.swift for the
// method and its error; the portable path there computes the same formula).
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

__attribute__((target("avx2,fma")))
static inline __m256 tanh8(__m256 s) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(sign, s);
    // Both branches work on |s|, and the sign of s goes on at the end (so
    // that −0 stays −0). |s| < 0.625: |s| + |s|·z·P(z), z = s², P fitted
    // to (tanh(s) − s)/s³.
    __m256 z = _mm256_mul_ps(s, s);
    __m256 p = _mm256_set1_ps(-7.897216710e-04f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(3.211348085e-03f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-8.742761798e-03f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.184794657e-02f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.396616459e-02f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.333332360e-01f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.333333433e-01f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(a, z), p, a);
    // Otherwise 1 − 2/(e^(2|s|) + 1), 2|s| capped at 20 (tanh is 1 in
    // float from 9.1 on); e^y = 2^n·e^r, r = y − n·ln2 in two parts.
    __m256 y = _mm256_min_ps(_mm256_add_ps(a, a), _mm256_set1_ps(20.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(1.442695022e+00f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(6.933593750e-01f), y);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121944417e-04f), r);
    __m256 q = _mm256_set1_ps(1.984127011e-04f);
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.388888923e-03f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(8.333333768e-03f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(4.166666791e-02f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.666666716e-01f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(0.5f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f));
    __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 e = _mm256_mul_ps(q, _mm256_castsi256_ps(scale));
    __m256 t = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                             _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    __m256 magnitude = _mm256_blendv_ps(small, t, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_GE_OQ));
    __m256 result = _mm256_or_ps(magnitude, _mm256_and_ps(sign, s));
    // NaN in, NaN out (the cap above would have made it 1).
    return _mm256_blendv_ps(result, s, _mm256_cmp_ps(s, s, _CMP_UNORD_Q));
}

__attribute__((target("avx2,fma")))
void lenet_scaled_tanh_avx2(float *y, const float *x, long count, float amplitude, float slope) {
    const __m256 A = _mm256_set1_ps(amplitude), S = _mm256_set1_ps(slope);
    long i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(A, tanh8(_mm256_mul_ps(S, _mm256_loadu_ps(x + i)))));
    if (i < count) {
        // The tail through masked loads and stores: the same lanes, the same bits.
        __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count - i)), lanes);
        __m256 v = _mm256_maskload_ps(x + i, mask);
        _mm256_maskstore_ps(y + i, mask, _mm256_mul_ps(A, tanh8(_mm256_mul_ps(S, v))));
    }
}

// The AVX-512 twin: every lane runs tanh8's operations in the same order
// (the same constants, FMAs, IEEE division and rounding), so the two give
// the same bits; masks replace the blends.
__attribute__((target("avx512f,avx2,fma")))
static inline __m512 tanh16(__m512 s) {
    const __m512 a = _mm512_abs_ps(s);
    const __m512 z = _mm512_mul_ps(s, s);
    __m512 p = _mm512_set1_ps(-7.897216710e-04f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(3.211348085e-03f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-8.742761798e-03f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.184794657e-02f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.396616459e-02f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.333332360e-01f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.333333433e-01f));
    const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(a, z), p, a);
    const __m512 y = _mm512_min_ps(_mm512_add_ps(a, a), _mm512_set1_ps(20.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(1.442695022e+00f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(6.933593750e-01f), y);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121944417e-04f), r);
    __m512 q = _mm512_set1_ps(1.984127011e-04f);
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.388888923e-03f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(8.333333768e-03f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(4.166666791e-02f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.666666716e-01f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.5f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f));
    const __m512i scale = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    const __m512 e = _mm512_mul_ps(q, _mm512_castsi512_ps(scale));
    const __m512 t = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                                   _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    const __m512 magnitude = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.625f), _CMP_GE_OQ), small, t);
    const __m512i signBit = _mm512_and_si512(_mm512_castps_si512(s), _mm512_set1_epi32((int)0x80000000u));
    const __m512 result = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(magnitude), signBit));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(s, s, _CMP_UNORD_Q), result, s);
}

__attribute__((target("avx512f,avx2,fma")))
void lenet_scaled_tanh_avx512(float *y, const float *x, long count, float amplitude, float slope) {
    const __m512 A = _mm512_set1_ps(amplitude), S = _mm512_set1_ps(slope);
    long i = 0;
    for (; i + 16 <= count; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(A, tanh16(_mm512_mul_ps(S, _mm512_loadu_ps(x + i)))));
    if (i < count) {
        const __mmask16 mask = (__mmask16)((1u << (count - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        _mm512_mask_storeu_ps(y + i, mask, _mm512_mul_ps(A, tanh16(_mm512_mul_ps(S, v))));
    }
}

// dx = dy·scale·(1 − t²), t = y·inverse: tanhBackward's operations
// (Kernels/Tanh.swift) in its order, none fused, so the same bits.
__attribute__((target("avx512f,avx2,fma")))
void lenet_tanh_backward_avx512(float *dx, const float *dy, const float *y, long count, float scale, float inverse) {
    const __m512 S = _mm512_set1_ps(scale), I = _mm512_set1_ps(inverse), one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < count; i += 16) {
        const __mmask16 m = count - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - i)) - 1);
        const __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), I);
        const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), S);
        _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(g, _mm512_sub_ps(one, _mm512_mul_ps(t, t))));
    }
}
#else
void lenet_tanh_backward_avx512(float *dx, const float *dy, const float *y, long count, float scale, float inverse) {
    (void)dx; (void)dy; (void)y; (void)count; (void)scale; (void)inverse;
}
void lenet_scaled_tanh_avx512(float *y, const float *x, long count, float amplitude, float slope) {
    (void)y; (void)x; (void)count; (void)amplitude; (void)slope;
}
void lenet_scaled_tanh_avx2(float *y, const float *x, long count, float amplitude, float slope) {
    (void)y; (void)x; (void)count; (void)amplitude; (void)slope;
}
#endif
