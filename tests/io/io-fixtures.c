#include "io-fixtures.h"

#include <math.h>
#include <stdio.h>
#include <jpeglib.h>
#include <png.h>
#include <string.h>

static guint8 *
pattern(int w, int h, guint seed)
{
  guint8 *px = g_malloc((gsize)w * (gsize)h * 3);
  GRand *rand = g_rand_new_with_seed(seed);
  for (int i = 0; i < w * h; i++) {
    /* Smooth gradients plus a little noise: decodes to plausible pixels, and the seed changes
     * the bytes. */
    int x = i % w, y = i / w;
    px[3 * i] = (guint8)(x * 255 / MAX(w - 1, 1));
    px[3 * i + 1] = (guint8)(y * 255 / MAX(h - 1, 1));
    px[3 * i + 2] = (guint8)g_rand_int_range(rand, 0, 256);
  }
  g_rand_free(rand);
  return px;
}

GBytes *
fth_test_jpeg(int w, int h, guint seed)
{
  g_autofree guint8 *px = pattern(w, h, seed);
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char *out = NULL;
  unsigned long out_len = 0;
  jpeg_mem_dest(&c, &out, &out_len);
  c.image_width = (JDIMENSION)w;
  c.image_height = (JDIMENSION)h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = px + (gsize)c.next_scanline * (gsize)w * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  GBytes *bytes = g_bytes_new(out, out_len);
  free(out);
  return bytes;
}

GBytes *
fth_test_png(int w, int h, guint seed)
{
  g_autofree guint8 *px = pattern(w, h, seed);
  png_image image;
  memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = (png_uint_32)w;
  image.height = (png_uint_32)h;
  image.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  g_assert_true(png_image_write_to_memory(&image, NULL, &size, 0, px, 0, NULL));
  guint8 *out = g_malloc(size);
  g_assert_true(png_image_write_to_memory(&image, out, &size, 0, px, 0, NULL));
  return g_bytes_new_take(out, size);
}

static void
put_u32(GByteArray *a, guint32 v)
{
  guint8 b[4] = { (guint8)v, (guint8)(v >> 8), (guint8)(v >> 16), (guint8)(v >> 24) };
  g_byte_array_append(a, b, 4);
}

static void
put_u16(GByteArray *a, guint16 v)
{
  guint8 b[2] = { (guint8)v, (guint8)(v >> 8) };
  g_byte_array_append(a, b, 2);
}

GBytes *
fth_test_wav(int rate, int frames)
{
  GByteArray *a = g_byte_array_new();
  g_byte_array_append(a, (const guint8 *)"RIFF", 4);
  put_u32(a, (guint32)(36 + frames * 2));
  g_byte_array_append(a, (const guint8 *)"WAVEfmt ", 8);
  put_u32(a, 16);
  put_u16(a, 1);
  put_u16(a, 1);
  put_u32(a, (guint32)rate);
  put_u32(a, (guint32)rate * 2);
  put_u16(a, 2);
  put_u16(a, 16);
  g_byte_array_append(a, (const guint8 *)"data", 4);
  put_u32(a, (guint32)frames * 2);
  for (int i = 0; i < frames; i++)
    put_u16(a, (guint16)(gint16)(8000.0 * sin(2 * G_PI * 440.0 * i / rate)));
  return g_byte_array_free_to_bytes(a);
}

void
fth_test_write_bytes(const char *path, GBytes *bytes)
{
  gsize len;
  const void *data = g_bytes_get_data(bytes, &len);
  fth_test_write(path, data, len);
}

char *
fth_test_tmpdir(void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp("fathom-io-XXXXXX", &error);
  g_assert_no_error(error);
  return dir;
}
