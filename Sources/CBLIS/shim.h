// BLIS's CBLAS interface (Debian's libblis-dev, OpenMP build), for the
// `BLIS` package trait. Debian installs cblas.h beside the multiarch
// include path, not on it.
#ifndef LENETKIT_CBLIS_SHIM_H
#define LENETKIT_CBLIS_SHIM_H
// BLIS's cblas.h defines _POSIX_C_SOURCE before it includes the C library,
// which would give `struct tm` and friends another shape than Swift's Glibc
// module has. Including them first, with the usual feature macros, keeps
// one definition.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <stdarg.h>
#include <float.h>
#include <errno.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/time.h>
#include <signal.h>
#if defined(__x86_64__)
#include <x86_64-linux-gnu/blis-openmp/cblas.h>
#elif defined(__aarch64__)
#include <aarch64-linux-gnu/blis-openmp/cblas.h>
#else
#error "LeNetKit's BLIS trait knows Debian's x86_64 and aarch64 layouts"
#endif
#include <stdint.h>
// From blis.h (dim_t is a 64-bit integer in Debian's build): the number of
// threads BLIS uses for one call, instead of BLIS_NUM_THREADS.
void bli_thread_set_num_threads(int64_t value);
int64_t bli_thread_get_num_threads(void);
#endif
