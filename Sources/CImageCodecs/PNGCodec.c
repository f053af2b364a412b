// PNG reading and writing through libpng, with its errors caught here.
//
// libpng calls the error function on a fatal error and expects it not to
// return; ours records the message and longjmps to the setjmp in
// lk_png_decode, which destroys the reader and frees what it allocated.
// Warnings (an ancillary chunk with a bad CRC, a known-bad ICC profile) are
// benign for the samples and do not stop the read, as they do not stop
// Pillow's; the first is kept, because libpng explains a bad header in
// warnings and then fails with only "Invalid IHDR data".
#include "ImageCodecs.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>

/// The reader's state: the file in memory, how far it has been read, and
/// the first error message.
typedef struct lk_png_source {
    const unsigned char *data;
    size_t size;
    size_t position;
    char message[LK_MESSAGE_SIZE];
    char warning[LK_MESSAGE_SIZE];
} lk_png_source;

static void lk_png_error(png_structp png, png_const_charp text) {
    lk_png_source *source = (lk_png_source *)png_get_error_ptr(png);
    if (source->message[0] == 0) {
        if (source->warning[0] != 0) {
            snprintf(source->message, sizeof source->message, "%s (%s)", text, source->warning);
        } else {
            snprintf(source->message, sizeof source->message, "%s", text);
        }
    }
    png_longjmp(png, 1);
}

static void lk_png_warning(png_structp png, png_const_charp text) {
    lk_png_source *source = (lk_png_source *)png_get_error_ptr(png);
    if (source->warning[0] == 0) snprintf(source->warning, sizeof source->warning, "%s", text);
}

static void lk_png_read(png_structp png, png_bytep target, size_t length) {
    lk_png_source *source = (lk_png_source *)png_get_io_ptr(png);
    if (length > source->size - source->position) {
        snprintf(source->message, sizeof source->message,
                 "truncated: the file ends after %zu bytes, in the middle of a chunk", source->size);
        png_longjmp(png, 1);
    }
    memcpy(target, source->data + source->position, length);
    source->position += length;
}

int lk_png_decode(const unsigned char *data, size_t size, size_t max_pixels, size_t max_chunk_bytes, lk_image *out) {
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(out->message, sizeof out->message, "not a PNG file (no PNG signature)");
        return -1;
    }
    // Every chunk must fit in the file. libpng allocates an ancillary
    // chunk's declared length before it reads it (1.6.39 does so for tEXt
    // whatever png_set_chunk_malloc_max says): a 72-byte file that
    // declares a 1.7 GB chunk cost 1.7 GB and 1.5 s a decode when fuzzed.
    // The whole file is in memory, so a length past its end is known
    // to be wrong before libpng sees it.
    for (size_t at = 8; at + 8 <= size;) {
        const unsigned char *h = data + at;
        const size_t length = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
        if (length > 0x7FFFFFFFu || length + 12 > size - at) {
            snprintf(out->message, sizeof out->message,
                     "truncated or corrupt: chunk '%c%c%c%c' at byte %zu declares %zu bytes, the file has %zu left",
                     (h[4] >= 32 && h[4] < 127) ? h[4] : '?', (h[5] >= 32 && h[5] < 127) ? h[5] : '?',
                     (h[6] >= 32 && h[6] < 127) ? h[6] : '?', (h[7] >= 32 && h[7] < 127) ? h[7] : '?',
                     at, length, size - at - 8);
            return -1;
        }
        if (memcmp(h + 4, "IEND", 4) == 0) break;
        at += 12 + length;
    }
    lk_png_source source = {data, size, 0, {0}, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, lk_png_error, lk_png_warning);
    if (png == NULL) {
        snprintf(out->message, sizeof out->message, "out of memory for the PNG reader");
        return -1;
    }
    // Written between setjmp and a longjmp, read after it: volatile.
    png_infop volatile info = NULL;
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_infop last = info;
        png_destroy_read_struct(&png, last ? &last : NULL, NULL);
        free(pixels);
        free(rows);
        snprintf(out->message, sizeof out->message, "%s", source.message[0] ? source.message : "corrupt PNG data");
        return -1;
    }
    info = png_create_info_struct(png);
    if (info == NULL) png_error(png, "out of memory for the PNG header");
    png_set_read_fn(png, &source, lk_png_read);
    // Bounds against decompression bombs: the sides (the area is checked
    // below), one ancillary chunk's inflated size, and how many ancillary
    // chunks are kept.
    png_set_user_limits(png, 1u << 24, 1u << 24);
    png_set_chunk_malloc_max(png, max_chunk_bytes);
    png_set_chunk_cache_max(png, 1000);

    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if ((size_t)width * (size_t)height > max_pixels) {
        snprintf(source.message, sizeof source.message, "the image is %u×%u pixels, more than the %zu supported",
                 (unsigned)width, (unsigned)height, max_pixels);
        png_longjmp(png, 1);
    }
    // To 8-bit gray, gray + alpha, RGB or RGBA, whatever the file holds.
    // Palettes are expanded below, not by libpng, which reads an index
    // past the palette's end as black with only a warning.
    const int palette = png_get_color_type(png, info) == PNG_COLOR_TYPE_PALETTE;
    if (palette) {
        png_set_packing(png);     // 1/2/4-bit indices → one byte each
    } else {
        png_set_expand(png);      // 1/2/4-bit gray → 8-bit, tRNS → alpha
    }
    png_set_scale_16(png);        // 16-bit → 8-bit, rounded
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t channels = png_get_channels(png, info);
    const size_t stride = (size_t)width * channels;
    if (channels < 1 || channels > 4 || png_get_bit_depth(png, info) != 8 || png_get_rowbytes(png, info) != stride) {
        png_error(png, "unexpected sample layout after conversion to 8 bits");
    }
    pixels = malloc(stride * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (pixels == NULL || rows == NULL) png_error(png, "out of memory for the image");
    for (png_uint_32 h = 0; h < height; h++) rows[h] = pixels + (size_t)h * stride;
    png_read_image(png, rows);
    if (palette) {
        png_colorp colours = NULL;
        int entries = 0;
        if (png_get_PLTE(png, info, &colours, &entries) == 0 || entries <= 0) png_error(png, "no PLTE chunk");
        png_bytep alphas = NULL;
        int transparent = 0;
        if (png_get_tRNS(png, info, &alphas, &transparent, NULL) == 0) transparent = 0;
        const size_t out_channels = transparent > 0 ? 4 : 3;
        unsigned char *expanded = malloc((size_t)width * height * out_channels);
        if (expanded == NULL) png_error(png, "out of memory for the image");
        for (size_t i = 0; i < (size_t)width * height; i++) {
            const int index = pixels[i];
            if (index >= entries) {
                free(expanded);
                snprintf(source.message, sizeof source.message,
                         "corrupt: pixel (%zu, %zu) uses palette entry %d of %d", i % width, i / width, index, entries);
                png_longjmp(png, 1);
            }
            unsigned char *p = expanded + i * out_channels;
            p[0] = colours[index].red;
            p[1] = colours[index].green;
            p[2] = colours[index].blue;
            if (out_channels == 4) p[3] = index < transparent ? alphas[index] : 255;
        }
        free(pixels);
        pixels = expanded;
        channels = out_channels;
    }
    // The chunks after the image data, up to IEND: checks the last CRCs and
    // that the file is complete.
    png_read_end(png, NULL);

    png_infop last = info;
    png_destroy_read_struct(&png, &last, NULL);
    free(rows);
    out->pixels = pixels;
    out->width = (int)width;
    out->height = (int)height;
    out->channels = (int)channels;
    return 0;
}

int lk_png_encode(const unsigned char *pixels, int width, int height, int channels,
                  unsigned char **file, size_t *file_size, char message[LK_MESSAGE_SIZE]) {
    *file = NULL;
    *file_size = 0;
    message[0] = 0;
    static const png_uint_32 formats[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4) {
        snprintf(message, LK_MESSAGE_SIZE, "cannot encode a %d×%d image with %d channels", width, height, channels);
        return -1;
    }
    // libpng's simplified writer keeps its own setjmp inside: it returns 0
    // with image.message set instead of jumping.
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = formats[channels];
    size_t size = 0;
    if (!png_image_write_get_memory_size(image, size, 0, pixels, 0, NULL)) {
        snprintf(message, LK_MESSAGE_SIZE, "%s", image.message);
        png_image_free(&image);
        return -1;
    }
    unsigned char *memory = malloc(size);
    if (memory == NULL) {
        snprintf(message, LK_MESSAGE_SIZE, "out of memory for a %zu-byte PNG", size);
        return -1;
    }
    if (!png_image_write_to_memory(&image, memory, &size, 0, pixels, 0, NULL)) {
        snprintf(message, LK_MESSAGE_SIZE, "%s", image.message);
        png_image_free(&image);
        free(memory);
        return -1;
    }
    *file = memory;
    *file_size = size;
    return 0;
}
