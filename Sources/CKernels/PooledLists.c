// The lists the pooled backward pass (Layers/ConvMaxPoolBackward.swift)
// sums over, built sixteen at a time with AVX-512's compress: the gradients
// that are not ±0 (a NaN is kept, as the dense product would carry it),
// with where each goes. Swift built them one value at a time, about a
// tenth of a CIFAR LeNet training step. Each list comes out in the Swift
// loop's order, so the sums over it are the same bits (PooledBackwardTests).
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

// Lanes whose float is neither +0 nor −0.
__attribute__((target("avx512f"))) static inline __mmask16 nonzero16(__m512 v) {
    return _mm512_test_epi32_mask(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff));
}

__attribute__((target("avx512f")))
long lenet_compact_nonzero_avx512(int32_t *rows, float *weights, const int32_t *keys, const float *values, long count) {
    long n = 0;
    for (long j = 0; j < count; j += 16) {
        const __mmask16 lanes = count - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - j)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(lanes, values + j);
        const __mmask16 keep = nonzero16(v) & lanes;
        _mm512_mask_compressstoreu_epi32(rows + n, keep, _mm512_maskz_loadu_epi32(lanes, keys + j));
        _mm512_mask_compressstoreu_ps(weights + n, keep, v);
        n += __builtin_popcount(keep);
    }
    return n;
}

__attribute__((target("avx512f")))
void lenet_corner_lists_avx512(int32_t *rows, float *weights, int32_t *counts, const int32_t *routes, const float *values,
                               long OC, long stride, long start, long OW) {
    long n[4] = {0, 0, 0, 0};
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (long oc = 0; oc < OC; oc += 16) {
        const __mmask16 lanes = OC - oc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (OC - oc)) - 1);
        const __m512i index = _mm512_add_epi32(lane, _mm512_set1_epi32((int)oc));
        const __m512i offsets = _mm512_mullo_epi32(index, _mm512_set1_epi32((int)stride));
        const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, offsets, values, 4);
        const __m512i r = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, offsets, routes, 4);
        const __mmask16 live = nonzero16(v) & lanes;
        for (int corner = 0; corner < 4; corner++) {
            const long q = start + (corner >= 2 ? OW : 0) + corner % 2;
            const __mmask16 keep = live & _mm512_cmpeq_epi32_mask(r, _mm512_set1_epi32((int)q));
            _mm512_mask_compressstoreu_epi32(rows + corner * OC + n[corner], keep, index);
            _mm512_mask_compressstoreu_ps(weights + corner * OC + n[corner], keep, v);
            n[corner] += __builtin_popcount(keep);
        }
    }
    for (int corner = 0; corner < 4; corner++) counts[corner] = (int32_t)n[corner];
}
#else
long lenet_compact_nonzero_avx512(int32_t *rows, float *weights, const int32_t *keys, const float *values, long count) {
    (void)rows; (void)weights; (void)keys; (void)values; (void)count;
    return 0;
}
void lenet_corner_lists_avx512(int32_t *rows, float *weights, int32_t *counts, const int32_t *routes, const float *values,
                               long OC, long stride, long start, long OW) {
    (void)rows; (void)weights; (void)counts; (void)routes; (void)values; (void)OC; (void)stride; (void)start; (void)OW;
}
#endif
