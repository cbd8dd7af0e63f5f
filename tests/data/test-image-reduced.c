/* Reduced JPEG decoding (DCT scaling): the 1/2, 1/4 and 1/8 decodes against a box-downsampled
 * full decode, sides that are not multiples of the reduction, errors, the reduction a view
 * needs. */
#include <fathom/media.h>

#include <glib/gstdio.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/* Gradients with a coarse checker on top: detail that survives averaging over 8x8 blocks. */
static guint8 *
make_picture(int w, int h)
{
  guint8 *p = g_malloc((gsize)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 *px = p + ((gsize)y * w + x) * 3;
      int checker = ((x / 24) + (y / 24)) % 2 ? 40 : 0;
      px[0] = (guint8)(x * 200 / w + checker);
      px[1] = (guint8)(y * 200 / h + checker);
      px[2] = (guint8)(120 + checker);
    }
  return p;
}

static GByteArray *
encode_jpeg(int w, int h, const guint8 *rgb, int quality)
{
  struct jpeg_compress_struct cinfo;
  struct jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char *buf = NULL;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = (JDIMENSION)w;
  cinfo.image_height = (JDIMENSION)h;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = (JSAMPROW)rgb + (gsize)cinfo.next_scanline * w * 3;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  GByteArray *out = g_byte_array_new();
  g_byte_array_append(out, buf, (guint)size);
  free(buf);
  return out;
}

/* The mean of each R x R block of FULL (a partial block at the right or bottom edge averages
 * what there is): what a reduced decode approximates. */
static guint8 *
box_downsample(const FthImage *full, int r, int *out_w, int *out_h)
{
  int w = (full->width + r - 1) / r, h = (full->height + r - 1) / r, c = full->channels;
  guint8 *out = g_malloc((gsize)w * h * c);
  for (int by = 0; by < h; by++)
    for (int bx = 0; bx < w; bx++)
      for (int k = 0; k < c; k++) {
        int sum = 0, n = 0;
        for (int y = by * r; y < MIN((by + 1) * r, full->height); y++)
          for (int x = bx * r; x < MIN((bx + 1) * r, full->width); x++) {
            sum += full->pixels[((gsize)y * full->width + x) * c + k];
            n++;
          }
        out[((gsize)by * w + bx) * c + k] = (guint8)((sum + n / 2) / n);
      }
  *out_w = w;
  *out_h = h;
  return out;
}

static void
check_reduction(const GByteArray *jpg, int reduction, double max_mean, int max_abs)
{
  g_autoptr(GError) error = NULL;
  FthImage full, reduced;
  g_assert_true(fth_image_decode_memory(jpg->data, jpg->len, "p.jpg", FTH_IMAGE_DECODE_RGB,
                                        &full, &error));
  g_assert_no_error(error);
  g_assert_true(fth_image_decode_reduced_memory(jpg->data, jpg->len, "p.jpg",
                                                FTH_IMAGE_DECODE_RGB, reduction, &reduced,
                                                &error));
  g_assert_no_error(error);

  int w, h;
  g_autofree guint8 *expect = box_downsample(&full, reduction, &w, &h);
  g_assert_cmpint(reduced.width, ==, w);
  g_assert_cmpint(reduced.height, ==, h);
  g_assert_cmpint(reduced.channels, ==, 3);
  gsize n = (gsize)w * h * 3;
  double total = 0;
  int worst = 0;
  for (gsize i = 0; i < n; i++) {
    int d = abs((int)reduced.pixels[i] - (int)expect[i]);
    total += d;
    worst = MAX(worst, d);
  }
  if (g_test_verbose())
    g_printerr("1/%d: mean %.2f, max %d\n", reduction, total / n, worst);
  g_assert_cmpfloat(total / n, <, max_mean);
  g_assert_cmpint(worst, <=, max_abs);
  fth_image_clear(&full);
  fth_image_clear(&reduced);
}

static void
test_reduced_eighth(void)
{
  /* Sides that are not multiples of 8 or 16: the last block is partial. */
  g_autofree guint8 *src = make_picture(203, 157);
  g_autoptr(GByteArray) jpg = encode_jpeg(203, 157, src, 95);
  /* The reduced IDCT keeps the low frequencies of each block: close to a box mean. */
  check_reduction(jpg, 8, 1.5, 8);
}

static void
test_reduced_half_quarter(void)
{
  g_autofree guint8 *src = make_picture(160, 96);
  g_autoptr(GByteArray) jpg = encode_jpeg(160, 96, src, 95);
  check_reduction(jpg, 2, 1.5, 8);
  check_reduction(jpg, 4, 1.5, 8);

  /* 1 is a plain decode. */
  FthImage full, same;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_image_decode_memory(jpg->data, jpg->len, NULL, 0, &full, &error));
  g_assert_true(fth_image_decode_reduced_memory(jpg->data, jpg->len, NULL, 0, 1, &same, &error));
  g_assert_no_error(error);
  g_assert_cmpint(same.width, ==, 160);
  g_assert_cmpmem(same.pixels, (gsize)160 * 96 * 3, full.pixels, (gsize)160 * 96 * 3);
  fth_image_clear(&full);
  fth_image_clear(&same);
}

static void
test_reduced_file(void)
{
  g_autofree guint8 *src = make_picture(64, 48);
  g_autoptr(GByteArray) jpg = encode_jpeg(64, 48, src, 90);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("fathom-reduced-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *path = g_build_filename(dir, "a.jpg", NULL);
  g_assert_true(g_file_set_contents(path, (const char *)jpg->data, jpg->len, &error));

  FthImage img;
  g_assert_true(fth_image_decode_reduced_file(path, FTH_IMAGE_DECODE_GRAYSCALE, 8, &img, &error));
  g_assert_no_error(error);
  g_assert_cmpint(img.width, ==, 8);
  g_assert_cmpint(img.height, ==, 6);
  g_assert_cmpint(img.channels, ==, 1);
  fth_image_clear(&img);
  g_remove(path);
  g_rmdir(dir);
}

/* The offset of the first byte after marker FF CODE, or 0. */
static gsize
find_marker(const GByteArray *jpg, guint8 code)
{
  for (gsize i = 2; i + 1 < jpg->len; i++)
    if (jpg->data[i] == 0xFF && jpg->data[i + 1] == code)
      return i + 2;
  return 0;
}

static void
test_reduced_errors(void)
{
  g_autofree guint8 *src = make_picture(64, 64);
  g_autoptr(GByteArray) jpg = encode_jpeg(64, 64, src, 90);
  FthImage img;
  g_autoptr(GError) error = NULL;

  /* A Huffman table that claims more codes than it holds. */
  g_autoptr(GByteArray) bad = g_byte_array_new();
  g_byte_array_append(bad, jpg->data, jpg->len);
  gsize dht = find_marker(bad, 0xC4);
  g_assert_cmpuint(dht, >, 0);
  memset(bad->data + dht + 3, 0xFF, 16); /* after the length and the class/id byte: counts */
  g_assert_false(fth_image_decode_reduced_memory(bad->data, bad->len, "photo.jpg", 0, 8, &img,
                                                 &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_CORRUPT);
  g_assert_true(g_str_has_prefix(error->message, "photo.jpg: corrupt JPEG ("));
  g_assert_null(img.pixels);
  g_clear_error(&error);

  g_assert_false(fth_image_decode_reduced_memory(jpg->data, jpg->len / 2, "cut.jpg", 0, 4, &img,
                                                 &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TRUNCATED);
  g_assert_true(g_str_has_prefix(error->message, "cut.jpg: "));
  g_clear_error(&error);

  static const guint8 png_magic[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13 };
  g_assert_false(fth_image_decode_reduced_memory(png_magic, sizeof png_magic, "a.png", 0, 2,
                                                 &img, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_UNSUPPORTED);
  g_assert_cmpstr(error->message, ==, "a.png: reduced decoding needs a JPEG, the content is PNG");
  g_clear_error(&error);

  g_assert_false(fth_image_decode_reduced_file("/nonexistent/dir/b.jpg", 0, 8, &img, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_IO);
  g_assert_true(g_str_has_prefix(error->message, "/nonexistent/dir/b.jpg: "));
}

static void
test_reduction_for_view(void)
{
  /* 8k fitted to 1100 x 720: 11.4 image pixels a view pixel. */
  g_assert_cmpint(fth_image_reduction_for_view(8192, 8192, 1100, 720), ==, 8);
  g_assert_cmpint(fth_image_reduction_for_view(4000, 3000, 1100, 720), ==, 4);
  g_assert_cmpint(fth_image_reduction_for_view(3000, 1500, 1100, 720), ==, 2);
  g_assert_cmpint(fth_image_reduction_for_view(800, 600, 1100, 720), ==, 1);
  g_assert_cmpint(fth_image_reduction_for_view(8192, 8192, 0, 0), ==, 8);
  g_assert_cmpint(fth_image_reduction_for_view(0, 10, 100, 100), ==, 1);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/image-reduced/eighth", test_reduced_eighth);
  g_test_add_func("/image-reduced/half-quarter", test_reduced_half_quarter);
  g_test_add_func("/image-reduced/file", test_reduced_file);
  g_test_add_func("/image-reduced/errors", test_reduced_errors);
  g_test_add_func("/image-reduced/for-view", test_reduction_for_view);
  return g_test_run();
}
