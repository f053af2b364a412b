// JPEG decoding through libjpeg-turbo, with its errors caught here.
//
// libjpeg calls error_exit on a fatal error and expects it not to return;
// ours longjmps back to lk_jpeg_decode, which destroys the decompressor and
// frees what it allocated. Warnings (emit_message at level -1) are corrupt
// data libjpeg would paper over (a missing end marker, bytes lost between
// markers): they are fatal here, so a damaged file is reported, not read as
// gray blocks.
#include "ImageCodecs.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

/// The error manager with room for the jump back and the first message.
typedef struct lk_jpeg_errors {
    struct jpeg_error_mgr manager;  // first, so the library's pointer is ours
    jmp_buf escape;
    char message[LK_MESSAGE_SIZE];
} lk_jpeg_errors;

/// The progress hook that stops a file with too many scans.
typedef struct lk_jpeg_progress {
    struct jpeg_progress_mgr manager;  // first, as above
    int max_scans;
} lk_jpeg_progress;

static void lk_jpeg_record(j_common_ptr cinfo) {
    lk_jpeg_errors *errors = (lk_jpeg_errors *)cinfo->err;
    if (errors->message[0] == 0) {
        char text[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, text);
        snprintf(errors->message, sizeof errors->message, "%s", text);
    }
}

static void lk_jpeg_error_exit(j_common_ptr cinfo) {
    lk_jpeg_record(cinfo);
    longjmp(((lk_jpeg_errors *)cinfo->err)->escape, 1);
}

static void lk_jpeg_emit_message(j_common_ptr cinfo, int level) {
    // Level 0 and up are trace messages; below 0, corrupt data.
    if (level < 0) lk_jpeg_error_exit(cinfo);
}

static void lk_jpeg_output_message(j_common_ptr cinfo) {
    // libjpeg's default prints to stderr; the message goes to the caller instead.
    lk_jpeg_record(cinfo);
}

static void lk_jpeg_check_scans(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    lk_jpeg_progress *progress = (lk_jpeg_progress *)cinfo->progress;
    if (d->input_scan_number > progress->max_scans) {
        lk_jpeg_errors *errors = (lk_jpeg_errors *)cinfo->err;
        snprintf(errors->message, sizeof errors->message,
                 "the file holds more than %d scans (a progressive JPEG has about 10)", progress->max_scans);
        longjmp(errors->escape, 1);
    }
}

int lk_jpeg_decode(const unsigned char *data, size_t size, size_t max_pixels, int max_scans, lk_image *out) {
    memset(out, 0, sizeof *out);
    if (size == 0) {
        snprintf(out->message, sizeof out->message, "the file is empty");
        return -1;
    }
    if ((size_t)(unsigned long)size != size) {
        snprintf(out->message, sizeof out->message, "the file is too large");
        return -1;
    }
    struct jpeg_decompress_struct cinfo;
    lk_jpeg_errors errors;
    lk_jpeg_progress progress;
    memset(&errors, 0, sizeof errors);
    memset(&progress, 0, sizeof progress);
    // Written between setjmp and a longjmp, read after: volatile, so the
    // value after the jump is the last one stored, not a stale register.
    unsigned char *volatile pixels = NULL;
    volatile int created = 0;

    cinfo.err = jpeg_std_error(&errors.manager);
    errors.manager.error_exit = lk_jpeg_error_exit;
    errors.manager.emit_message = lk_jpeg_emit_message;
    errors.manager.output_message = lk_jpeg_output_message;
    if (setjmp(errors.escape)) {
        if (created) jpeg_destroy_decompress(&cinfo);
        free(pixels);
        snprintf(out->message, sizeof out->message, "%s", errors.message[0] ? errors.message : "corrupt JPEG data");
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    created = 1;
    progress.manager.progress_monitor = lk_jpeg_check_scans;
    progress.max_scans = max_scans;
    cinfo.progress = &progress.manager;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    if ((size_t)cinfo.image_width * (size_t)cinfo.image_height > max_pixels) {
        snprintf(errors.message, sizeof errors.message, "the image is %u×%u pixels, more than the %zu supported",
                 cinfo.image_width, cinfo.image_height, max_pixels);
        longjmp(errors.escape, 1);
    }
    int cmyk = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo.out_color_space = JCS_CMYK; cmyk = 1; break;
    default: cinfo.out_color_space = JCS_RGB; break;
    }
    jpeg_start_decompress(&cinfo);

    const size_t width = cinfo.output_width, height = cinfo.output_height;
    const size_t components = (size_t)cinfo.output_components;  // 1, 3 or 4
    const size_t channels = cmyk ? 3 : components;
    const size_t stride = width * components;
    // (H, W, components); CMYK is shrunk to RGB in place afterwards.
    pixels = malloc(height * stride);
    if (pixels == NULL) {
        snprintf(errors.message, sizeof errors.message, "out of memory for a %zu×%zu image", width, height);
        longjmp(errors.escape, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t row = cinfo.output_scanline;
        JSAMPROW target = pixels + row * stride;
        jpeg_read_scanlines(&cinfo, &target, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    created = 0;

    if (cmyk) {
        // Adobe writes CMYK inverted (255 = no ink): R = C * K / 255.
        unsigned char *p = pixels;
        for (size_t i = 0; i < width * height; i++) {
            unsigned k = p[4 * i + 3];
            unsigned char r = (unsigned char)((p[4 * i] * k + 127) / 255);
            unsigned char g = (unsigned char)((p[4 * i + 1] * k + 127) / 255);
            unsigned char b = (unsigned char)((p[4 * i + 2] * k + 127) / 255);
            p[3 * i] = r;
            p[3 * i + 1] = g;
            p[3 * i + 2] = b;
        }
    }
    out->pixels = pixels;
    out->width = (int)width;
    out->height = (int)height;
    out->channels = (int)channels;
    return 0;
}

void lk_image_free(lk_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}

void lk_free(void *memory) { free(memory); }
