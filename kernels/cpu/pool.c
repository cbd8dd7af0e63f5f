#include "pool.h"
#include "conv-simd.h"

#include <string.h>

int
fth_pool2d_shape_check (FthPoolShape *s, const char **why)
{
  if (s->in_h < 1 || s->in_w < 1 || s->k_h < 1 || s->k_w < 1 || s->stride_h < 1 || s->stride_w < 1
      || s->pad_h < 0 || s->pad_w < 0)
    return *why = "pooling: sizes and strides must be positive, padding non-negative", -1;
  if (2 * s->pad_h > s->k_h || 2 * s->pad_w > s->k_w)
    return *why = "pooling: padding must be at most half the kernel", -1;
  if (s->in_h + 2 * s->pad_h < s->k_h || s->in_w + 2 * s->pad_w < s->k_w)
    return *why = "pooling: the kernel is larger than the padded input", -1;
  s->out_h = (s->in_h + 2 * s->pad_h - s->k_h) / s->stride_h + 1;
  s->out_w = (s->in_w + 2 * s->pad_w - s->k_w) / s->stride_w + 1;
  return 0;
}

static int
is_plain_2x2 (const FthPoolShape *s)
{
  return s->k_h == 2 && s->k_w == 2 && s->stride_h == 2 && s->stride_w == 2 && s->pad_h == 0
         && s->pad_w == 0;
}

/* Clamped window [lo, hi) of output position o along one axis. */
static inline void
window (int o, int stride, int pad, int k, int in, int *lo, int *hi)
{
  int a = o * stride - pad, b = a + k;
  *lo = a < 0 ? 0 : a;
  *hi = b > in ? in : b;
}

void
fth_maxpool2d_forward (const FthPoolShape *s, const float *x, float *y, int32_t *argmax, size_t p0,
                       size_t p1)
{
  const size_t in_plane = (size_t) s->in_h * s->in_w, out_plane = (size_t) s->out_h * s->out_w;
  for (size_t p = p0; p < p1; p++)
    {
      const float *xp = x + p * in_plane;
      float *yp = y + p * out_plane;
      int32_t *ap = argmax ? argmax + p * out_plane : NULL;
      if (is_plain_2x2 (s))
        {
          uint8_t pos[256];
          for (int i = 0; i < s->out_h; i++)
            for (int j0 = 0; j0 < s->out_w; j0 += 256)
              {
                int nj = s->out_w - j0 < 256 ? s->out_w - j0 : 256;
                const float *top = xp + (size_t) (2 * i) * s->in_w + 2 * j0;
                fth_simd_maxpool2_row (top, top + s->in_w, yp + (size_t) i * s->out_w + j0,
                                       ap ? pos : NULL, (size_t) nj);
                if (ap)
                  fth_simd_pool2_index (ap + (size_t) i * s->out_w + j0, pos,
                                        2 * i * s->in_w + 2 * j0, s->in_w, (size_t) nj);
              }
          continue;
        }
      for (int i = 0; i < s->out_h; i++)
        {
          int hl, hh;
          window (i, s->stride_h, s->pad_h, s->k_h, s->in_h, &hl, &hh);
          for (int j = 0; j < s->out_w; j++)
            {
              int wl, wh;
              window (j, s->stride_w, s->pad_w, s->k_w, s->in_w, &wl, &wh);
              int best = hl * s->in_w + wl;
              for (int h = hl; h < hh; h++)
                for (int w = wl; w < wh; w++)
                  if (xp[h * s->in_w + w] > xp[best])
                    best = h * s->in_w + w;
              yp[(size_t) i * s->out_w + j] = xp[best];
              if (ap)
                ap[(size_t) i * s->out_w + j] = best;
            }
        }
    }
}

void
fth_maxpool2d_backward (const FthPoolShape *s, const float *dy, const int32_t *argmax, float *dx,
                        size_t p0, size_t p1)
{
  const size_t in_plane = (size_t) s->in_h * s->in_w, out_plane = (size_t) s->out_h * s->out_w;
  memset (dx + p0 * in_plane, 0, sizeof (float) * (p1 - p0) * in_plane);
  for (size_t p = p0; p < p1; p++)
    {
      float *dxp = dx + p * in_plane;
      const float *dyp = dy + p * out_plane;
      const int32_t *ap = argmax + p * out_plane;
      for (size_t o = 0; o < out_plane; o++)
        dxp[ap[o]] += dyp[o];
    }
}

static inline float
window_divisor (const FthPoolShape *s, int count_include_pad, int hl, int hh, int wl, int wh)
{
  if (count_include_pad)
    return (float) (s->k_h * s->k_w);
  return (float) ((hh - hl) * (wh - wl));
}

void
fth_avgpool2d_forward (const FthPoolShape *s, int count_include_pad, const float *x, float *y,
                       size_t p0, size_t p1)
{
  const size_t in_plane = (size_t) s->in_h * s->in_w, out_plane = (size_t) s->out_h * s->out_w;
  for (size_t p = p0; p < p1; p++)
    {
      const float *xp = x + p * in_plane;
      float *yp = y + p * out_plane;
      for (int i = 0; i < s->out_h; i++)
        {
          int hl, hh;
          window (i, s->stride_h, s->pad_h, s->k_h, s->in_h, &hl, &hh);
          for (int j = 0; j < s->out_w; j++)
            {
              int wl, wh;
              window (j, s->stride_w, s->pad_w, s->k_w, s->in_w, &wl, &wh);
              float acc = 0.0f;
              for (int h = hl; h < hh; h++)
                for (int w = wl; w < wh; w++)
                  acc += xp[h * s->in_w + w];
              yp[(size_t) i * s->out_w + j] = acc / window_divisor (s, count_include_pad, hl, hh, wl, wh);
            }
        }
    }
}

void
fth_avgpool2d_backward (const FthPoolShape *s, int count_include_pad, const float *dy, float *dx,
                        size_t p0, size_t p1)
{
  const size_t in_plane = (size_t) s->in_h * s->in_w, out_plane = (size_t) s->out_h * s->out_w;
  memset (dx + p0 * in_plane, 0, sizeof (float) * (p1 - p0) * in_plane);
  for (size_t p = p0; p < p1; p++)
    {
      float *dxp = dx + p * in_plane;
      const float *dyp = dy + p * out_plane;
      for (int i = 0; i < s->out_h; i++)
        {
          int hl, hh;
          window (i, s->stride_h, s->pad_h, s->k_h, s->in_h, &hl, &hh);
          for (int j = 0; j < s->out_w; j++)
            {
              int wl, wh;
              window (j, s->stride_w, s->pad_w, s->k_w, s->in_w, &wl, &wh);
              float g = dyp[(size_t) i * s->out_w + j]
                        / window_divisor (s, count_include_pad, hl, hh, wl, wh);
              for (int h = hl; h < hh; h++)
                for (int w = wl; w < wh; w++)
                  dxp[h * s->in_w + w] += g;
            }
        }
    }
}

void
fth_global_avgpool_forward (const float *x, float *y, size_t plane, size_t p0, size_t p1)
{
  for (size_t p = p0; p < p1; p++)
    y[p] = fth_simd_sum (x + p * plane, plane) / (float) plane;
}

void
fth_global_avgpool_backward (const float *dy, float *dx, size_t plane, size_t p0, size_t p1)
{
  for (size_t p = p0; p < p1; p++)
    {
      const float g = dy[p] / (float) plane;
      for (size_t i = 0; i < plane; i++)
        dx[p * plane + i] = g;
    }
}
