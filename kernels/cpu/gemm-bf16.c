/* GEMM with bf16 inputs and fp32 accumulation (AVX512_BF16, vdpbf16ps): C = op(A) op(B).
 *
 * Both operands are converted (round to nearest even) into "pairs": one uint32 holding bf16 of
 * k = 2p in its low half and of k = 2p + 1 in its high half, which is what vdpbf16ps multiplies
 * and adds in one lane. A is packed row-major ([m][kp2], kp2 = ceil(k / 2)), B as [kp2][ldpb] with
 * the columns contiguous, so the micro-kernel broadcasts one pair of A per row and loads 16
 * columns of B per register: 8 rows x 32 columns of accumulators, 2 x 16 lanes x 2 products per
 * pair step. An odd k is padded with a zero. */
#include "fth-kernels-cpu.h"

#include <immintrin.h>

#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

enum { MR = 8, NR = 32 };

static inline __mmask16 lanes(size_t left) {
  return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

/* 16 pairs from two vectors of 16 floats: lo gives the low halves, hi the high halves. */
BF16 static inline __m512i pairs_of(__m512 lo, __m512 hi) {
  __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
  __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
  return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

/* Pairs of 2n consecutive floats (the last one missing when `odd`): a plain conversion, since
 * consecutive bf16 values are consecutive pair halves. */
BF16 static void pairs_contiguous(const float *x, size_t k, uint32_t *out) {
  size_t p = 0, kp2 = (k + 1) / 2;
  for (; 2 * p + 32 <= k; p += 16) {
    __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + 2 * p + 16), _mm512_loadu_ps(x + 2 * p));
    _mm512_storeu_si512(out + p, (__m512i)v);
  }
  for (; p < kp2; p += 16) {
    size_t left = k - 2 * p; /* floats left, 1..31 */
    __m512 lo = _mm512_maskz_loadu_ps(lanes(left), x + 2 * p);
    __m512 hi = _mm512_maskz_loadu_ps(left > 16 ? lanes(left - 16) : 0, x + 2 * p + 16);
    __m512bh v = _mm512_cvtne2ps_pbh(hi, lo);
    _mm512_mask_storeu_epi32(out + p, lanes(kp2 - p), (__m512i)v);
  }
}

/* out[i * kp2 + p] for rows i of op(A) (m x k); a is [m][lda] or, transposed, [k][lda]. */
BF16 static void pack_a_avx512(bool trans, int m, int k, const float *a, int lda, uint32_t *out) {
  size_t kp2 = ((size_t)k + 1) / 2;
  if (!trans) {
    for (int i = 0; i < m; i++)
      pairs_contiguous(a + (size_t)i * (size_t)lda, (size_t)k, out + (size_t)i * kp2);
    return;
  }
  /* A(i, k) = a[k * lda + i]: rows 2p and 2p + 1 of a give the pairs of 16 rows of A at once */
  uint32_t tmp[16];
  for (size_t p = 0; p < kp2; p++) {
    const float *r0 = a + 2 * p * (size_t)lda, *r1 = r0 + lda;
    bool has1 = 2 * p + 1 < (size_t)k;
    for (int i = 0; i < m; i += 16) {
      __mmask16 mk = lanes((size_t)(m - i));
      __m512i v = pairs_of(_mm512_maskz_loadu_ps(mk, r0 + i), _mm512_maskz_loadu_ps(has1 ? mk : 0, r1 + i));
      _mm512_storeu_si512(tmp, v);
      for (int l = 0; l < 16 && i + l < m; l++)
        out[(size_t)(i + l) * kp2 + p] = tmp[l];
    }
  }
}

/* r[i] lane j <- r[j] lane i for 16 x 16 32-bit values: 4 x 4 transposes inside each 128-bit
 * lane (unpack 32 then 64), then the lanes gathered across the 4 row groups (two shuffles). */
BF16 static inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; g++) { /* t -> column c of rows 4g..4g+3 in every lane: r[4g + c] */
    r[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int c = 0; c < 4; c++) { /* column 4L + c = lane L of r[c], r[4 + c], r[8 + c], r[12 + c] */
    __m512i u0 = _mm512_shuffle_i32x4(r[c], r[4 + c], _MM_SHUFFLE(2, 0, 2, 0));
    __m512i u1 = _mm512_shuffle_i32x4(r[c], r[4 + c], _MM_SHUFFLE(3, 1, 3, 1));
    __m512i u2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], _MM_SHUFFLE(2, 0, 2, 0));
    __m512i u3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], _MM_SHUFFLE(3, 1, 3, 1));
    t[c] = _mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(2, 0, 2, 0));
    t[4 + c] = _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(2, 0, 2, 0));
    t[8 + c] = _mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(3, 1, 3, 1));
    t[12 + c] = _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(3, 1, 3, 1));
  }
  for (int i = 0; i < 16; i++)
    r[i] = t[i];
}

/* out[p * ldpb + j] for columns j0 <= j < j1 of op(B) (k x n), zero up to the next multiple of
 * 16 after j1; b is [k][ldb] or, transposed, [n][ldb]. */
BF16 static void pack_b_avx512(bool trans, int k, int j0, int j1, const float *b, int ldb, uint32_t *out,
                               int ldpb) {
  size_t kp2 = ((size_t)k + 1) / 2;
  int jend = (j1 + 15) / 16 * 16;
  if (!trans) {
    for (size_t p = 0; p < kp2; p++) {
      const float *r0 = b + 2 * p * (size_t)ldb, *r1 = r0 + ldb;
      bool has1 = 2 * p + 1 < (size_t)k;
      for (int j = j0; j < jend; j += 16) {
        __mmask16 mk = j < j1 ? lanes((size_t)(j1 - j)) : 0;
        __m512i v = pairs_of(_mm512_maskz_loadu_ps(mk, r0 + j), _mm512_maskz_loadu_ps(has1 ? mk : 0, r1 + j));
        _mm512_storeu_si512(out + p * (size_t)ldpb + j, v);
      }
    }
    return;
  }
  /* B(k, j) = b[j * ldb + k]: 16 rows of b converted to pairs, then transposed in registers */
  for (int j = j0; j < jend; j += 16) {
    for (size_t p0 = 0; p0 < kp2; p0 += 16) {
      __m512i r[16];
      size_t left = (size_t)k - 2 * p0; /* floats of each row from pair p0 on */
      __mmask16 lo = lanes(left), hi = left > 16 ? lanes(left - 16) : 0;
      for (int l = 0; l < 16; l++) {
        if (j + l < j1) {
          const float *row = b + (size_t)(j + l) * (size_t)ldb + 2 * p0;
          r[l] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, row + 16), _mm512_maskz_loadu_ps(lo, row));
        } else {
          r[l] = _mm512_setzero_si512();
        }
      }
      transpose16(r);
      for (size_t p = p0; p < p0 + 16 && p < kp2; p++)
        _mm512_storeu_si512(out + p * (size_t)ldpb + j, r[p - p0]);
    }
  }
}

/* rows x (up to NR) block: C[r][0..cols) = sum_p A[r][p] . B[p][0..cols). */
BF16 static inline void micro_kernel(int rows, size_t kp2, const uint32_t *pa, const uint32_t *pb, size_t ldpb,
                                     float *c, size_t ldc, size_t cols) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++)
    acc0[r] = acc1[r] = _mm512_setzero_ps();
  bool two = cols > 16;
  for (size_t p = 0; p < kp2; p++) {
    __m512bh b0 = (__m512bh)_mm512_loadu_si512(pb + p * ldpb);
    __m512bh b1 = (__m512bh)_mm512_loadu_si512(pb + p * ldpb + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      if (r < rows) {
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)pa[(size_t)r * kp2 + p]);
        acc0[r] = _mm512_dpbf16_ps(acc0[r], av, b0);
        if (two)
          acc1[r] = _mm512_dpbf16_ps(acc1[r], av, b1);
      }
    }
  }
  __mmask16 m0 = lanes(cols), m1 = cols > 16 ? lanes(cols - 16) : 0;
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    if (r < rows) {
      _mm512_mask_storeu_ps(c + (size_t)r * ldc, m0, acc0[r]);
      if (two)
        _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, m1, acc1[r]);
    }
  }
}

BF16 static void gemm_packed_avx512(int m, int j0, int j1, int k, const uint32_t *pa, const uint32_t *pb,
                                    int ldpb, float *c, int ldc) {
  size_t kp2 = ((size_t)k + 1) / 2;
  for (int j = j0; j < j1; j += NR) {
    size_t cols = (size_t)(j1 - j < NR ? j1 - j : NR);
    int i = 0;
    for (; i + MR <= m; i += MR)
      micro_kernel(MR, kp2, pa + (size_t)i * kp2, pb + j, (size_t)ldpb, c + (size_t)i * (size_t)ldc + j,
                   (size_t)ldc, cols);
    if (i < m)
      micro_kernel(m - i, kp2, pa + (size_t)i * kp2, pb + j, (size_t)ldpb, c + (size_t)i * (size_t)ldc + j,
                   (size_t)ldc, cols);
  }
}

size_t fth_gemm_bf16_pack_a_bytes(int m, int k) {
  return (size_t)m * (((size_t)k + 1) / 2) * sizeof(uint32_t);
}

size_t fth_gemm_bf16_pack_b_bytes(int k, int n) {
  return (((size_t)k + 1) / 2) * fth_gemm_bf16_ldpb(n) * sizeof(uint32_t);
}

size_t fth_gemm_bf16_ldpb(int n) {
  /* + NR: the micro-kernel reads a full second register past the last 16-column block */
  return ((size_t)n + 15) / 16 * 16 + NR;
}

bool fth_gemm_bf16_available(void) {
  return fth_cpu_has_avx512_bf16() && fth_cpu_isa() >= FTH_ISA_AVX512;
}

void fth_gemm_bf16_pack_a(bool trans_a, int m, int k, const float *a, int lda, uint32_t *pa) {
  pack_a_avx512(trans_a, m, k, a, lda, pa);
}

void fth_gemm_bf16_pack_b(bool trans_b, int k, int n, int j0, int j1, const float *b, int ldb, uint32_t *pb) {
  pack_b_avx512(trans_b, k, j0, j1, b, ldb, pb, (int)fth_gemm_bf16_ldpb(n));
}

void fth_gemm_bf16_packed(int m, int n, int k, int j0, int j1, const uint32_t *pa, const uint32_t *pb, float *c,
                          int ldc) {
  gemm_packed_avx512(m, j0, j1, k, pa, pb, (int)fth_gemm_bf16_ldpb(n), c, ldc);
}
