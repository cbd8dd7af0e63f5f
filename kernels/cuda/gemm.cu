// GEMM through cuBLAS: row-major operands are handed to the column-major library as their
// transposes (C^T = op(B)^T op(A)^T), so no data is moved. Accumulation is f32 in every mode.
#include "cuda-private.h"

static cudaDataType data_type(FthCudaDType dt)
{
  return dt == FTH_CUDA_DT_F16 ? CUDA_R_16F : dt == FTH_CUDA_DT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static cublasComputeType_t compute_type(FthCudaDType dt, FthCudaMath math)
{
  if (dt != FTH_CUDA_DT_F32)
    return CUBLAS_COMPUTE_32F;
  switch (math) {
  case FTH_CUDA_MATH_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
  case FTH_CUDA_MATH_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
  case FTH_CUDA_MATH_F16: return CUBLAS_COMPUTE_32F_FAST_16F;
  default: return CUBLAS_COMPUTE_32F_PEDANTIC; // no silent TF32: the f32 mode is the reference
  }
}

extern "C" FthCudaStatus fth_cuda_gemm(FthCudaContext *ctx, FthCudaDType dtype, int trans_a, int trans_b, int m,
                                       int n, int k, float alpha, const void *d_a, int lda, long long stride_a,
                                       const void *d_b, int ldb, long long stride_b, float beta, void *d_c,
                                       int ldc, long long stride_c, int batch)
{
  if (m < 0 || n < 0 || k < 0 || batch < 0)
    return fth_cuda_fail(FTH_CUDA_INVALID, "gemm: negative size %dx%dx%d (batch %d)", m, n, k, batch);
  if (!m || !n || !batch)
    return FTH_CUDA_OK;
  FTH_CUDA_TRY(fth_cuda_use(ctx));
  cudaDataType t = data_type(dtype);
  cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasStatus_t st;
  if (k == 0) {
    // cuBLAS leaves C alone for k == 0 only with beta == 1; make the result well defined
    if (beta != 0.0f || dtype != FTH_CUDA_DT_F32)
      return fth_cuda_fail(FTH_CUDA_INVALID, "gemm: k == 0 needs f32 and beta 0");
    for (int e = 0; e < batch; e++)
      FTH_CUDA_TRY(fth_cuda_check(cudaMemset2DAsync((float *) d_c + (size_t) e * (size_t) stride_c,
                                                    (size_t) ldc * sizeof(float), 0, (size_t) n * sizeof(float),
                                                    (size_t) m, ctx->stream),
                                  "cudaMemset2D"));
    return FTH_CUDA_OK;
  }
  st = cublasGemmStridedBatchedEx(ctx->cublas, op_b, op_a, n, m, k, &alpha, d_b, t, ldb, stride_b, d_a, t, lda,
                                  stride_a, &beta, d_c, t, ldc, stride_c, batch, compute_type(dtype, ctx->math),
                                  CUBLAS_GEMM_DEFAULT);
  return fth_cuda_check_cublas(st, "cublasGemmStridedBatchedEx");
}
