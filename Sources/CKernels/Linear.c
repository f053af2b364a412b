// A fully connected layer's forward pass, optionally with its ReLU, for the
// inference path (Kernels/LinearReLU.swift): y (N, OUT) = x (N, IN) · wᵀ + b
// with w in PyTorch's (OUT, IN) layout, so nothing is packed per call.
//
// sgemm packs the whole weight matrix on every call (fc1's is 384 KB), which
// at the few samples an inference chunk holds costs more than the product.
// Here a tile of 4 samples × 3 outputs keeps 12 accumulators that run along
// the inputs, 8 at a time, and are summed across lanes once at the end: 7
// loads per 12 FMAs, each weight row read once per tile of samples.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "AVX2.h"

// y[s·ldy + o] for s < S, o < O: S samples (rows of x, ldx apart) by O
// outputs (rows of w, IN apart).
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
linear_tile(float *y, long ldy, const float *x, long ldx, const float *w, const float *b,
            long IN, int relu, const int S, const int O) {
    __m256 a[4][3];
    for (int s = 0; s < S; s++)
        for (int o = 0; o < O; o++) a[s][o] = _mm256_setzero_ps();
    long k = 0;
    for (; k + 8 <= IN; k += 8) {
        __m256 wv[3];
        for (int o = 0; o < O; o++) wv[o] = _mm256_loadu_ps(w + o * IN + k);
        for (int s = 0; s < S; s++) {
            const __m256 xv = _mm256_loadu_ps(x + s * ldx + k);
            for (int o = 0; o < O; o++) a[s][o] = _mm256_fmadd_ps(xv, wv[o], a[s][o]);
        }
    }
    if (k < IN) {  // the last IN % 8 inputs; masked lanes read as 0
        const __m256i mask = lane_mask(IN - k);
        __m256 wv[3];
        for (int o = 0; o < O; o++) wv[o] = _mm256_maskload_ps(w + o * IN + k, mask);
        for (int s = 0; s < S; s++) {
            const __m256 xv = _mm256_maskload_ps(x + s * ldx + k, mask);
            for (int o = 0; o < O; o++) a[s][o] = _mm256_fmadd_ps(xv, wv[o], a[s][o]);
        }
    }
    for (int s = 0; s < S; s++) {
        for (int o = 0; o < O; o++) {
            const float v = horizontal_sum(a[s][o]) + b[o];
            // The ReLU layer's max(v, 0): 0 where 0 >= v, else v (NaN stays NaN, −0 becomes 0).
            y[s * ldy + o] = relu && 0.0f >= v ? 0.0f : v;
        }
    }
}

// Outputs [o, o + O) for every sample: tiles of 4 samples, then the last 1–3.
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
linear_outputs(float *y, long ldy, const float *x, long ldx, const float *w, const float *b,
               long n, long IN, long o, int relu, const int O) {
    long s = 0;
    for (; s + 4 <= n; s += 4) linear_tile(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 4, O);
    switch (n - s) {
    case 3: linear_tile(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 3, O); break;
    case 2: linear_tile(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 2, O); break;
    case 1: linear_tile(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 1, O); break;
    default: break;
    }
}

__attribute__((target("avx2,fma")))
void lenet_linear_avx2(float *y, long ldy, const float *x, long ldx, const float *w, const float *b,
                       long n, long IN, long OUT, int relu) {
    long o = 0;
    for (; o + 3 <= OUT; o += 3) linear_outputs(y, ldy, x, ldx, w, b, n, IN, o, relu, 3);
    if (OUT - o == 2) linear_outputs(y, ldy, x, ldx, w, b, n, IN, o, relu, 2);
    else if (OUT - o == 1) linear_outputs(y, ldy, x, ldx, w, b, n, IN, o, relu, 1);
}

#else
void lenet_linear_avx2(float *y, long ldy, const float *x, long ldx, const float *w, const float *b,
                       long n, long IN, long OUT, int relu) {
    (void)y; (void)ldy; (void)x; (void)ldx; (void)w; (void)b; (void)n; (void)IN; (void)OUT; (void)relu;
}
#endif
