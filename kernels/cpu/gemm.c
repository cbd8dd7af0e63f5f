/* OpenBLAS sgemm behind one row-major entry point. */
#include "fth-kernels-cpu.h"

#include <cblas.h>

void fth_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void fth_sgemm_set_threads(int n) {
  openblas_set_num_threads(n < 1 ? 1 : n);
}
