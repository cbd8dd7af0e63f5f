/* Convolution: im2col + OpenBLAS sgemm for general shapes, the input itself as the GEMM
 * operand for 1x1 stride-1 unpadded convolutions, and a direct row-wise kernel for depthwise
 * convolutions (where a GEMM would have a single output row per group). Bias, ReLU and a 2x2
 * max pool run as an epilogue on data that is still in cache. */
#include "conv.h"
#include "conv-simd.h"
#include "fth-kernels-cpu.h"

#include <cblas.h>
#include <string.h>

int
fth_conv_out_len (int in, int k, int stride, int pad, int dil)
{
  if (in < 1 || k < 1 || stride < 1 || pad < 0 || dil < 1)
    return 0;
  long span = (long) dil * (k - 1) + 1;
  long avail = (long) in + 2L * pad - span;
  if (avail < 0)
    return 0;
  return (int) (avail / stride + 1);
}

int
fth_conv2d_shape_check (FthConvShape *s, const char **why)
{
  if (s->batch < 0 || s->in_c < 1 || s->in_h < 1 || s->in_w < 1 || s->out_c < 1)
    return *why = "convolution: batch, channels and input size must be positive", -1;
  if (s->groups < 1 || s->in_c % s->groups || s->out_c % s->groups)
    return *why = "convolution: groups must divide both channel counts", -1;
  if (s->k_h < 1 || s->k_w < 1 || s->stride_h < 1 || s->stride_w < 1 || s->dil_h < 1 || s->dil_w < 1
      || s->pad_h < 0 || s->pad_w < 0)
    return *why = "convolution: kernel, stride and dilation must be positive, padding non-negative", -1;
  s->out_h = fth_conv_out_len (s->in_h, s->k_h, s->stride_h, s->pad_h, s->dil_h);
  s->out_w = fth_conv_out_len (s->in_w, s->k_w, s->stride_w, s->pad_w, s->dil_w);
  if (s->out_h < 1 || s->out_w < 1)
    return *why = "convolution: the dilated kernel is larger than the padded input", -1;
  return 0;
}

int
fth_conv2d_is_depthwise (const FthConvShape *s)
{
  return s->groups > 1 && s->groups == s->in_c && s->groups == s->out_c;
}

/* 1x1, stride 1, no padding: the input planes already are the im2col matrix. */
static int
is_pointwise (const FthConvShape *s)
{
  return s->k_h == 1 && s->k_w == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0
         && s->pad_w == 0;
}

static size_t
col_rows (const FthConvShape *s)
{
  return (size_t) (s->in_c / s->groups) * s->k_h * s->k_w;
}

/* Output columns [*lo, *hi) whose input column ow*stride + off lies inside [0, in_w). */
static void
valid_cols (int off, int stride, int in_w, int out_w, int *lo, int *hi)
{
  int l = off < 0 ? (-off + stride - 1) / stride : 0;
  int h = in_w - 1 - off < 0 ? 0 : (in_w - 1 - off) / stride + 1;
  if (h > out_w)
    h = out_w;
  if (l > h)
    l = h;
  *lo = l;
  *hi = h;
}

/* col[K][(r1 - r0) * out_w] for the in_c/groups channels starting at xg. */
static void
im2col_rows (const FthConvShape *s, const float *xg, float *col, int r0, int r1)
{
  const int icg = s->in_c / s->groups, ow = s->out_w;
  const size_t ncols = (size_t) (r1 - r0) * ow, plane = (size_t) s->in_h * s->in_w;
  for (int c = 0; c < icg; c++)
    for (int ki = 0; ki < s->k_h; ki++)
      for (int kj = 0; kj < s->k_w; kj++)
        {
          float *row = col + ((size_t) (c * s->k_h + ki) * s->k_w + kj) * ncols;
          const int off = kj * s->dil_w - s->pad_w;
          int lo, hi;
          valid_cols (off, s->stride_w, s->in_w, ow, &lo, &hi);
          if (s->stride_w == 1)
            {
              fth_simd_im2col_s1 (row, xg + c * plane, s->in_h, s->in_w,
                                  r0 * s->stride_h - s->pad_h + ki * s->dil_h, s->stride_h, r1 - r0,
                                  off, lo, hi, ow);
              continue;
            }
          for (int oh = r0; oh < r1; oh++)
            {
              float *dst = row + (size_t) (oh - r0) * ow;
              const int ih = oh * s->stride_h - s->pad_h + ki * s->dil_h;
              if (ih < 0 || ih >= s->in_h)
                {
                  memset (dst, 0, sizeof (float) * (size_t) ow);
                  continue;
                }
              const float *row_in = xg + c * plane + (size_t) ih * s->in_w;
              memset (dst, 0, sizeof (float) * (size_t) lo);
              for (int o = lo; o < hi; o++)
                dst[o] = row_in[(ptrdiff_t) o * s->stride_w + off];
              memset (dst + hi, 0, sizeof (float) * (size_t) (ow - hi));
            }
        }
}

/* dxg += col2im(col) over all output rows. */
static void
col2im_add (const FthConvShape *s, const float *col, float *dxg)
{
  const int icg = s->in_c / s->groups, ow = s->out_w;
  const size_t ncols = (size_t) s->out_h * ow, plane = (size_t) s->in_h * s->in_w;
  for (int c = 0; c < icg; c++)
    for (int ki = 0; ki < s->k_h; ki++)
      {
        const float *taps = col + (size_t) (c * s->k_h + ki) * s->k_w * ncols;
        if (s->stride_w == 1)
          {
            fth_simd_col2im_s1 (dxg + c * plane, taps, ncols, s->k_w, s->dil_w, s->pad_w, s->in_h,
                                s->in_w, ki * s->dil_h - s->pad_h, s->stride_h, s->out_h, ow);
            continue;
          }
        for (int kj = 0; kj < s->k_w; kj++)
          {
            const float *row = taps + (size_t) kj * ncols;
            const int off = kj * s->dil_w - s->pad_w;
            int lo, hi;
            valid_cols (off, s->stride_w, s->in_w, ow, &lo, &hi);
            for (int oh = 0; oh < s->out_h; oh++)
              {
                const int ih = oh * s->stride_h - s->pad_h + ki * s->dil_h;
                if (ih < 0 || ih >= s->in_h)
                  continue;
                const float *src = row + (size_t) oh * ow;
                float *row_out = dxg + c * plane + (size_t) ih * s->in_w;
                for (int o = lo; o < hi; o++)
                  row_out[(ptrdiff_t) o * s->stride_w + off] += src[o];
              }
          }
      }
}

/* Depthwise forward, channel c, output rows [r0, r1) into out (row stride out_w), row by row:
 * each kernel tap is one vectorisable axpy over the valid span of an output row. */
static void
depthwise_rows (const FthConvShape *s, const float *xc, const float *wc, float bias, float *out,
                int r0, int r1)
{
  const int ow = s->out_w;
  if (s->k_h == 3 && s->k_w == 3 && s->dil_h == 1 && s->dil_w == 1 && s->stride_w <= 2)
    {
      for (int oh = r0; oh < r1; oh++)
        {
          const float *rows[3];
          for (int ki = 0; ki < 3; ki++)
            {
              const int ih = oh * s->stride_h - s->pad_h + ki;
              rows[ki] = ih >= 0 && ih < s->in_h ? xc + (size_t) ih * s->in_w : NULL;
            }
          fth_simd_dw3x3_row (out + (size_t) (oh - r0) * ow, rows, wc, bias, s->stride_w, s->pad_w,
                              s->in_w, ow);
        }
      return;
    }
  for (int oh = r0; oh < r1; oh++)
    {
      float *dst = out + (size_t) (oh - r0) * ow;
      for (int o = 0; o < ow; o++)
        dst[o] = bias;
      for (int ki = 0; ki < s->k_h; ki++)
        {
          const int ih = oh * s->stride_h - s->pad_h + ki * s->dil_h;
          if (ih < 0 || ih >= s->in_h)
            continue;
          for (int kj = 0; kj < s->k_w; kj++)
            {
              const int off = kj * s->dil_w - s->pad_w;
              int lo, hi;
              valid_cols (off, s->stride_w, s->in_w, ow, &lo, &hi);
              if (hi > lo)
                fth_simd_axpy_strided (dst + lo, wc[ki * s->k_w + kj],
                                       xc + (size_t) ih * s->in_w + off + (size_t) lo * s->stride_w,
                                       (size_t) s->stride_w, (size_t) (hi - lo));
            }
        }
    }
}

size_t
fth_conv2d_forward_scratch_floats (const FthConvShape *s, const FthConvEpilogue *ep, int rows)
{
  size_t n = 0;
  if (!fth_conv2d_is_depthwise (s) && !is_pointwise (s))
    n += col_rows (s) * (size_t) rows * s->out_w;
  if (ep && ep->pool2)
    n += (size_t) s->out_c * rows * s->out_w;
  return n;
}

/* Pools rows [r0, r1) of z (out_c planes of (r1 - r0) x out_w, already activated) into the
 * pooled output of image n. */
static void
pool_epilogue (const FthConvShape *s, const FthConvEpilogue *ep, const float *z, float *y, int n,
               int r0, int r1)
{
  const int ph = s->out_h / 2, pw = s->out_w / 2;
  int pr_end = r1 / 2;
  if (pr_end > ph)
    pr_end = ph;
  const size_t zplane = (size_t) (r1 - r0) * s->out_w, yplane = (size_t) ph * pw;
  for (int c = 0; c < s->out_c; c++)
    for (int pr = r0 / 2; pr < pr_end; pr++)
      {
        const float *top = z + c * zplane + (size_t) (2 * pr - r0) * s->out_w;
        size_t yo = ((size_t) n * s->out_c + c) * yplane + (size_t) pr * pw;
        fth_simd_maxpool2_row (top, top + s->out_w, y + yo,
                               ep->pool_argmax ? ep->pool_argmax + yo : NULL, (size_t) pw);
      }
}

void
fth_conv2d_forward_rows (const FthConvShape *s, const FthConvEpilogue *ep, const float *x,
                         const float *w, const float *bias, float *y, float *scratch, int n, int r0,
                         int r1)
{
  const int pool = ep && ep->pool2, relu = ep && ep->relu;
  const int icg = s->in_c / s->groups, ocg = s->out_c / s->groups;
  const size_t K = col_rows (s), HW = (size_t) s->out_h * s->out_w;
  const size_t ncols = (size_t) (r1 - r0) * s->out_w, in_plane = (size_t) s->in_h * s->in_w;
  const float *xn = x + (size_t) n * s->in_c * in_plane;
  const int direct = fth_conv2d_is_depthwise (s) || is_pointwise (s);
  float *col = scratch;
  float *z; /* where the pre-pool result goes */
  size_t ldz;
  if (pool)
    {
      z = scratch + (direct ? 0 : K * ncols);
      ldz = ncols;
    }
  else
    {
      z = y + (size_t) n * s->out_c * HW + (size_t) r0 * s->out_w;
      ldz = HW;
    }

  if (fth_conv2d_is_depthwise (s))
    for (int c = 0; c < s->out_c; c++)
      depthwise_rows (s, xn + c * in_plane, w + (size_t) c * s->k_h * s->k_w, bias ? bias[c] : 0.0f,
                      z + c * ldz, r0, r1);
  else
    for (int g = 0; g < s->groups; g++)
      {
        const float *xg = xn + (size_t) g * icg * in_plane;
        const float *b_op;
        size_t ldb;
        if (is_pointwise (s))
          {
            b_op = xg + (size_t) r0 * s->in_w;
            ldb = in_plane;
          }
        else
          {
            im2col_rows (s, xg, col, r0, r1);
            b_op = col;
            ldb = ncols;
          }
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, ocg, (int) ncols, (int) K, 1.0f,
                     w + (size_t) g * ocg * K, (int) K, b_op, (int) ldb, 0.0f,
                     z + (size_t) g * ocg * ldz, (int) ldz);
      }

  /* The depthwise kernel already started from the bias. */
  if (relu || (bias && !fth_conv2d_is_depthwise (s)))
    for (int c = 0; c < s->out_c; c++)
      fth_simd_bias_act (z + c * ldz, bias && !fth_conv2d_is_depthwise (s) ? bias[c] : 0.0f, relu,
                         ncols);
  if (pool)
    pool_epilogue (s, ep, z, y, n, r0, r1);
}

/* The input-channel block (32 or 16, else 0) of the weight gradient read from the pooled side
 * (fth_simd_pool_wgrad3x3): 3x3, stride 1, no dilation, one group, a fused 2x2 max pool. Four in
 * five conv outputs get no gradient through the pool, so this skips the unpooled dz, the im2col
 * and three quarters of the multiply-adds of the GEMM form. */
static int
pool_wgrad_block (const FthConvShape *s, const FthConvEpilogue *ep)
{
  if (!ep || !ep->pool2 || s->groups != 1 || s->k_h != 3 || s->k_w != 3 || s->stride_h != 1
      || s->stride_w != 1 || s->dil_h != 1 || s->dil_w != 1)
    return 0;
  return s->in_c % 32 == 0 ? 32 : s->in_c % 16 == 0 ? 16 : 0;
}

/* One zero-padded channels-last block of the input image (or its gradient), then the weights
 * or their gradient as [o][tap][c]. */
static size_t
pool_wgrad_scratch (const FthConvShape *s, int cb)
{
  return (size_t) (s->in_h + 2 * s->pad_h) * (s->in_w + 2 * s->pad_w) * cb
         + (size_t) s->out_c * 9 * s->in_c;
}

size_t
fth_conv2d_backward_scratch_floats (const FthConvShape *s, const FthConvEpilogue *ep)
{
  size_t n = 0, HW = (size_t) s->out_h * s->out_w;
  if (!fth_conv2d_is_depthwise (s) && !is_pointwise (s))
    n += col_rows (s) * HW;
  if (ep && (ep->relu || ep->pool2))
    n += (size_t) s->out_c * HW;
  /* by shape alone, so the plan fits whichever ISA runs it */
  const int cb = pool_wgrad_block (s, ep);
  if (cb && pool_wgrad_scratch (s, cb) > n)
    n = pool_wgrad_scratch (s, cb);
  return n;
}

/* dw += the weight gradient of images [n0, n1) from the pooled side (pool_wgrad_block). */
static void
pool_wgrad (const FthConvShape *s, const FthConvEpilogue *ep, const float *x, const float *y,
            const float *dy, float *dw, float *scratch, int cb, int n0, int n1)
{
  const int xp_h = s->in_h + 2 * s->pad_h, xp_w = s->in_w + 2 * s->pad_w;
  const int ph = s->out_h / 2, pw = s->out_w / 2;
  const size_t in_plane = (size_t) s->in_h * s->in_w, yplane = (size_t) ph * pw;
  const size_t K = (size_t) s->in_c * 9;
  float *xp = scratch, *dwt = scratch + (size_t) xp_h * xp_w * cb;
  memset (xp, 0, sizeof (float) * (size_t) xp_h * xp_w * cb); /* the border stays zero */
  memset (dwt, 0, sizeof (float) * (size_t) s->out_c * K);
  for (int n = n0; n < n1; n++)
    {
      const size_t yo = (size_t) n * s->out_c * yplane;
      for (int c0 = 0; c0 < s->in_c; c0 += cb)
        {
          for (int c = 0; c < cb; c++)
            {
              const float *xc = x + ((size_t) n * s->in_c + c0 + c) * in_plane;
              for (int h = 0; h < s->in_h; h++)
                {
                  float *dst = xp + ((size_t) (h + s->pad_h) * xp_w + s->pad_w) * cb + c;
                  for (int w = 0; w < s->in_w; w++)
                    dst[(size_t) w * cb] = xc[(size_t) h * s->in_w + w];
                }
            }
          fth_simd_pool_wgrad3x3 (dwt + c0, K, (size_t) s->in_c, xp, xp_w, cb, dy + yo, y + yo,
                                  ep->pool_argmax + yo, ep->relu, s->out_c, ph, pw);
        }
    }
  for (int o = 0; o < s->out_c; o++)
    for (int c = 0; c < s->in_c; c++)
      for (int t = 0; t < 9; t++)
        dw[(size_t) o * K + (size_t) c * 9 + t] += dwt[(size_t) o * K + (size_t) t * s->in_c + c];
}

/* Gradient of the pre-activation for image n into dz (out_c x HW). */
static void
expand_output_grad (const FthConvShape *s, const FthConvEpilogue *ep, const float *y,
                    const float *dy, float *dz, int n)
{
  const size_t HW = (size_t) s->out_h * s->out_w;
  if (!ep->pool2)
    {
      const size_t at = (size_t) n * s->out_c * HW;
      fth_simd_relu_grad (dz, y + at, dy + at, s->out_c * HW);
      return;
    }
  const size_t yplane = (size_t) (s->out_h / 2) * (s->out_w / 2);
  for (int c = 0; c < s->out_c; c++)
    {
      const size_t base = ((size_t) n * s->out_c + c) * yplane;
      fth_simd_unpool2_plane (dy + base, y + base, ep->pool_argmax + base, ep->relu, dz + c * HW,
                              s->out_h, s->out_w);
    }
}

static void
depthwise_backward_image (const FthConvShape *s, const float *xn, const float *w, const float *dz,
                          float *dxn, float *dw)
{
  const int ow = s->out_w;
  const size_t in_plane = (size_t) s->in_h * s->in_w, HW = (size_t) s->out_h * ow;
  const int is3x3 = s->k_h == 3 && s->k_w == 3 && s->dil_h == 1 && s->dil_w == 1 && s->stride_w <= 2;
  /* stride 1 and padding <= 2: the input gradient is a 3x3 correlation of dz with the flipped
   * kernel and padding 2 - pad, the forward row kernel again */
  const int dx_as_conv = is3x3 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h <= 2 && s->pad_w <= 2;
  for (int c = 0; c < s->out_c; c++)
    {
      const float *xc = xn ? xn + c * in_plane : NULL, *dzc = dz + c * HW, *wc = w + (size_t) c * s->k_h * s->k_w;
      float *dxc = dxn ? dxn + c * in_plane : NULL;
      float *dwc = dw ? dw + (size_t) c * s->k_h * s->k_w : NULL;
      if (is3x3 && dwc)
        {
          fth_simd_dw3x3_wgrad (dwc, dzc, xc, s->in_h, s->in_w, s->out_h, ow, s->stride_h,
                                s->stride_w, s->pad_h, s->pad_w);
          dwc = NULL;
        }
      if (dx_as_conv && dxc)
        {
          const float flipped[9] = { wc[8], wc[7], wc[6], wc[5], wc[4], wc[3], wc[2], wc[1], wc[0] };
          for (int ih = 0; ih < s->in_h; ih++)
            {
              const float *rows[3];
              for (int a = 0; a < 3; a++)
                {
                  const int oh = ih + s->pad_h - 2 + a;
                  rows[a] = oh >= 0 && oh < s->out_h ? dzc + (size_t) oh * ow : NULL;
                }
              fth_simd_dw3x3_row (dxc + (size_t) ih * s->in_w, rows, flipped, 0.0f, 1, 2 - s->pad_w,
                                  ow, s->in_w);
            }
          dxc = NULL;
        }
      if (!dxc && !dwc)
        continue;
      for (int ki = 0; ki < s->k_h; ki++)
        for (int kj = 0; kj < s->k_w; kj++)
          {
            const int off = kj * s->dil_w - s->pad_w;
            int lo, hi;
            valid_cols (off, s->stride_w, s->in_w, ow, &lo, &hi);
            if (hi <= lo)
              continue;
            float gw = 0.0f;
            for (int oh = 0; oh < s->out_h; oh++)
              {
                const int ih = oh * s->stride_h - s->pad_h + ki * s->dil_h;
                if (ih < 0 || ih >= s->in_h)
                  continue;
                const float *g = dzc + (size_t) oh * ow;
                const size_t xo = (size_t) ih * s->in_w + off;
                if (dwc)
                  {
                    if (s->stride_w == 1)
                      gw += fth_simd_dot (g + lo, xc + xo + lo, (size_t) (hi - lo));
                    else
                      for (int o = lo; o < hi; o++)
                        gw += g[o] * xc[xo + (size_t) o * s->stride_w];
                  }
                if (dxc)
                  {
                    const float wv = wc[ki * s->k_w + kj];
                    if (s->stride_w == 1)
                      fth_simd_axpy_strided (dxc + xo + lo, wv, g + lo, 1, (size_t) (hi - lo));
                    else
                      for (int o = lo; o < hi; o++)
                        dxc[xo + (size_t) o * s->stride_w] += wv * g[o];
                  }
              }
            if (dwc)
              dwc[ki * s->k_w + kj] += gw;
          }
    }
}

/* dx of images [n0, n1) from the pooled side (pool_wgrad_block), through the transposed weights:
 * the pooled gradient reaches a quarter of the conv outputs, so this skips the unpooled dz, three
 * quarters of the GEMM form's multiply-adds and its col2im. */
static void
pool_dgrad (const FthConvShape *s, const FthConvEpilogue *ep, const float *w, const float *y,
            const float *dy, float *dx, float *scratch, int cb, int n0, int n1)
{
  const int xp_h = s->in_h + 2 * s->pad_h, xp_w = s->in_w + 2 * s->pad_w;
  const int ph = s->out_h / 2, pw = s->out_w / 2;
  const size_t in_plane = (size_t) s->in_h * s->in_w, yplane = (size_t) ph * pw;
  const size_t K = (size_t) s->in_c * 9;
  float *dxp = scratch, *wt = scratch + (size_t) xp_h * xp_w * cb;
  for (int o = 0; o < s->out_c; o++)
    for (int c = 0; c < s->in_c; c++)
      for (int t = 0; t < 9; t++)
        wt[(size_t) o * K + (size_t) t * s->in_c + c] = w[(size_t) o * K + (size_t) c * 9 + t];
  for (int n = n0; n < n1; n++)
    {
      const size_t yo = (size_t) n * s->out_c * yplane;
      for (int c0 = 0; c0 < s->in_c; c0 += cb)
        {
          memset (dxp, 0, sizeof (float) * (size_t) xp_h * xp_w * cb);
          fth_simd_pool_dgrad3x3 (dxp, xp_w, cb, wt + c0, K, (size_t) s->in_c, dy + yo, y + yo,
                                  ep->pool_argmax + yo, ep->relu, s->out_c, ph, pw);
          for (int c = 0; c < cb; c++)
            {
              float *dxc = dx + ((size_t) n * s->in_c + c0 + c) * in_plane;
              for (int h = 0; h < s->in_h; h++)
                {
                  const float *src = dxp + ((size_t) (h + s->pad_h) * xp_w + s->pad_w) * cb + c;
                  for (int x = 0; x < s->in_w; x++)
                    dxc[(size_t) h * s->in_w + x] = src[(size_t) x * cb];
                }
            }
        }
    }
}

void
fth_conv2d_backward (const FthConvShape *s, const FthConvEpilogue *ep, const float *x,
                     const float *w, const float *y, const float *dy, float *dx, float *dw,
                     float *db, float *scratch, int n0, int n1)
{
  const int icg = s->in_c / s->groups, ocg = s->out_c / s->groups;
  const size_t K = col_rows (s), HW = (size_t) s->out_h * s->out_w;
  const size_t in_plane = (size_t) s->in_h * s->in_w, in_img = (size_t) s->in_c * in_plane;
  const int expand = ep && (ep->relu || ep->pool2);
  const int direct = fth_conv2d_is_depthwise (s) || is_pointwise (s);
  float *col = scratch;
  float *dz_buf = scratch + (direct ? 0 : K * HW);

  if (db && !dw && !dx && expand)
    {
      /* The bias alone: each output value passes its gradient to one pre-activation (its
       * window's maximum) or to none (ReLU), so db sums dy where the output is positive. */
      const size_t plane = ep->pool2 ? (size_t) (s->out_h / 2) * (s->out_w / 2) : HW;
      for (int n = n0; n < n1; n++)
        for (int c = 0; c < s->out_c; c++)
          {
            const size_t at = ((size_t) n * s->out_c + c) * plane;
            db[c] += fth_simd_masked_sum (dy + at, ep->relu ? y + at : NULL, plane);
          }
      return;
    }
  if (dx && !dw && !db && w)
    {
      const int cb = pool_wgrad_block (s, ep);
      if (cb && fth_cpu_isa () >= FTH_ISA_AVX512)
        {
          pool_dgrad (s, ep, w, y, dy, dx, scratch, cb, n0, n1);
          return;
        }
    }
  if (dw && !dx && !db && x)
    {
      const int cb = pool_wgrad_block (s, ep);
      if (cb && fth_cpu_isa () >= FTH_ISA_AVX512)
        {
          pool_wgrad (s, ep, x, y, dy, dw, scratch, cb, n0, n1);
          return;
        }
    }

  for (int n = n0; n < n1; n++)
    {
      const float *dz;
      if (expand)
        {
          expand_output_grad (s, ep, y, dy, dz_buf, n);
          dz = dz_buf;
        }
      else
        dz = dy + (size_t) n * s->out_c * HW;
      const float *xn = x ? x + (size_t) n * in_img : NULL;
      float *dxn = dx ? dx + (size_t) n * in_img : NULL;

      if (db)
        for (int c = 0; c < s->out_c; c++)
          db[c] += fth_simd_sum (dz + c * HW, HW);

      if (fth_conv2d_is_depthwise (s))
        {
          if (dxn)
            memset (dxn, 0, sizeof (float) * in_img);
          depthwise_backward_image (s, xn, w, dz, dxn, dw);
          continue;
        }

      for (int g = 0; g < s->groups; g++)
        {
          const float *xg = xn ? xn + (size_t) g * icg * in_plane : NULL;
          const float *dzg = dz + (size_t) g * ocg * HW;
          if (dw)
            {
              const float *b_op = xg;
              if (!is_pointwise (s))
                {
                  im2col_rows (s, xg, col, 0, s->out_h);
                  b_op = col;
                }
              cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, ocg, (int) K, (int) HW, 1.0f,
                           dzg, (int) HW, b_op, (int) HW, 1.0f, dw + (size_t) g * ocg * K, (int) K);
            }
          if (dxn)
            {
              const float *wg = w + (size_t) g * ocg * K;
              float *dxg = dxn + (size_t) g * icg * in_plane;
              if (is_pointwise (s))
                cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, (int) K, (int) HW, ocg, 1.0f,
                             wg, (int) K, dzg, (int) HW, 0.0f, dxg, (int) HW);
              else
                {
                  cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, (int) K, (int) HW, ocg,
                               1.0f, wg, (int) K, dzg, (int) HW, 0.0f, col, (int) HW);
                  memset (dxg, 0, sizeof (float) * icg * in_plane);
                  col2im_add (s, col, dxg);
                }
            }
        }
    }
}
