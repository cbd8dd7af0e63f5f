/* Augmentation: identity when off, exact flips and shifts, seeded determinism, jitter ranges. */
#include <fathom/train.h>
#include <math.h>
#include <string.h>

enum { C = 2, H = 6, W = 5 };

static void
make_image(uint8_t *img)
{
  for (int i = 0; i < C * H * W; i++)
    img[i] = (uint8_t)(i * 37 % 256);
}

static void
test_identity(void)
{
  uint8_t img[C * H * W];
  float out[C * H * W];
  make_image(img);
  FthAugment none = {0};
  float mean[C] = {0.5f, 0.25f}, std[C] = {0.5f, 2.0f};
  fth_augment_image(&none, img, C, H, W, 1, 3, 0, mean, std, out);
  for (int c = 0; c < C; c++)
    for (int i = 0; i < H * W; i++)
      g_assert_cmpfloat_with_epsilon(out[c * H * W + i],
                                     (img[c * H * W + i] / 255.0 - mean[c]) / std[c], 1e-6);
}

static void
test_flip(void)
{
  uint8_t img[C * H * W];
  float out[C * H * W];
  make_image(img);
  FthAugment flip = {.flip_prob = 1.0f};
  fth_augment_image(&flip, img, C, H, W, 9, 0, 0, NULL, NULL, out);
  for (int c = 0; c < C; c++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        g_assert_cmpfloat_with_epsilon(out[(c * H + y) * W + x] * 255.0,
                                       img[(c * H + y) * W + (W - 1 - x)], 1e-3);
}

/* With padding 2 every sample is shifted by an integer (dx, dy) in [-2, 2]: find it and check
 * all pixels, including the zero fill. Over many keys every shift shows up. */
static void
test_crop_shift(void)
{
  uint8_t img[C * H * W];
  float out[C * H * W];
  make_image(img);
  for (int i = 0; i < C * H * W; i++)
    img[i] = (uint8_t)(img[i] | 1); /* no zero pixels, so zero fill is recognisable */
  FthAugment crop = {.crop_padding = 2};
  int seen[5][5] = {{0}};
  for (uint64_t key = 0; key < 200; key++) {
    fth_augment_image(&crop, img, C, H, W, 5, key, 0, NULL, NULL, out);
    int found = 0;
    for (int dy = -2; dy <= 2; dy++)
      for (int dx = -2; dx <= 2; dx++) {
        gboolean match = TRUE;
        for (int c = 0; c < C && match; c++)
          for (int y = 0; y < H && match; y++)
            for (int x = 0; x < W && match; x++) {
              int sx = x - dx, sy = y - dy;
              double want = sx < 0 || sx >= W || sy < 0 || sy >= H ? 0 : img[(c * H + sy) * W + sx];
              match = fabs(out[(c * H + y) * W + x] * 255.0 - want) < 1e-3;
            }
        if (match) {
          seen[dy + 2][dx + 2]++;
          found++;
        }
      }
    g_assert_cmpint(found, ==, 1);
  }
  for (int i = 0; i < 25; i++)
    g_assert_cmpint(seen[i / 5][i % 5], >, 0);
}

static void
test_deterministic_and_jitter(void)
{
  uint8_t img[C * H * W];
  float a[C * H * W], b[C * H * W], c2[C * H * W];
  make_image(img);
  FthAugment all = {.flip_prob = 0.5f, .crop_padding = 1, .rotate_deg = 10, .brightness = 0.1f,
                    .contrast = 0.2f};
  fth_augment_image(&all, img, C, H, W, 77, 4, 3, NULL, NULL, a);
  fth_augment_image(&all, img, C, H, W, 77, 4, 3, NULL, NULL, b);
  g_assert_cmpmem(a, sizeof a, b, sizeof b);
  fth_augment_image(&all, img, C, H, W, 77, 4, 4, NULL, NULL, c2); /* next epoch differs */
  g_assert_true(memcmp(a, c2, sizeof a) != 0);
  for (int i = 0; i < C * H * W; i++)
    g_assert_true(a[i] >= 0.0f && a[i] <= 1.0f);
  /* Brightness alone shifts every pixel by the same amount, within +-0.1. */
  uint8_t flat[C * H * W];
  memset(flat, 128, sizeof flat);
  FthAugment bright = {.brightness = 0.1f};
  fth_augment_image(&bright, flat, C, H, W, 1, 2, 0, NULL, NULL, a);
  for (int i = 1; i < C * H * W; i++)
    g_assert_cmpfloat_with_epsilon(a[i], a[0], 1e-6);
  g_assert_cmpfloat(fabs(a[0] - 128 / 255.0), <=, 0.1 + 1e-6);
}

/* A small rotation keeps the centre pixel of an odd-sized image. */
static void
test_rotation_centre(void)
{
  enum { S = 7 };
  uint8_t img[S * S];
  for (int i = 0; i < S * S; i++)
    img[i] = (uint8_t)(i * 5);
  float out[S * S];
  FthAugment rot = {.rotate_deg = 15};
  fth_augment_image(&rot, img, 1, S, S, 3, 1, 0, NULL, NULL, out);
  g_assert_cmpfloat_with_epsilon(out[3 * S + 3] * 255.0, img[3 * S + 3], 1e-3);
  g_assert_true(memcmp(out, (float[S * S]){0}, sizeof out) != 0);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/augment/identity", test_identity);
  g_test_add_func("/augment/flip", test_flip);
  g_test_add_func("/augment/crop-shift", test_crop_shift);
  g_test_add_func("/augment/deterministic-jitter", test_deterministic_and_jitter);
  g_test_add_func("/augment/rotation-centre", test_rotation_centre);
  return g_test_run();
}
