/* Elementwise kernels, activations and row softmax: scalar reference forms plus AVX2 and AVX-512
 * forms chosen at run time. The vector exp is a degree-6 polynomial on [-ln2/2, ln2/2] scaled by
 * 2^n (a few ulp from expf), so the SIMD transcendental kernels match the scalar ones to a
 * relative 1e-6, not bit for bit. */
#include "fth-kernels-cpu.h"

#include <immintrin.h>
#include <math.h>

#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma")))
#define AVX2 __attribute__((target("avx2,fma")))

/* ---- scalar reference ------------------------------------------------------------------------ */

void fth_k_add_scalar(const float *a, const float *b, float *y, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] = a[i] + b[i];
}

void fth_k_mul_scalar(const float *a, const float *b, float *y, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] = a[i] * b[i];
}

void fth_k_relu_scalar(const float *x, float *y, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void fth_k_bias_act_scalar(float *y, const float *bias, size_t rows, size_t cols, int relu) {
  for (size_t r = 0; r < rows; r++) {
    float *row = y + r * cols;
    for (size_t c = 0; c < cols; c++) {
      float v = row[c] + (bias ? bias[c] : 0.0f);
      row[c] = relu && v < 0.0f ? 0.0f : v;
    }
  }
}

void fth_k_sigmoid_scalar(const float *x, float *y, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void fth_k_tanh_scalar(const float *x, float *y, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] = tanhf(x[i]);
}

void fth_k_silu_scalar(const float *x, float *y, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] / (1.0f + expf(-x[i]));
}

#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_COEF 0.044715f

void fth_k_gelu_scalar(const float *x, float *y, size_t n, bool tanh_form) {
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    if (tanh_form)
      y[i] = 0.5f * v * (1.0f + tanhf(SQRT_2_OVER_PI * (v + GELU_COEF * v * v * v)));
    else
      y[i] = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
  }
}

void fth_k_relu_grad_scalar(const float *dy, const float *y, float *dx, size_t n) {
  for (size_t i = 0; i < n; i++)
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void fth_k_sigmoid_grad_scalar(const float *dy, const float *y, float *dx, size_t n) {
  for (size_t i = 0; i < n; i++)
    dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

void fth_k_tanh_grad_scalar(const float *dy, const float *y, float *dx, size_t n) {
  for (size_t i = 0; i < n; i++)
    dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

void fth_k_silu_grad_scalar(const float *dy, const float *x, float *dx, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float s = 1.0f / (1.0f + expf(-x[i]));
    dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
  }
}

void fth_k_gelu_grad_scalar(const float *dy, const float *x, float *dx, size_t n, bool tanh_form) {
  for (size_t i = 0; i < n; i++) {
    float v = x[i], d;
    if (tanh_form) {
      float u = SQRT_2_OVER_PI * (v + GELU_COEF * v * v * v);
      float t = tanhf(u);
      d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_COEF * v * v);
    } else {
      d = 0.5f * (1.0f + erff(v * 0.7071067811865476f)) + v * 0.3989422804014327f * expf(-0.5f * v * v);
    }
    dx[i] = dy[i] * d;
  }
}

void fth_k_softmax_rows_scalar(const float *x, float *y, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float m = -INFINITY;
    for (size_t c = 0; c < cols; c++)
      m = xr[c] > m ? xr[c] : m;
    float s = 0.0f;
    for (size_t c = 0; c < cols; c++) {
      yr[c] = expf(xr[c] - m);
      s += yr[c];
    }
    float inv = 1.0f / s;
    for (size_t c = 0; c < cols; c++)
      yr[c] *= inv;
  }
}

void fth_k_log_softmax_rows_scalar(const float *x, float *y, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float m = -INFINITY;
    for (size_t c = 0; c < cols; c++)
      m = xr[c] > m ? xr[c] : m;
    float s = 0.0f;
    for (size_t c = 0; c < cols; c++)
      s += expf(xr[c] - m);
    float lse = m + logf(s);
    for (size_t c = 0; c < cols; c++)
      yr[c] = xr[c] - lse;
  }
}

/* ---- AVX-512 ------------------------------------------------------------------------------------ */

AVX512 static inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.37f)), _mm512_set1_ps(-87.33f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.4426950408889634f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

AVX512 static void add_avx512(const float *a, const float *b, float *y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

AVX512 static void mul_avx512(const float *a, const float *b, float *y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

AVX512 static void relu_avx512(const float *x, float *y, size_t n) {
  const __m512 z = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_max_ps(_mm512_loadu_ps(x + i), z));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, _mm512_max_ps(_mm512_maskz_loadu_ps(m, x + i), z));
  }
}

AVX512 static void bias_act_avx512(float *y, const float *bias, size_t rows, size_t cols, int relu) {
  const __m512 z = _mm512_setzero_ps();
  for (size_t r = 0; r < rows; r++) {
    float *row = y + r * cols;
    for (size_t c = 0; c < cols; c += 16) {
      __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
      __m512 v = _mm512_maskz_loadu_ps(m, row + c);
      if (bias)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c));
      if (relu)
        v = _mm512_max_ps(v, z);
      _mm512_mask_storeu_ps(row + c, m, v);
    }
  }
}

AVX512 static void sigmoid_avx512(const float *x, float *y, size_t n, bool times_x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
    _mm512_mask_storeu_ps(y + i, m, times_x ? _mm512_mul_ps(v, s) : s);
  }
}

AVX512 static void softmax_rows_avx512(const float *x, float *y, size_t rows, size_t cols, bool log_form) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (size_t c = 0; c < cols; c += 16) {
      __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
      mv = _mm512_mask_max_ps(mv, m, mv, _mm512_maskz_loadu_ps(m, xr + c));
    }
    float mx = _mm512_reduce_max_ps(mv);
    __m512 mxv = _mm512_set1_ps(mx), sv = _mm512_setzero_ps();
    for (size_t c = 0; c < cols; c += 16) {
      __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
      __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + c), mxv));
      sv = _mm512_add_ps(sv, _mm512_maskz_mov_ps(m, e));
      if (!log_form)
        _mm512_mask_storeu_ps(yr + c, m, e);
    }
    float s = _mm512_reduce_add_ps(sv);
    if (log_form) {
      __m512 lse = _mm512_set1_ps(mx + logf(s));
      for (size_t c = 0; c < cols; c += 16) {
        __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
        _mm512_mask_storeu_ps(yr + c, m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + c), lse));
      }
    } else {
      __m512 inv = _mm512_set1_ps(1.0f / s);
      for (size_t c = 0; c < cols; c += 16) {
        __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
        _mm512_mask_storeu_ps(yr + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, yr + c), inv));
      }
    }
  }
}

/* tanh(x) = 1 - 2 / (exp(2x) + 1): absolute error ~1e-7 (relative error grows only where
 * |tanh x| < 1e-6, far below what training notices). */
AVX512 static inline __m512 tanh512(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 e = exp512(_mm512_add_ps(x, x));
  return _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
}

/* erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), odd extension. */
AVX512 static inline __m512 erf512(__m512 x) {
  __m512 ax = _mm512_abs_ps(x);
  __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(ax, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  __m512 e = exp512(_mm512_mul_ps(_mm512_mul_ps(ax, ax), _mm512_set1_ps(-1.0f)));
  __m512 r = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
  /* copy the sign of x */
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r),
                                             _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
}

static inline __mmask16 tail_mask(size_t left) {
  return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

/* One loop shape for every unary and binary elementwise AVX-512 kernel: full registers, then one
 * masked register for the tail. */
#define AVX512_MAP(n, ...)                                                                             \
  for (size_t i = 0; i < (n); i += 16) {                                                               \
    __mmask16 m = tail_mask((n)-i);                                                                    \
    __VA_ARGS__                                                                                        \
  }

AVX512 static void sub_avx512(const float *a, const float *b, float *y, size_t n) {
  AVX512_MAP(n, _mm512_mask_storeu_ps(y + i, m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));)
}

AVX512 static void axpby_avx512(const float *x, float alpha, float beta, float *y, size_t n) {
  __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  AVX512_MAP(n, _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), vb));)
}

AVX512 static void relu_grad_avx512(const float *dy, const float *y, float *dx, size_t n) {
  AVX512_MAP(n, {
    __mmask16 pos = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, y + i), _mm512_setzero_ps(), _CMP_GT_OQ);
    _mm512_mask_storeu_ps(dx + i, m, _mm512_maskz_loadu_ps(pos, dy + i));
  })
}

AVX512 static void sigmoid_grad_avx512(const float *dy, const float *y, float *dx, size_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  AVX512_MAP(n, {
    __m512 v = _mm512_maskz_loadu_ps(m, y + i);
    __m512 d = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), _mm512_mul_ps(v, _mm512_sub_ps(one, v)));
    _mm512_mask_storeu_ps(dx + i, m, d);
  })
}

AVX512 static void tanh_avx512(const float *x, float *y, size_t n) {
  AVX512_MAP(n, _mm512_mask_storeu_ps(y + i, m, tanh512(_mm512_maskz_loadu_ps(m, x + i)));)
}

AVX512 static void tanh_grad_avx512(const float *dy, const float *y, float *dx, size_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  AVX512_MAP(n, {
    __m512 v = _mm512_maskz_loadu_ps(m, y + i);
    _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), _mm512_fnmadd_ps(v, v, one)));
  })
}

AVX512 static void silu_grad_avx512(const float *dy, const float *x, float *dx, size_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  AVX512_MAP(n, {
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 sg = _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
    __m512 d = _mm512_mul_ps(sg, _mm512_fmadd_ps(v, _mm512_sub_ps(one, sg), one));
    _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), d));
  })
}

AVX512 static void gelu_avx512(const float *x, float *y, size_t n, bool tanh_form) {
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  AVX512_MAP(n, {
    __m512 v = _mm512_maskz_loadu_ps(m, x + i), g;
    if (tanh_form) {
      __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
      __m512 u = _mm512_mul_ps(_mm512_set1_ps(SQRT_2_OVER_PI), _mm512_fmadd_ps(_mm512_set1_ps(GELU_COEF), v3, v));
      g = tanh512(u);
    } else {
      g = erf512(_mm512_mul_ps(v, _mm512_set1_ps(0.7071067811865476f)));
    }
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, g)));
  })
}

AVX512 static void gelu_grad_avx512(const float *dy, const float *x, float *dx, size_t n, bool tanh_form) {
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  AVX512_MAP(n, {
    __m512 v = _mm512_maskz_loadu_ps(m, x + i), v2 = _mm512_mul_ps(v, v), d;
    if (tanh_form) {
      __m512 u = _mm512_mul_ps(_mm512_set1_ps(SQRT_2_OVER_PI), _mm512_fmadd_ps(_mm512_set1_ps(GELU_COEF), _mm512_mul_ps(v2, v), v));
      __m512 t = tanh512(u);
      __m512 du = _mm512_mul_ps(_mm512_set1_ps(SQRT_2_OVER_PI), _mm512_fmadd_ps(_mm512_set1_ps(3.0f * GELU_COEF), v2, one));
      d = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_fnmadd_ps(t, t, one)), du,
                          _mm512_mul_ps(half, _mm512_add_ps(one, t)));
    } else {
      __m512 cdf = _mm512_mul_ps(half, _mm512_add_ps(one, erf512(_mm512_mul_ps(v, _mm512_set1_ps(0.7071067811865476f)))));
      __m512 pdf = _mm512_mul_ps(_mm512_set1_ps(0.3989422804014327f), exp512(_mm512_mul_ps(_mm512_set1_ps(-0.5f), v2)));
      d = _mm512_fmadd_ps(v, pdf, cdf);
    }
    _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), d));
  })
}

/* ---- AVX2 (the simple kernels; the rest fall back to scalar) ------------------------------- */

AVX2 static void add_avx2(const float *a, const float *b, float *y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; i++)
    y[i] = a[i] + b[i];
}

AVX2 static void mul_avx2(const float *a, const float *b, float *y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; i++)
    y[i] = a[i] * b[i];
}

AVX2 static void relu_avx2(const float *x, float *y, size_t n) {
  const __m256 z = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_max_ps(_mm256_loadu_ps(x + i), z));
  for (; i < n; i++)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

AVX2 static void bias_act_avx2(float *y, const float *bias, size_t rows, size_t cols, int relu) {
  const __m256 z = _mm256_setzero_ps();
  for (size_t r = 0; r < rows; r++) {
    float *row = y + r * cols;
    size_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      __m256 v = _mm256_loadu_ps(row + c);
      if (bias)
        v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
      if (relu)
        v = _mm256_max_ps(v, z);
      _mm256_storeu_ps(row + c, v);
    }
    for (; c < cols; c++) {
      float v = row[c] + (bias ? bias[c] : 0.0f);
      row[c] = relu && v < 0.0f ? 0.0f : v;
    }
  }
}

/* ---- dispatch ----------------------------------------------------------------------------------- */

void fth_k_add(const float *a, const float *b, float *y, size_t n) {
  switch (fth_cpu_isa()) {
  case FTH_ISA_AVX512: add_avx512(a, b, y, n); return;
  case FTH_ISA_AVX2: add_avx2(a, b, y, n); return;
  default: fth_k_add_scalar(a, b, y, n);
  }
}

void fth_k_mul(const float *a, const float *b, float *y, size_t n) {
  switch (fth_cpu_isa()) {
  case FTH_ISA_AVX512: mul_avx512(a, b, y, n); return;
  case FTH_ISA_AVX2: mul_avx2(a, b, y, n); return;
  default: fth_k_mul_scalar(a, b, y, n);
  }
}

void fth_k_sub(const float *a, const float *b, float *y, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512) {
    sub_avx512(a, b, y, n);
    return;
  }
  for (size_t i = 0; i < n; i++)
    y[i] = a[i] - b[i];
}

void fth_k_axpby(const float *x, float alpha, float beta, float *y, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512) {
    axpby_avx512(x, alpha, beta, y, n);
    return;
  }
  for (size_t i = 0; i < n; i++)
    y[i] = alpha * x[i] + beta;
}

void fth_k_relu(const float *x, float *y, size_t n) {
  switch (fth_cpu_isa()) {
  case FTH_ISA_AVX512: relu_avx512(x, y, n); return;
  case FTH_ISA_AVX2: relu_avx2(x, y, n); return;
  default: fth_k_relu_scalar(x, y, n);
  }
}

void fth_k_bias_act(float *y, const float *bias, size_t rows, size_t cols, int relu) {
  switch (fth_cpu_isa()) {
  case FTH_ISA_AVX512: bias_act_avx512(y, bias, rows, cols, relu); return;
  case FTH_ISA_AVX2: bias_act_avx2(y, bias, rows, cols, relu); return;
  default: fth_k_bias_act_scalar(y, bias, rows, cols, relu);
  }
}

void fth_k_relu_grad(const float *dy, const float *y, float *dx, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    relu_grad_avx512(dy, y, dx, n);
  else
    fth_k_relu_grad_scalar(dy, y, dx, n);
}

void fth_k_sigmoid(const float *x, float *y, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    sigmoid_avx512(x, y, n, false);
  else
    fth_k_sigmoid_scalar(x, y, n);
}

void fth_k_sigmoid_grad(const float *dy, const float *y, float *dx, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    sigmoid_grad_avx512(dy, y, dx, n);
  else
    fth_k_sigmoid_grad_scalar(dy, y, dx, n);
}

void fth_k_tanh(const float *x, float *y, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    tanh_avx512(x, y, n);
  else
    fth_k_tanh_scalar(x, y, n);
}

void fth_k_tanh_grad(const float *dy, const float *y, float *dx, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    tanh_grad_avx512(dy, y, dx, n);
  else
    fth_k_tanh_grad_scalar(dy, y, dx, n);
}

void fth_k_silu(const float *x, float *y, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    sigmoid_avx512(x, y, n, true);
  else
    fth_k_silu_scalar(x, y, n);
}

void fth_k_silu_grad(const float *dy, const float *x, float *dx, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    silu_grad_avx512(dy, x, dx, n);
  else
    fth_k_silu_grad_scalar(dy, x, dx, n);
}

void fth_k_gelu(const float *x, float *y, size_t n, bool tanh_form) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    gelu_avx512(x, y, n, tanh_form);
  else
    fth_k_gelu_scalar(x, y, n, tanh_form);
}

void fth_k_gelu_grad(const float *dy, const float *x, float *dx, size_t n, bool tanh_form) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    gelu_grad_avx512(dy, x, dx, n, tanh_form);
  else
    fth_k_gelu_grad_scalar(dy, x, dx, n, tanh_form);
}

void fth_k_softmax_rows(const float *x, float *y, size_t rows, size_t cols) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    softmax_rows_avx512(x, y, rows, cols, false);
  else
    fth_k_softmax_rows_scalar(x, y, rows, cols);
}

void fth_k_log_softmax_rows(const float *x, float *y, size_t rows, size_t cols) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    softmax_rows_avx512(x, y, rows, cols, true);
  else
    fth_k_log_softmax_rows_scalar(x, y, rows, cols);
}

void fth_k_add_scalar_row(float *y, const float *row, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; r++)
    fth_k_add(y + r * cols, row, y + r * cols, cols);
}

void fth_k_sum_rows(const float *x, float *out, size_t rows, size_t cols, bool accumulate) {
  if (!accumulate)
    for (size_t c = 0; c < cols; c++)
      out[c] = 0.0f;
  for (size_t r = 0; r < rows; r++)
    fth_k_add(out, x + r * cols, out, cols);
}

double fth_k_sum(const float *x, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++)
    s += x[i];
  return s;
}
