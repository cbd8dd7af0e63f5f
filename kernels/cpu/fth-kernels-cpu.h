/* Single-threaded CPU primitives over raw arrays. Each has a portable C form (`_scalar`) and a
 * dispatching form that picks AVX-512 or AVX2 at run time; the two agree (tests check it). The
 * engine splits work over its thread pool and calls these on each chunk. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  FTH_ISA_SCALAR = 0,
  FTH_ISA_AVX2,    /* AVX2 + FMA */
  FTH_ISA_AVX512,  /* AVX-512 F/BW/DQ/VL */
} FthIsa;

/* The best ISA of this CPU, capped by FTH_ISA (scalar, avx2, avx512) in the environment. */
FthIsa fth_cpu_isa(void);
/* Force an ISA (tests compare paths); a level the CPU lacks is capped to what it has. */
void fth_cpu_set_isa(FthIsa isa);
bool fth_cpu_has_avx512_bf16(void);

/* ---- GEMM: C = alpha * op(A) op(B) + beta * C, row-major (OpenBLAS sgemm) ------------------- */
void fth_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* Threads OpenBLAS may use for one call (1 inside our parallel regions). */
void fth_sgemm_set_threads(int n);

/* ---- bf16 GEMM with fp32 accumulation (AVX512_BF16; call only when available) -------------
 * C[:, j0:j1] = op(A) op(B) for an m x k op(A) and a k x n op(B), both fp32 in memory and
 * rounded to bf16 while packed: pack A once (pack_a_bytes), pack the columns [j0, j1) of B
 * (j0 a multiple of 16; pack_b_bytes for all n), then multiply those columns. Different column
 * ranges may be packed and multiplied on different threads into one B buffer. */
bool fth_gemm_bf16_available(void);
size_t fth_gemm_bf16_pack_a_bytes(int m, int k);
size_t fth_gemm_bf16_pack_b_bytes(int k, int n);
size_t fth_gemm_bf16_ldpb(int n);
void fth_gemm_bf16_pack_a(bool trans_a, int m, int k, const float *a, int lda, uint32_t *pa);
void fth_gemm_bf16_pack_b(bool trans_b, int k, int n, int j0, int j1, const float *b, int ldb, uint32_t *pb);
void fth_gemm_bf16_packed(int m, int n, int k, int j0, int j1, const uint32_t *pa, const uint32_t *pb, float *c,
                          int ldc);

/* ---- Elementwise (n elements, contiguous) ------------------------------------------------- */
void fth_k_add(const float *a, const float *b, float *y, size_t n);
void fth_k_sub(const float *a, const float *b, float *y, size_t n);
void fth_k_mul(const float *a, const float *b, float *y, size_t n);
void fth_k_axpby(const float *x, float alpha, float beta, float *y, size_t n); /* y = a*x + b */
void fth_k_add_scalar_row(float *y, const float *row, size_t rows, size_t cols); /* y[r,:] += row */
/* y[r, c] = act(y[r, c] + bias[c]); act: 0 none, 1 relu (bias may be NULL). */
void fth_k_bias_act(float *y, const float *bias, size_t rows, size_t cols, int relu);
void fth_k_sum_rows(const float *x, float *out, size_t rows, size_t cols, bool accumulate); /* out[c] (+)= sum_r x[r,c] */
double fth_k_sum(const float *x, size_t n);

void fth_k_relu(const float *x, float *y, size_t n);
void fth_k_relu_grad(const float *dy, const float *y, float *dx, size_t n);
void fth_k_sigmoid(const float *x, float *y, size_t n);
void fth_k_sigmoid_grad(const float *dy, const float *y, float *dx, size_t n);
void fth_k_tanh(const float *x, float *y, size_t n);
void fth_k_tanh_grad(const float *dy, const float *y, float *dx, size_t n);
void fth_k_silu(const float *x, float *y, size_t n);
void fth_k_silu_grad(const float *dy, const float *x, float *dx, size_t n);
void fth_k_gelu(const float *x, float *y, size_t n, bool tanh_form);
void fth_k_gelu_grad(const float *dy, const float *x, float *dx, size_t n, bool tanh_form);

/* Row-wise over `rows` rows of `cols` contiguous values. */
void fth_k_softmax_rows(const float *x, float *y, size_t rows, size_t cols);
void fth_k_log_softmax_rows(const float *x, float *y, size_t rows, size_t cols);

/* Scalar reference forms (always portable C). */
void fth_k_add_scalar(const float *a, const float *b, float *y, size_t n);
void fth_k_mul_scalar(const float *a, const float *b, float *y, size_t n);
void fth_k_relu_scalar(const float *x, float *y, size_t n);
void fth_k_bias_act_scalar(float *y, const float *bias, size_t rows, size_t cols, int relu);
void fth_k_sigmoid_scalar(const float *x, float *y, size_t n);
void fth_k_tanh_scalar(const float *x, float *y, size_t n);
void fth_k_silu_scalar(const float *x, float *y, size_t n);
void fth_k_gelu_scalar(const float *x, float *y, size_t n, bool tanh_form);
void fth_k_relu_grad_scalar(const float *dy, const float *y, float *dx, size_t n);
void fth_k_sigmoid_grad_scalar(const float *dy, const float *y, float *dx, size_t n);
void fth_k_tanh_grad_scalar(const float *dy, const float *y, float *dx, size_t n);
void fth_k_silu_grad_scalar(const float *dy, const float *x, float *dx, size_t n);
void fth_k_gelu_grad_scalar(const float *dy, const float *x, float *dx, size_t n, bool tanh_form);
void fth_k_softmax_rows_scalar(const float *x, float *y, size_t rows, size_t cols);
void fth_k_log_softmax_rows_scalar(const float *x, float *y, size_t rows, size_t cols);

#ifdef __cplusplus
}
#endif
