/* libFuzzer target: JPEG and PNG decoding from memory (built as fuzz-jpeg and fuzz-png; the
 * decoder picks the format by content, the two differ in their seed corpus). */
#include <fathom/media.h>

int LLVMFuzzerTestOneInput(const guint8 *data, size_t len);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t len)
{
  /* Huge declared sizes only test the allocator and time out; the limits are tested apart. */
  FthImageInfo info;
  if (!fth_image_probe_memory(data, len, "fuzz", 0, &info, NULL) ||
      (gsize) info.width * (gsize) info.height > ((gsize) 1 << 22))
    return 0;
  /* The input's length picks the flags, so every path gets exercised. */
  static const FthImageDecodeFlags flags[] = {
    FTH_IMAGE_DECODE_DEFAULT, FTH_IMAGE_DECODE_GRAYSCALE, FTH_IMAGE_DECODE_RGB,
    FTH_IMAGE_DECODE_NO_ALPHA | FTH_IMAGE_DECODE_FAST};
  FthImage image;
  GError *error = NULL;
  if (fth_image_decode_memory(data, len, "fuzz", flags[len % 4], &image, &error)) {
    volatile guint8 sink = image.pixels[(gsize) image.width * image.height * image.channels - 1];
    (void) sink;
    fth_image_clear(&image);
  } else {
    g_error_free(error);
  }
  return 0;
}
