/* Decoder throughput against the libraries used directly (the floor fth-data can reach):
 * JPEG vs a bare libjpeg-turbo scanline loop, PNG vs a bare libpng loop, IDX vs zlib's gzread,
 * plus audio decode speed through GStreamer. Prints one table; see bench/RESULTS.md. */
#include <fathom/media.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include <jpeglib.h>
#include <png.h>

#define W 1280
#define H 720

static double
now(void)
{
  return (double) g_get_monotonic_time() / 1e6;
}

static guint8 *
make_image(void)
{
  guint8 *p = g_malloc(W * H * 3);
  guint32 seed = 1;
  for (int i = 0; i < W * H * 3; i++) {
    seed = seed * 1664525u + 1013904223u;
    int x = (i / 3) % W, y = (i / 3) / W;
    p[i] = (guint8) (128 + 90 * sin(x * 0.02 + (i % 3)) * cos(y * 0.015) + (int) (seed >> 28));
  }
  return p;
}

static GByteArray *
encode_jpeg(const guint8 *px)
{
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  unsigned char *buf = NULL;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = W;
  c.image_height = H;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < H) {
    JSAMPROW row = (JSAMPROW) px + (gsize) c.next_scanline * W * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  GByteArray *a = g_byte_array_new();
  g_byte_array_append(a, buf, (guint) size);
  free(buf);
  return a;
}

static void
bare_jpeg(const GByteArray *jpg, guint8 *out)
{
  struct jpeg_decompress_struct d;
  struct jpeg_error_mgr e;
  d.err = jpeg_std_error(&e);
  jpeg_create_decompress(&d);
  jpeg_mem_src(&d, jpg->data, jpg->len);
  jpeg_read_header(&d, TRUE);
  d.out_color_space = JCS_RGB;
  jpeg_start_decompress(&d);
  while (d.output_scanline < d.output_height) {
    JSAMPROW row = out + (gsize) d.output_scanline * W * 3;
    jpeg_read_scanlines(&d, &row, 1);
  }
  jpeg_finish_decompress(&d);
  jpeg_destroy_decompress(&d);
}

static void
png_write_bytes(png_structp png, png_bytep data, size_t n)
{
  g_byte_array_append(png_get_io_ptr(png), data, (guint) n);
}

static GByteArray *
encode_png(const guint8 *px)
{
  GByteArray *a = g_byte_array_new();
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, a, png_write_bytes, NULL);
  png_set_IHDR(png, info, W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < H; y++)
    png_write_row(png, px + (gsize) y * W * 3);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return a;
}

typedef struct {
  const guint8 *data;
  gsize len, pos;
} Reader;

static void
png_read_bytes(png_structp png, png_bytep out, size_t n)
{
  Reader *r = png_get_io_ptr(png);
  memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

static void
bare_png(const GByteArray *a, guint8 *out)
{
  Reader r = {a->data, a->len, 0};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  png_set_read_fn(png, &r, png_read_bytes);
  png_read_info(png, info);
  png_read_update_info(png, info);
  png_bytep rows[H];
  for (int y = 0; y < H; y++)
    rows[y] = out + (gsize) y * W * 3;
  png_read_image(png, rows);
  png_destroy_read_struct(&png, &info, NULL);
}

/* Rates, higher is faster; ratio = fathom / peer. */
static void
row(const char *what, double ours, double peer)
{
  if (peer > 0)
    printf("| %-34s | %10.1f | %10.1f | %5.2f |\n", what, ours, peer, ours / peer);
  else
    printf("| %-34s | %10.1f | %10s | %5s |\n", what, ours, "-", "-");
}

int
main(int argc, char **argv)
{
  const int reps = argc > 1 ? atoi(argv[1]) : 30;
  g_autofree guint8 *px = make_image();
  g_autofree guint8 *out = g_malloc(W * H * 3);
  g_autoptr(GByteArray) jpg = encode_jpeg(px);
  g_autoptr(GByteArray) png = encode_png(px);
  FthImageInfo info;
  double mp = (double) W * H / 1e6;

  printf("| %-34s | %10s | %10s | %5s |\n", "decoder (1280x720 RGB)", "fathom", "peer", "ratio");
  printf("|------------------------------------|------------|------------|-------|\n");
  double t0 = now();
  for (int i = 0; i < reps; i++)
    bare_jpeg(jpg, out);
  double bare = now() - t0;
  t0 = now();
  for (int i = 0; i < reps; i++)
    fth_image_decode_into(jpg->data, jpg->len, "b.jpg", 0, out, W * H * 3, &info, NULL);
  double ours = now() - t0;
  row("JPEG q90 Mpx/s (bare libjpeg)", reps * mp / ours, reps * mp / bare);
  t0 = now();
  for (int i = 0; i < reps; i++)
    fth_image_decode_into(jpg->data, jpg->len, "b.jpg", FTH_IMAGE_DECODE_FAST, out, W * H * 3,
                          &info, NULL);
  row("JPEG q90 Mpx/s, FAST flag", reps * mp / (now() - t0), reps * mp / bare);

  t0 = now();
  for (int i = 0; i < reps; i++)
    bare_png(png, out);
  bare = now() - t0;
  t0 = now();
  for (int i = 0; i < reps; i++)
    fth_image_decode_into(png->data, png->len, "b.png", 0, out, W * H * 3, &info, NULL);
  ours = now() - t0;
  row("PNG Mpx/s (bare libpng)", reps * mp / ours, reps * mp / bare);

  const char *idx_path = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  if (g_file_test(idx_path, G_FILE_TEST_EXISTS)) {
    t0 = now();
    FthIdx *idx = fth_idx_open(idx_path, NULL);
    ours = now() - t0;
    gsize len = 0;
    fth_idx_get_data(idx, &len);
    fth_idx_free(idx);
    t0 = now();
    gzFile gz = gzopen(idx_path, "rb");
    g_autofree guint8 *buf = g_malloc(len + 16 + 1);
    gzbuffer(gz, 1 << 17);
    while (gzread(gz, buf, (unsigned) (len + 17)) > 0)
      ;
    gzclose(gz);
    bare = now() - t0;
    row("Fashion-MNIST IDX MB/s (gzread)", (double) len / 1e6 / ours, (double) len / 1e6 / bare);
  }

  /* 10 s of 44.1 kHz stereo 16-bit WAV. */
  const int rate = 44100, frames = rate * 10;
  GByteArray *wav = g_byte_array_new();
  guint32 data_len = frames * 4;
  guint8 hdr[44];
  memcpy(hdr, "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0", 24);
  guint32 v = 36 + data_len;
  memcpy(hdr + 4, &v, 4);
  v = rate;
  memcpy(hdr + 24, &v, 4);
  v = rate * 4;
  memcpy(hdr + 28, &v, 4);
  memcpy(hdr + 32, "\x04\0\x10\0data", 8);
  memcpy(hdr + 40, &data_len, 4);
  g_byte_array_append(wav, hdr, 44);
  for (int i = 0; i < frames; i++) {
    gint16 s[2] = {(gint16) (8000 * sin(i * 0.06)), (gint16) (6000 * sin(i * 0.11))};
    g_byte_array_append(wav, (guint8 *) s, 4);
  }
  FthAudio audio;
  t0 = now();
  fth_audio_decode_memory(wav->data, wav->len, "b.wav", 0, FALSE, &audio, NULL);
  row("WAV 44.1k stereo, x realtime", 10.0 / (now() - t0), 0);
  fth_audio_clear(&audio);
  t0 = now();
  fth_audio_decode_memory(wav->data, wav->len, "b.wav", 16000, TRUE, &audio, NULL);
  row("WAV -> 16 kHz mono, x realtime", 10.0 / (now() - t0), 0);
  fth_audio_clear(&audio);
  g_byte_array_unref(wav);
  return 0;
}
