// Winograd's minimal filtering F(2×2, 5×5) for a 5×5 convolution (stride 1,
// no padding) followed by bias, a 2×2 max pool and a ReLU, one sample at a
// time: the forward-only stage the inference path runs for the CIFAR
// LeNet's conv2 (Kernels/Winograd.swift). Each 2×2 block of outputs, one
// pooling window, takes 36 multiplications per (input, output) channel
// pair instead of 100.
//
// Per pooled row: the input tiles are transformed (Bᵀ d B, vectors across
// input channels, from a channels-last copy of the rows), then for each of
// the 36 positions ξ the products over input channels run as a small matrix
// product (tiles × C) · (C × OC), vectors across output channels, into M;
// then Aᵀ M A gives each tile's four outputs, pooled at once. The weights'
// transform G g Gᵀ runs once per pass, in double.
#include "CKernels.h"

// The weights' transform, portable C in double: U[ξ][c][oc] = (G g Gᵀ)[ξ]
// for g = w[oc][c] (5×5), rounded once to float.
void lenet_winograd_f2x5_weights(float *U, const float *w, long C, long OC) {
    static const double G[6][5] = {
        {1.0 / 4, 0, 0, 0, 0},
        {1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6},
        {1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
        {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
        {0, 0, 0, 0, 1},
    };
    for (long oc = 0; oc < OC; oc++) {
        for (long c = 0; c < C; c++) {
            const float *g = w + (oc * C + c) * 25;
            double Gg[6][5];  // G g
            for (int a = 0; a < 6; a++)
                for (int l = 0; l < 5; l++) {
                    double s = 0;
                    for (int k = 0; k < 5; k++) s += G[a][k] * (double)g[k * 5 + l];
                    Gg[a][l] = s;
                }
            for (int a = 0; a < 6; a++)
                for (int bb = 0; bb < 6; bb++) {
                    double s = 0;
                    for (int l = 0; l < 5; l++) s += Gg[a][l] * G[bb][l];
                    U[((a * 6 + bb) * C + c) * OC + oc] = (float)s;
                }
        }
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "AVX2.h"

// AVX2: 8 lanes; a product tile of 6 tiles × 16 channels (12 accumulators).
#define VW 8
#define VEC __m256
#define TARGET __attribute__((target("avx2,fma")))
#define SUFFIX(name) name##_avx2
#define PRODUCT_TILES2 6
#define PRODUCT_TILES1 12
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSET1(x) _mm256_set1_ps(x)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VFMS(a, b, c) _mm256_fmsub_ps(a, b, c)
#define VFNMA(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define VRELU(v) _mm256_andnot_ps(_mm256_cmp_ps(_mm256_setzero_ps(), v, _CMP_GE_OQ), v)
#define VINDEX __m256i
#define VINDEX_STRIDE(s) _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(s))
#define VGATHER(p, index, valid) \
    _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, index, _mm256_castsi256_ps(lane_mask(valid)), 4)
#include "WinogradBody.h"
#undef VW
#undef VEC
#undef TARGET
#undef SUFFIX
#undef PRODUCT_TILES2
#undef PRODUCT_TILES1
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VADD
#undef VSUB
#undef VMAX
#undef VFMA
#undef VFMS
#undef VFNMA
#undef VRELU
#undef VINDEX
#undef VINDEX_STRIDE
#undef VGATHER

// AVX-512: 16 lanes; a product tile of 10 tiles × 32 channels (20 accumulators).
#define VW 16
#define VEC __m512
#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define SUFFIX(name) name##_avx512
#define PRODUCT_TILES2 10
#define PRODUCT_TILES1 12
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VFMS(a, b, c) _mm512_fmsub_ps(a, b, c)
#define VFNMA(a, b, c) _mm512_fnmadd_ps(a, b, c)
// 0 where 0 >= v, else v: the AVX2 kernel's compare and and-not, with a mask.
#define VRELU(v) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_setzero_ps(), v, _CMP_LT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v)
#define VINDEX __m512i
#define VINDEX_STRIDE(s) _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(s))
#define VGATHER(p, index, valid) \
    _mm512_mask_i32gather_ps(_mm512_setzero_ps(), (__mmask16)((1u << (valid)) - 1), index, p, 4)
#include "WinogradBody.h"
#else
void lenet_winograd_f2x5_pool_relu_avx2(float *y, const float *x, const float *U, const float *b,
                                        long C, long H, long W, long OC, long py0, long py1, float *scratch) {
    (void)y; (void)x; (void)U; (void)b; (void)C; (void)H; (void)W; (void)OC; (void)py0; (void)py1; (void)scratch;
}
void lenet_winograd_f2x5_pool_relu_avx512(float *y, const float *x, const float *U, const float *b,
                                          long C, long H, long W, long OC, long py0, long py1, float *scratch) {
    (void)y; (void)x; (void)U; (void)b; (void)C; (void)H; (void)W; (void)OC; (void)py0; (void)py1; (void)scratch;
}
#endif
