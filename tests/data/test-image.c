/* Image decoding: pixels against the known source (encoded here with libpng/libjpeg), probing,
 * PNG variants (16-bit, palette, gray, alpha, interlaced), flags, caller buffers, limits. */
#include <fathom/media.h>

#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include <jpeglib.h>
#include <png.h>

/* A smooth pattern (no wrap-around edges, so JPEG's error stays small), different per channel. */
static guint8 *
make_pattern(int w, int h, int c)
{
  guint8 *p = g_malloc((gsize) w * h * c);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int base = x * 180 / MAX(w - 1, 1) + y * 60 / MAX(h - 1, 1); /* 0 .. 240 */
      const int channel_value[4] = {base, 240 - base, base / 2 + 60, 255 - base / 3};
      for (int k = 0; k < c; k++)
        p[((gsize) y * w + x) * c + k] = (guint8) channel_value[k];
    }
  return p;
}

static void
png_write_bytes(png_structp png, png_bytep data, size_t n)
{
  g_byte_array_append(png_get_io_ptr(png), data, (guint) n);
}

static void
png_flush_nothing(png_structp png)
{
}

typedef struct {
  int color_type;
  int bit_depth;
  gboolean interlace;
  const png_color *palette;
  int n_palette;
  const guint8 *trns;
  int n_trns;
} PngSpec;

/* rows: packed samples as libpng expects for the bit depth (16-bit big-endian). */
static GByteArray *
encode_png(int w, int h, const PngSpec *spec, const guint8 *rows, gsize stride)
{
  GByteArray *out = g_byte_array_new();
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  g_assert_true(setjmp(png_jmpbuf(png)) == 0);
  png_set_write_fn(png, out, png_write_bytes, png_flush_nothing);
  png_set_IHDR(png, info, (png_uint_32) w, (png_uint_32) h, spec->bit_depth, spec->color_type,
               spec->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (spec->palette)
    png_set_PLTE(png, info, spec->palette, spec->n_palette);
  if (spec->trns)
    png_set_tRNS(png, info, spec->trns, spec->n_trns, NULL);
  png_write_info(png, info);
  png_bytep *row_ptrs = g_new(png_bytep, h);
  for (int y = 0; y < h; y++)
    row_ptrs[y] = (png_bytep) rows + (gsize) y * stride;
  png_write_image(png, row_ptrs);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  g_free(row_ptrs);
  return out;
}

static GByteArray *
encode_png8(int w, int h, int channels, const guint8 *pixels)
{
  static const int types[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                              PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  PngSpec spec = {.color_type = types[channels], .bit_depth = 8};
  return encode_png(w, h, &spec, pixels, (gsize) w * channels);
}

static GByteArray *
encode_jpeg(int w, int h, int channels, J_COLOR_SPACE space, const guint8 *pixels, int quality)
{
  struct jpeg_compress_struct cinfo;
  struct jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char *buf = NULL;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = (JDIMENSION) w;
  cinfo.image_height = (JDIMENSION) h;
  cinfo.input_components = channels;
  cinfo.in_color_space = space;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = (JSAMPROW) pixels + (gsize) cinfo.next_scanline * w * channels;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  GByteArray *out = g_byte_array_new();
  g_byte_array_append(out, buf, (guint) size);
  free(buf);
  return out;
}

static void
assert_close(const guint8 *a, const guint8 *b, gsize n, double max_mean, int max_abs)
{
  double sum = 0;
  int worst = 0;
  for (gsize i = 0; i < n; i++) {
    int d = abs((int) a[i] - (int) b[i]);
    sum += d;
    worst = MAX(worst, d);
  }
  g_test_message("mean abs diff %.3f, max %d", sum / (double) n, worst);
  g_assert_cmpfloat(sum / (double) n, <=, max_mean);
  g_assert_cmpint(worst, <=, max_abs);
}

static guint8
luma601(const guint8 *rgb)
{
  return (guint8) lround(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
}

static void
test_png_exact(void)
{
  for (int c = 1; c <= 4; c++) {
    if (c == 2)
      continue; /* gray+alpha has its own test: it decodes to RGBA */
    const int w = 37, h = 23;
    g_autofree guint8 *src = make_pattern(w, h, c);
    g_autoptr(GByteArray) png = encode_png8(w, h, c, src);
    FthImage img;
    g_autoptr(GError) error = NULL;
    g_assert_true(fth_image_decode_memory(png->data, png->len, "a.png", 0, &img, &error));
    g_assert_no_error(error);
    g_assert_cmpint(img.width, ==, w);
    g_assert_cmpint(img.height, ==, h);
    g_assert_cmpint(img.channels, ==, c);
    g_assert_cmpmem(img.pixels, (gsize) w * h * c, src, (gsize) w * h * c);
    fth_image_clear(&img);
    g_assert_null(img.pixels);
  }
}

static void
test_png_alpha(void)
{
  const int w = 19, h = 11;
  g_autofree guint8 *src = make_pattern(w, h, 4);
  g_autoptr(GByteArray) png = encode_png8(w, h, 4, src);
  FthImage img;
  g_assert_true(fth_image_decode_memory(png->data, png->len, "a.png", FTH_IMAGE_DECODE_NO_ALPHA,
                                        &img, NULL));
  g_assert_cmpint(img.channels, ==, 3);
  for (int i = 0; i < w * h; i++)
    g_assert_cmpmem(img.pixels + 3 * i, 3, src + 4 * i, 3);
  fth_image_clear(&img);

  g_assert_true(fth_image_decode_memory(png->data, png->len, "a.png", FTH_IMAGE_DECODE_GRAYSCALE,
                                        &img, NULL));
  g_assert_cmpint(img.channels, ==, 1);
  for (int i = 0; i < w * h; i++)
    g_assert_cmpint(abs(img.pixels[i] - luma601(src + 4 * i)), <=, 1);
  fth_image_clear(&img);

  /* Gray + alpha becomes RGBA (channels are always 1, 3 or 4). */
  g_autofree guint8 *ga = make_pattern(w, h, 2);
  g_autoptr(GByteArray) png_ga = encode_png8(w, h, 2, ga);
  g_assert_true(fth_image_decode_memory(png_ga->data, png_ga->len, "ga.png", 0, &img, NULL));
  g_assert_cmpint(img.channels, ==, 4);
  for (int i = 0; i < w * h; i++) {
    guint8 expect[4] = {ga[2 * i], ga[2 * i], ga[2 * i], ga[2 * i + 1]};
    g_assert_cmpmem(img.pixels + 4 * i, 4, expect, 4);
  }
  fth_image_clear(&img);
}

static void
test_png_gray_to_rgb(void)
{
  const int w = 8, h = 5;
  g_autofree guint8 *src = make_pattern(w, h, 1);
  g_autoptr(GByteArray) png = encode_png8(w, h, 1, src);
  FthImage img;
  g_assert_true(fth_image_decode_memory(png->data, png->len, "g.png", FTH_IMAGE_DECODE_RGB, &img,
                                        NULL));
  g_assert_cmpint(img.channels, ==, 3);
  for (int i = 0; i < w * h; i++)
    for (int k = 0; k < 3; k++)
      g_assert_cmpuint(img.pixels[3 * i + k], ==, src[i]);
  fth_image_clear(&img);
}

static void
test_png_16bit(void)
{
  const int w = 13, h = 7;
  g_autofree guint8 *rows = g_malloc((gsize) w * h * 3 * 2);
  g_autofree guint16 *values = g_new(guint16, w * h * 3);
  for (int i = 0; i < w * h * 3; i++) {
    values[i] = (guint16) (i * 997 + 123);
    rows[2 * i] = values[i] >> 8;
    rows[2 * i + 1] = values[i] & 0xFF;
  }
  PngSpec spec = {.color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 16};
  g_autoptr(GByteArray) png = encode_png(w, h, &spec, rows, (gsize) w * 6);
  FthImage img;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_image_decode_memory(png->data, png->len, "d.png", 0, &img, &error));
  g_assert_no_error(error);
  g_assert_cmpint(img.channels, ==, 3);
  for (int i = 0; i < w * h * 3; i++) /* scaled, rounded: v * 255 / 65535 */
    g_assert_cmpint(img.pixels[i], ==, (int) lround(values[i] * 255.0 / 65535.0));
  fth_image_clear(&img);
}

static void
test_png_palette(void)
{
  const int w = 16, h = 4;
  png_color palette[16];
  guint8 trns[16];
  for (int i = 0; i < 16; i++) {
    palette[i] = (png_color){(png_byte) (i * 16), (png_byte) (255 - i * 9), (png_byte) (i * i)};
    trns[i] = (guint8) (255 - i * 3);
  }
  guint8 rows[16 * 4];
  for (int i = 0; i < w * h; i++)
    rows[i] = (guint8) ((i * 7) % 16);
  PngSpec spec = {.color_type = PNG_COLOR_TYPE_PALETTE, .bit_depth = 8, .palette = palette,
                  .n_palette = 16};
  g_autoptr(GByteArray) png = encode_png(w, h, &spec, rows, w);
  FthImage img;
  g_assert_true(fth_image_decode_memory(png->data, png->len, "p.png", 0, &img, NULL));
  g_assert_cmpint(img.channels, ==, 3);
  for (int i = 0; i < w * h; i++) {
    const png_color *pc = &palette[rows[i]];
    guint8 expect[3] = {pc->red, pc->green, pc->blue};
    g_assert_cmpmem(img.pixels + 3 * i, 3, expect, 3);
  }
  fth_image_clear(&img);

  /* With transparency: RGBA, alpha from tRNS. */
  spec.trns = trns;
  spec.n_trns = 16;
  g_autoptr(GByteArray) png_t = encode_png(w, h, &spec, rows, w);
  g_assert_true(fth_image_decode_memory(png_t->data, png_t->len, "pt.png", 0, &img, NULL));
  g_assert_cmpint(img.channels, ==, 4);
  for (int i = 0; i < w * h; i++)
    g_assert_cmpuint(img.pixels[4 * i + 3], ==, trns[rows[i]]);
  fth_image_clear(&img);
}

static void
test_png_gray4_interlaced(void)
{
  const int w = 10, h = 9;
  /* 4-bit gray, two pixels a byte, rows padded to whole bytes. */
  const gsize stride = (w + 1) / 2;
  guint8 rows[5 * 9];
  guint8 levels[10 * 9];
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 v = (guint8) ((x + 3 * y) % 16);
      levels[y * w + x] = v;
      if (x % 2 == 0)
        rows[y * stride + x / 2] = (guint8) (v << 4);
      else
        rows[y * stride + x / 2] |= v;
    }
  PngSpec spec = {.color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 4, .interlace = TRUE};
  g_autoptr(GByteArray) png = encode_png(w, h, &spec, rows, stride);
  FthImage img;
  g_assert_true(fth_image_decode_memory(png->data, png->len, "g4.png", 0, &img, NULL));
  g_assert_cmpint(img.channels, ==, 1);
  for (int i = 0; i < w * h; i++)
    g_assert_cmpuint(img.pixels[i], ==, levels[i] * 17u);
  fth_image_clear(&img);
}

static void
test_jpeg_quality95(void)
{
  const int w = 64, h = 48;
  g_autofree guint8 *src = make_pattern(w, h, 3);
  g_autoptr(GByteArray) jpg = encode_jpeg(w, h, 3, JCS_RGB, src, 95);
  FthImage img;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_image_decode_memory(jpg->data, jpg->len, "q95.jpg", 0, &img, &error));
  g_assert_no_error(error);
  g_assert_cmpint(img.width, ==, w);
  g_assert_cmpint(img.height, ==, h);
  g_assert_cmpint(img.channels, ==, 3);
  assert_close(img.pixels, src, (gsize) w * h * 3, 2.0, 24);
  fth_image_clear(&img);

  g_assert_true(fth_image_decode_memory(jpg->data, jpg->len, "q95.jpg", FTH_IMAGE_DECODE_FAST,
                                        &img, NULL));
  assert_close(img.pixels, src, (gsize) w * h * 3, 3.0, 40);
  fth_image_clear(&img);

  g_assert_true(fth_image_decode_memory(jpg->data, jpg->len, "q95.jpg",
                                        FTH_IMAGE_DECODE_GRAYSCALE, &img, NULL));
  g_assert_cmpint(img.channels, ==, 1);
  g_autofree guint8 *luma = g_malloc((gsize) w * h);
  for (int i = 0; i < w * h; i++)
    luma[i] = luma601(src + 3 * i);
  assert_close(img.pixels, luma, (gsize) w * h, 2.0, 16);
  fth_image_clear(&img);
}

static void
test_jpeg_gray(void)
{
  const int w = 40, h = 30;
  g_autofree guint8 *src = make_pattern(w, h, 1);
  g_autoptr(GByteArray) jpg = encode_jpeg(w, h, 1, JCS_GRAYSCALE, src, 95);
  FthImage img;
  g_assert_true(fth_image_decode_memory(jpg->data, jpg->len, "g.jpg", 0, &img, NULL));
  g_assert_cmpint(img.channels, ==, 1);
  assert_close(img.pixels, src, (gsize) w * h, 2.0, 16);
  fth_image_clear(&img);
  g_assert_true(fth_image_decode_memory(jpg->data, jpg->len, "g.jpg", FTH_IMAGE_DECODE_RGB, &img,
                                        NULL));
  g_assert_cmpint(img.channels, ==, 3);
  for (int i = 0; i < w * h; i++) {
    g_assert_cmpuint(img.pixels[3 * i], ==, img.pixels[3 * i + 1]);
    g_assert_cmpuint(img.pixels[3 * i], ==, img.pixels[3 * i + 2]);
  }
  fth_image_clear(&img);
}

/* Adobe CMYK JPEGs store inverted ink: 255 means no ink. */
static void
test_jpeg_cmyk(void)
{
  const int w = 16, h = 16;
  static const guint8 stored[3][4] = {{255, 255, 255, 255}, {0, 255, 255, 255}, {255, 255, 255, 0}};
  static const guint8 expect[3][3] = {{255, 255, 255}, {0, 255, 255}, {0, 0, 0}};
  for (int k = 0; k < 3; k++) {
    g_autofree guint8 *src = g_malloc(w * h * 4);
    for (int i = 0; i < w * h; i++)
      memcpy(src + 4 * i, stored[k], 4);
    g_autoptr(GByteArray) jpg = encode_jpeg(w, h, 4, JCS_CMYK, src, 100);
    FthImage img;
    g_autoptr(GError) error = NULL;
    g_assert_true(fth_image_decode_memory(jpg->data, jpg->len, "cmyk.jpg", 0, &img, &error));
    g_assert_no_error(error);
    g_assert_cmpint(img.channels, ==, 3);
    for (int c = 0; c < 3; c++)
      g_assert_cmpint(abs(img.pixels[(8 * w + 8) * 3 + c] - expect[k][c]), <=, 3);
    fth_image_clear(&img);
  }
}

static void
test_probe(void)
{
  const int w = 301, h = 7;
  g_autofree guint8 *src = make_pattern(w, h, 3);
  g_autoptr(GByteArray) jpg = encode_jpeg(w, h, 3, JCS_RGB, src, 80);
  g_autoptr(GByteArray) png = encode_png8(w, h, 3, src);
  FthImageInfo info;
  g_assert_true(fth_image_probe_memory(jpg->data, jpg->len, "p.jpg", 0, &info, NULL));
  g_assert_cmpint(info.width, ==, w);
  g_assert_cmpint(info.height, ==, h);
  g_assert_cmpint(info.channels, ==, 3);
  g_assert_true(fth_image_probe_memory(png->data, png->len, "p.png", FTH_IMAGE_DECODE_GRAYSCALE,
                                       &info, NULL));
  g_assert_cmpint(info.width, ==, w);
  g_assert_cmpint(info.height, ==, h);
  g_assert_cmpint(info.channels, ==, 1);
  /* Headers only: a JPEG cut right after its scan header still probes (but does not decode). */
  gsize sos = 2;
  while (sos + 4 < jpg->len && jpg->data[sos + 1] != 0xDA)
    sos += 2 + ((gsize) jpg->data[sos + 2] << 8 | jpg->data[sos + 3]);
  gsize cut = sos + 2 + ((gsize) jpg->data[sos + 2] << 8 | jpg->data[sos + 3]);
  g_assert_cmpuint(cut, <, jpg->len);
  g_assert_true(fth_image_probe_memory(jpg->data, cut, "cut.jpg", 0, &info, NULL));
  g_assert_cmpint(info.width, ==, w);
  FthImage cut_img;
  g_assert_false(fth_image_decode_memory(jpg->data, cut, "cut.jpg", 0, &cut_img, NULL));

  g_autofree char *dir = g_dir_make_tmp("fth-image-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "probe.png", NULL);
  g_assert_true(g_file_set_contents(path, (const char *) png->data, png->len, NULL));
  g_assert_true(fth_image_probe_file(path, 0, &info, NULL));
  g_assert_cmpint(info.width, ==, w);
  g_assert_cmpint(info.channels, ==, 3);
  FthImage img;
  g_assert_true(fth_image_decode_file(path, 0, &img, NULL));
  g_assert_cmpmem(img.pixels, (gsize) w * h * 3, src, (gsize) w * h * 3);
  fth_image_clear(&img);
  g_remove(path);
  g_rmdir(dir);
}

static void
test_decode_into(void)
{
  const int w = 20, h = 10;
  g_autofree guint8 *src = make_pattern(w, h, 3);
  g_autoptr(GByteArray) png = encode_png8(w, h, 3, src);
  gsize need = (gsize) w * h * 3;
  g_autofree guint8 *buf = g_malloc(need + 16);
  memset(buf, 0xAB, need + 16);
  FthImageInfo info;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_image_decode_into(png->data, png->len, "i.png", 0, buf, need, &info, &error));
  g_assert_no_error(error);
  g_assert_cmpmem(buf, need, src, need);
  g_assert_cmpuint(buf[need], ==, 0xAB); /* nothing written past the image */

  g_assert_false(fth_image_decode_into(png->data, png->len, "i.png", 0, buf, need - 1, &info,
                                       &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_BUFFER_TOO_SMALL);
  g_assert_nonnull(strstr(error->message, "i.png"));
  g_assert_cmpint(info.width, ==, w);
  g_assert_cmpint(info.height, ==, h);
  g_assert_cmpint(info.channels, ==, 3);
}

static void
put_be32(guint8 *p, guint32 v)
{
  p[0] = (guint8) (v >> 24);
  p[1] = (guint8) (v >> 16);
  p[2] = (guint8) (v >> 8);
  p[3] = (guint8) v;
}

static void
test_limits(void)
{
  g_autofree guint8 *src = make_pattern(8, 8, 3);
  /* PNG: rewrite the IHDR size and fix its CRC. */
  g_autoptr(GByteArray) png = encode_png8(8, 8, 3, src);
  guint8 *ihdr = png->data + 8; /* length, "IHDR", 13 bytes, CRC */
  g_assert_cmpmem(ihdr + 4, 4, "IHDR", 4);
  const guint32 sizes[][2] = {{40000, 8}, {30000, 30000}};
  for (gsize k = 0; k < G_N_ELEMENTS(sizes); k++) {
    put_be32(ihdr + 8, sizes[k][0]);
    put_be32(ihdr + 12, sizes[k][1]);
    put_be32(ihdr + 21, (guint32) crc32(0, ihdr + 4, 17));
    FthImage img;
    g_autoptr(GError) error = NULL;
    g_assert_false(fth_image_decode_memory(png->data, png->len, "big.png", 0, &img, &error));
    g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TOO_LARGE);
    g_assert_true(g_str_has_prefix(error->message, "big.png: "));
    g_assert_null(img.pixels);
  }
  /* JPEG: rewrite the SOF0 height and width. */
  g_autoptr(GByteArray) jpg = encode_jpeg(8, 8, 3, JCS_RGB, src, 90);
  gsize i = 2;
  while (i + 4 < jpg->len && jpg->data[i + 1] != 0xC0)
    i += 2 + ((gsize) jpg->data[i + 2] << 8 | jpg->data[i + 3]);
  g_assert_cmpuint(jpg->data[i + 1], ==, 0xC0);
  jpg->data[i + 5] = 40000 >> 8; /* height */
  jpg->data[i + 6] = 40000 & 0xFF;
  FthImageInfo info;
  g_autoptr(GError) error = NULL;
  g_assert_false(fth_image_probe_memory(jpg->data, jpg->len, "big.jpg", 0, &info, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TOO_LARGE);
  g_assert_nonnull(strstr(error->message, "40000"));
}

static void
test_errors(void)
{
  g_autofree guint8 *src = make_pattern(64, 64, 3);
  g_autoptr(GByteArray) jpg = encode_jpeg(64, 64, 3, JCS_RGB, src, 90);
  g_autoptr(GByteArray) png = encode_png8(64, 64, 3, src);
  FthImage img;
  g_autoptr(GError) error = NULL;

  g_assert_false(fth_image_decode_memory(jpg->data, jpg->len / 2, "photo.jpg", 0, &img, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TRUNCATED);
  g_autofree char *expect = g_strdup_printf("photo.jpg: JPEG data ends early (truncated at byte %u)", jpg->len / 2);
  g_assert_cmpstr(error->message, ==, expect);
  g_assert_null(img.pixels);
  g_clear_error(&error);

  g_assert_false(fth_image_decode_memory(png->data, png->len - 30, "x.png", 0, &img, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TRUNCATED);
  g_clear_error(&error);

  g_assert_false(fth_image_decode_memory(png->data, 0, "e.png", 0, &img, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_EMPTY);
  g_clear_error(&error);

  g_assert_false(fth_image_decode_memory((const guint8 *) "hello", 5, "t.png", 0, &img, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_UNSUPPORTED);
  g_clear_error(&error);

  g_assert_false(fth_image_decode_file("/nonexistent/dir/a.jpg", 0, &img, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_IO);
  g_assert_true(g_str_has_prefix(error->message, "/nonexistent/dir/a.jpg: "));
}

static void
test_sniff(void)
{
  g_autofree guint8 *src = make_pattern(4, 4, 3);
  g_autoptr(GByteArray) jpg = encode_jpeg(4, 4, 3, JCS_RGB, src, 90);
  g_autoptr(GByteArray) png = encode_png8(4, 4, 3, src);
  g_assert_cmpint(fth_media_sniff(jpg->data, jpg->len), ==, FTH_MEDIA_FORMAT_JPEG);
  g_assert_cmpint(fth_media_sniff(png->data, png->len), ==, FTH_MEDIA_FORMAT_PNG);
  g_assert_cmpint(fth_media_sniff((const guint8 *) "RIFF\x24\0\0\0WAVEfmt ", 16), ==,
                  FTH_MEDIA_FORMAT_WAV);
  g_assert_cmpint(fth_media_sniff((const guint8 *) "fLaC\0\0\0\x22", 8), ==, FTH_MEDIA_FORMAT_FLAC);
  g_assert_cmpint(fth_media_sniff((const guint8 *) "OggS\0\x02", 6), ==, FTH_MEDIA_FORMAT_OGG);
  g_assert_cmpint(fth_media_sniff((const guint8 *) "ID3\x04\0", 5), ==, FTH_MEDIA_FORMAT_MP3);
  g_assert_cmpint(fth_media_sniff((const guint8 *) "\xFF\xFB\x90\x64", 4), ==, FTH_MEDIA_FORMAT_MP3);
  g_assert_cmpint(fth_media_sniff((const guint8 *) "\0\0\x08\x03\0\0\0\x01", 8), ==,
                  FTH_MEDIA_FORMAT_IDX);
  g_assert_cmpint(fth_media_sniff((const guint8 *) "caf\xC3\xA9 \xE4\xB8\xAD", 9), ==,
                  FTH_MEDIA_FORMAT_TEXT);
  /* A multi-byte character cut by the end of the sample is still text; latin-1 is not. */
  g_assert_cmpint(fth_media_sniff((const guint8 *) "ab\xE4\xB8", 4), ==, FTH_MEDIA_FORMAT_TEXT);
  g_assert_cmpint(fth_media_sniff((const guint8 *) "caf\xE9 au lait", 12), ==,
                  FTH_MEDIA_FORMAT_UNKNOWN);
  g_assert_cmpint(fth_media_sniff((const guint8 *) "\x1f\x8b\x08\0", 4), ==,
                  FTH_MEDIA_FORMAT_UNKNOWN);
  g_assert_cmpint(fth_media_sniff(NULL, 0), ==, FTH_MEDIA_FORMAT_UNKNOWN);

  g_assert_cmpint(fth_media_format_from_path("/a/b/Photo.JPG"), ==, FTH_MEDIA_FORMAT_JPEG);
  g_assert_cmpint(fth_media_format_from_path("data.csv"), ==, FTH_MEDIA_FORMAT_CSV);
  g_assert_cmpint(fth_media_format_from_path("x.jsonl"), ==, FTH_MEDIA_FORMAT_JSONL);
  g_assert_cmpint(fth_media_format_from_path("notes.txt"), ==, FTH_MEDIA_FORMAT_TEXT);
  g_assert_cmpint(fth_media_format_from_path("train-images-idx3-ubyte.gz"), ==,
                  FTH_MEDIA_FORMAT_IDX);
  g_assert_cmpint(fth_media_format_from_path("song.mp3"), ==, FTH_MEDIA_FORMAT_MP3);
  g_assert_cmpint(fth_media_format_from_path("archive.tar.gz"), ==, FTH_MEDIA_FORMAT_UNKNOWN);
  g_assert_cmpint(fth_media_format_kind(FTH_MEDIA_FORMAT_FLAC), ==, FTH_MEDIA_KIND_AUDIO);
  g_assert_cmpint(fth_media_format_kind(FTH_MEDIA_FORMAT_IDX), ==, FTH_MEDIA_KIND_RECORDS);
  g_assert_cmpstr(fth_media_format_name(FTH_MEDIA_FORMAT_PNG), ==, "PNG");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/image/png-exact", test_png_exact);
  g_test_add_func("/image/png-alpha", test_png_alpha);
  g_test_add_func("/image/png-gray-to-rgb", test_png_gray_to_rgb);
  g_test_add_func("/image/png-16bit", test_png_16bit);
  g_test_add_func("/image/png-palette", test_png_palette);
  g_test_add_func("/image/png-gray4-interlaced", test_png_gray4_interlaced);
  g_test_add_func("/image/jpeg-quality95", test_jpeg_quality95);
  g_test_add_func("/image/jpeg-gray", test_jpeg_gray);
  g_test_add_func("/image/jpeg-cmyk", test_jpeg_cmyk);
  g_test_add_func("/image/probe", test_probe);
  g_test_add_func("/image/decode-into", test_decode_into);
  g_test_add_func("/image/limits", test_limits);
  g_test_add_func("/image/errors", test_errors);
  g_test_add_func("/image/sniff", test_sniff);
  return g_test_run();
}
