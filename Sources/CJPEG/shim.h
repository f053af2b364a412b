// libjpeg-turbo (Debian's libjpeg62-turbo-dev), for decoding JPEG files. Only
// CImageCodecs includes it: libjpeg reports errors by longjmp, which C
// catches there so that Swift never sees one.
#ifndef LENETKIT_CJPEG_SHIM_H
#define LENETKIT_CJPEG_SHIM_H
#include <stddef.h>
#include <stdio.h>
#include <jpeglib.h>
#endif
