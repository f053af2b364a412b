// Adam's update with AVX2 and with AVX-512: the Swift loop of
// Optim/Optimizer.swift (`Adam.adamLoop`) eight or sixteen lanes at a time.
// Every operation is IEEE-rounded per lane and none is fused (no FMA, and
// FP contraction is off in this file), in the Swift loop's order, so each
// lane's result is the Swift loop's, bit for bit: the update is the same on
// every CPU whichever kernel runs it. The Swift build targets baseline
// x86-64, where its eight-lane vectors run as two SSE halves, and the two
// divisions and the square root per value are most of the step's time.
#include "CKernels.h"

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

int lenet_has_avx512f(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

__attribute__((target("avx2")))
long lenet_adam_avx2(float *p, const float *g, float *m, float *v, long count,
                     float w1, float beta2, float w2, float l2, float shrink,
                     float step_size, float bias2_sqrt, float epsilon) {
    const __m256 vw1 = _mm256_set1_ps(w1), vbeta2 = _mm256_set1_ps(beta2), vw2 = _mm256_set1_ps(w2);
    const __m256 vl2 = _mm256_set1_ps(l2), vshrink = _mm256_set1_ps(shrink), vstep = _mm256_set1_ps(step_size);
    const __m256 vb2 = _mm256_set1_ps(bias2_sqrt), veps = _mm256_set1_ps(epsilon);
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 grad = _mm256_loadu_ps(g + i), pv = _mm256_loadu_ps(p + i);
        __m256 mv = _mm256_loadu_ps(m + i), vv = _mm256_loadu_ps(v + i);
        if (l2 != 0) grad = _mm256_add_ps(grad, _mm256_mul_ps(vl2, pv));
        if (shrink != 1) pv = _mm256_mul_ps(pv, vshrink);
        mv = _mm256_add_ps(mv, _mm256_mul_ps(vw1, _mm256_sub_ps(grad, mv)));
        vv = _mm256_add_ps(_mm256_mul_ps(vv, vbeta2), _mm256_mul_ps(_mm256_mul_ps(vw2, grad), grad));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vv), vb2), veps);
        pv = _mm256_sub_ps(pv, _mm256_mul_ps(vstep, _mm256_div_ps(mv, denom)));
        _mm256_storeu_ps(p + i, pv);
        _mm256_storeu_ps(m + i, mv);
        _mm256_storeu_ps(v + i, vv);
    }
    return i;
}

__attribute__((target("avx512f")))
long lenet_adam_avx512(float *p, const float *g, float *m, float *v, long count,
                       float w1, float beta2, float w2, float l2, float shrink,
                       float step_size, float bias2_sqrt, float epsilon) {
    const __m512 vw1 = _mm512_set1_ps(w1), vbeta2 = _mm512_set1_ps(beta2), vw2 = _mm512_set1_ps(w2);
    const __m512 vl2 = _mm512_set1_ps(l2), vshrink = _mm512_set1_ps(shrink), vstep = _mm512_set1_ps(step_size);
    const __m512 vb2 = _mm512_set1_ps(bias2_sqrt), veps = _mm512_set1_ps(epsilon);
    long i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 grad = _mm512_loadu_ps(g + i), pv = _mm512_loadu_ps(p + i);
        __m512 mv = _mm512_loadu_ps(m + i), vv = _mm512_loadu_ps(v + i);
        if (l2 != 0) grad = _mm512_add_ps(grad, _mm512_mul_ps(vl2, pv));
        if (shrink != 1) pv = _mm512_mul_ps(pv, vshrink);
        mv = _mm512_add_ps(mv, _mm512_mul_ps(vw1, _mm512_sub_ps(grad, mv)));
        vv = _mm512_add_ps(_mm512_mul_ps(vv, vbeta2), _mm512_mul_ps(_mm512_mul_ps(vw2, grad), grad));
        __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vv), vb2), veps);
        pv = _mm512_sub_ps(pv, _mm512_mul_ps(vstep, _mm512_div_ps(mv, denom)));
        _mm512_storeu_ps(p + i, pv);
        _mm512_storeu_ps(m + i, mv);
        _mm512_storeu_ps(v + i, vv);
    }
    return i;
}
#else
int lenet_has_avx512f(void) { return 0; }

long lenet_adam_avx2(float *p, const float *g, float *m, float *v, long count,
                     float w1, float beta2, float w2, float l2, float shrink,
                     float step_size, float bias2_sqrt, float epsilon) {
    (void)p; (void)g; (void)m; (void)v; (void)count; (void)w1; (void)beta2; (void)w2; (void)l2; (void)shrink;
    (void)step_size; (void)bias2_sqrt; (void)epsilon;
    return 0;
}

long lenet_adam_avx512(float *p, const float *g, float *m, float *v, long count,
                       float w1, float beta2, float w2, float l2, float shrink,
                       float step_size, float bias2_sqrt, float epsilon) {
    return lenet_adam_avx2(p, g, m, v, count, w1, beta2, w2, l2, shrink, step_size, bias2_sqrt, epsilon);
}
#endif
