// libpng (Debian's libpng-dev), for reading and writing PNG files. Only
// CImageCodecs includes it: libpng reports errors by longjmp, which C
// catches there so that Swift never sees one.
#ifndef LENETKIT_CPNG_SHIM_H
#define LENETKIT_CPNG_SHIM_H
#include <png.h>
#endif
