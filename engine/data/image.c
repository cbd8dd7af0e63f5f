/* JPEG (libjpeg-turbo) and PNG (libpng) decoding into packed 8-bit pixels.
 *
 * JPEG uses libjpeg's own API rather than TurboJPEG: it is the same libjpeg-turbo SIMD decoder,
 * but the error manager is ours (so the library can never print or exit, and truncation versus
 * corruption can be told apart with the byte offset), and scanlines go straight into a caller's
 * buffer with no intermediate copy. */
#include "media-private.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#define UNNAMED "<memory>"

static gboolean
check_size(const char *name, guint64 width, guint64 height, guint64 channels, GError **error)
{
  if (width == 0 || height == 0) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, name, "image has zero size (%" G_GUINT64_FORMAT " x %" G_GUINT64_FORMAT ")", width, height);
    return FALSE;
  }
  if (width > FTH_IMAGE_MAX_SIDE || height > FTH_IMAGE_MAX_SIDE) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_TOO_LARGE, name,
                        "image is %" G_GUINT64_FORMAT " x %" G_GUINT64_FORMAT
                        " pixels, over the limit of %d per side",
                        width, height, FTH_IMAGE_MAX_SIDE);
    return FALSE;
  }
  if (width * height * channels > FTH_IMAGE_MAX_BYTES) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_TOO_LARGE, name,
                        "image is %" G_GUINT64_FORMAT " x %" G_GUINT64_FORMAT
                        " pixels, over the 1 GiB decoded size limit",
                        width, height);
    return FALSE;
  }
  return TRUE;
}

/* Where decoded pixels go: the caller's buffer, or one we allocate once the size is known.
 * With header_only set, decoding stops after the headers. */
typedef struct {
  const char *name;
  FthImageDecodeFlags flags;
  gboolean header_only;
  int reduction;   /* JPEG only: decode at 1/reduction of the size (1, 2, 4 or 8); 0 = 1 */
  guint8 *pixels;  /* caller's buffer, or NULL to allocate */
  gsize capacity;
  guint8 *allocated; /* out: when pixels was NULL */
  FthImageInfo info;
} DecodeTarget;

/* Called once the output geometry is known: checks limits, finds the destination. */
static guint8 *
target_prepare(DecodeTarget *t, GError **error)
{
  if (!check_size(t->name, (guint64) t->info.width, (guint64) t->info.height,
                  (guint64) t->info.channels, error))
    return NULL;
  gsize need = (gsize) t->info.width * (gsize) t->info.height * (gsize) t->info.channels;
  if (t->pixels != NULL) {
    if (need > t->capacity) {
      fth_media_set_error(error, FTH_MEDIA_ERROR_BUFFER_TOO_SMALL, t->name,
                          "decoded image needs %" G_GSIZE_FORMAT " bytes, the buffer holds %" G_GSIZE_FORMAT,
                          need, t->capacity);
      return NULL;
    }
    return t->pixels;
  }
  t->allocated = g_try_malloc(need);
  if (t->allocated == NULL)
    fth_media_set_error(error, FTH_MEDIA_ERROR_TOO_LARGE, t->name,
                        "cannot allocate %" G_GSIZE_FORMAT " bytes for the decoded image", need);
  return t->allocated;
}

/* ------------------------------------------------------------------------------------------ */
/* JPEG */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  gboolean truncated;
  char message[JMSG_LENGTH_MAX];
} JpegError;

static void
jpeg_error_exit(j_common_ptr cinfo)
{
  JpegError *err = (JpegError *) cinfo->err;
  cinfo->err->format_message(cinfo, err->message);
  longjmp(err->jump, 1);
}

/* Warnings that mean the pixels are wrong stop the decode; cosmetic ones (extraneous bytes
 * between markers, odd JFIF versions, bogus ICC or progression data) are tolerated as other
 * decoders tolerate them. Nothing is ever printed. */
static void
jpeg_emit_message(j_common_ptr cinfo, int level)
{
  if (level >= 0)
    return;
  JpegError *err = (JpegError *) cinfo->err;
  switch (cinfo->err->msg_code) {
  case JWRN_JPEG_EOF:
    err->truncated = TRUE;
    longjmp(err->jump, 1);
  case JWRN_HIT_MARKER:
  case JWRN_HUFF_BAD_CODE:
  case JWRN_MUST_RESYNC:
  case JWRN_NOT_SEQUENTIAL:
    cinfo->err->format_message(cinfo, err->message);
    longjmp(err->jump, 1);
  default:
    cinfo->err->num_warnings++;
  }
}

static void
jpeg_output_message(j_common_ptr cinfo)
{
}

/* Adobe CMYK JPEGs store inverted values; others store plain CMYK. */
static void
cmyk_row_to_rgb(const guint8 *cmyk, guint8 *rgb, int width, gboolean inverted)
{
  for (int x = 0; x < width; x++) {
    int c = cmyk[4 * x], m = cmyk[4 * x + 1], y = cmyk[4 * x + 2], k = cmyk[4 * x + 3];
    if (!inverted) {
      c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k;
    }
    rgb[3 * x] = (guint8) ((c * k + 127) / 255);
    rgb[3 * x + 1] = (guint8) ((m * k + 127) / 255);
    rgb[3 * x + 2] = (guint8) ((y * k + 127) / 255);
  }
}

static void
rgb_row_to_gray(const guint8 *rgb, guint8 *gray, int width)
{
  for (int x = 0; x < width; x++)
    gray[x] = (guint8) ((19595 * rgb[3 * x] + 38470 * rgb[3 * x + 1] + 7471 * rgb[3 * x + 2] +
                         32768) >> 16);
}

/* Everything that must survive the longjmp lives in this struct, not in locals. */
typedef struct {
  struct jpeg_decompress_struct cinfo;
  JpegError err;
  guint8 *cmyk_row;
  guint8 *rgb_row;
} JpegState;

static gboolean
decode_jpeg(const guint8 *data, gsize len, DecodeTarget *t, GError **error)
{
  JpegState *s = g_new0(JpegState, 1);
  volatile gboolean ok = FALSE;
  s->cinfo.err = jpeg_std_error(&s->err.pub);
  s->err.pub.error_exit = jpeg_error_exit;
  s->err.pub.emit_message = jpeg_emit_message;
  s->err.pub.output_message = jpeg_output_message;

  if (setjmp(s->err.jump)) {
    if (s->err.truncated)
      fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, t->name,
                          "JPEG data ends early (truncated at byte %" G_GSIZE_FORMAT ")", len);
    else if (s->err.pub.msg_code == JERR_BAD_PRECISION)
      fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, t->name, "unsupported JPEG (%s)",
                          s->err.message);
    else
      fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, t->name, "corrupt JPEG (%s)",
                          s->err.message);
    goto out;
  }

  jpeg_create_decompress(&s->cinfo);
  jpeg_mem_src(&s->cinfo, data, (unsigned long) len);
  jpeg_read_header(&s->cinfo, TRUE);

  gboolean cmyk = s->cinfo.jpeg_color_space == JCS_CMYK || s->cinfo.jpeg_color_space == JCS_YCCK;
  gboolean source_gray = s->cinfo.num_components == 1;
  if (t->flags & FTH_IMAGE_DECODE_GRAYSCALE)
    t->info.channels = 1;
  else if (source_gray && !(t->flags & FTH_IMAGE_DECODE_RGB))
    t->info.channels = 1;
  else
    t->info.channels = 3;
  t->info.width = (int) s->cinfo.image_width;
  t->info.height = (int) s->cinfo.image_height;
  if (!check_size(t->name, s->cinfo.image_width, s->cinfo.image_height,
                  (guint64) t->info.channels, error))
    goto out;
  if (t->header_only) {
    ok = TRUE;
    goto out;
  }

  if (cmyk)
    s->cinfo.out_color_space = JCS_CMYK;
  else
    s->cinfo.out_color_space = t->info.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (t->flags & FTH_IMAGE_DECODE_FAST) {
    s->cinfo.dct_method = JDCT_IFAST;
    s->cinfo.do_fancy_upsampling = FALSE;
  }
  if (t->reduction > 1) {
    /* DCT scaling: each 8x8 block is transformed straight to (8/reduction)^2 pixels, so most of
     * the IDCT and colour conversion work is never done. Sides round up. */
    s->cinfo.scale_num = 1;
    s->cinfo.scale_denom = (unsigned int) t->reduction;
    jpeg_calc_output_dimensions(&s->cinfo);
    t->info.width = (int) s->cinfo.output_width;
    t->info.height = (int) s->cinfo.output_height;
  }

  guint8 *dst = target_prepare(t, error);
  if (dst == NULL)
    goto out;
  jpeg_start_decompress(&s->cinfo);
  gsize stride = (gsize) t->info.width * (gsize) t->info.channels;
  if (cmyk) {
    s->cmyk_row = g_malloc((gsize) t->info.width * 4);
    if (t->info.channels == 1)
      s->rgb_row = g_malloc((gsize) t->info.width * 3);
    while (s->cinfo.output_scanline < s->cinfo.output_height) {
      guint8 *row_out = dst + (gsize) s->cinfo.output_scanline * stride;
      JSAMPROW rows[1] = {s->cmyk_row};
      jpeg_read_scanlines(&s->cinfo, rows, 1);
      if (t->info.channels == 1) {
        cmyk_row_to_rgb(s->cmyk_row, s->rgb_row, t->info.width, s->cinfo.saw_Adobe_marker);
        rgb_row_to_gray(s->rgb_row, row_out, t->info.width);
      } else {
        cmyk_row_to_rgb(s->cmyk_row, row_out, t->info.width, s->cinfo.saw_Adobe_marker);
      }
    }
  } else {
    while (s->cinfo.output_scanline < s->cinfo.output_height) {
      JSAMPROW rows[16];
      JDIMENSION n = MIN(16u, s->cinfo.output_height - s->cinfo.output_scanline);
      for (JDIMENSION i = 0; i < n; i++)
        rows[i] = dst + (gsize) (s->cinfo.output_scanline + i) * stride;
      jpeg_read_scanlines(&s->cinfo, rows, n);
    }
  }
  /* Reads to EOI so that data cut off after the last scan of a progressive file is noticed. */
  jpeg_finish_decompress(&s->cinfo);
  ok = TRUE;

out:
  jpeg_destroy_decompress(&s->cinfo);
  g_free(s->cmyk_row);
  g_free(s->rgb_row);
  g_free(s);
  return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* PNG */

typedef struct {
  const guint8 *data;
  gsize len;
  gsize pos;
  gboolean truncated;
  char message[256];
} PngSource;

static void
png_read_memory(png_structp png, png_bytep out, size_t n)
{
  PngSource *src = png_get_io_ptr(png);
  if (n > src->len - src->pos) {
    src->truncated = TRUE;
    png_error(png, "unexpected end of data");
  }
  memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

static void
png_on_error(png_structp png, png_const_charp message)
{
  PngSource *src = png_get_error_ptr(png);
  g_strlcpy(src->message, message, sizeof src->message);
  png_longjmp(png, 1);
}

/* libpng's default prints warnings (e.g. a bad CRC in an ancillary chunk it then ignores). */
static void
png_on_warning(png_structp png, png_const_charp message)
{
}

typedef struct {
  png_structp png;
  png_infop info;
  png_bytep *rows;
  PngSource src;
} PngState;

static gboolean
decode_png(const guint8 *data, gsize len, DecodeTarget *t, GError **error)
{
  PngState *s = g_new0(PngState, 1);
  volatile gboolean ok = FALSE;
  s->src.data = data;
  s->src.len = len;

  s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s->src, png_on_error, png_on_warning);
  if (s->png == NULL) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_TOO_LARGE, t->name, "cannot allocate a PNG reader");
    g_free(s);
    return FALSE;
  }
  s->info = png_create_info_struct(s->png);
  if (setjmp(png_jmpbuf(s->png))) {
    if (s->src.truncated)
      fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, t->name,
                          "PNG data ends early (truncated at byte %" G_GSIZE_FORMAT ")", len);
    else
      fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, t->name, "corrupt PNG (%s)",
                          s->src.message);
    goto out;
  }
  if (s->info == NULL)
    png_error(s->png, "cannot allocate PNG info");
  png_set_read_fn(s->png, &s->src, png_read_memory);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  /* Fuzz builds only: mutated inputs almost never carry valid checksums, and rejecting them at
   * the first CRC would keep the fuzzer out of the decoder (libpng's own harness does this). */
  png_set_crc_action(s->png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
  png_set_option(s->png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
  /* Our own limits (checked below) give the TOO_LARGE error; libpng's would say CORRUPT. */
  png_set_user_limits(s->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_read_info(s->png, s->info);

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(s->png, s->info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
  /* Before png_read_update_info, which allocates row buffers from the width (fuzz-png: a
   * 1.5-gigapixel-wide header made it ask for 3 GB). Channels are known only after it. */
  if (!check_size(t->name, width, height, 1, error))
    goto out;

  png_set_expand(s->png); /* palette -> RGB, gray < 8 bits -> 8 bits, tRNS -> alpha */
  if (bit_depth == 16)
    png_set_scale_16(s->png);
  gboolean color = (color_type & PNG_COLOR_MASK_COLOR) != 0;
  gboolean alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 ||
                   png_get_valid(s->png, s->info, PNG_INFO_tRNS);
  if (t->flags & FTH_IMAGE_DECODE_GRAYSCALE) {
    if (color) /* BT.601 weights, as libjpeg, in 1/100000 */
      png_set_rgb_to_gray_fixed(s->png, 1, 29900, 58700);
    if (alpha)
      png_set_strip_alpha(s->png);
  } else if (t->flags & (FTH_IMAGE_DECODE_RGB | FTH_IMAGE_DECODE_NO_ALPHA)) {
    if (alpha)
      png_set_strip_alpha(s->png);
    if (!color && (t->flags & FTH_IMAGE_DECODE_RGB))
      png_set_gray_to_rgb(s->png);
  } else if (!color && alpha) {
    png_set_gray_to_rgb(s->png); /* gray + alpha -> RGBA: channels are 1, 3 or 4 */
  }
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);

  t->info.width = (int) width;
  t->info.height = (int) height;
  t->info.channels = png_get_channels(s->png, s->info);
  if (!check_size(t->name, width, height, (guint64) t->info.channels, error))
    goto out;
  if (png_get_rowbytes(s->png, s->info) != (gsize) width * (gsize) t->info.channels)
    png_error(s->png, "unexpected row size after transformations");
  if (t->header_only) {
    ok = TRUE;
    goto out;
  }
  guint8 *dst = target_prepare(t, error);
  if (dst == NULL)
    goto out;
  s->rows = g_new(png_bytep, height);
  for (png_uint_32 y = 0; y < height; y++)
    s->rows[y] = dst + (gsize) y * width * (gsize) t->info.channels;
  png_read_image(s->png, s->rows);
  ok = TRUE;

out:
  png_destroy_read_struct(&s->png, s->info ? &s->info : NULL, NULL);
  g_free(s->rows);
  g_free(s);
  return ok;
}

/* ------------------------------------------------------------------------------------------ */

/* A file shorter than the magic bytes but matching them so far: a cut-off image. */
static gboolean
is_magic_prefix(const guint8 *data, gsize len)
{
  static const guint8 jpeg_magic[] = {0xFF, 0xD8, 0xFF};
  static const guint8 png_magic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return (len < sizeof jpeg_magic && memcmp(data, jpeg_magic, len) == 0) ||
         (len < sizeof png_magic && memcmp(data, png_magic, len) == 0);
}

static gboolean
decode_any(const guint8 *data, gsize len, DecodeTarget *t, GError **error)
{
  if (t->name == NULL)
    t->name = UNNAMED;
  if (len == 0) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_EMPTY, t->name, "file is empty (0 bytes)");
    return FALSE;
  }
  FthMediaFormat format = fth_media_sniff(data, len);
  gboolean ok;
  if (format == FTH_MEDIA_FORMAT_JPEG)
    ok = decode_jpeg(data, len, t, error);
  else if (format == FTH_MEDIA_FORMAT_PNG && t->reduction > 1) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, t->name,
                        "reduced decoding needs a JPEG, the content is PNG");
    return FALSE;
  } else if (format == FTH_MEDIA_FORMAT_PNG)
    ok = decode_png(data, len, t, error);
  else if (format != FTH_MEDIA_FORMAT_UNKNOWN) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, t->name,
                        "not an image: the content is %s", fth_media_format_name(format));
    return FALSE;
  } else if (is_magic_prefix(data, len)) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, t->name,
                        "image data ends early (truncated at byte %" G_GSIZE_FORMAT ")", len);
    return FALSE;
  } else {
    fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, t->name,
                        "not a JPEG or PNG image (unrecognised content)");
    return FALSE;
  }
  if (!ok) {
    g_clear_pointer(&t->allocated, g_free);
  }
  return ok;
}

gboolean
fth_image_probe_memory(const guint8 *data, gsize len, const char *name, FthImageDecodeFlags flags,
                       FthImageInfo *info, GError **error)
{
  DecodeTarget t = {.name = name, .flags = flags, .header_only = TRUE};
  gboolean ok = decode_any(data, len, &t, error);
  *info = ok ? t.info : (FthImageInfo){0};
  return ok;
}

gboolean
fth_image_probe_file(const char *path, FthImageDecodeFlags flags, FthImageInfo *info,
                     GError **error)
{
  /* The mapping is lazy: only the pages holding the headers are read. */
  FthMediaFile file;
  if (!fth_media_file_map(path, &file, error)) {
    *info = (FthImageInfo){0};
    return FALSE;
  }
  gboolean ok = fth_image_probe_memory(file.data, file.len, path, flags, info, error);
  fth_media_file_unmap(&file);
  return ok;
}

gboolean
fth_image_decode_memory(const guint8 *data, gsize len, const char *name,
                        FthImageDecodeFlags flags, FthImage *image, GError **error)
{
  DecodeTarget t = {.name = name, .flags = flags};
  *image = (FthImage){0};
  if (!decode_any(data, len, &t, error))
    return FALSE;
  image->width = t.info.width;
  image->height = t.info.height;
  image->channels = t.info.channels;
  image->pixels = t.allocated;
  return TRUE;
}

gboolean
fth_image_decode_file(const char *path, FthImageDecodeFlags flags, FthImage *image,
                      GError **error)
{
  FthMediaFile file;
  *image = (FthImage){0};
  if (!fth_media_file_map(path, &file, error))
    return FALSE;
  gboolean ok = fth_image_decode_memory(file.data, file.len, path, flags, image, error);
  fth_media_file_unmap(&file);
  return ok;
}

gboolean
fth_image_decode_reduced_memory(const guint8 *data, gsize len, const char *name,
                                FthImageDecodeFlags flags, int reduction, FthImage *image,
                                GError **error)
{
  g_return_val_if_fail(reduction == 1 || reduction == 2 || reduction == 4 || reduction == 8,
                       FALSE);
  DecodeTarget t = {.name = name, .flags = flags, .reduction = reduction};
  *image = (FthImage){0};
  if (!decode_any(data, len, &t, error))
    return FALSE;
  image->width = t.info.width;
  image->height = t.info.height;
  image->channels = t.info.channels;
  image->pixels = t.allocated;
  return TRUE;
}

gboolean
fth_image_decode_reduced_file(const char *path, FthImageDecodeFlags flags, int reduction,
                              FthImage *image, GError **error)
{
  FthMediaFile file;
  *image = (FthImage){0};
  if (!fth_media_file_map(path, &file, error))
    return FALSE;
  gboolean ok = fth_image_decode_reduced_memory(file.data, file.len, path, flags, reduction,
                                                image, error);
  fth_media_file_unmap(&file);
  return ok;
}

int
fth_image_reduction_for_view(int width, int height, int view_width, int view_height)
{
  if (width <= 0 || height <= 0)
    return 1;
  if (view_width <= 0 || view_height <= 0)
    return 8;
  /* The fitted picture's size in image pixels per view pixel: the reduced copy may be that
   * much smaller and still cover every view pixel with one of its own. */
  double ratio = MAX((double) width / view_width, (double) height / view_height);
  int reduction = 1;
  while (reduction < 8 && 2 * reduction <= ratio)
    reduction *= 2;
  return reduction;
}

gboolean
fth_image_decode_into(const guint8 *data, gsize len, const char *name, FthImageDecodeFlags flags,
                      guint8 *pixels, gsize capacity, FthImageInfo *info, GError **error)
{
  g_return_val_if_fail(pixels != NULL, FALSE);
  DecodeTarget t = {.name = name, .flags = flags, .pixels = pixels, .capacity = capacity};
  gboolean ok = decode_any(data, len, &t, error);
  *info = t.info;
  return ok;
}

void
fth_image_clear(FthImage *image)
{
  g_clear_pointer(&image->pixels, g_free);
  image->width = image->height = image->channels = 0;
}
