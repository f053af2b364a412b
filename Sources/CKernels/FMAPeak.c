// The ceiling every kernel is measured against: one core issuing AVX2 FMAs
// back to back (Kernels/FMAPeak.swift). Twelve independent chains of 8-lane
// FMAs: enough to cover the FMA latency (4–5 cycles) on both FMA ports of
// every x86 core seen here, so the loop runs at the issue rate, 32 FLOP a
// cycle; fewer chains would measure the latency instead.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "AVX2.h"

__attribute__((target("avx2,fma"))) float lenet_fma_chains_avx2(long iterations, float start, float scale, float add) {
    __m256 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(start + (float)i);
    const __m256 m = _mm256_set1_ps(scale), c = _mm256_set1_ps(add);
    for (long k = 0; k < iterations; k++) {
        // Written out: a loop over i here is what the compiler may not unroll.
        a[0] = _mm256_fmadd_ps(a[0], m, c);
        a[1] = _mm256_fmadd_ps(a[1], m, c);
        a[2] = _mm256_fmadd_ps(a[2], m, c);
        a[3] = _mm256_fmadd_ps(a[3], m, c);
        a[4] = _mm256_fmadd_ps(a[4], m, c);
        a[5] = _mm256_fmadd_ps(a[5], m, c);
        a[6] = _mm256_fmadd_ps(a[6], m, c);
        a[7] = _mm256_fmadd_ps(a[7], m, c);
        a[8] = _mm256_fmadd_ps(a[8], m, c);
        a[9] = _mm256_fmadd_ps(a[9], m, c);
        a[10] = _mm256_fmadd_ps(a[10], m, c);
        a[11] = _mm256_fmadd_ps(a[11], m, c);
    }
    // The chains' sum, so that none of the work can be left out.
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    return horizontal_sum(s) / 8;
}

// The same with 16-lane AVX-512 FMAs: on a core whose FMA units are 512
// bits wide (Zen 5), twice the FLOP of the AVX2 loop a cycle, and the
// ceiling that kernels with an AVX-512 twin run against.
__attribute__((target("avx512f"))) float lenet_fma_chains_avx512(long iterations, float start, float scale, float add) {
    __m512 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps(start + (float)i);
    const __m512 m = _mm512_set1_ps(scale), c = _mm512_set1_ps(add);
    for (long k = 0; k < iterations; k++) {
        a[0] = _mm512_fmadd_ps(a[0], m, c);
        a[1] = _mm512_fmadd_ps(a[1], m, c);
        a[2] = _mm512_fmadd_ps(a[2], m, c);
        a[3] = _mm512_fmadd_ps(a[3], m, c);
        a[4] = _mm512_fmadd_ps(a[4], m, c);
        a[5] = _mm512_fmadd_ps(a[5], m, c);
        a[6] = _mm512_fmadd_ps(a[6], m, c);
        a[7] = _mm512_fmadd_ps(a[7], m, c);
        a[8] = _mm512_fmadd_ps(a[8], m, c);
        a[9] = _mm512_fmadd_ps(a[9], m, c);
        a[10] = _mm512_fmadd_ps(a[10], m, c);
        a[11] = _mm512_fmadd_ps(a[11], m, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s) / 16;
}

#else

float lenet_fma_chains_avx2(long iterations, float start, float scale, float add) {
    (void)iterations, (void)start, (void)scale, (void)add;
    return 0;
}

float lenet_fma_chains_avx512(long iterations, float start, float scale, float add) {
    (void)iterations, (void)start, (void)scale, (void)add;
    return 0;
}

#endif
