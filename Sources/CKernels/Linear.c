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

// The AVX-512 twin: each 16-lane vector holds two outputs, o in lanes 0–7
// and o + 1 in lanes 8–15, each lane running the AVX2 kernel's chain for
// its output (the same inputs, the same order), and each half summed as
// the AVX2 kernel sums its vector: the same bits, at twice the outputs per
// instruction. A tile of 8 samples × 3 pairs keeps 24 accumulators (of 32
// registers), so each weight row is read once per 8 samples: fc1's 384 KB
// come from L2 for every tile.
// (AVX-512F alone: the halves are moved as 64-bit quarters.)
#define TARGET512 __attribute__((target("avx512f,avx2,fma")))
TARGET512 static ALWAYS_INLINE __m512 halves(__m256 low, __m256 high) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(low)), _mm256_castps_pd(high), 1));
}

TARGET512 static ALWAYS_INLINE void
linear_tile512(float *y, long ldy, const float *x, long ldx, const float *w, const float *b,
               long IN, int relu, const int S, const int P) {
    __m512 a[8][3];
    for (int s = 0; s < S; s++)
        for (int p = 0; p < P; p++) a[s][p] = _mm512_setzero_ps();
    long k = 0;
    for (; k + 8 <= IN; k += 8) {
        __m512 wv[3];
        for (int p = 0; p < P; p++) wv[p] = halves(_mm256_loadu_ps(w + 2 * p * IN + k), _mm256_loadu_ps(w + (2 * p + 1) * IN + k));
        for (int s = 0; s < S; s++) {
            const __m256 x8 = _mm256_loadu_ps(x + s * ldx + k);
            const __m512 xv = halves(x8, x8);
            for (int p = 0; p < P; p++) a[s][p] = _mm512_fmadd_ps(xv, wv[p], a[s][p]);
        }
    }
    if (k < IN) {  // the last IN % 8 inputs; masked lanes read as 0
        const __m256i mask = lane_mask(IN - k);
        __m512 wv[3];
        for (int p = 0; p < P; p++)
            wv[p] = halves(_mm256_maskload_ps(w + 2 * p * IN + k, mask), _mm256_maskload_ps(w + (2 * p + 1) * IN + k, mask));
        for (int s = 0; s < S; s++) {
            const __m256 x8 = _mm256_maskload_ps(x + s * ldx + k, mask);
            const __m512 xv = halves(x8, x8);
            for (int p = 0; p < P; p++) a[s][p] = _mm512_fmadd_ps(xv, wv[p], a[s][p]);
        }
    }
    for (int s = 0; s < S; s++) {
        for (int p = 0; p < P; p++) {
            const __m256 low = _mm512_castps512_ps256(a[s][p]);
            const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[s][p]), 1));
            const float v0 = horizontal_sum(low) + b[2 * p], v1 = horizontal_sum(high) + b[2 * p + 1];
            y[s * ldy + 2 * p] = relu && 0.0f >= v0 ? 0.0f : v0;
            y[s * ldy + 2 * p + 1] = relu && 0.0f >= v1 ? 0.0f : v1;
        }
    }
}

TARGET512
void lenet_linear_avx512(float *y, long ldy, const float *x, long ldx, const float *w, const float *b,
                         long n, long IN, long OUT, int relu) {
    long o = 0;
    for (; o + 6 <= OUT; o += 6) {
        long s = 0;
        for (; s + 8 <= n; s += 8) linear_tile512(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 8, 3);
        switch (n - s) {
        case 7: linear_tile512(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 7, 3); break;
        case 6: linear_tile512(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 6, 3); break;
        case 5: linear_tile512(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 5, 3); break;
        case 4: linear_tile512(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 4, 3); break;
        case 3: linear_tile512(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 3, 3); break;
        case 2: linear_tile512(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 2, 3); break;
        case 1: linear_tile512(y + s * ldy + o, ldy, x + s * ldx, ldx, w + o * IN, b + o, IN, relu, 1, 3); break;
        default: break;
        }
    }
    // The last 1–5 outputs by the AVX2 kernel itself.
    if (o < OUT) lenet_linear_avx2(y + o, ldy, x, ldx, w + o * IN, b + o, n, IN, OUT - o, relu);
}

#else
void lenet_linear_avx512(float *y, long ldy, const float *x, long ldx, const float *w, const float *b,
                         long n, long IN, long OUT, int relu) {
    (void)y; (void)ldy; (void)x; (void)ldx; (void)w; (void)b; (void)n; (void)IN; (void)OUT; (void)relu;
}

void lenet_linear_avx2(float *y, long ldy, const float *x, long ldx, const float *w, const float *b,
                       long n, long IN, long OUT, int relu) {
    (void)y; (void)ldy; (void)x; (void)ldx; (void)w; (void)b; (void)n; (void)IN; (void)OUT; (void)relu;
}
#endif
