#include "conv-simd.h"
#include "fth-kernels-cpu.h"

#include <immintrin.h>
#include <string.h>

#define FTH_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))

/* The core's choice (FTH_ISA in the environment or fth_cpu_set_isa caps it; its AVX-512 level
 * includes BW, DQ and VL). */
static inline int
have_avx512 (void)
{
  return fth_cpu_isa () >= FTH_ISA_AVX512;
}

/* ---- AVX2 + FMA forms (8 lanes, masked tails), for CPUs without AVX-512 ---------------------- */

#define FTH_AVX2 __attribute__((target("avx2,fma")))

static inline int
have_avx2 (void)
{
  return fth_cpu_isa () >= FTH_ISA_AVX2;
}

/* Lanes [a, b) of 8 as a maskload/maskstore mask. */
FTH_AVX2 static inline __m256i
lanes8 (int a, int b)
{
  const __m256i iota = _mm256_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_andnot_si256 (_mm256_cmpgt_epi32 (_mm256_set1_epi32 (a), iota),
                              _mm256_cmpgt_epi32 (_mm256_set1_epi32 (b), iota));
}

FTH_AVX2 static void
axpy_avx2 (float *y, float a, const float *x, size_t n)
{
  const __m256 va = _mm256_set1_ps (a);
  for (size_t i = 0; i < n; i += 8)
    {
      const __m256i m = lanes8 (0, (int) (n - i > 8 ? 8 : n - i));
      const __m256 r = _mm256_fmadd_ps (va, _mm256_maskload_ps (x + i, m), _mm256_maskload_ps (y + i, m));
      _mm256_maskstore_ps (y + i, m, r);
    }
}

FTH_AVX2 static void
bias_act_avx2 (float *y, float b, int relu, size_t n)
{
  const __m256 vb = _mm256_set1_ps (b), zero = _mm256_setzero_ps ();
  for (size_t i = 0; i < n; i += 8)
    {
      const __m256i m = lanes8 (0, (int) (n - i > 8 ? 8 : n - i));
      __m256 v = _mm256_add_ps (_mm256_maskload_ps (y + i, m), vb);
      _mm256_maskstore_ps (y + i, m, relu ? _mm256_max_ps (v, zero) : v);
    }
}

FTH_AVX2 static float
hsum256 (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  s = _mm_add_ps (s, _mm_movehl_ps (s, s));
  s = _mm_add_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

FTH_AVX2 static float
dot_avx2 (const float *x, const float *y, size_t n)
{
  __m256 a0 = _mm256_setzero_ps (), a1 = _mm256_setzero_ps ();
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    {
      a0 = _mm256_fmadd_ps (_mm256_loadu_ps (x + i), y ? _mm256_loadu_ps (y + i) : _mm256_set1_ps (1.0f), a0);
      a1 = _mm256_fmadd_ps (_mm256_loadu_ps (x + i + 8), y ? _mm256_loadu_ps (y + i + 8) : _mm256_set1_ps (1.0f), a1);
    }
  for (; i < n; i += 8)
    {
      const __m256i m = lanes8 (0, (int) (n - i > 8 ? 8 : n - i));
      a0 = _mm256_fmadd_ps (_mm256_maskload_ps (x + i, m), y ? _mm256_maskload_ps (y + i, m) : _mm256_set1_ps (1.0f), a0);
    }
  return hsum256 (_mm256_add_ps (a0, a1));
}

FTH_AVX2 static void
relu_grad_avx2 (float *dz, const float *y, const float *dy, size_t n)
{
  for (size_t i = 0; i < n; i += 8)
    {
      const __m256i m = lanes8 (0, (int) (n - i > 8 ? 8 : n - i));
      const __m256 pos = _mm256_cmp_ps (_mm256_maskload_ps (y + i, m), _mm256_setzero_ps (), _CMP_GT_OQ);
      _mm256_maskstore_ps (dz + i, m, _mm256_and_ps (pos, _mm256_maskload_ps (dy + i, m)));
    }
}

FTH_AVX2 static void
im2col_s1_avx2 (float *dst, const float *x, int in_h, int in_w, int ih0, int ih_step, int rows,
                int off, int lo, int hi, int ow)
{
  for (int r = 0; r < rows; r++)
    {
      const int ih = ih0 + r * ih_step;
      float *d = dst + (size_t) r * ow;
      const int inside = ih >= 0 && ih < in_h;
      const float *src = inside ? x + (ptrdiff_t) ih * in_w + off : NULL;
      for (int j = 0; j < ow; j += 8)
        {
          const __m256 v = inside ? _mm256_maskload_ps (src + j, lanes8 (lo - j, hi - j)) : _mm256_setzero_ps ();
          _mm256_maskstore_ps (d + j, lanes8 (0, ow - j), v);
        }
    }
}

FTH_AVX512 static void
axpy_strided_avx512 (float *y, float a, const float *x, size_t stride, size_t n)
{
  __m512 va = _mm512_set1_ps (a);
  size_t i = 0;
  if (stride == 1)
    {
      for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps (y + i, _mm512_fmadd_ps (va, _mm512_loadu_ps (x + i), _mm512_loadu_ps (y + i)));
      if (i < n)
        {
          __mmask16 m = (__mmask16) ((1u << (n - i)) - 1);
          __m512 r = _mm512_fmadd_ps (va, _mm512_maskz_loadu_ps (m, x + i), _mm512_maskz_loadu_ps (m, y + i));
          _mm512_mask_storeu_ps (y + i, m, r);
        }
      return;
    }
  if (stride == 2)
    {
      const __m512i even = _mm512_set_epi32 (30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
      for (; i + 16 <= n; i += 16)
        {
          /* Reads x[2i .. 2i+31]; the last element read is x[2(i+15)+1], one past what is used,
           * so the final full block falls back to scalar when it would run off the row. */
          if (2 * (i + 16) > 2 * n - 1)
            break;
          __m512 lo = _mm512_loadu_ps (x + 2 * i), hi = _mm512_loadu_ps (x + 2 * i + 16);
          __m512 xv = _mm512_permutex2var_ps (lo, even, hi);
          _mm512_storeu_ps (y + i, _mm512_fmadd_ps (va, xv, _mm512_loadu_ps (y + i)));
        }
    }
  for (; i < n; i++)
    y[i] += a * x[i * stride];
}

static void
axpy_strided_c (float *y, float a, const float *x, size_t stride, size_t n)
{
  for (size_t i = 0; i < n; i++)
    y[i] += a * x[i * stride];
}

void
fth_simd_axpy_strided (float *y, float a, const float *x, size_t stride, size_t n)
{
  if (have_avx512 ())
    axpy_strided_avx512 (y, a, x, stride, n);
  else if (stride == 1 && have_avx2 ())
    axpy_avx2 (y, a, x, n);
  else
    axpy_strided_c (y, a, x, stride, n);
}

FTH_AVX512 static void
bias_act_avx512 (float *y, float b, int relu, size_t n)
{
  __m512 vb = _mm512_set1_ps (b), zero = _mm512_setzero_ps ();
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    {
      __m512 v = _mm512_add_ps (_mm512_loadu_ps (y + i), vb);
      _mm512_storeu_ps (y + i, relu ? _mm512_max_ps (v, zero) : v);
    }
  if (i < n)
    {
      __mmask16 m = (__mmask16) ((1u << (n - i)) - 1);
      __m512 v = _mm512_add_ps (_mm512_maskz_loadu_ps (m, y + i), vb);
      _mm512_mask_storeu_ps (y + i, m, relu ? _mm512_max_ps (v, zero) : v);
    }
}

void
fth_simd_bias_act (float *y, float b, int relu, size_t n)
{
  if (have_avx512 ())
    {
      bias_act_avx512 (y, b, relu, n);
      return;
    }
  if (have_avx2 ())
    {
      bias_act_avx2 (y, b, relu, n);
      return;
    }
  for (size_t i = 0; i < n; i++)
    {
      float v = y[i] + b;
      y[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

FTH_AVX512 static float
sum_avx512 (const float *x, size_t n)
{
  __m512 a0 = _mm512_setzero_ps (), a1 = _mm512_setzero_ps ();
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    {
      a0 = _mm512_add_ps (a0, _mm512_loadu_ps (x + i));
      a1 = _mm512_add_ps (a1, _mm512_loadu_ps (x + i + 16));
    }
  for (; i + 16 <= n; i += 16)
    a0 = _mm512_add_ps (a0, _mm512_loadu_ps (x + i));
  if (i < n)
    a1 = _mm512_add_ps (a1, _mm512_maskz_loadu_ps ((__mmask16) ((1u << (n - i)) - 1), x + i));
  return _mm512_reduce_add_ps (_mm512_add_ps (a0, a1));
}

float
fth_simd_sum (const float *x, size_t n)
{
  if (have_avx512 ())
    return sum_avx512 (x, n);
  if (have_avx2 ())
    return dot_avx2 (x, NULL, n);
  float acc[4] = { 0 };
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; l++)
      acc[l] += x[i + l];
  for (; i < n; i++)
    acc[0] += x[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

FTH_AVX512 static float
masked_sum_avx512 (const float *x, const float *y, size_t n)
{
  const __m512 zero = _mm512_setzero_ps ();
  __m512 a0 = zero, a1 = zero;
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    {
      a0 = _mm512_mask_add_ps (a0, _mm512_cmp_ps_mask (_mm512_loadu_ps (y + i), zero, _CMP_GT_OQ),
                               a0, _mm512_loadu_ps (x + i));
      a1 = _mm512_mask_add_ps (a1, _mm512_cmp_ps_mask (_mm512_loadu_ps (y + i + 16), zero, _CMP_GT_OQ),
                               a1, _mm512_loadu_ps (x + i + 16));
    }
  for (; i < n; i += 16)
    {
      const __mmask16 m = n - i >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (n - i)) - 1);
      const __mmask16 pos = _mm512_mask_cmp_ps_mask (m, _mm512_maskz_loadu_ps (m, y + i), zero, _CMP_GT_OQ);
      a0 = _mm512_mask_add_ps (a0, pos, a0, _mm512_maskz_loadu_ps (m, x + i));
    }
  return _mm512_reduce_add_ps (_mm512_add_ps (a0, a1));
}

float
fth_simd_masked_sum (const float *x, const float *y, size_t n)
{
  if (y == NULL)
    return fth_simd_sum (x, n);
  if (have_avx512 ())
    return masked_sum_avx512 (x, y, n);
  float acc[4] = { 0 };
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; l++)
      acc[l] += y[i + l] > 0.0f ? x[i + l] : 0.0f;
  for (; i < n; i++)
    acc[0] += y[i] > 0.0f ? x[i] : 0.0f;
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

FTH_AVX512 static float
dot_avx512 (const float *x, const float *y, size_t n)
{
  __m512 a0 = _mm512_setzero_ps (), a1 = _mm512_setzero_ps ();
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    {
      a0 = _mm512_fmadd_ps (_mm512_loadu_ps (x + i), _mm512_loadu_ps (y + i), a0);
      a1 = _mm512_fmadd_ps (_mm512_loadu_ps (x + i + 16), _mm512_loadu_ps (y + i + 16), a1);
    }
  for (; i + 16 <= n; i += 16)
    a0 = _mm512_fmadd_ps (_mm512_loadu_ps (x + i), _mm512_loadu_ps (y + i), a0);
  if (i < n)
    {
      __mmask16 m = (__mmask16) ((1u << (n - i)) - 1);
      a1 = _mm512_fmadd_ps (_mm512_maskz_loadu_ps (m, x + i), _mm512_maskz_loadu_ps (m, y + i), a1);
    }
  return _mm512_reduce_add_ps (_mm512_add_ps (a0, a1));
}

float
fth_simd_dot (const float *x, const float *y, size_t n)
{
  if (have_avx512 ())
    return dot_avx512 (x, y, n);
  if (have_avx2 ())
    return dot_avx2 (x, y, n);
  float acc[4] = { 0 };
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; l++)
      acc[l] += x[i + l] * y[i + l];
  for (; i < n; i++)
    acc[0] += x[i] * y[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

static void
maxpool2_row_c (const float *top, const float *bot, float *out, uint8_t *arg, size_t n)
{
  for (size_t j = 0; j < n; j++)
    {
      float v[4] = { top[2 * j], top[2 * j + 1], bot[2 * j], bot[2 * j + 1] };
      int best = 0;
      for (int k = 1; k < 4; k++)
        if (v[k] > v[best])
          best = k;
      out[j] = v[best];
      if (arg)
        arg[j] = (uint8_t) best;
    }
}

static inline __mmask16
lane_mask (int a, int b)
{
  /* lanes [a, b) of 16, both clamped to [0, 16] */
  a = a < 0 ? 0 : a > 16 ? 16 : a;
  b = b < 0 ? 0 : b > 16 ? 16 : b;
  if (a >= b)
    return 0;
  return (__mmask16) ((((1u << b) - 1u)) & ~((1u << a) - 1u));
}

FTH_AVX512 static void
maxpool2_row_avx512 (const float *top, const float *bot, float *out, uint8_t *arg, size_t n)
{
  const __m512i even = _mm512_set_epi32 (30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32 (even, _mm512_set1_epi32 (1));
  for (size_t j = 0; j < n; j += 16)
    {
      /* masks cover the 2 * (n - j) inputs and n - j outputs left, so short rows (a 28-wide
       * plane pools into 14) stay in one vector step */
      const int left = (int) (n - j > 16 ? 16 : n - j);
      const __mmask16 m_lo = lane_mask (0, 2 * left), m_hi = lane_mask (0, 2 * left - 16);
      const __mmask16 m_out = lane_mask (0, left);
      __m512 t0 = _mm512_maskz_loadu_ps (m_lo, top + 2 * j), t1 = _mm512_maskz_loadu_ps (m_hi, top + 2 * j + 16);
      __m512 b0 = _mm512_maskz_loadu_ps (m_lo, bot + 2 * j), b1 = _mm512_maskz_loadu_ps (m_hi, bot + 2 * j + 16);
      __m512 te = _mm512_permutex2var_ps (t0, even, t1), to = _mm512_permutex2var_ps (t0, odd, t1);
      __m512 be = _mm512_permutex2var_ps (b0, even, b1), bo = _mm512_permutex2var_ps (b0, odd, b1);
      __m512 m = _mm512_max_ps (_mm512_max_ps (te, to), _mm512_max_ps (be, bo));
      _mm512_mask_storeu_ps (out + j, m_out, m);
      if (arg)
        {
          /* Later blends win, so blending in reverse window order keeps the first maximum. */
          __m512i a = _mm512_set1_epi32 (3);
          a = _mm512_mask_mov_epi32 (a, _mm512_cmp_ps_mask (be, m, _CMP_EQ_OQ), _mm512_set1_epi32 (2));
          a = _mm512_mask_mov_epi32 (a, _mm512_cmp_ps_mask (to, m, _CMP_EQ_OQ), _mm512_set1_epi32 (1));
          a = _mm512_mask_mov_epi32 (a, _mm512_cmp_ps_mask (te, m, _CMP_EQ_OQ), _mm512_setzero_si512 ());
          _mm512_mask_cvtepi32_storeu_epi8 (arg + j, m_out, a);
        }
    }
}

void
fth_simd_maxpool2_row (const float *top, const float *bot, float *out, uint8_t *arg, size_t n)
{
  if (have_avx512 ())
    maxpool2_row_avx512 (top, bot, out, arg, n);
  else
    maxpool2_row_c (top, bot, out, arg, n);
}


FTH_AVX512 static inline void
add_window_avx512 (float *dst, const float *src, int lo, int hi)
{
  for (int j = lo; j < hi; j += 16)
    {
      __mmask16 m = lane_mask (0, hi - j);
      __m512 v = _mm512_add_ps (_mm512_maskz_loadu_ps (m, dst + j), _mm512_maskz_loadu_ps (m, src + j));
      _mm512_mask_storeu_ps (dst + j, m, v);
    }
}


FTH_AVX512 static void
im2col_s1_avx512 (float *dst, const float *x, int in_h, int in_w, int ih0, int ih_step, int rows,
                  int off, int lo, int hi, int ow)
{
  /* column blocks outermost: the load and store masks depend on the block, not on the row */
  for (int j = 0; j < ow; j += 16)
    {
      const __mmask16 m_load = lane_mask (lo - j, hi - j), m_store = lane_mask (0, ow - j);
      for (int r = 0; r < rows; r++)
        {
          const int ih = ih0 + r * ih_step;
          const __m512 v = ih >= 0 && ih < in_h
                               ? _mm512_maskz_loadu_ps (m_load, x + (ptrdiff_t) ih * in_w + off + j)
                               : _mm512_setzero_ps ();
          _mm512_mask_storeu_ps (dst + (size_t) r * ow + j, m_store, v);
        }
    }
}

void
fth_simd_im2col_s1 (float *dst, const float *x, int in_h, int in_w, int ih0, int ih_step, int rows,
                    int off, int lo, int hi, int ow)
{
  if (have_avx512 ())
    {
      im2col_s1_avx512 (dst, x, in_h, in_w, ih0, ih_step, rows, off, lo, hi, ow);
      return;
    }
  if (have_avx2 ())
    {
      im2col_s1_avx2 (dst, x, in_h, in_w, ih0, ih_step, rows, off, lo, hi, ow);
      return;
    }
  for (int r = 0; r < rows; r++)
    {
      const int ih = ih0 + r * ih_step;
      float *d = dst + (size_t) r * ow;
      for (int o = 0; o < ow; o++)
        d[o] = ih >= 0 && ih < in_h && o >= lo && o < hi ? x[(ptrdiff_t) ih * in_w + o + off] : 0.0f;
    }
}

/* Valid output columns [lo, hi) of tap offset off (stride 1): o + off inside [0, in_w). */
static inline void
tap_cols (int off, int in_w, int ow, int *lo, int *hi)
{
  int l = off < 0 ? -off : 0, h = in_w - off;
  h = h > ow ? ow : h;
  *lo = l;
  *hi = h < l ? l : h;
}

FTH_AVX512 static void
col2im_s1_avx512 (float *x, const float *src, size_t tap_stride, int k_w, int dil_w, int pad_w,
                  int in_h, int in_w, int ih0, int ih_step, int rows, int ow)
{
  for (int r = 0; r < rows; r++)
    {
      const int ih = ih0 + r * ih_step;
      if (ih < 0 || ih >= in_h)
        continue;
      float *xr = x + (size_t) ih * in_w;
      for (int j = 0; j < in_w; j += 16)
        {
          const __mmask16 m_row = lane_mask (0, in_w - j);
          __m512 acc = _mm512_maskz_loadu_ps (m_row, xr + j);
          for (int kj = 0; kj < k_w; kj++)
            {
              const int off = kj * dil_w - pad_w;
              int lo, hi;
              tap_cols (off, in_w, ow, &lo, &hi);
              /* input column p = o + off takes src_kj[o]: lanes p in [lo + off, hi + off) */
              const __mmask16 m = lane_mask (lo + off - j, hi + off - j);
              if (m)
                acc = _mm512_add_ps (acc, _mm512_maskz_loadu_ps (m, src + kj * tap_stride + (size_t) r * ow + j - off));
            }
          _mm512_mask_storeu_ps (xr + j, m_row, acc);
        }
    }
}

void
fth_simd_col2im_s1 (float *x, const float *src, size_t tap_stride, int k_w, int dil_w, int pad_w,
                    int in_h, int in_w, int ih0, int ih_step, int rows, int ow)
{
  if (have_avx512 ())
    {
      col2im_s1_avx512 (x, src, tap_stride, k_w, dil_w, pad_w, in_h, in_w, ih0, ih_step, rows, ow);
      return;
    }
  for (int kj = 0; kj < k_w; kj++)
    {
      const int off = kj * dil_w - pad_w;
      int lo, hi;
      tap_cols (off, in_w, ow, &lo, &hi);
      for (int r = 0; r < rows; r++)
        {
          const int ih = ih0 + r * ih_step;
          if (ih < 0 || ih >= in_h)
            continue;
          for (int o = lo; o < hi; o++)
            x[(ptrdiff_t) ih * in_w + o + off] += src[kj * tap_stride + (size_t) r * ow + o];
        }
    }
}

FTH_AVX512 static void
relu_grad_avx512 (float *dz, const float *y, const float *dy, size_t n)
{
  for (size_t i = 0; i < n; i += 16)
    {
      const __mmask16 m = lane_mask (0, (int) (n - i > 16 ? 16 : n - i));
      const __mmask16 pos = _mm512_mask_cmp_ps_mask (m, _mm512_maskz_loadu_ps (m, y + i), _mm512_setzero_ps (), _CMP_GT_OQ);
      _mm512_mask_storeu_ps (dz + i, m, _mm512_maskz_loadu_ps (pos, dy + i));
    }
}

void
fth_simd_relu_grad (float *dz, const float *y, const float *dy, size_t n)
{
  if (have_avx512 ())
    {
      relu_grad_avx512 (dz, y, dy, n);
      return;
    }
  if (have_avx2 ())
    {
      relu_grad_avx2 (dz, y, dy, n);
      return;
    }
  for (size_t i = 0; i < n; i++)
    dz[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

FTH_AVX512 static void
unpool2_row_avx512 (const float *dy, const float *y, const uint8_t *arg, int relu, float *top,
                    float *bot, size_t n, size_t width)
{
  /* interleave: lanes 2k and 2k+1 of the result come from lane k of a (even) and b (odd) */
  const __m512i lo_idx = _mm512_set_epi32 (23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi_idx = _mm512_set_epi32 (31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  for (size_t j = 0; j < width; j += 32)
    {
      const size_t jp = j / 2; /* pooled index of lane 0 */
      const int left = jp < n ? (int) (n - jp > 16 ? 16 : n - jp) : 0;
      const __mmask16 m = lane_mask (0, left);
      __m512 g = _mm512_maskz_loadu_ps (m, dy + jp);
      __mmask16 keep = m;
      if (relu)
        keep = _mm512_mask_cmp_ps_mask (m, _mm512_maskz_loadu_ps (m, y + jp), _mm512_setzero_ps (), _CMP_GT_OQ);
      const __m512i a = _mm512_cvtepu8_epi32 (_mm_maskz_loadu_epi8 (m, arg + jp));
      const __mmask16 k0 = keep & _mm512_cmpeq_epi32_mask (a, _mm512_set1_epi32 (0));
      const __mmask16 k1 = keep & _mm512_cmpeq_epi32_mask (a, _mm512_set1_epi32 (1));
      const __mmask16 k2 = keep & _mm512_cmpeq_epi32_mask (a, _mm512_set1_epi32 (2));
      const __mmask16 k3 = keep & _mm512_cmpeq_epi32_mask (a, _mm512_set1_epi32 (3));
      const __m512 e0 = _mm512_maskz_mov_ps (k0, g), o0 = _mm512_maskz_mov_ps (k1, g);
      const __m512 e1 = _mm512_maskz_mov_ps (k2, g), o1 = _mm512_maskz_mov_ps (k3, g);
      const int w_left = (int) (width - j);
      const __mmask16 s_lo = lane_mask (0, w_left), s_hi = lane_mask (0, w_left - 16);
      _mm512_mask_storeu_ps (top + j, s_lo, _mm512_permutex2var_ps (e0, lo_idx, o0));
      _mm512_mask_storeu_ps (top + j + 16, s_hi, _mm512_permutex2var_ps (e0, hi_idx, o0));
      _mm512_mask_storeu_ps (bot + j, s_lo, _mm512_permutex2var_ps (e1, lo_idx, o1));
      _mm512_mask_storeu_ps (bot + j + 16, s_hi, _mm512_permutex2var_ps (e1, hi_idx, o1));
    }
}

void
fth_simd_unpool2_plane (const float *dy, const float *y, const uint8_t *arg, int relu, float *dz,
                        int out_h, int out_w)
{
  const int ph = out_h / 2, pw = out_w / 2;
  if (have_avx512 ())
    for (int i = 0; i < ph; i++)
      {
        float *top = dz + (size_t) (2 * i) * out_w;
        const size_t at = (size_t) i * pw;
        unpool2_row_avx512 (dy + at, y + at, arg + at, relu, top, top + out_w, (size_t) pw,
                            (size_t) out_w);
      }
  else
    {
      memset (dz, 0, sizeof (float) * (size_t) (2 * ph) * out_w);
      for (int i = 0; i < ph; i++)
        for (int j = 0; j < pw; j++)
          {
            const size_t at = (size_t) i * pw + j;
            if (relu && !(y[at] > 0.0f))
              continue;
            const int a = arg[at] & 3;
            dz[(size_t) (2 * i + (a >> 1)) * out_w + 2 * j + (a & 1)] = dy[at];
          }
    }
  /* an odd last row takes part in no window */
  if (out_h & 1)
    memset (dz + (size_t) (out_h - 1) * out_w, 0, sizeof (float) * (size_t) out_w);
}

FTH_AVX512 static void
dw3x3_row_avx512 (float *out, const float *const rows[3], const float *w, float bias, int stride,
                  int pad_w, int in_w, int ow)
{
  const __m512i even = _mm512_set_epi32 (30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  for (int j = 0; j < ow; j += 16)
    {
      __m512 acc = _mm512_set1_ps (bias);
      for (int ki = 0; ki < 3; ki++)
        {
          if (!rows[ki])
            continue;
          for (int kj = 0; kj < 3; kj++)
            {
              /* input column of lane l: c0 + stride * l; lanes outside [0, in_w) load zero */
              const int c0 = j * stride + kj - pad_w;
              __m512 v;
              if (stride == 1)
                v = _mm512_maskz_loadu_ps (lane_mask (-c0, in_w - c0), rows[ki] + c0);
              else
                {
                  __m512 lo = _mm512_maskz_loadu_ps (lane_mask (-c0, in_w - c0), rows[ki] + c0);
                  __m512 hi = _mm512_maskz_loadu_ps (lane_mask (-c0 - 16, in_w - c0 - 16), rows[ki] + c0 + 16);
                  v = _mm512_permutex2var_ps (lo, even, hi);
                }
              acc = _mm512_fmadd_ps (_mm512_set1_ps (w[3 * ki + kj]), v, acc);
            }
        }
      _mm512_mask_storeu_ps (out + j, lane_mask (0, ow - j), acc);
    }
}

void
fth_simd_dw3x3_row (float *out, const float *const rows[3], const float *w, float bias, int stride,
                    int pad_w, int in_w, int ow)
{
  if (have_avx512 () && (stride == 1 || stride == 2))
    {
      dw3x3_row_avx512 (out, rows, w, bias, stride, pad_w, in_w, ow);
      return;
    }
  for (int o = 0; o < ow; o++)
    out[o] = bias;
  for (int ki = 0; ki < 3; ki++)
    {
      if (!rows[ki])
        continue;
      for (int kj = 0; kj < 3; kj++)
        {
          /* the valid outputs of this tap, then one axpy over them */
          const int off = kj - pad_w;
          int lo = off < 0 ? (-off + stride - 1) / stride : 0;
          int hi = in_w - 1 - off < 0 ? 0 : (in_w - 1 - off) / stride + 1;
          hi = hi > ow ? ow : hi;
          if (hi > lo)
            fth_simd_axpy_strided (out + lo, w[3 * ki + kj], rows[ki] + (ptrdiff_t) lo * stride + off,
                                   (size_t) stride, (size_t) (hi - lo));
        }
    }
}

/* Lanes of one kernel tap: input columns c0 + stride * l (stride 1 or 2), zero outside the row. */
FTH_AVX512 static inline __attribute__ ((always_inline)) __m512
load_tap (const float *row, int c0, __mmask16 m_lo, __mmask16 m_hi, int stride)
{
  const __m512i even = _mm512_set_epi32 (30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  __m512 lo = _mm512_maskz_loadu_ps (m_lo, row + c0);
  if (stride == 1)
    return lo;
  return _mm512_permutex2var_ps (lo, even, _mm512_maskz_loadu_ps (m_hi, row + c0 + 16));
}

FTH_AVX512 static void
dw3x3_wgrad_avx512 (float g[9], const float *dz, const float *x, int in_h, int in_w, int out_h,
                    int out_w, int stride_h, int stride_w, int pad_h, int pad_w)
{
  /* column blocks outermost: the tap masks depend on the block, not on the row */
  for (int j = 0; j < out_w; j += 16)
    {
      const __mmask16 md = lane_mask (0, out_w - j);
      int c0[3];
      __mmask16 m_lo[3], m_hi[3];
      for (int kj = 0; kj < 3; kj++)
        {
          c0[kj] = j * stride_w + kj - pad_w;
          m_lo[kj] = lane_mask (-c0[kj], in_w - c0[kj]);
          m_hi[kj] = lane_mask (-c0[kj] - 16, in_w - c0[kj] - 16);
        }
      __m512 a0 = _mm512_setzero_ps (), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
             a7 = a0, a8 = a0;
      for (int oh = 0; oh < out_h; oh++)
        {
          const __m512 d = _mm512_maskz_loadu_ps (md, dz + (size_t) oh * out_w + j);
          const int ih = oh * stride_h - pad_h;
#define FTH_TAP_ROW(ki, acc0, acc1, acc2)                                                          \
  if (ih + (ki) >= 0 && ih + (ki) < in_h)                                                          \
    {                                                                                              \
      const float *row = x + (size_t) (ih + (ki)) * in_w;                                          \
      acc0 = _mm512_fmadd_ps (d, load_tap (row, c0[0], m_lo[0], m_hi[0], stride_w), acc0);         \
      acc1 = _mm512_fmadd_ps (d, load_tap (row, c0[1], m_lo[1], m_hi[1], stride_w), acc1);         \
      acc2 = _mm512_fmadd_ps (d, load_tap (row, c0[2], m_lo[2], m_hi[2], stride_w), acc2);         \
    }
          FTH_TAP_ROW (0, a0, a1, a2)
          FTH_TAP_ROW (1, a3, a4, a5)
          FTH_TAP_ROW (2, a6, a7, a8)
#undef FTH_TAP_ROW
        }
      g[0] += _mm512_reduce_add_ps (a0);
      g[1] += _mm512_reduce_add_ps (a1);
      g[2] += _mm512_reduce_add_ps (a2);
      g[3] += _mm512_reduce_add_ps (a3);
      g[4] += _mm512_reduce_add_ps (a4);
      g[5] += _mm512_reduce_add_ps (a5);
      g[6] += _mm512_reduce_add_ps (a6);
      g[7] += _mm512_reduce_add_ps (a7);
      g[8] += _mm512_reduce_add_ps (a8);
    }
}

void
fth_simd_dw3x3_wgrad (float g[9], const float *dz, const float *x, int in_h, int in_w, int out_h,
                      int out_w, int stride_h, int stride_w, int pad_h, int pad_w)
{
  if (have_avx512 () && (stride_w == 1 || stride_w == 2))
    {
      dw3x3_wgrad_avx512 (g, dz, x, in_h, in_w, out_h, out_w, stride_h, stride_w, pad_h, pad_w);
      return;
    }
  for (int ki = 0; ki < 3; ki++)
    for (int kj = 0; kj < 3; kj++)
      {
        float sum = 0.0f;
        for (int oh = 0; oh < out_h; oh++)
          {
            const int ih = oh * stride_h - pad_h + ki;
            if (ih < 0 || ih >= in_h)
              continue;
            for (int o = 0; o < out_w; o++)
              {
                const int c = o * stride_w + kj - pad_w;
                if (c >= 0 && c < in_w)
                  sum += dz[(size_t) oh * out_w + o] * x[(size_t) ih * in_w + c];
              }
          }
        g[3 * ki + kj] += sum;
      }
}

FTH_AVX512 static void
pool2_index_avx512 (int32_t *idx, const uint8_t *pos, int32_t base, int32_t in_w, size_t n)
{
  const __m512i two_j = _mm512_setr_epi32 (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i one = _mm512_set1_epi32 (1), w = _mm512_set1_epi32 (in_w);
  for (size_t j = 0; j < n; j += 16)
    {
      const __mmask16 m = lane_mask (0, (int) (n - j > 16 ? 16 : n - j));
      const __m512i p = _mm512_cvtepu8_epi32 (_mm_maskz_loadu_epi8 (m, pos + j));
      __m512i v = _mm512_add_epi32 (_mm512_set1_epi32 (base + 2 * (int32_t) j), two_j);
      v = _mm512_add_epi32 (v, _mm512_mullo_epi32 (_mm512_srli_epi32 (p, 1), w));
      v = _mm512_add_epi32 (v, _mm512_and_si512 (p, one));
      _mm512_mask_storeu_epi32 (idx + j, m, v);
    }
}

void
fth_simd_pool2_index (int32_t *idx, const uint8_t *pos, int32_t base, int32_t in_w, size_t n)
{
  if (have_avx512 ())
    {
      pool2_index_avx512 (idx, pos, base, in_w, n);
      return;
    }
  for (size_t j = 0; j < n; j++)
    idx[j] = base + (pos[j] >> 1) * in_w + 2 * (int32_t) j + (pos[j] & 1);
}

/* The accumulators of one output channel (9 taps x cb / 16 registers) stay in registers over
 * all its pooled values; each value costs 9 * halves loads and FMAs. */
FTH_AVX512 static inline __attribute__ ((always_inline)) void
pool_wgrad3x3_channel (float *d, size_t t_stride, const float *xp, int xp_w, const int halves,
                       const int cb, const float *dy, const float *y, const uint8_t *arg, int relu,
                       int ph, int pw)
{
  __m512 acc[18];
#pragma GCC unroll 9
  for (int t = 0; t < 9; t++)
#pragma GCC unroll 2
    for (int h = 0; h < halves; h++)
      acc[t * 2 + h] = _mm512_loadu_ps (d + (size_t) t * t_stride + (size_t) h * 16);
  for (int i = 0; i < ph; i++)
    for (int j = 0; j < pw; j++)
      {
        const size_t q = (size_t) i * pw + j;
        const float g = dy[q];
        if (g == 0.0f || (relu && !(y[q] > 0.0f)))
          continue;
        const int a = arg[q] & 3;
        const float *base = xp + ((size_t) (2 * i + (a >> 1)) * xp_w + (size_t) (2 * j + (a & 1))) * cb;
        const __m512 vg = _mm512_set1_ps (g);
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++)
          {
            const float *src = base + ((size_t) (t / 3) * xp_w + (size_t) (t % 3)) * cb;
#pragma GCC unroll 2
            for (int h = 0; h < halves; h++)
              acc[t * 2 + h] = _mm512_fmadd_ps (vg, _mm512_loadu_ps (src + h * 16), acc[t * 2 + h]);
          }
      }
#pragma GCC unroll 9
  for (int t = 0; t < 9; t++)
#pragma GCC unroll 2
    for (int h = 0; h < halves; h++)
      _mm512_storeu_ps (d + (size_t) t * t_stride + (size_t) h * 16, acc[t * 2 + h]);
}

FTH_AVX512 static void
pool_wgrad3x3_avx512 (float *dwt, size_t o_stride, size_t t_stride, const float *xp, int xp_w,
                      int cb, const float *dy, const float *y, const uint8_t *arg, int relu,
                      int out_c, int ph, int pw)
{
  const size_t plane = (size_t) ph * pw;
  for (int o = 0; o < out_c; o++)
    {
      const size_t at = (size_t) o * plane;
      if (cb == 32)
        pool_wgrad3x3_channel (dwt + (size_t) o * o_stride, t_stride, xp, xp_w, 2, 32, dy + at,
                               y + at, arg + at, relu, ph, pw);
      else
        pool_wgrad3x3_channel (dwt + (size_t) o * o_stride, t_stride, xp, xp_w, 1, 16, dy + at,
                               y + at, arg + at, relu, ph, pw);
    }
}

int
fth_simd_pool_wgrad3x3 (float *dwt, size_t o_stride, size_t t_stride, const float *xp, int xp_w,
                        int cb, const float *dy, const float *y, const uint8_t *arg, int relu,
                        int out_c, int ph, int pw)
{
  if (!have_avx512 () || (cb != 16 && cb != 32))
    return 0;
  pool_wgrad3x3_avx512 (dwt, o_stride, t_stride, xp, xp_w, cb, dy, y, arg, relu, out_c, ph, pw);
  return 1;
}

/* One output channel's 3x3 weights (9 x cb / 16 registers) stay in registers over all its
 * pooled values; each value costs 9 * halves loads, FMAs and stores into the padded patch. */
FTH_AVX512 static inline __attribute__ ((always_inline)) void
pool_dgrad3x3_channel (float *dxp, int xp_w, const int halves, const int cb, const float *wo,
                       size_t t_stride, const float *dy, const float *y, const uint8_t *arg,
                       int relu, int ph, int pw)
{
  __m512 wv[18];
#pragma GCC unroll 9
  for (int t = 0; t < 9; t++)
#pragma GCC unroll 2
    for (int h = 0; h < halves; h++)
      wv[t * 2 + h] = _mm512_loadu_ps (wo + (size_t) t * t_stride + (size_t) h * 16);
  for (int i = 0; i < ph; i++)
    for (int j = 0; j < pw; j++)
      {
        const size_t q = (size_t) i * pw + j;
        const float g = dy[q];
        if (g == 0.0f || (relu && !(y[q] > 0.0f)))
          continue;
        const int a = arg[q] & 3;
        float *base = dxp + ((size_t) (2 * i + (a >> 1)) * xp_w + (size_t) (2 * j + (a & 1))) * cb;
        const __m512 vg = _mm512_set1_ps (g);
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++)
          {
            float *dst = base + ((size_t) (t / 3) * xp_w + (size_t) (t % 3)) * cb;
#pragma GCC unroll 2
            for (int h = 0; h < halves; h++)
              _mm512_storeu_ps (dst + h * 16, _mm512_fmadd_ps (vg, wv[t * 2 + h],
                                                               _mm512_loadu_ps (dst + h * 16)));
          }
      }
}

FTH_AVX512 static void
pool_dgrad3x3_avx512 (float *dxp, int xp_w, int cb, const float *wt, size_t o_stride,
                      size_t t_stride, const float *dy, const float *y, const uint8_t *arg,
                      int relu, int out_c, int ph, int pw)
{
  const size_t plane = (size_t) ph * pw;
  for (int o = 0; o < out_c; o++)
    {
      const size_t at = (size_t) o * plane;
      if (cb == 32)
        pool_dgrad3x3_channel (dxp, xp_w, 2, 32, wt + (size_t) o * o_stride, t_stride, dy + at,
                               y + at, arg + at, relu, ph, pw);
      else
        pool_dgrad3x3_channel (dxp, xp_w, 1, 16, wt + (size_t) o * o_stride, t_stride, dy + at,
                               y + at, arg + at, relu, ph, pw);
    }
}

int
fth_simd_pool_dgrad3x3 (float *dxp, int xp_w, int cb, const float *wt, size_t o_stride,
                        size_t t_stride, const float *dy, const float *y, const uint8_t *arg,
                        int relu, int out_c, int ph, int pw)
{
  if (!have_avx512 () || (cb != 16 && cb != 32))
    return 0;
  pool_dgrad3x3_avx512 (dxp, xp_w, cb, wt, o_stride, t_stride, dy, y, arg, relu, out_c, ph, pw);
  return 1;
}
