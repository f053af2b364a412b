// libdispatch's dispatch_apply_f, which Swift's Dispatch module does not
// export. DispatchQueue.concurrentPerform wraps its closure in a heap-
// allocated block on every call; dispatch_apply_f takes a C function and a
// context pointer instead, so the parallel loops of a training step allocate
// only what withoutActuallyEscaping makes. The symbol is in libdispatch,
// which Dispatch already links.
#ifndef LENETKIT_CDISPATCHAPPLY_SHIM_H
#define LENETKIT_CDISPATCHAPPLY_SHIM_H
#include <stddef.h>

/// Runs work(context, i) for i in 0..<iterations on the default root
/// queue's threads and returns when all are done. queue: NULL, that is
/// DISPATCH_APPLY_AUTO (the declaration keeps dispatch's types out).
extern void dispatch_apply_f(size_t iterations, void *_Nullable queue, void *_Nullable context,
                             void (*_Nonnull work)(void *_Nullable context, size_t iteration));
#endif
