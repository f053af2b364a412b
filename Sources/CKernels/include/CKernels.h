// Vector kernels that need instructions beyond the x86-64 baseline Swift
// compiles LeNetKit for. Swift has no per-function target attribute, and
// raising the whole package's target needs unsafe flags, which would stop
// other packages from depending on LeNetKit; C has
// __attribute__((target)), so the AVX2/FMA loop lives here and runs only
// where the CPU reports those features (`lenet_has_avx2_fma`). Only the
// kernel files in Kernels/ (PatchRows, Tanh, DirectConvolution, ConvPoolReLU, LinearReLU,
// OptimizerKernels) import this module.
#ifndef LENETKIT_CKERNELS_H
#define LENETKIT_CKERNELS_H
#include <stdint.h>

/// 1 when the CPU runs AVX2 and FMA (and this build can use them), else 0.
int lenet_has_avx2_fma(void);

/// 1 when the CPU runs AVX-512F (and this build can use it), else 0.
int lenet_has_avx512f(void);

/// Adam's update of p, m and v from g over the longest prefix of count that
/// is a multiple of 8 (AVX2) or 16 (AVX-512F), bit for bit the portable
/// loop's (Optim/Optimizer.swift): no operation fused. Returns the values
/// updated; the caller runs the rest. Call the AVX2 one only when
/// lenet_has_avx2_fma() returns 1, the AVX-512 one only when
/// lenet_has_avx512f() does.
long lenet_adam_avx2(float *_Nonnull p, const float *_Nonnull g, float *_Nonnull m, float *_Nonnull v, long count,
                     float w1, float beta2, float w2, float l2, float shrink,
                     float step_size, float bias2_sqrt, float epsilon);
long lenet_adam_avx512(float *_Nonnull p, const float *_Nonnull g, float *_Nonnull m, float *_Nonnull v, long count,
                       float w1, float beta2, float w2, float l2, float shrink,
                       float step_size, float bias2_sqrt, float epsilon);

/// out[0..<width] (+)= sum over j < count of weights[j] * matrix[rows[j] * ld + 0..<width],
/// with AVX2 and FMA. width: a multiple of 8. Call only when
/// lenet_has_avx2_fma() returns 1.
void lenet_weighted_row_sum_avx2(float *_Nonnull out, int accumulate,
                                 const float *_Nonnull matrix, long ld, long width,
                                 const int32_t *_Nonnull rows, const float *_Nonnull weights, long count);

/// lenet_weighted_row_sum_avx2 with AVX-512F: the same arguments and the
/// same bits. Call only when lenet_has_avx512f() returns 1.
void lenet_weighted_row_sum_avx512(float *_Nonnull out, int accumulate,
                                   const float *_Nonnull matrix, long ld, long width,
                                   const int32_t *_Nonnull rows, const float *_Nonnull weights, long count);

/// The pairs (keys[j], values[j]), j < count, whose value is not ±0 (NaN kept), in order,
/// into rows and weights; returns how many. With AVX-512F: call only when
/// lenet_has_avx512f() returns 1.
long lenet_compact_nonzero_avx512(int32_t *_Nonnull rows, float *_Nonnull weights, const int32_t *_Nonnull keys,
                                  const float *_Nonnull values, long count);

/// For one 2×2 pooling window starting at plane index start (rows OW apart): for each corner
/// q = start + (corner ≥ 2 ? OW : 0) + corner % 2, the kernels oc < OC, in order, whose
/// routes[oc·stride] is q and whose values[oc·stride] is not ±0 (NaN kept), into
/// rows[corner·OC + i] (oc) and weights[corner·OC + i]; counts[corner] how many. With
/// AVX-512F: call only when lenet_has_avx512f() returns 1.
void lenet_corner_lists_avx512(int32_t *_Nonnull rows, float *_Nonnull weights, int32_t *_Nonnull counts,
                               const int32_t *_Nonnull routes, const float *_Nonnull values, long OC, long stride,
                               long start, long OW);

/// y[i] = amplitude * tanh(slope * x[i]) for i < count, with AVX2 and FMA
/// (Kernels/Tanh.swift: the method, its error, the portable twin). Call only
/// when lenet_has_avx2_fma() returns 1.
void lenet_scaled_tanh_avx2(float *_Nonnull y, const float *_Nonnull x, long count, float amplitude, float slope);

/// lenet_scaled_tanh_avx2 with AVX-512F: the same arguments and the same bits.
/// Call only when lenet_has_avx512f() returns 1.
void lenet_scaled_tanh_avx512(float *_Nonnull y, const float *_Nonnull x, long count, float amplitude, float slope);

/// dx[i] = dy[i]·scale·(1 − (y[i]·inverse)²) for i < count, with AVX-512F: tanhBackward's
/// operations (Kernels/Tanh.swift), none fused, the same bits. Call only when
/// lenet_has_avx512f() returns 1.
void lenet_tanh_backward_avx512(float *_Nonnull dx, const float *_Nonnull dy, const float *_Nonnull y, long count,
                                float scale, float inverse);

/// One sample of a 5×5 convolution, stride 1, no padding, with AVX2 and FMA:
/// y (OC, H−4, W−4) = w (OC, C, 5, 5) ⋆ x (C, H, W) + b (OC). Needs 5 ≤ W ≤ 36
/// (an output row of at most 32). Call only when lenet_has_avx2_fma() returns 1.
void lenet_conv5x5_avx2(float *_Nonnull y, const float *_Nonnull x, const float *_Nonnull w, const float *_Nonnull b,
                        long C, long H, long W, long OC);

/// lenet_conv5x5_avx2 with AVX-512F: the same arguments, limits and bits.
/// Call only when lenet_has_avx512f() returns 1.
void lenet_conv5x5_avx512(float *_Nonnull y, const float *_Nonnull x, const float *_Nonnull w, const float *_Nonnull b,
                          long C, long H, long W, long OC);

/// The weight gradient of lenet_conv5x5_avx2 for one sample:
/// dw (OC, C, 5, 5) += Σ_{i,j} dy[oc, i, j] · x[c, i + kh, j + kw]. Same limits.
void lenet_conv5x5_weight_gradient_avx2(float *_Nonnull dw, const float *_Nonnull dy, const float *_Nonnull x,
                                        long C, long H, long W, long OC);

/// One sample's backward pass of a 5×5 convolution, stride 1, no padding, with AVX-512F,
/// from dy (OC, H − 4, W − 4) and x (C, H, W):
/// dwT (C·25, OCp) += Σ_{i,j} x[c, i + kh, j + kw] · dy[oc, i, j] at row c·25 + kh·5 + kw,
/// column oc (the weight gradient transposed; OCp = OC rounded up to 16, its extra columns
/// get 0); and, when dx is not NULL, dx (C, H, W) = Σ_{oc, kh, kw} dy[oc, u − kh, v − kw] ·
/// w[oc, c, kh, kw] over the pairs with connected[oc·C + c] != 0 (NULL: every pair), w
/// (OC, C, 5, 5). scratch: P·OCp + OC·(Hr + 4)·(W + 4) + 16 floats, P = (H − 4)·(W − 4),
/// Hr = H rounded up to a multiple of 7. Call only when lenet_has_avx512f() returns 1.
void lenet_conv5x5_backward_avx512(float *_Nonnull dwT, float *_Nullable dx, const float *_Nonnull dy,
                                   const float *_Nonnull x, const float *_Nonnull w, long C, long H, long W, long OC,
                                   const uint8_t *_Nullable connected, float *_Nonnull scratch);

/// lenet_conv5x5_weight_gradient_avx2 with AVX-512F: the same arguments and limits;
/// its sums run in 16 lanes, so its bits are its own. Call only when lenet_has_avx512f() returns 1.
void lenet_conv5x5_weight_gradient_avx512(float *_Nonnull dw, const float *_Nonnull dy, const float *_Nonnull x,
                                          long C, long H, long W, long OC);

/// One sample of relu(maxpool2x2(w ⋆ x + b)), w 5×5, stride 1, no padding:
/// y (OC, PH, PW) from x (C, H, W), PH = (H − 4) / 2, PW = (W − 4) / 2, rows
/// py0..<py1 of y only; wp the weights packed (C·25, OC), OC a multiple of 8;
/// rows scratch of 2·2·PW·OC floats. Call only when lenet_has_avx2_fma() returns 1.
void lenet_conv5x5_pool_relu_avx2(float *_Nonnull y, const float *_Nonnull x, const float *_Nonnull wp,
                                  const float *_Nonnull b, long C, long H, long W, long OC,
                                  long py0, long py1, float *_Nonnull rows);

/// lenet_conv5x5_pool_relu_avx2 with AVX-512F: the same arguments and the
/// same bits. Call only when lenet_has_avx512f() returns 1.
void lenet_conv5x5_pool_relu_avx512(float *_Nonnull y, const float *_Nonnull x, const float *_Nonnull wp,
                                    const float *_Nonnull b, long C, long H, long W, long OC,
                                    long py0, long py1, float *_Nonnull rows);

/// One sample of w ⋆ x + b, w 5×5, stride 1, no padding: y (OC, H − 4, W − 4)
/// from x (C, H, W), output rows oy0..<oy1 of y only; wp the weights packed
/// (C·25, OCp), OCp = OC rounded up to a multiple of 8, its extra columns 0;
/// rows scratch of (W − 4)·OCp floats. Call only when lenet_has_avx2_fma() returns 1.
void lenet_conv5x5_channels_last_avx2(float *_Nonnull y, const float *_Nonnull x, const float *_Nonnull wp,
                                      const float *_Nonnull b, long C, long H, long W, long OC, long OCp,
                                      long oy0, long oy1, float *_Nonnull rows);

/// lenet_conv5x5_channels_last_avx2 with AVX-512F: the same arguments and the
/// same bits. Call only when lenet_has_avx512f() returns 1.
void lenet_conv5x5_channels_last_avx512(float *_Nonnull y, const float *_Nonnull x, const float *_Nonnull wp,
                                        const float *_Nonnull b, long C, long H, long W, long OC, long OCp,
                                        long oy0, long oy1, float *_Nonnull rows);

/// U (36, C, OC) = G g Gᵀ for each 5×5 kernel g = w[oc][c] of w (OC, C, 5, 5),
/// computed in double and rounded once: the weights of the Winograd
/// F(2×2, 5×5) kernels below (Winograd.c). Portable C.
void lenet_winograd_f2x5_weights(float *_Nonnull U, const float *_Nonnull w, long C, long OC);

/// lenet_conv5x5_pool_relu_avx2's result by Winograd's F(2×2, 5×5): y (OC, PH, PW)
/// from x (C, H, W), pooled rows py0..<py1, U from lenet_winograd_f2x5_weights,
/// OC a multiple of 8; scratch of (2·(py1 − py0) + 4)·W·Cp + 36·PW·(Cp + OC) + 6·W·Cp
/// floats, Cp = C rounded up to a multiple of 8. Not the direct kernel's bits:
/// within the bound docs/WINOGRAD.md derives. Call only when lenet_has_avx2_fma() returns 1.
void lenet_winograd_f2x5_pool_relu_avx2(float *_Nonnull y, const float *_Nonnull x, const float *_Nonnull U,
                                        const float *_Nonnull b, long C, long H, long W, long OC,
                                        long py0, long py1, float *_Nonnull scratch);

/// lenet_winograd_f2x5_pool_relu_avx2 with AVX-512F: the same bits, OC a multiple
/// of 16, and Cp = C rounded up to a multiple of 16 in the scratch's size. Call only when lenet_has_avx512f() returns 1.
void lenet_winograd_f2x5_pool_relu_avx512(float *_Nonnull y, const float *_Nonnull x, const float *_Nonnull U,
                                          const float *_Nonnull b, long C, long H, long W, long OC,
                                          long py0, long py1, float *_Nonnull scratch);

/// packed (K, OC) = w (OC, K) transposed, OC a multiple of 8 (the weights of
/// lenet_conv5x5_pool_relu_avx2). Call only when lenet_has_avx2_fma() returns 1.
void lenet_pack_channels_last_avx2(float *_Nonnull packed, const float *_Nonnull w, long OC, long K);

/// y[s·ldy + o] = b[o] + Σ_k x[s·ldx + k] · w[o·IN + k] for s < n, o < OUT, then
/// max(·, 0) when relu is 1: a fully connected layer with w in (OUT, IN) layout.
/// Call only when lenet_has_avx2_fma() returns 1.
void lenet_linear_avx2(float *_Nonnull y, long ldy, const float *_Nonnull x, long ldx, const float *_Nonnull w,
                       const float *_Nonnull b, long n, long IN, long OUT, int relu);

/// lenet_linear_avx2 with AVX-512F: the same arguments and the same bits.
/// Call only when lenet_has_avx512f() returns 1.
void lenet_linear_avx512(float *_Nonnull y, long ldy, const float *_Nonnull x, long ldx, const float *_Nonnull w,
                         const float *_Nonnull b, long n, long IN, long OUT, int relu);
/// Twelve chains a[i] = a[i]·scale + add, a[i] starting at start + i, each
/// `iterations` AVX2 FMAs long (8 lanes alike): 192·iterations FLOP. Returns
/// the sum of the chains' last values. Call only when lenet_has_avx2_fma()
/// returns 1.
float lenet_fma_chains_avx2(long iterations, float start, float scale, float add);

/// The same chains with 16-lane AVX-512 FMAs: 384·iterations FLOP. Call only
/// when lenet_has_avx512f() returns 1.
float lenet_fma_chains_avx512(long iterations, float start, float scale, float add);

#endif
