/* Convolution kernels on raw float arrays (NCHW activations, OIHW weights).
 *
 * conv1d is conv2d with in_h == k_h == 1. Every function works on a slice of the batch
 * (or of one image's output rows) so the caller can spread work over its thread pool; all
 * temporaries live in caller-provided scratch (sized by fth_conv2d_*_scratch_floats) so the
 * memory planner owns them. No function allocates, prints or fails: shapes are validated once
 * by fth_conv2d_shape_check. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct FthConvShape {
  int batch, in_c, in_h, in_w;
  int out_c, out_h, out_w;
  int k_h, k_w;
  int stride_h, stride_w;
  int pad_h, pad_w;
  int dil_h, dil_w;
  int groups;
} FthConvShape;

/* What happens to the convolution result before it is stored.
 * relu: y = max(conv + bias, 0).
 * pool2: then a 2x2 stride-2 max pool (floor), so y is [N, C, out_h/2, out_w/2]; when
 * pool_argmax is not NULL it receives, per pooled element, the position 0..3 of the maximum
 * inside its window (row-major), which is all the backward pass needs. */
typedef struct FthConvEpilogue {
  int relu;
  int pool2;
  uint8_t *pool_argmax;
} FthConvEpilogue;

/* Output length of one spatial dimension, or a value < 1 when the parameters do not fit. */
int fth_conv_out_len(int in, int k, int stride, int pad, int dil);

/* Fills out_h/out_w from the rest and checks every field; returns 0 when valid, otherwise -1
 * with a static message in *why. */
int fth_conv2d_shape_check(FthConvShape *s, const char **why);

/* True when the depthwise direct kernel handles this shape (groups == in_c == out_c). */
int fth_conv2d_is_depthwise(const FthConvShape *s);

/* Scratch one worker needs for fth_conv2d_forward_rows on `rows` output rows. */
size_t fth_conv2d_forward_scratch_floats(const FthConvShape *s, const FthConvEpilogue *ep, int rows);

/* Forward for image n, output rows [r0, r1) (pre-pool rows; even bounds when ep->pool2).
 * x: [N, in_c, in_h, in_w]; w: [out_c, in_c/groups, k_h, k_w]; bias: [out_c] or NULL;
 * y: [N, out_c, out_h, out_w], or the pooled shape with ep->pool2. */
void fth_conv2d_forward_rows(const FthConvShape *s, const FthConvEpilogue *ep,
                             const float *x, const float *w, const float *bias, float *y,
                             float *scratch, int n, int r0, int r1);

/* Scratch one worker needs for fth_conv2d_backward. */
size_t fth_conv2d_backward_scratch_floats(const FthConvShape *s, const FthConvEpilogue *ep);

/* Backward for images [n0, n1).
 * dy is the gradient of the op's output y (pooled when ep->pool2). y is the forward output,
 * needed when ep->relu or ep->pool2 (the ReLU mask is y > 0); ep->pool_argmax must hold what
 * the forward stored when ep->pool2.
 * dx (may be NULL) is written for these images. dw and db (may be NULL) are ACCUMULATED
 * (+=), so each worker passes its own zeroed partial sum and the caller adds them up. */
void fth_conv2d_backward(const FthConvShape *s, const FthConvEpilogue *ep,
                         const float *x, const float *w, const float *y, const float *dy,
                         float *dx, float *dw, float *db, float *scratch, int n0, int n1);
