// zlib, for reading gzip-compressed IDX files (MNIST, Fashion-MNIST).
#ifndef LENETKIT_CZLIB_SHIM_H
#define LENETKIT_CZLIB_SHIM_H
#include <zlib.h>
#endif
