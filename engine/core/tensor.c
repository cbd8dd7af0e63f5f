/* Tensors and dtype conversions. The conversion kernels pick AVX-512 at run time and give the
 * same bits as the scalar forms (the tests compare them). */
#include <fathom/tensor.h>

#include <immintrin.h>
#include <string.h>

#include "fth-kernels-cpu.h"

size_t fth_dtype_size(FthDType dtype) {
  switch (dtype) {
  case FTH_F32: return 4;
  case FTH_F16: return 2;
  case FTH_BF16: return 2;
  case FTH_I8: return 1;
  case FTH_U8: return 1;
  case FTH_I32: return 4;
  case FTH_DTYPE_COUNT: break;
  }
  return 0;
}

const char *fth_dtype_name(FthDType dtype) {
  static const char *const names[] = {"f32", "f16", "bf16", "i8", "u8", "i32"};
  return (unsigned)dtype < FTH_DTYPE_COUNT ? names[dtype] : "unknown";
}

int64_t fth_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

void fth_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
}

void fth_tensor_view(FthTensor *t, FthDType dtype, int ndim, const int64_t *shape, void *data) {
  memset(t, 0, sizeof *t);
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t->shape[i] = shape[i];
  fth_contiguous_strides(ndim, t->shape, t->strides);
  t->data = data;
  t->owned = false;
}

FthStatus fth_tensor_init(FthTensor *t, FthDType dtype, int ndim, const int64_t *shape) {
  if (!t || ndim < 0 || ndim > FTH_MAX_DIMS || (unsigned)dtype >= FTH_DTYPE_COUNT)
    return fth_error(FTH_STATUS_INVALID_ARGUMENT, "tensor: bad dtype or rank %d", ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0)
      return fth_error(FTH_STATUS_INVALID_ARGUMENT, "tensor: negative dimension %d", i);
  fth_tensor_view(t, dtype, ndim, shape, NULL);
  size_t bytes = fth_tensor_nbytes(t);
  size_t padded = (bytes + FTH_ALIGNMENT - 1) / FTH_ALIGNMENT * FTH_ALIGNMENT;
  t->data = fth_aligned_alloc(FTH_ALIGNMENT, padded);
  if (!t->data)
    return FTH_STATUS_NO_MEMORY;
  memset(t->data, 0, padded);
  t->owned = true;
  return FTH_STATUS_OK;
}

void fth_tensor_free(FthTensor *t) {
  if (t && t->owned)
    fth_free(t->data);
  if (t) {
    t->data = NULL;
    t->owned = false;
  }
}

int64_t fth_tensor_numel(const FthTensor *t) {
  return fth_shape_numel(t->ndim, t->shape);
}

size_t fth_tensor_nbytes(const FthTensor *t) {
  return (size_t)fth_tensor_numel(t) * fth_dtype_size(t->dtype);
}

bool fth_tensor_is_contiguous(const FthTensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != s)
      return false;
    s *= t->shape[i];
  }
  return true;
}

/* ---- scalar conversions ------------------------------------------------------------------ */

static uint32_t f32_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return u;
}

static float bits_f32(uint32_t u) {
  float x;
  memcpy(&x, &u, 4);
  return x;
}

uint16_t fth_f32_to_f16_scalar(float x) {
  uint32_t u = f32_bits(x);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  uint32_t exp = (u >> 23) & 0xFF;
  uint32_t mant = u & 0x7FFFFF;
  if (exp == 0xFF) /* Inf, or NaN made quiet with the payload's top bits */
    return sign | 0x7C00 | (mant ? 0x200 | (uint16_t)(mant >> 13) : 0);
  int32_t e = (int32_t)exp - 127 + 15;
  if (e >= 31)
    return sign | 0x7C00;
  if (e <= 0) { /* subnormal half (or zero): shift the full significand, round to nearest even */
    if (e < -10)
      return sign;
    uint32_t m = mant | 0x800000;
    int shift = 14 - e;
    uint32_t half = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1)))
      half++;
    return sign | (uint16_t)half;
  }
  uint32_t half = ((uint32_t)e << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
    half++; /* may carry into the exponent, up to Inf: correct */
  return sign | (uint16_t)half;
}

float fth_f16_to_f32_scalar(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0x1F)
    return bits_f32(sign | 0x7F800000 | (mant ? 0x400000 | (mant << 13) : 0));
  if (exp == 0) {
    if (mant == 0)
      return bits_f32(sign);
    int e = -1;
    do { /* normalize the subnormal */
      mant <<= 1;
      e++;
    } while (!(mant & 0x400));
    return bits_f32(sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3FF) << 13));
  }
  return bits_f32(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t fth_f32_to_bf16_scalar(float x) {
  uint32_t u = f32_bits(x);
  if ((u & 0x7FFFFFFF) > 0x7F800000)
    return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

float fth_bf16_to_f32_scalar(uint16_t h) {
  return bits_f32((uint32_t)h << 16);
}

/* ---- bulk conversions ---------------------------------------------------------------------- */

__attribute__((target("avx512f"))) static void f32_to_f16_avx512(const float *src, uint16_t *dst,
                                                                  size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256((__m256i *)(dst + i), h);
  }
  for (; i < n; i++)
    dst[i] = fth_f32_to_f16_scalar(src[i]);
}

__attribute__((target("avx512f"))) static void f16_to_f32_avx512(const uint16_t *src, float *dst,
                                                                  size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
  for (; i < n; i++)
    dst[i] = fth_f16_to_f32_scalar(src[i]);
}

/* Integer rounding rather than vcvtneps2bf16, which flushes subnormals to zero. */
__attribute__((target("avx512f,avx512bw"))) static void f32_to_bf16_avx512(const float *src,
                                                                           uint16_t *dst, size_t n) {
  size_t i = 0;
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
  const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1);
  const __m512i quiet = _mm512_set1_epi32(0x40);
  for (; i + 16 <= n; i += 16) {
    __m512i u = _mm512_loadu_si512(src + i);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, lsb)), 16);
    __m512i nan_val = _mm512_or_si512(_mm512_srli_epi32(u, 16), quiet);
    __m512i r = _mm512_mask_mov_epi32(rounded, nan, nan_val);
    _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtepi32_epi16(r));
  }
  for (; i < n; i++)
    dst[i] = fth_f32_to_bf16_scalar(src[i]);
}

__attribute__((target("avx512f"))) static void bf16_to_f32_avx512(const uint16_t *src, float *dst,
                                                                   size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
    _mm512_storeu_si512(dst + i, _mm512_slli_epi32(w, 16));
  }
  for (; i < n; i++)
    dst[i] = fth_bf16_to_f32_scalar(src[i]);
}

void fth_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512) {
    f32_to_f16_avx512(src, dst, n);
    return;
  }
  for (size_t i = 0; i < n; i++)
    dst[i] = fth_f32_to_f16_scalar(src[i]);
}

void fth_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512) {
    f16_to_f32_avx512(src, dst, n);
    return;
  }
  for (size_t i = 0; i < n; i++)
    dst[i] = fth_f16_to_f32_scalar(src[i]);
}

void fth_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512) {
    f32_to_bf16_avx512(src, dst, n);
    return;
  }
  for (size_t i = 0; i < n; i++)
    dst[i] = fth_f32_to_bf16_scalar(src[i]);
}

void fth_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
  if (fth_cpu_isa() >= FTH_ISA_AVX512) {
    bf16_to_f32_avx512(src, dst, n);
    return;
  }
  for (size_t i = 0; i < n; i++)
    dst[i] = fth_bf16_to_f32_scalar(src[i]);
}

/* ---- strided copy with conversion ---------------------------------------------------------- */

static float load_as_f32(const FthTensor *t, int64_t off) {
  switch (t->dtype) {
  case FTH_F32: return ((const float *)t->data)[off];
  case FTH_F16: return fth_f16_to_f32_scalar(((const uint16_t *)t->data)[off]);
  case FTH_BF16: return fth_bf16_to_f32_scalar(((const uint16_t *)t->data)[off]);
  default: return 0.0f;
  }
}

static void store_from_f32(FthTensor *t, int64_t off, float v) {
  switch (t->dtype) {
  case FTH_F32: ((float *)t->data)[off] = v; break;
  case FTH_F16: ((uint16_t *)t->data)[off] = fth_f32_to_f16_scalar(v); break;
  case FTH_BF16: ((uint16_t *)t->data)[off] = fth_f32_to_bf16_scalar(v); break;
  default: break;
  }
}

static bool is_float(FthDType d) {
  return d == FTH_F32 || d == FTH_F16 || d == FTH_BF16;
}

/* Advances a multi-index over the axes in `axes` (last fastest); false after the last one. */
static bool next_index(int64_t *idx, const int64_t *shape, const int *axes, int n_axes) {
  for (int k = n_axes - 1; k >= 0; k--) {
    if (++idx[axes[k]] < shape[axes[k]])
      return true;
    idx[axes[k]] = 0;
  }
  return false;
}

static int64_t offset_of(const int64_t *idx, const int64_t *strides, int ndim) {
  int64_t off = 0;
  for (int d = 0; d < ndim; d++)
    off += idx[d] * strides[d];
  return off;
}

/* Same-dtype copy of a strided src into a contiguous dst without per-element index arithmetic:
 * whole rows when src's last axis is contiguous, else (4-byte elements) 32 x 32 tiles between the
 * last axis and the axis that is contiguous in src (a transpose), so both sides move in cache
 * lines. False when neither applies. */
static bool copy_fast(FthTensor *dst, const FthTensor *src) {
  int nd = src->ndim, last = nd - 1;
  size_t es = fth_dtype_size(src->dtype);
  if (nd == 0 || !fth_tensor_is_contiguous(dst) || fth_tensor_numel(src) == 0)
    return false;
  const char *s = src->data;
  char *d = dst->data;
  int64_t idx[FTH_MAX_DIMS] = {0};
  int outer[FTH_MAX_DIMS], n_outer = 0;
  if (src->strides[last] == 1) {
    for (int i = 0; i < last; i++)
      outer[n_outer++] = i;
    size_t row = (size_t)src->shape[last] * es;
    do {
      memcpy(d + offset_of(idx, dst->strides, nd) * (int64_t)es, s + offset_of(idx, src->strides, nd) * (int64_t)es,
             row);
    } while (next_index(idx, src->shape, outer, n_outer));
    return true;
  }
  int a = -1;
  for (int i = 0; i < last; i++)
    if (src->strides[i] == 1 && src->shape[i] > 1)
      a = i;
  if (a < 0 || es != 4)
    return false;
  for (int i = 0; i < last; i++)
    if (i != a)
      outer[n_outer++] = i;
  int64_t rows = src->shape[a], cols = src->shape[last], sc = src->strides[last], dr = dst->strides[a];
  enum { TILE = 32 };
  do {
    const uint32_t *sp = (const uint32_t *)s + offset_of(idx, src->strides, nd);
    uint32_t *dp = (uint32_t *)d + offset_of(idx, dst->strides, nd);
    for (int64_t r0 = 0; r0 < rows; r0 += TILE)
      for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
        int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows, c1 = c0 + TILE < cols ? c0 + TILE : cols;
        for (int64_t c = c0; c < c1; c++)
          for (int64_t r = r0; r < r1; r++)
            dp[r * dr + c] = sp[r + c * sc];
      }
  } while (next_index(idx, src->shape, outer, n_outer));
  return true;
}

FthStatus fth_tensor_copy(FthTensor *dst, const FthTensor *src) {
  if (dst->ndim != src->ndim)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "tensor copy: rank %d vs %d", dst->ndim, src->ndim);
  for (int i = 0; i < src->ndim; i++)
    if (dst->shape[i] != src->shape[i])
      return fth_error(FTH_STATUS_SHAPE_MISMATCH, "tensor copy: dimension %d: %lld vs %lld", i,
                       (long long)dst->shape[i], (long long)src->shape[i]);
  bool same = dst->dtype == src->dtype;
  if (!same && !(is_float(dst->dtype) && is_float(src->dtype)))
    return fth_error(FTH_STATUS_UNSUPPORTED, "tensor copy: %s to %s", fth_dtype_name(src->dtype),
                     fth_dtype_name(dst->dtype));
  size_t n = (size_t)fth_tensor_numel(src);
  if (fth_tensor_is_contiguous(src) && fth_tensor_is_contiguous(dst)) {
    if (same)
      memcpy(dst->data, src->data, n * fth_dtype_size(src->dtype));
    else if (src->dtype == FTH_F32 && dst->dtype == FTH_F16)
      fth_f32_to_f16(src->data, dst->data, n);
    else if (src->dtype == FTH_F16 && dst->dtype == FTH_F32)
      fth_f16_to_f32(src->data, dst->data, n);
    else if (src->dtype == FTH_F32 && dst->dtype == FTH_BF16)
      fth_f32_to_bf16(src->data, dst->data, n);
    else if (src->dtype == FTH_BF16 && dst->dtype == FTH_F32)
      fth_bf16_to_f32(src->data, dst->data, n);
    else
      for (size_t i = 0; i < n; i++)
        store_from_f32(dst, (int64_t)i, load_as_f32(src, (int64_t)i));
    return FTH_STATUS_OK;
  }
  if (same && copy_fast(dst, src))
    return FTH_STATUS_OK;
  size_t esize = fth_dtype_size(src->dtype);
  int64_t idx[FTH_MAX_DIMS] = {0};
  for (size_t i = 0; i < n; i++) {
    int64_t so = 0, doff = 0;
    for (int d = 0; d < src->ndim; d++) {
      so += idx[d] * src->strides[d];
      doff += idx[d] * dst->strides[d];
    }
    if (same)
      memcpy((char *)dst->data + doff * (int64_t)esize, (const char *)src->data + so * (int64_t)esize, esize);
    else
      store_from_f32(dst, doff, load_as_f32(src, so));
    for (int d = src->ndim - 1; d >= 0; d--) {
      if (++idx[d] < src->shape[d])
        break;
      idx[d] = 0;
    }
  }
  return FTH_STATUS_OK;
}
