// The AVX2/FMA weighted row sum (see CKernels.h for why this is C).
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

int lenet_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// Eighty columns are summed in ten registers over all the chosen rows
// (ten independent chains cover FMA's latency); a remainder of fewer than
// eighty columns runs eight at a time with four chains over the rows.
__attribute__((target("avx2,fma")))
void lenet_weighted_row_sum_avx2(float *out, int accumulate, const float *matrix, long ld, long width,
                                 const int32_t *rows, const float *weights, long count) {
    long k = 0;
    for (; k + 80 <= width; k += 80) {
        __m256 a[10];
        for (int i = 0; i < 10; i++) a[i] = accumulate ? _mm256_loadu_ps(out + k + 8 * i) : _mm256_setzero_ps();
        const float *base = matrix + k;
        for (long j = 0; j < count; j++) {
            const float *r = base + (long)rows[j] * ld;
            __m256 w = _mm256_broadcast_ss(weights + j);
            for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(w, _mm256_loadu_ps(r + 8 * i), a[i]);
        }
        for (int i = 0; i < 10; i++) _mm256_storeu_ps(out + k + 8 * i, a[i]);
    }
    for (; k + 8 <= width; k += 8) {
        __m256 a0 = accumulate ? _mm256_loadu_ps(out + k) : _mm256_setzero_ps();
        __m256 a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        const float *base = matrix + k;
        long j = 0;
        for (; j + 4 <= count; j += 4) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + j), _mm256_loadu_ps(base + (long)rows[j] * ld), a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + j + 1), _mm256_loadu_ps(base + (long)rows[j + 1] * ld), a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + j + 2), _mm256_loadu_ps(base + (long)rows[j + 2] * ld), a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + j + 3), _mm256_loadu_ps(base + (long)rows[j + 3] * ld), a3);
        }
        for (; j < count; j++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + j), _mm256_loadu_ps(base + (long)rows[j] * ld), a0);
        _mm256_storeu_ps(out + k, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
}

// The AVX-512 twin: each column is the same chain of FMAs over the rows in
// the same order as in the AVX2 kernel (the same eighty-column blocks, now
// five registers each, two blocks at a time; the same remainder code), so
// the two give the same bits.
__attribute__((target("avx512f,avx2,fma")))
void lenet_weighted_row_sum_avx512(float *out, int accumulate, const float *matrix, long ld, long width,
                                   const int32_t *rows, const float *weights, long count) {
    long k = 0;
    for (; k + 160 <= width; k += 160) {
        __m512 a[10];
        for (int i = 0; i < 10; i++) a[i] = accumulate ? _mm512_loadu_ps(out + k + 16 * i) : _mm512_setzero_ps();
        const float *base = matrix + k;
        for (long j = 0; j < count; j++) {
            const float *r = base + (long)rows[j] * ld;
            __m512 w = _mm512_set1_ps(weights[j]);
            for (int i = 0; i < 10; i++) a[i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(r + 16 * i), a[i]);
        }
        for (int i = 0; i < 10; i++) _mm512_storeu_ps(out + k + 16 * i, a[i]);
    }
    for (; k + 80 <= width; k += 80) {
        __m512 a[5];
        for (int i = 0; i < 5; i++) a[i] = accumulate ? _mm512_loadu_ps(out + k + 16 * i) : _mm512_setzero_ps();
        const float *base = matrix + k;
        for (long j = 0; j < count; j++) {
            const float *r = base + (long)rows[j] * ld;
            __m512 w = _mm512_set1_ps(weights[j]);
            for (int i = 0; i < 5; i++) a[i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(r + 16 * i), a[i]);
        }
        for (int i = 0; i < 5; i++) _mm512_storeu_ps(out + k + 16 * i, a[i]);
    }
    if (k < width) lenet_weighted_row_sum_avx2(out + k, accumulate, matrix + k, ld, width - k, rows, weights, count);
}
#else
void lenet_weighted_row_sum_avx512(float *out, int accumulate, const float *matrix, long ld, long width,
                                   const int32_t *rows, const float *weights, long count) {
    (void)out; (void)accumulate; (void)matrix; (void)ld; (void)width; (void)rows; (void)weights; (void)count;
}
int lenet_has_avx2_fma(void) { return 0; }

void lenet_weighted_row_sum_avx2(float *out, int accumulate, const float *matrix, long ld, long width,
                                 const int32_t *rows, const float *weights, long count) {
    (void)out; (void)accumulate; (void)matrix; (void)ld; (void)width; (void)rows; (void)weights; (void)count;
}
#endif
