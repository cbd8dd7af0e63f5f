/* Pooling kernels on raw float arrays: each works on planes [p0, p1) of an [N * C, H, W]
 * tensor so the caller can split planes over its thread pool. 1-D pooling is the H == 1 case. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct FthPoolShape {
  int in_h, in_w, out_h, out_w;
  int k_h, k_w, stride_h, stride_w, pad_h, pad_w;
} FthPoolShape;

/* Fills out_h/out_w (floor mode, as PyTorch's default); 0 when valid, -1 with *why otherwise.
 * Padding may be at most half the kernel, so every window holds an input element. */
int fth_pool2d_shape_check(FthPoolShape *s, const char **why);

/* y = max over each window; argmax (may be NULL) = flat index h * in_w + w of the first
 * maximum inside the input plane. */
void fth_maxpool2d_forward(const FthPoolShape *s, const float *x, float *y, int32_t *argmax,
                           size_t p0, size_t p1);
/* dx planes [p0, p1) are overwritten: zero except dy routed to the argmax positions. */
void fth_maxpool2d_backward(const FthPoolShape *s, const float *dy, const int32_t *argmax,
                            float *dx, size_t p0, size_t p1);

/* Window mean; count_include_pad divides by k_h * k_w, otherwise by the in-bounds count. */
void fth_avgpool2d_forward(const FthPoolShape *s, int count_include_pad, const float *x, float *y,
                           size_t p0, size_t p1);
void fth_avgpool2d_backward(const FthPoolShape *s, int count_include_pad, const float *dy,
                            float *dx, size_t p0, size_t p1);

/* y[p] = mean of plane p (plane elements each). */
void fth_global_avgpool_forward(const float *x, float *y, size_t plane, size_t p0, size_t p1);
void fth_global_avgpool_backward(const float *dy, float *dx, size_t plane, size_t p0, size_t p1);
