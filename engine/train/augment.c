/* Image augmentation fused with the uint8 -> float conversion of a sample. */
#include "fathom/train.h"

#include <math.h>
#include <string.h>

static inline float
unit(uint32_t x)
{
  return fth_u32_to_unit_float(x);
}

void
fth_augment_image(const FthAugment *aug, const uint8_t *src, int channels, int height, int width,
                  uint64_t seed, uint64_t key, uint64_t epoch, const float *mean,
                  const float *std, float *dst)
{
  /* Eight draws per (sample, epoch): two Philox blocks, stream = sample key. */
  uint32_t r[8];
  fth_philox4x32(seed, key, 2 * epoch, r);
  fth_philox4x32(seed, key, 2 * epoch + 1, r + 4);

  bool flip = aug->flip_prob > 0 && unit(r[0]) < aug->flip_prob;
  int dx = 0, dy = 0;
  if (aug->crop_padding > 0) {
    int span = 2 * aug->crop_padding + 1;
    dx = (int)(unit(r[1]) * (float)span) - aug->crop_padding;
    dy = (int)(unit(r[2]) * (float)span) - aug->crop_padding;
  }
  float angle = aug->rotate_deg > 0 ? (2.0f * unit(r[3]) - 1.0f) * aug->rotate_deg : 0.0f;
  float bright = aug->brightness > 0 ? (2.0f * unit(r[4]) - 1.0f) * aug->brightness * 255.0f : 0;
  float contrast = aug->contrast > 0 ? 1.0f + (2.0f * unit(r[5]) - 1.0f) * aug->contrast : 1.0f;

  size_t plane = (size_t)height * (size_t)width;
  bool geometric = flip || dx != 0 || dy != 0 || angle != 0.0f;
  float cs = cosf(angle * (float)M_PI / 180.0f), sn = sinf(angle * (float)M_PI / 180.0f);
  float cx = (float)(width - 1) * 0.5f, cy = (float)(height - 1) * 0.5f;

  for (int c = 0; c < channels; c++) {
    const uint8_t *s = src + (size_t)c * plane;
    float *d = dst + (size_t)c * plane;
    if (!geometric) {
      for (size_t i = 0; i < plane; i++)
        d[i] = s[i];
    } else {
      for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
          /* Inverse map: undo the translation, then the rotation, then the flip. */
          float ux = (float)(x - dx) - cx, uy = (float)(y - dy) - cy;
          float sx = cs * ux + sn * uy + cx;
          float sy = -sn * ux + cs * uy + cy;
          if (flip)
            sx = (float)(width - 1) - sx;
          float fx = floorf(sx), fy = floorf(sy);
          int x0 = (int)fx, y0 = (int)fy;
          float ax = sx - fx, ay = sy - fy;
          float v = 0.0f;
          for (int k = 0; k < 4; k++) {
            int xx = x0 + (k & 1), yy = y0 + (k >> 1);
            float wgt = ((k & 1) ? ax : 1.0f - ax) * ((k >> 1) ? ay : 1.0f - ay);
            if (wgt != 0.0f && xx >= 0 && xx < width && yy >= 0 && yy < height)
              v += wgt * (float)s[(size_t)yy * (size_t)width + (size_t)xx];
          }
          d[(size_t)y * (size_t)width + (size_t)x] = v;
        }
    }
  }
  if (bright != 0.0f || contrast != 1.0f) {
    for (int c = 0; c < channels; c++) {
      float *d = dst + (size_t)c * plane;
      double sum = 0.0;
      for (size_t i = 0; i < plane; i++)
        sum += d[i];
      float m = (float)(sum / (double)plane);
      for (size_t i = 0; i < plane; i++) {
        float v = (d[i] - m) * contrast + m + bright;
        d[i] = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
      }
    }
  }
  for (int c = 0; c < channels; c++) {
    float *d = dst + (size_t)c * plane;
    float scale = 1.0f / (255.0f * (std ? std[c] : 1.0f));
    float shift = (mean ? mean[c] : 0.0f) / (std ? std[c] : 1.0f);
    for (size_t i = 0; i < plane; i++)
      d[i] = d[i] * scale - shift;
  }
}

void
fth_augment_tokens(const FthAugment *aug, const int32_t *ids, const int32_t *tags, int n,
                   uint64_t seed, uint64_t key, uint64_t epoch, int32_t *ids_out,
                   int32_t *tags_out)
{
  memcpy(ids_out, ids, (size_t)n * sizeof *ids);
  if (tags != NULL)
    memcpy(tags_out, tags, (size_t)n * sizeof *tags);
  if (aug->token_dropout <= 0 && aug->token_swap <= 0)
    return;
  /* Two draws per token (swap, drop): a Philox block covers two tokens; counters of epoch e
   * are [e * blocks, (e + 1) * blocks), stream = the sample key. */
  uint64_t blocks = (uint64_t)(n + 1) / 2;
  uint32_t r[4];
  for (int i = 0; i < n; i++) {
    if (i % 2 == 0)
      fth_philox4x32(seed, key, epoch * blocks + (uint64_t)i / 2, r);
    float u_swap = unit(r[(i % 2) * 2]), u_drop = unit(r[(i % 2) * 2 + 1]);
    if (ids_out[i] < FTH_TOKEN_N_SPECIAL)
      continue;
    if (u_swap < aug->token_swap && i + 1 < n && ids_out[i + 1] >= FTH_TOKEN_N_SPECIAL) {
      int32_t x = ids_out[i];
      ids_out[i] = ids_out[i + 1];
      ids_out[i + 1] = x;
      if (tags != NULL) {
        x = tags_out[i];
        tags_out[i] = tags_out[i + 1];
        tags_out[i + 1] = x;
      }
    }
    if (u_drop < aug->token_dropout)
      ids_out[i] = FTH_TOKEN_UNK;
  }
}
