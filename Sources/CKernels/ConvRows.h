// The row kernels both 5×5 convolution files share (ConvPoolReLU.c and its
// AVX-512 twin, ConvPoolReLU512.c): the AVX2 tile of output positions ×
// output channels, the pooling of two output rows, and the write-out of a
// channels-last row. The AVX-512 file runs its 8-channel remainders and
// its epilogues through these, so those are the AVX2 kernel's own code.
// Include after AVX2.h, under the x86-64 guard of a kernel file.
#ifndef LENETKIT_CKERNELS_CONV_ROWS_H
#define LENETKIT_CKERNELS_CONV_ROWS_H
#define TILE 6       // positions per tile with two vectors of channels (12 accumulators)
#define WIDE_TILE 12 // with one vector of channels
#define K5 5
#if defined(__clang__)
#define UNROLL_FULLY _Pragma("clang loop unroll(full)")
#else
#define UNROLL_FULLY
#endif

// out[t·ldo + 0..<8·NV] = Σ_{c, ky, kx} w[((c·K + ky)·K + kx)·ldw + 0..<8·NV] · x[(c·H + ky)·W + kx + t]
// for t < T: T output positions along a row, NV vectors of output channels.
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
conv_tile(float *out, long ldo, const float *x, const float *w, long ldw,
          long C, long H, long W, long K, const int T, const int NV) {
    __m256 a0[WIDE_TILE], a1[TILE];
    for (int t = 0; t < T; t++) a0[t] = _mm256_setzero_ps();
    for (int t = 0; t < T && NV > 1; t++) a1[t] = _mm256_setzero_ps();
    for (long c = 0; c < C; c++) {
        for (long ky = 0; ky < K; ky++) {
            const float *row = x + (c * H + ky) * W;
            const float *wr = w + (c * K + ky) * K * ldw;
            UNROLL_FULLY
            for (long kx = 0; kx < K; kx++) {
                const __m256 w0 = _mm256_loadu_ps(wr + kx * ldw);
                const __m256 w1 = NV > 1 ? _mm256_loadu_ps(wr + kx * ldw + 8) : _mm256_setzero_ps();
                // Hide that r[t] is the previous step's r[t + 1]: reusing
                // those broadcasts needs more registers than AVX2 has left
                // beside 12 accumulators, and the spills cost more than the
                // loads (the 6×16 tile ran at half the FMA peak with them).
                const float *r = row + kx;
                __asm__("" : "+r"(r));
                for (int t = 0; t < T; t++) {
                    const __m256 v = _mm256_broadcast_ss(r + t);
                    a0[t] = _mm256_fmadd_ps(w0, v, a0[t]);
                    if (NV > 1) a1[t] = _mm256_fmadd_ps(w1, v, a1[t]);
                }
            }
        }
    }
    for (int t = 0; t < T; t++) {
        _mm256_storeu_ps(out + t * ldo, a0[t]);
        if (NV > 1) _mm256_storeu_ps(out + t * ldo + 8, a1[t]);
    }
}

// One output row's positions [0, count) for channels [g, g + 8·NV), in tiles
// of 6 (of 12 first with one vector of channels: 12 accumulators either way).
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
conv_row(float *out, long ldo, const float *x, const float *w, long ldw,
         long C, long H, long W, long K, long count, const int NV) {
    long t = 0;
    if (NV == 1)
        for (; t + WIDE_TILE <= count; t += WIDE_TILE) conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, WIDE_TILE, 1);
    for (; t + TILE <= count; t += TILE) conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, TILE, NV);
    switch (count - t) {
    case 5: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 5, NV); break;
    case 4: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 4, NV); break;
    case 3: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 3, NV); break;
    case 2: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 2, NV); break;
    case 1: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 1, NV); break;
    default: break;
    }
}

// Row py of y (OC, PH, PW), channels [g, g + width) (a multiple of 8), from
// two output rows of the convolution in `rows` (2, 2·PW, OC): the 2×2 max,
// then the bias, then the ReLU.
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
pool_relu_row(float *y, const float *rows, const float *b, long OC, long PH, long PW, long py, long g, long width) {
    float lanes[8];
    const float *r0 = rows, *r1 = rows + 2 * PW * OC;
    for (long px = 0; px < PW; px++) {
        for (long v = g; v < g + width; v += 8) {
            const long i = 2 * px * OC + v;
            const __m256 top = _mm256_max_ps(_mm256_loadu_ps(r0 + i), _mm256_loadu_ps(r0 + i + OC));
            const __m256 bottom = _mm256_max_ps(_mm256_loadu_ps(r1 + i), _mm256_loadu_ps(r1 + i + OC));
            // Rounding is monotonic, so adding the bias after the max
            // gives the bits of adding it to each of the four first.
            const __m256 m = _mm256_add_ps(_mm256_max_ps(top, bottom), _mm256_loadu_ps(b + v));
            // The ReLU layer's max(m, 0): 0 where 0 >= m, else m (NaN stays NaN, −0 becomes 0).
            const __m256 off = _mm256_cmp_ps(_mm256_setzero_ps(), m, _CMP_GE_OQ);
            _mm256_storeu_ps(lanes, _mm256_andnot_ps(off, m));
            for (int l = 0; l < 8; l++) y[((v + l) * PH + py) * PW + px] = lanes[l];
        }
    }
}

// Output row oy of y (OC, OH, OW) from the channels-last row `rows`
// (OW, OCp), with the bias.
static ALWAYS_INLINE void
scatter_row(float *y, const float *rows, const float *b, long OC, long OCp, long OH, long OW, long oy) {
    for (long oc = 0; oc < OC; oc++) {
        float *out = y + (oc * OH + oy) * OW;
        const float bias = b[oc];
        for (long ox = 0; ox < OW; ox++) out[ox] = rows[ox * OCp + oc] + bias;
    }
}
#endif
