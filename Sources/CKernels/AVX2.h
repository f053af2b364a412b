// Small AVX2 helpers shared by the kernel files (not part of the module's
// public header). Include only under the x86-64 guard of a kernel file.
#ifndef LENETKIT_CKERNELS_AVX2_H
#define LENETKIT_CKERNELS_AVX2_H
#include <immintrin.h>

#define ALWAYS_INLINE __attribute__((always_inline)) inline

// The sum of a vector's 8 lanes: the halves added, then pairs, then the last two.
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// A mask of lanes 0..<valid (valid in 0...8), for maskload and maskstore.
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE __m256i lane_mask(long valid) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif
