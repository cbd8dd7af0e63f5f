/* Writes COUNT distinct SIZE x SIZE RGB JPEGs (quality 90) into DIR for the import benchmark.
 * Deterministic: the same arguments give the same files. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>

int
main(int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: %s DIR COUNT SIZE\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  int count = atoi(argv[2]), size = atoi(argv[3]);
  if (count <= 0 || size <= 0 || size > 8192) {
    fprintf(stderr, "%s: COUNT and SIZE must be positive (SIZE at most 8192)\n", argv[0]);
    return 2;
  }
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    fprintf(stderr, "%s: cannot create %s\n", argv[0], dir);
    return 1;
  }
  guint8 *row = g_malloc((gsize)size * 3);
  GRand *rand = g_rand_new_with_seed(42);
  for (int n = 0; n < count; n++) {
    g_autofree char *name = g_strdup_printf("%05d.jpg", n);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    FILE *f = fopen(path, "wb");
    if (!f) {
      fprintf(stderr, "%s: cannot write %s\n", argv[0], path);
      return 1;
    }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)size;
    c.image_height = (JDIMENSION)size;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    /* Gradients, a per-image phase and some noise: photo-like entropy, distinct hashes. */
    int phase = g_rand_int_range(rand, 0, 256);
    for (int y = 0; y < size; y++) {
      for (int x = 0; x < size; x++) {
        row[3 * x] = (guint8)((x + phase) & 255);
        row[3 * x + 1] = (guint8)((y * 2 + phase) & 255);
        row[3 * x + 2] = (guint8)(((x ^ y) + g_rand_int_range(rand, 0, 32)) & 255);
      }
      JSAMPROW r = row;
      jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
  }
  g_rand_free(rand);
  g_free(row);
  return 0;
}
