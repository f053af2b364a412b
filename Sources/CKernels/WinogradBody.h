// The body of the Winograd F(2×2, 5×5) convolution + bias + 2×2 max pool +
// ReLU (Winograd.c), written once over a vector of VW floats and included
// once per instruction set. Every lane runs the same operations in the same
// order in either width, so the AVX2 and AVX-512 kernels give the same bits.
//
// Before including, define: VW (8 or 16), VEC, TARGET, SUFFIX(name), and
// VZERO(), VLOAD(p), VSTORE(p, v), VSET1(x), VADD, VSUB, VMAX, VFMA(a, b, c)
// = a·b + c, VFMS(a, b, c) = a·b − c, VFNMA(a, b, c) = c − a·b, VRELU(v)
// (0 where 0 >= v, else v), all one rounding each; VINDEX, a vector of
// int32 lane indices, VINDEX_STRIDE(s) = (0, s, 2s, …), and
// VGATHER(p, index, valid): p[index[l]] in lanes l < valid, 0 in the rest.
//
// The transforms (docs/WINOGRAD.md derives them and their error bound), for
// the 6 points 0, 1, −1, 2, −2 and ∞:
//   Bᵀ = [4 0 −5 0 1 0; 0 4 4 −1 −1 0; 0 −4 4 1 −1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 1]
// and G (6×5) applied to the weights once per pass (lenet_winograd_f2x5_weights).
// One tile is a 6×6 input window and its 2×2 outputs: exactly one pooling
// window, so the pool takes the tile's four outputs.

// Bᵀz for one column of six vectors (z[0], z[s], …, z[5s]) into w (same stride).
TARGET static ALWAYS_INLINE void
SUFFIX(input_1d)(float *w, long ws, const float *z, long zs) {
    const VEC z0 = VLOAD(z), z1 = VLOAD(z + zs), z2 = VLOAD(z + 2 * zs);
    const VEC z3 = VLOAD(z + 3 * zs), z4 = VLOAD(z + 4 * zs), z5 = VLOAD(z + 5 * zs);
    const VEC four = VSET1(4.0f), two = VSET1(2.0f), minus5 = VSET1(-5.0f);
    const VEC d42 = VSUB(z4, z2), d31 = VSUB(z3, z1);
    VSTORE(w, VFMA(four, z0, VFMA(minus5, z2, z4)));
    VSTORE(w + ws, VFMS(four, VADD(z1, z2), VADD(z3, z4)));
    VSTORE(w + 2 * ws, VFMA(four, VSUB(z2, z1), VSUB(z3, z4)));
    VSTORE(w + 3 * ws, VFMA(two, d31, d42));
    VSTORE(w + 4 * ws, VFNMA(two, d31, d42));
    VSTORE(w + 5 * ws, VFMA(four, z1, VFMA(minus5, z3, z5)));
}


// acc[t][v] = Σ_{c < C} V[t·Cp + c] · U[c·OC + v·VW], T tiles × NV vectors of
// output channels, into M[t·OC + v·VW]: one chain of FMAs over c per value.
TARGET static ALWAYS_INLINE void
SUFFIX(product_tile)(float *M, const float *V, const float *U, long C, long Cp, long OC, const int T, const int NV) {
    VEC acc[2 * 12];
    for (int i = 0; i < T * NV; i++) acc[i] = VZERO();
    for (long c = 0; c < C; c++) {
        const VEC u0 = VLOAD(U + c * OC);
        const VEC u1 = NV > 1 ? VLOAD(U + c * OC + VW) : VZERO();
        for (int t = 0; t < T; t++) {
            const VEC v = VSET1(V[t * Cp + c]);
            acc[t * NV] = VFMA(v, u0, acc[t * NV]);
            if (NV > 1) acc[t * NV + 1] = VFMA(v, u1, acc[t * NV + 1]);
        }
    }
    for (int t = 0; t < T; t++) {
        VSTORE(M + t * OC, acc[t * NV]);
        if (NV > 1) VSTORE(M + t * OC + VW, acc[t * NV + 1]);
    }
}

// All `count` tiles of one ξ, output channels [oc, oc + NV·VW): tiles of TB.
#define PRODUCT_CASE(n) case n: SUFFIX(product_tile)(M + t * OC, V + t * Cp, U, C, Cp, OC, n, NV); break;
TARGET static ALWAYS_INLINE void
SUFFIX(product_row)(float *M, const float *V, const float *U, long C, long Cp, long OC, long count, const int NV) {
    const long TB = NV > 1 ? PRODUCT_TILES2 : PRODUCT_TILES1;
    long t = 0;
    for (; t + TB <= count; t += TB) SUFFIX(product_tile)(M + t * OC, V + t * Cp, U, C, Cp, OC, NV > 1 ? PRODUCT_TILES2 : PRODUCT_TILES1, NV);
    switch (count - t) {
    PRODUCT_CASE(1) PRODUCT_CASE(2) PRODUCT_CASE(3) PRODUCT_CASE(4) PRODUCT_CASE(5)
    PRODUCT_CASE(6) PRODUCT_CASE(7) PRODUCT_CASE(8) PRODUCT_CASE(9) PRODUCT_CASE(10) PRODUCT_CASE(11)
    default: break;
    }
}
#undef PRODUCT_CASE

// Aᵀ along one line of six vectors: (s0, s1) = (m0 + m1 + m2 + m3 + m4, m1 − m2 + 2(m3 − m4) + m5).
TARGET static ALWAYS_INLINE void
SUFFIX(output_1d)(VEC *s0, VEC *s1, const VEC m0, const VEC m1, const VEC m2, const VEC m3, const VEC m4, const VEC m5) {
    *s0 = VADD(VADD(VADD(m1, m2), VADD(m3, m4)), m0);
    *s1 = VADD(VFMA(VSET1(2.0f), VSUB(m3, m4), VSUB(m1, m2)), m5);
}

TARGET
void SUFFIX(lenet_winograd_f2x5_pool_relu)(float *y, const float *x, const float *U, const float *b,
                                           long C, long H, long W, long OC, long py0, long py1, float *scratch) {
    const long PH = (H - 4) / 2, PW = (W - 4) / 2, Cp = (C + VW - 1) / VW * VW;
    const long rows = 2 * (py1 - py0) + 4;
    // Scratch: the input rows channels-last (rows, W, Cp); V (36, PW, Cp);
    // M (36, PW, OC); a pooled row's column pass (2·PW + 4, 6, Cp).
    float *xt = scratch, *V = xt + rows * W * Cp, *M = V + 36 * PW * Cp, *tmp = M + 36 * PW * OC;
    // Each position's channels gathered (a stride of H·W), lanes past C zero.
    const VINDEX plane = VINDEX_STRIDE((int)(H * W));
    for (long r = 0; r < rows; r++) {
        float *row = xt + r * W * Cp;
        const float *in = x + (2 * py0 + r) * W;
        for (long cb = 0; cb < Cp; cb += VW) {
            const long valid = C - cb < VW ? C - cb : VW;
            for (long i = 0; i < W; i++) VSTORE(row + i * Cp + cb, VGATHER(in + cb * H * W + i, plane, valid));
        }
    }
    for (long py = py0; py < py1; py++) {
        const float *window = xt + 2 * (py - py0) * W * Cp;
        // Bᵀ d B for every tile. Down each input column j once (neighbouring
        // tiles share four of their six columns): tmp[j][a] = Σ_i Bᵀ[a][i]·d[i][j].
        for (long j = 0; j < 2 * PW + 4; j++)
            for (long cb = 0; cb < Cp; cb += VW)
                SUFFIX(input_1d)(tmp + j * 6 * Cp + cb, Cp, window + j * Cp + cb, W * Cp);
        // Along each tile's row a: V[a][b] = Σ_j tmp[2t + j][a]·Bᵀ[b][j].
        for (long t = 0; t < PW; t++)
            for (long cb = 0; cb < Cp; cb += VW)
                for (long a = 0; a < 6; a++)
                    SUFFIX(input_1d)(V + 6 * a * PW * Cp + t * Cp + cb, PW * Cp, tmp + (2 * t * 6 + a) * Cp + cb, 6 * Cp);
        for (long xi = 0; xi < 36; xi++) {
            const float *Vx = V + xi * PW * Cp, *Ux = U + xi * C * OC;
            float *Mx = M + xi * PW * OC;
            long oc = 0;
            for (; oc + 2 * VW <= OC; oc += 2 * VW) SUFFIX(product_row)(Mx + oc, Vx, Ux + oc, C, Cp, OC, PW, 2);
            for (; oc < OC; oc += VW) SUFFIX(product_row)(Mx + oc, Vx, Ux + oc, C, Cp, OC, PW, 1);
        }
        float lanes[VW];
        for (long t = 0; t < PW; t++) {
            for (long oc = 0; oc < OC; oc += VW) {
                const float *m = M + t * OC + oc;
                const long ms = PW * OC;  // from one ξ to the next
                // Down each column b: (s0[b], s1[b]) = Aᵀ m[·][b].
                VEC s0[6], s1[6];
                for (long c = 0; c < 6; c++)
                    SUFFIX(output_1d)(&s0[c], &s1[c], VLOAD(m + c * ms), VLOAD(m + (6 + c) * ms), VLOAD(m + (12 + c) * ms),
                                      VLOAD(m + (18 + c) * ms), VLOAD(m + (24 + c) * ms), VLOAD(m + (30 + c) * ms));
                // Along each row: the tile's four outputs.
                VEC y00, y01, y10, y11;
                SUFFIX(output_1d)(&y00, &y01, s0[0], s0[1], s0[2], s0[3], s0[4], s0[5]);
                SUFFIX(output_1d)(&y10, &y11, s1[0], s1[1], s1[2], s1[3], s1[4], s1[5]);
                // As the direct kernel: the max, then the bias (rounding is
                // monotonic), then the ReLU.
                const VEC pooled = VADD(VMAX(VMAX(y00, y01), VMAX(y10, y11)), VLOAD(b + oc));
                VSTORE(lanes, VRELU(pooled));
                for (int l = 0; l < VW; l++) y[((oc + l) * PH + py) * PW + t] = lanes[l];
            }
        }
    }
}
