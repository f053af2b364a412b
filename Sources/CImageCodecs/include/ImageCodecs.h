// JPEG and PNG through libjpeg-turbo and libpng, behind functions that
// return a status instead of jumping. Both libraries report a fatal error by
// longjmp out of the failing call; a longjmp across Swift frames skips their
// cleanup (and is undefined behaviour), so every setjmp and every libjpeg or
// libpng call lives in these C files, and Swift sees only the result.
#ifndef LENETKIT_IMAGE_CODECS_H
#define LENETKIT_IMAGE_CODECS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Room for one error message, NUL-terminated.
#define LK_MESSAGE_SIZE 256

/// A decoded image: rows of interleaved 8-bit samples. (H, W, C)
typedef struct lk_image {
    /// height * width * channels samples from malloc, or NULL; release with lk_image_free.
    unsigned char *pixels;
    int width;
    int height;
    /// 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
    int channels;
    /// Why decoding failed (empty on success).
    char message[LK_MESSAGE_SIZE];
} lk_image;

/// Decodes a baseline or progressive JPEG held in memory, with libjpeg's
/// defaults (the accurate integer IDCT, smooth chroma upsampling): the
/// decoder Pillow uses, and so Pillow's bytes.
///
/// Gray files give 1 channel, YCbCr and RGB files 3, CMYK and YCCK files 3
/// (each colour times black, as Adobe's inverted CMYK stores them).
/// A file whose data libjpeg calls corrupt (it would warn and go on, e.g.
/// a truncated file padded with a fake end marker) is refused.
///
/// - Parameters:
///   - max_pixels: the most width * height a file may declare.
///   - max_scans: the most scans a progressive file may hold (each scan is
///     a pass over the whole image, so thousands of tiny scans are a
///     denial of service in a small file).
/// - Returns: 0 with `out->pixels` set, or -1 with `out->message` set and
///   nothing to free.
int lk_jpeg_decode(const unsigned char *data, size_t size, size_t max_pixels, int max_scans, lk_image *out);

/// Decodes a PNG held in memory: every colour type and bit depth, Adam7
/// interlaced or not. Palettes and tRNS become RGB(A) or gray + alpha,
/// 1/2/4-bit gray is scaled to 8 bits, 16-bit samples are scaled to 8 bits
/// with rounding (v * 255 / 65535). Gamma and colour chunks are ignored:
/// the samples are kept as stored, as Pillow keeps them.
///
/// - Parameters:
///   - max_pixels: the most width * height a file may declare.
///   - max_chunk_bytes: the most memory one ancillary chunk (text, ICC
///     profile) may take once decompressed.
/// - Returns: 0 with `out->pixels` set, or -1 with `out->message` set.
int lk_png_decode(const unsigned char *data, size_t size, size_t max_pixels, size_t max_chunk_bytes, lk_image *out);

/// Encodes 8-bit samples (H, W, C), C = 1 to 4, as a PNG.
/// - Returns: 0 with `*file` (from malloc; release with lk_free) and
///   `*file_size` set, or -1 with `message` set.
int lk_png_encode(const unsigned char *pixels, int width, int height, int channels,
                  unsigned char **file, size_t *file_size, char message[LK_MESSAGE_SIZE]);

/// Releases an image's pixels (safe on a failed or empty image).
void lk_image_free(lk_image *image);

/// Releases memory the encoder returned.
void lk_free(void *memory);

#ifdef __cplusplus
}
#endif

#endif
