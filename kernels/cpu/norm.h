/* Batch and layer normalization kernels on raw float arrays. Batch norm sees x as [N, C, S]
 * (S = product of the spatial sizes) and works on channels [c0, c1); layer norm sees x as
 * [rows, D] and works on rows [r0, r1) (forward, input gradient) or columns [d0, d1) (the
 * gamma/beta gradients), so no split ever needs partial sums from several workers. Statistics
 * are accumulated in double. */
#pragma once

#include <stddef.h>

/* mean[c] and the biased variance var[c] over N and S. */
void fth_batchnorm_stats(const float *x, size_t N, size_t C, size_t S, float *mean, float *var,
                         size_t c0, size_t c1);

/* y = (x - mean) * invstd * gamma + beta per channel; gamma/beta may be NULL (1 and 0). */
void fth_batchnorm_apply(const float *x, size_t N, size_t C, size_t S, const float *mean,
                         const float *invstd, const float *gamma, const float *beta, float *y,
                         size_t c0, size_t c1);

/* Training-mode gradients (batch statistics depend on x): any of dx, dgamma, dbeta may be NULL;
 * all are overwritten for channels [c0, c1). */
void fth_batchnorm_backward(const float *x, const float *dy, size_t N, size_t C, size_t S,
                            const float *mean, const float *invstd, const float *gamma, float *dx,
                            float *dgamma, float *dbeta, size_t c0, size_t c1);

/* Inference-mode input gradient (fixed statistics): dx = dy * invstd * gamma. */
void fth_batchnorm_backward_fixed(const float *dy, size_t N, size_t C, size_t S,
                                  const float *invstd, const float *gamma, float *dx, size_t c0,
                                  size_t c1);

/* y = (x - mean) * invstd * gamma + beta over each row; saves mean and invstd per row. */
void fth_layernorm_forward(const float *x, size_t D, const float *gamma, const float *beta,
                           float eps, float *y, float *mean, float *invstd, size_t r0, size_t r1);
void fth_layernorm_backward_input(const float *x, const float *dy, size_t D, const float *gamma,
                                  const float *mean, const float *invstd, float *dx, size_t r0,
                                  size_t r1);
/* Overwrites dgamma/dbeta (either may be NULL) for columns [d0, d1), summing over all rows. */
void fth_layernorm_backward_params(const float *x, const float *dy, size_t rows, size_t D,
                                   const float *mean, const float *invstd, float *dgamma,
                                   float *dbeta, size_t d0, size_t d1);
