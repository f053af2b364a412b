// The one C header LeNetKit needs from OpenBLAS: the CBLAS interface, plus
// OpenBLAS's thread control (declared in cblas.h by OpenBLAS).
#ifndef LENETKIT_CBLAS_SHIM_H
#define LENETKIT_CBLAS_SHIM_H
#include <cblas.h>
#endif
