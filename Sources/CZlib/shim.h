// zlib, for gzip-compressed snapshots and exports. KernelIO's Gzip is its only importer.
#ifndef CTDOCTOR_CZLIB_SHIM_H
#define CTDOCTOR_CZLIB_SHIM_H

#include <zlib.h>

// deflateInit2/inflateInit2 are macros over the *_ functions with version and size
// arguments; Swift imports functions only.
static inline int ctd_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
static inline int ctd_inflate_init_gzip(z_stream *stream) { return inflateInit2(stream, 15 + 16); }

#endif
