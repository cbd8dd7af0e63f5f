#include "norm.h"
#include "conv-simd.h"
#include "fth-kernels-cpu.h"

#include <immintrin.h>
#include <math.h>

/* Row helpers, AVX-512 with portable C forms. Sums over one plane or row are float vectors;
 * sums across planes and rows are double. */

#define NORM_AVX512 __attribute__((target("avx512f,avx512dq,avx2,fma")))

static inline int
use_avx512 (void)
{
  return fth_cpu_isa () >= FTH_ISA_AVX512;
}

static inline __mmask16
tail_mask (size_t left)
{
  return (__mmask16) (left >= 16 ? 0xFFFFu : (1u << left) - 1u);
}

/* sum of (x[i] - m)^2 */
NORM_AVX512 static float
sqdev_avx512 (const float *x, float m, size_t n)
{
  __m512 acc = _mm512_setzero_ps (), vm = _mm512_set1_ps (m);
  for (size_t i = 0; i < n; i += 16)
    {
      const __mmask16 k = tail_mask (n - i);
      __m512 d = _mm512_maskz_sub_ps (k, _mm512_maskz_loadu_ps (k, x + i), vm);
      acc = _mm512_fmadd_ps (d, d, acc);
    }
  return _mm512_reduce_add_ps (acc);
}

static float
sqdev (const float *x, float m, size_t n)
{
  if (use_avx512 ())
    return sqdev_avx512 (x, m, n);
  float acc = 0.0f;
  for (size_t i = 0; i < n; i++)
    acc += (x[i] - m) * (x[i] - m);
  return acc;
}

/* y = a * x + b, optionally then * g[i] + h[i] per element (g, h NULL: skipped) */
NORM_AVX512 static void
affine_avx512 (const float *x, float a, float b, const float *g, const float *h, float *y, size_t n)
{
  const __m512 va = _mm512_set1_ps (a), vb = _mm512_set1_ps (b);
  for (size_t i = 0; i < n; i += 16)
    {
      const __mmask16 k = tail_mask (n - i);
      __m512 v = _mm512_fmadd_ps (_mm512_maskz_loadu_ps (k, x + i), va, vb);
      if (g)
        v = _mm512_mul_ps (v, _mm512_maskz_loadu_ps (k, g + i));
      if (h)
        v = _mm512_add_ps (v, _mm512_maskz_loadu_ps (k, h + i));
      _mm512_mask_storeu_ps (y + i, k, v);
    }
}

static void
affine (const float *x, float a, float b, const float *g, const float *h, float *y, size_t n)
{
  if (use_avx512 ())
    {
      affine_avx512 (x, a, b, g, h, y, n);
      return;
    }
  for (size_t i = 0; i < n; i++)
    {
      float v = x[i] * a + b;
      if (g)
        v *= g[i];
      if (h)
        v += h[i];
      y[i] = v;
    }
}

/* dx = k * (dy * g[i] - mdy - (x - m) * c), g NULL: 1 */
NORM_AVX512 static void
norm_dx_avx512 (const float *dy, const float *g, const float *x, float k, float mdy, float m,
                float c, float *dx, size_t n)
{
  const __m512 vk = _mm512_set1_ps (k), vmdy = _mm512_set1_ps (mdy), vm = _mm512_set1_ps (m);
  const __m512 vc = _mm512_set1_ps (c);
  for (size_t i = 0; i < n; i += 16)
    {
      const __mmask16 t = tail_mask (n - i);
      __m512 d = _mm512_maskz_loadu_ps (t, dy + i);
      if (g)
        d = _mm512_mul_ps (d, _mm512_maskz_loadu_ps (t, g + i));
      const __m512 xc = _mm512_sub_ps (_mm512_maskz_loadu_ps (t, x + i), vm);
      const __m512 v = _mm512_sub_ps (_mm512_sub_ps (d, vmdy), _mm512_mul_ps (xc, vc));
      _mm512_mask_storeu_ps (dx + i, t, _mm512_mul_ps (vk, v));
    }
}

static void
norm_dx (const float *dy, const float *g, const float *x, float k, float mdy, float m, float c,
         float *dx, size_t n)
{
  if (use_avx512 ())
    {
      norm_dx_avx512 (dy, g, x, k, mdy, m, c, dx, n);
      return;
    }
  for (size_t i = 0; i < n; i++)
    dx[i] = k * ((g ? dy[i] * g[i] : dy[i]) - mdy - (x[i] - m) * c);
}

/* sums of dy * g[i] and of dy * g[i] * (x - m) (g NULL: 1); centring before the product keeps
 * the second sum accurate when the mean is large against the spread */
NORM_AVX512 static void
grad_sums_avx512 (const float *dy, const float *g, const float *x, float m, float *s_dy,
                  float *s_dyx, size_t n)
{
  __m512 a = _mm512_setzero_ps (), b = _mm512_setzero_ps (), vm = _mm512_set1_ps (m);
  for (size_t i = 0; i < n; i += 16)
    {
      const __mmask16 t = tail_mask (n - i);
      __m512 d = _mm512_maskz_loadu_ps (t, dy + i);
      if (g)
        d = _mm512_mul_ps (d, _mm512_maskz_loadu_ps (t, g + i));
      a = _mm512_add_ps (a, d);
      b = _mm512_fmadd_ps (d, _mm512_maskz_sub_ps (t, _mm512_maskz_loadu_ps (t, x + i), vm), b);
    }
  *s_dy = _mm512_reduce_add_ps (a);
  *s_dyx = _mm512_reduce_add_ps (b);
}

static void
grad_sums (const float *dy, const float *g, const float *x, float m, float *s_dy, float *s_dyx,
           size_t n)
{
  if (use_avx512 ())
    {
      grad_sums_avx512 (dy, g, x, m, s_dy, s_dyx, n);
      return;
    }
  float a = 0.0f, b = 0.0f;
  for (size_t i = 0; i < n; i++)
    {
      const float d = g ? dy[i] * g[i] : dy[i];
      a += d;
      b += d * (x[i] - m);
    }
  *s_dy = a;
  *s_dyx = b;
}

void
fth_batchnorm_stats (const float *x, size_t N, size_t C, size_t S, float *mean, float *var,
                     size_t c0, size_t c1)
{
  const double count = (double) N * (double) S;
  for (size_t c = c0; c < c1; c++)
    {
      double sum = 0.0;
      for (size_t n = 0; n < N; n++)
        sum += fth_simd_sum (x + (n * C + c) * S, S);
      const double m = sum / count;
      double sq = 0.0;
      for (size_t n = 0; n < N; n++)
        sq += sqdev (x + (n * C + c) * S, (float) m, S);
      mean[c] = (float) m;
      var[c] = (float) (sq / count);
    }
}

void
fth_batchnorm_apply (const float *x, size_t N, size_t C, size_t S, const float *mean,
                     const float *invstd, const float *gamma, const float *beta, float *y, size_t c0,
                     size_t c1)
{
  for (size_t c = c0; c < c1; c++)
    {
      const float scale = invstd[c] * (gamma ? gamma[c] : 1.0f);
      const float shift = (beta ? beta[c] : 0.0f) - mean[c] * scale;
      for (size_t n = 0; n < N; n++)
        affine (x + (n * C + c) * S, scale, shift, NULL, NULL, y + (n * C + c) * S, S);
    }
}

void
fth_batchnorm_backward (const float *x, const float *dy, size_t N, size_t C, size_t S,
                        const float *mean, const float *invstd, const float *gamma, float *dx,
                        float *dgamma, float *dbeta, size_t c0, size_t c1)
{
  const double count = (double) N * (double) S;
  for (size_t c = c0; c < c1; c++)
    {
      const double m = mean[c], is = invstd[c];
      double sum_dy = 0.0, sum_dy_xc = 0.0;
      for (size_t n = 0; n < N; n++)
        {
          float a, b;
          grad_sums (dy + (n * C + c) * S, NULL, x + (n * C + c) * S, (float) m, &a, &b, S);
          sum_dy += a;
          sum_dy_xc += b;
        }
      const double sum_dy_xhat = is * sum_dy_xc;
      if (dgamma)
        dgamma[c] = (float) sum_dy_xhat;
      if (dbeta)
        dbeta[c] = (float) sum_dy;
      if (!dx)
        continue;
      /* dx = g * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
      const float k = (float) ((gamma ? gamma[c] : 1.0) * is);
      const float mdy = (float) (sum_dy / count), c2 = (float) (is * sum_dy_xhat / count);
      for (size_t n = 0; n < N; n++)
        norm_dx (dy + (n * C + c) * S, NULL, x + (n * C + c) * S, k, mdy, (float) m, c2,
                 dx + (n * C + c) * S, S);
    }
}

void
fth_batchnorm_backward_fixed (const float *dy, size_t N, size_t C, size_t S, const float *invstd,
                              const float *gamma, float *dx, size_t c0, size_t c1)
{
  for (size_t c = c0; c < c1; c++)
    {
      const float k = invstd[c] * (gamma ? gamma[c] : 1.0f);
      for (size_t n = 0; n < N; n++)
        affine (dy + (n * C + c) * S, k, 0.0f, NULL, NULL, dx + (n * C + c) * S, S);
    }
}

void
fth_layernorm_forward (const float *x, size_t D, const float *gamma, const float *beta, float eps,
                       float *y, float *mean, float *invstd, size_t r0, size_t r1)
{
  for (size_t r = r0; r < r1; r++)
    {
      const float *xr = x + r * D;
      const double m = (double) fth_simd_sum (xr, D) / (double) D;
      const double var = (double) sqdev (xr, (float) m, D) / (double) D;
      const float mf = (float) m, is = (float) (1.0 / sqrt (var + eps));
      mean[r] = mf;
      invstd[r] = is;
      affine (xr, is, -mf * is, gamma, beta, y + r * D, D);
    }
}

void
fth_layernorm_backward_input (const float *x, const float *dy, size_t D, const float *gamma,
                              const float *mean, const float *invstd, float *dx, size_t r0,
                              size_t r1)
{
  for (size_t r = r0; r < r1; r++)
    {
      const float *xr = x + r * D, *gr = dy + r * D;
      const float m = mean[r], is = invstd[r];
      float s_g, s_gxc;
      grad_sums (gr, gamma, xr, m, &s_g, &s_gxc, D);
      /* with g = dy * gamma: mean(g), mean(g * xhat) */
      const double mg = (double) s_g / (double) D;
      const double mgx = is * (double) s_gxc / (double) D;
      norm_dx (gr, gamma, xr, is, (float) mg, m, (float) (is * mgx), dx + r * D, D);
    }
}

void
fth_layernorm_backward_params (const float *x, const float *dy, size_t rows, size_t D,
                               const float *mean, const float *invstd, float *dgamma, float *dbeta,
                               size_t d0, size_t d1)
{
  for (size_t i = d0; i < d1; i++)
    {
      if (dgamma)
        dgamma[i] = 0.0f;
      if (dbeta)
        dbeta[i] = 0.0f;
    }
  for (size_t r = 0; r < rows; r++)
    {
      const float *xr = x + r * D, *gr = dy + r * D;
      const float m = mean[r], is = invstd[r];
      if (dgamma)
        for (size_t i = d0; i < d1; i++)
          dgamma[i] += gr[i] * ((xr[i] - m) * is);
      if (dbeta)
        for (size_t i = d0; i < d1; i++)
          dbeta[i] += gr[i];
    }
}
