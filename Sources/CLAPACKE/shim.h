// LAPACKE, the C interface to LAPACK (Debian's liblapacke-dev), for the
// symmetric eigensolver behind the report's feature map. Only
// Kernels/Eigen.swift imports it.
#ifndef LENETKIT_CLAPACKE_SHIM_H
#define LENETKIT_CLAPACKE_SHIM_H
#include <lapacke.h>
#endif
