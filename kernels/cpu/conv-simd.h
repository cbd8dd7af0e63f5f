/* Small vector helpers shared by the convolution and pooling kernels, dispatched at run time
 * between AVX-512 and portable C (the build targets baseline x86-64). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* y[i] += a * x[i * stride] for i < n. */
void fth_simd_axpy_strided(float *y, float a, const float *x, size_t stride, size_t n);

/* y[i] = max(y[i] + b, 0) when relu, else y[i] + b. */
void fth_simd_bias_act(float *y, float b, int relu, size_t n);

/* Sum of x[i] for i < n (float accumulators in several lanes). */
float fth_simd_sum(const float *x, size_t n);

/* Sum of x[i] over i < n where y[i] > 0 (every i when y is NULL): a bias gradient through a
 * ReLU (and 2x2 max pool) read from the output side, without expanding it. */
float fth_simd_masked_sum(const float *x, const float *y, size_t n);

/* Sum of x[i] * y[i] for i < n. */
float fth_simd_dot(const float *x, const float *y, size_t n);

/* 2x2 stride-2 max pool of one plane row pair: top and bottom rows of width 2*n (at least),
 * out[j] = max of the window j, arg[j] (when not NULL) = 0..3 position of the first maximum. */
void fth_simd_maxpool2_row(const float *top, const float *bot, float *out, uint8_t *arg, size_t n);

/* One im2col row-set of a stride-1 (along the width) convolution: for r < rows, with
 * ih = ih0 + r * ih_step, dst[r * ow + o] = x[ih * in_w + o + off] when ih is inside [0, in_h)
 * and o inside [lo, hi), else 0. */
void fth_simd_im2col_s1(float *dst, const float *x, int in_h, int in_w, int ih0, int ih_step,
                        int rows, int off, int lo, int hi, int ow);

/* The adjoint of k_w consecutive im2col row-sets (taps kj = 0 .. k_w - 1, tap kj at
 * src + kj * tap_stride, off_kj = kj * dil_w - pad_w): x[ih * in_w + o + off_kj] +=
 * src_kj[r * ow + o] for o inside the tap's valid columns. All taps of an input row are summed
 * in registers before one store, so neighbouring taps never wait on each other's stores. */
void fth_simd_col2im_s1(float *x, const float *src, size_t tap_stride, int k_w, int dil_w,
                        int pad_w, int in_h, int in_w, int ih0, int ih_step, int rows, int ow);

/* dz[i] = y[i] > 0 ? dy[i] : 0 (the ReLU gradient through its output). */
void fth_simd_relu_grad(float *dz, const float *y, const float *dy, size_t n);

/* The adjoint of the 2x2 max pool for one plane: dz (out_h x out_w, the pre-pool plane) gets
 * dy[i * pw + j] at the window position arg[i * pw + j] of pooled element (i, j) and zeros
 * elsewhere (including an odd last row or column); with relu, only where y > 0 (the pooled
 * value went through a ReLU). ph = out_h / 2, pw = out_w / 2. */
void fth_simd_unpool2_plane(const float *dy, const float *y, const uint8_t *arg, int relu,
                            float *dz, int out_h, int out_w);

/* One output row of a 3x3 depthwise convolution with dilation 1 and a width stride of 1 or 2:
 * out[o] = bias + sum over ki, kj of w[3 ki + kj] * rows[ki][o * stride + kj - pad_w], where
 * rows[ki] is the input row under kernel row ki (NULL when it lies in the padding) and columns
 * outside [0, in_w) count as zero. */
void fth_simd_dw3x3_row(float *out, const float *const rows[3], const float *w, float bias,
                        int stride, int pad_w, int in_w, int ow);

/* Weight gradient of one channel of a 3x3 depthwise convolution (dilation 1, width stride 1
 * or 2): g[3 ki + kj] += sum over oh, o of dz[oh * out_w + o] * x[ih * in_w + o * stride_w +
 * kj - pad_w] with ih = oh * stride_h - pad_h + ki, out-of-range input counting as zero. */
void fth_simd_dw3x3_wgrad(float g[9], const float *dz, const float *x, int in_h, int in_w,
                          int out_h, int out_w, int stride_h, int stride_w, int pad_h, int pad_w);

/* Flat input indices of 2x2 window maxima: idx[j] = base + (pos[j] >> 1) * in_w + 2 j +
 * (pos[j] & 1), where base is the index of the first window's top-left element. */
void fth_simd_pool2_index(int32_t *idx, const uint8_t *pos, int32_t base, int32_t in_w, size_t n);

/* Weight gradient of a 3x3 stride-1 convolution whose output went through a fused 2x2 max pool,
 * for one image and a block of cb (16 or 32) input channels, from the pooled side: every pooled
 * value (o, i, j) that passed a gradient (with relu, only where y > 0) sends dy to one conv
 * output, (2i + arg / 2, 2j + arg % 2), whose 3x3 input patch is read from xp (the image's
 * channel block, zero-padded, channels last: xp[(row * xp_w + col) * cb + c]). Adds into
 * dwt[o * o_stride + t * t_stride + c] (t = ki * 3 + kj). AVX-512 only: returns 0 without it. */
int fth_simd_pool_wgrad3x3(float *dwt, size_t o_stride, size_t t_stride, const float *xp, int xp_w,
                           int cb, const float *dy, const float *y, const uint8_t *arg, int relu,
                           int out_c, int ph, int pw);

/* The input gradient of the same convolution (see fth_simd_pool_wgrad3x3), for one image and a
 * block of cb input channels: every pooled value that passed a gradient adds dy times the 3x3
 * weights of its output channel, wt[o * o_stride + t * cb_stride + c] (taps first, channels
 * last), into its input patch in dxp (zero-padded, channels last, as xp). AVX-512 only: returns
 * 0 without it. */
int fth_simd_pool_dgrad3x3(float *dxp, int xp_w, int cb, const float *wt, size_t o_stride,
                           size_t t_stride, const float *dy, const float *y, const uint8_t *arg,
                           int relu, int out_c, int ph, int pw);
