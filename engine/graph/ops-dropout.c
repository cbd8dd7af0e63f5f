/* Op family 'dropout': inverted dropout. The keep mask is never stored: element i of node n at
 * run `step` keeps when the Philox number (seed, stream 2^32 + n, block step * 2^32 + i / 4,
 * lane i % 4) maps to a uniform >= p, so masks are reproducible per seed, independent of how
 * the work is split over threads, and the gradient regenerates the same mask. */
#include "ops-private.h"

#include <fth-kernels-cpu.h>
#include <immintrin.h>
#include <string.h>

typedef struct {
  float p;
  int forward_id; /* gradient node: the dropout node whose mask it regenerates */
} DropoutParams;

static FthStatus dropout_infer(FthNode *node) {
  const FthTensorDesc *x = &node->in[0]->out;
  if (x->dtype != FTH_F32)
    return fth_error(FTH_STATUS_SHAPE_MISMATCH, "%s: x must be f32", fth_op_name(node->op));
  node->out = *x;
  node->n_aux = 0;
  return FTH_STATUS_OK;
}

typedef struct {
  const float *x;
  float *y;
  size_t n;
  float p, scale;
  uint64_t seed, stream, step;
} DropoutRun;

#define LANES 16

/* 32 x 32 -> 64-bit products of the 16 lanes of c with m (broadcast): the high and low words. */
__attribute__((target("avx512f"))) static inline void mul_hi_lo(__m512i m, __m512i c, __m512i *hi,
                                                                __m512i *lo) {
  const __m512i even = _mm512_mul_epu32(c, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);
  *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

/* Elements blk * 4 .. blk * 4 + 4 * LANES - 1 of the dropout: Philox blocks blk .. blk + LANES - 1
 * one per AVX-512 lane (the scalar calls and the element loop were a fifth of a transformer's
 * training step), words transposed into element order, then the keep test and the scaling on
 * whole vectors. The same numbers and results bit for bit as the scalar path. */
__attribute__((target("avx512f"))) static void dropout_lanes(const DropoutRun *r, size_t blk) {
  const uint64_t block0 = (r->step << 32) + blk;
  uint32_t lo[LANES], hi[LANES];
  for (int j = 0; j < LANES; j++) {
    lo[j] = (uint32_t)(block0 + (uint64_t)j);
    hi[j] = (uint32_t)((block0 + (uint64_t)j) >> 32);
  }
  __m512i c0 = _mm512_loadu_si512(lo), c1 = _mm512_loadu_si512(hi);
  __m512i c2 = _mm512_set1_epi32((int)(uint32_t)r->stream);
  __m512i c3 = _mm512_set1_epi32((int)(uint32_t)(r->stream >> 32));
  const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
  uint32_t k0 = (uint32_t)r->seed, k1 = (uint32_t)(r->seed >> 32);
  for (int round = 0; round < 10; round++) {
    __m512i hi0, lo0, hi1, lo1;
    mul_hi_lo(m0, c0, &hi0, &lo0);
    mul_hi_lo(m1, c2, &hi1, &lo1);
    c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
    c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
    c1 = lo1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  /* c_w holds word w of blocks 0..15; 128-bit segment s of u_b holds block 4 s + b whole. */
  const __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpackhi_epi32(c0, c1);
  const __m512i t2 = _mm512_unpacklo_epi32(c2, c3), t3 = _mm512_unpackhi_epi32(c2, c3);
  const __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
  const __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
  /* A 4 x 4 transpose of segments: o_k holds blocks 4 k .. 4 k + 3, elements 16 k .. 16 k + 15. */
  const __m512i a0 = _mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(2, 0, 2, 0));
  const __m512i a1 = _mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(3, 1, 3, 1));
  const __m512i a2 = _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(2, 0, 2, 0));
  const __m512i a3 = _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(3, 1, 3, 1));
  const __m512i o[4] = {_mm512_shuffle_i32x4(a0, a2, _MM_SHUFFLE(2, 0, 2, 0)),
                        _mm512_shuffle_i32x4(a1, a3, _MM_SHUFFLE(2, 0, 2, 0)),
                        _mm512_shuffle_i32x4(a0, a2, _MM_SHUFFLE(3, 1, 3, 1)),
                        _mm512_shuffle_i32x4(a1, a3, _MM_SHUFFLE(3, 1, 3, 1))};
  const __m512 p = _mm512_set1_ps(r->p), scale = _mm512_set1_ps(r->scale);
  const __m512 unit = _mm512_set1_ps(1.0f / 16777216.0f);
  for (int k = 0; k < 4; k++) {
    const __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(o[k], 8)), unit);
    const __mmask16 keep = _mm512_cmp_ps_mask(u, p, _CMP_GE_OQ);
    const size_t at = blk * 4 + (size_t)k * 16;
    _mm512_storeu_ps(r->y + at, _mm512_maskz_mul_ps(keep, _mm512_loadu_ps(r->x + at), scale));
  }
}

/* Items are blocks of 4 elements (one Philox block each), LANES blocks at a time. */
static void dropout_chunk(void *vctx, size_t b, size_t e, int worker) {
  DropoutRun *r = vctx;
  size_t blk = b;
  if (fth_cpu_isa() >= FTH_ISA_AVX512)
    for (; blk + LANES <= e && (blk + LANES) * 4 <= r->n; blk += LANES)
      dropout_lanes(r, blk);
  for (; blk < e; blk++) {
    uint32_t rnd[4];
    fth_philox4x32(r->seed, r->stream, (r->step << 32) + blk, rnd);
    const size_t i0 = blk * 4, i1 = i0 + 4 < r->n ? i0 + 4 : r->n;
    for (size_t i = i0; i < i1; i++)
      r->y[i] = fth_u32_to_unit_float(rnd[i - i0]) >= r->p ? r->x[i] * r->scale : 0.0f;
  }
}

static FthStatus dropout_forward(const FthKernelArgs *args) {
  DropoutParams p;
  memcpy(&p, args->params, sizeof p);
  const FthOp op = fth_node_op(args->node);
  DropoutRun r = {.x = args->in[0].data, .y = args->out->data, .p = p.p,
                  .n = (size_t)fth_tensor_numel(&args->in[0])};
  if (!args->ctx->training || p.p == 0.0f) {
    if (r.y != r.x)
      memmove(r.y, r.x, r.n * sizeof(float));
    return FTH_STATUS_OK;
  }
  r.scale = p.p < 1.0f ? 1.0f / (1.0f - p.p) : 0.0f;
  r.seed = args->ctx->seed;
  r.step = args->ctx->step;
  const int id = op == FTH_OP_DROPOUT ? fth_node_id(args->node) : p.forward_id;
  r.stream = (UINT64_C(1) << 32) + (uint64_t)id;
  fth_parallel_for((r.n + 3) / 4, 2048, dropout_chunk, &r);
  return FTH_STATUS_OK;
}

static FthStatus dropout_backward_rule(FthGraph *g, FthNode *node, FthNode *dy, FthNode **dx) {
  if (!fth_node_requires_grad(node->in[0]))
    return FTH_STATUS_OK;
  DropoutParams p;
  memcpy(&p, node->params, sizeof p);
  p.forward_id = node->id;
  dx[0] = fth_graph_add_node(g, FTH_OP_DROPOUT_GRAD, &dy, 1, &p, sizeof p);
  return fth_graph_status(g);
}

FthNode *fth_dropout(FthGraph *g, FthNode *x, float p) {
  if (!(p >= 0.0f && p <= 1.0f))
    return fth_graph_fail(g, FTH_STATUS_INVALID_ARGUMENT, "dropout: p must be in [0, 1], got %g",
                          (double)p);
  DropoutParams params = {.p = p, .forward_id = -1};
  return fth_graph_add_node(g, FTH_OP_DROPOUT, &x, 1, &params, sizeof params);
}

void fth_ops_register_dropout(FthOpDef *table) {
  /* The gradient is the same masked scaling applied to dy. */
  table[FTH_OP_DROPOUT] = (FthOpDef){.name = fth_op_name(FTH_OP_DROPOUT), .infer = dropout_infer,
                                     .forward = dropout_forward, .backward = dropout_backward_rule,
                                     .flags = FTH_OPF_INPLACE};
  table[FTH_OP_DROPOUT_GRAD] = (FthOpDef){.name = fth_op_name(FTH_OP_DROPOUT_GRAD),
                                          .infer = dropout_infer, .forward = dropout_forward,
                                          .flags = FTH_OPF_INPLACE};
}
