#!/usr/bin/env python3
"""The error of LeNetKit's tanh (Sources/LeNetKit/Kernels/Tanh.swift, the
portable path: every float32 operation rounded, no FMA), emulated in float32
numpy against tanh in double, over every STRIDE-th positive float bit
pattern (tanh is odd and both paths put the sign on last, so negatives give
the same errors).

    Scripts/tanh_error.py [--stride 97]        # needs numpy

Prints the largest error in ulps, where it is, and the largest per range of
|x|. The coefficients are the ones in Tanh.swift; the unit tests (TanhTests)
scan both the portable and the AVX2/FMA paths in Swift itself.
"""
import argparse

import numpy as np

f32 = np.float32
P = [f32(v) for v in (-3.333333433e-01, 1.333332360e-01, -5.396616459e-02, 2.184794657e-02,
                      -8.742761798e-03, 3.211348085e-03, -7.897216710e-04)]
EXP = [f32(v) for v in (1.388888923e-03, 8.333333768e-03, 4.166666791e-02, 1.666666716e-01, 0.5, 1.0, 1.0)]


def tanh32(s):
    a = np.abs(s.astype(f32))
    with np.errstate(over="ignore", invalid="ignore"):
        z = a * a
        p = P[6]
        for k in range(5, -1, -1):
            p = f32(p * z) + P[k]
        small = f32(a + f32(a * z) * p)
        y = np.minimum(f32(a + a), f32(20))
        n = np.rint(f32(y * f32(1.442695022)))
        r = f32(y - f32(n * f32(6.933593750e-01)))
        r = f32(r - f32(n * f32(-2.121944417e-04)))
        q = f32(1.984127011e-04)
        for c in EXP:
            q = f32(f32(q * r) + c)
        e = f32(q * np.ldexp(f32(1), n.astype(np.int32)).astype(f32))
        t = f32(f32(1) - f32(f32(2) / f32(e + f32(1))))
    return np.where(a < f32(0.625), small, t)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=97)
    args = parser.parse_args()
    bits = np.arange(0, 0x7F800000, args.stride, dtype=np.uint32)
    x = bits.view(np.float32)
    got = tanh32(x).astype(np.float64)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(f32)).astype(np.float64)
    err = np.abs(got - exact) / ulp
    i = int(np.argmax(err))
    print(f"{len(x):,} floats: max {err[i]:.3f} ulp at x = {x[i]:.8g}")
    for lo, hi in [(0, 1e-3), (1e-3, 0.625), (0.625, 1), (1, 3), (3, 9.1), (9.1, np.inf)]:
        m = (x >= lo) & (x < hi)
        print(f"  {lo:g} ≤ |x| < {hi:g}: max {err[m].max():.3f} ulp")


if __name__ == "__main__":
    main()
