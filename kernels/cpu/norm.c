#include "norm.h"

#include <math.h>

void
fth_batchnorm_stats (const float *x, size_t N, size_t C, size_t S, float *mean, float *var,
                     size_t c0, size_t c1)
{
  const double count = (double) N * (double) S;
  for (size_t c = c0; c < c1; c++)
    {
      double sum = 0.0;
      for (size_t n = 0; n < N; n++)
        {
          const float *xc = x + (n * C + c) * S;
          for (size_t i = 0; i < S; i++)
            sum += xc[i];
        }
      const double m = sum / count;
      double sq = 0.0;
      for (size_t n = 0; n < N; n++)
        {
          const float *xc = x + (n * C + c) * S;
          for (size_t i = 0; i < S; i++)
            {
              double d = xc[i] - m;
              sq += d * d;
            }
        }
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
        {
          const float *xc = x + (n * C + c) * S;
          float *yc = y + (n * C + c) * S;
          for (size_t i = 0; i < S; i++)
            yc[i] = xc[i] * scale + shift;
        }
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
      double sum_dy = 0.0, sum_dy_xhat = 0.0;
      for (size_t n = 0; n < N; n++)
        {
          const float *xc = x + (n * C + c) * S, *gc = dy + (n * C + c) * S;
          for (size_t i = 0; i < S; i++)
            {
              sum_dy += gc[i];
              sum_dy_xhat += gc[i] * ((xc[i] - m) * is);
            }
        }
      if (dgamma)
        dgamma[c] = (float) sum_dy_xhat;
      if (dbeta)
        dbeta[c] = (float) sum_dy;
      if (!dx)
        continue;
      /* dx = g * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
      const float k = (float) ((gamma ? gamma[c] : 1.0) * is);
      const float mdy = (float) (sum_dy / count), mdx = (float) (sum_dy_xhat / count);
      const float mf = (float) m, isf = (float) is;
      for (size_t n = 0; n < N; n++)
        {
          const float *xc = x + (n * C + c) * S, *gc = dy + (n * C + c) * S;
          float *dc = dx + (n * C + c) * S;
          for (size_t i = 0; i < S; i++)
            dc[i] = k * (gc[i] - mdy - (xc[i] - mf) * isf * mdx);
        }
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
        for (size_t i = 0; i < S; i++)
          dx[(n * C + c) * S + i] = k * dy[(n * C + c) * S + i];
    }
}

void
fth_layernorm_forward (const float *x, size_t D, const float *gamma, const float *beta, float eps,
                       float *y, float *mean, float *invstd, size_t r0, size_t r1)
{
  for (size_t r = r0; r < r1; r++)
    {
      const float *xr = x + r * D;
      float *yr = y + r * D;
      double sum = 0.0, sq = 0.0;
      for (size_t i = 0; i < D; i++)
        sum += xr[i];
      const double m = sum / (double) D;
      for (size_t i = 0; i < D; i++)
        sq += (xr[i] - m) * (xr[i] - m);
      const float mf = (float) m, is = (float) (1.0 / sqrt (sq / (double) D + eps));
      mean[r] = mf;
      invstd[r] = is;
      for (size_t i = 0; i < D; i++)
        {
          float v = (xr[i] - mf) * is;
          yr[i] = v * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
        }
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
      float *dr = dx + r * D;
      const float m = mean[r], is = invstd[r];
      double sum_g = 0.0, sum_g_xhat = 0.0;
      for (size_t i = 0; i < D; i++)
        {
          const float g = gr[i] * (gamma ? gamma[i] : 1.0f);
          sum_g += g;
          sum_g_xhat += g * ((xr[i] - m) * is);
        }
      const float mg = (float) (sum_g / (double) D), mgx = (float) (sum_g_xhat / (double) D);
      for (size_t i = 0; i < D; i++)
        {
          const float g = gr[i] * (gamma ? gamma[i] : 1.0f);
          dr[i] = is * (g - mg - (xr[i] - m) * is * mgx);
        }
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
      for (size_t i = d0; i < d1; i++)
        {
          if (dgamma)
            dgamma[i] += gr[i] * (xr[i] - m) * is;
          if (dbeta)
            dbeta[i] += gr[i];
        }
    }
}
