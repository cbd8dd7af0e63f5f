/* C interface of the CUDA backend. Only this header crosses from kernels/cuda into C code; it
 * includes no CUDA header, so engine code that calls it stays plain C (DESIGN.md section 1).
 *
 * Conventions:
 * - Every function that can fail returns an FthCudaStatus; on failure fth_cuda_last_error()
 *   holds a message naming the call and CUDA's (or cuBLAS's, cuDNN's, NCCL's) reason.
 * - Pointers named d_* are device memory. Work is queued on the context's stream and runs in
 *   order; nothing waits for the device except fth_cuda_synchronize() and the copies to host.
 * - Tensors are contiguous, row-major, f32 unless a dtype is given, with the layouts of the CPU
 *   kernels they mirror (engine/graph/ops-*.c), so a graph runs on either backend.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  FTH_CUDA_OK = 0,
  FTH_CUDA_NO_MEMORY,   /* cudaMalloc failed even after the cache was released */
  FTH_CUDA_NO_DEVICE,   /* no driver or no device answers */
  FTH_CUDA_INVALID,     /* a bad argument (shape, index) */
  FTH_CUDA_UNSUPPORTED, /* built without the library this needs (cuDNN, NCCL) */
  FTH_CUDA_FAILED,      /* CUDA, cuBLAS, cuDNN or NCCL reported an error */
  FTH_CUDA_TIMEOUT,     /* an NCCL collective was not done within the communicator's timeout */
} FthCudaStatus;

/* Message of the last failure on this thread ("" when none). */
const char *fth_cuda_last_error(void);

/* ---- Devices ---------------------------------------------------------------------------------- */

/* Number of CUDA devices that answer; 0 when there is no driver or no device. When err_msg is
 * not NULL and no device answers, it receives CUDA's reason (static storage). */
int fth_cuda_device_count(const char **err_msg);

/* Name and total memory of device `index`; returns 0 on success, -1 on failure. */
int fth_cuda_device_info(int index, char *name, int name_len, unsigned long long *total_bytes);

/* Free and total memory of the current context's device, for auto batch size. */
FthCudaStatus fth_cuda_mem_info(int device, size_t *free_bytes, size_t *total_bytes);

/* ---- Context: one device, one stream, the library handles and a caching allocator ------------- */

typedef struct FthCudaContext FthCudaContext;

/* Precision of GEMM and convolution arithmetic on f32 tensors. Storage stays f32 (the master
 * copy); the reduced modes round the operands inside the library's tensor-core kernels and
 * accumulate in f32, as PyTorch's autocast does for matmul and conv. */
typedef enum {
  FTH_CUDA_MATH_F32 = 0, /* plain f32 FMA */
  FTH_CUDA_MATH_TF32,
  FTH_CUDA_MATH_BF16,
  FTH_CUDA_MATH_F16,
} FthCudaMath;

FthCudaStatus fth_cuda_context_new(int device, FthCudaContext **out);
void fth_cuda_context_free(FthCudaContext *ctx);
int fth_cuda_context_device(const FthCudaContext *ctx);
void fth_cuda_set_math(FthCudaContext *ctx, FthCudaMath math);
FthCudaMath fth_cuda_math(const FthCudaContext *ctx);

/* Waits for the queued work, then reports errors the kernels flagged on the device (a target or
 * an id out of range) as FTH_CUDA_INVALID with the op's name. */
FthCudaStatus fth_cuda_synchronize(FthCudaContext *ctx);

/* ---- Caching allocator -----------------------------------------------------------------------
 * Blocks are rounded up (512 bytes below 1 MiB, 2 MiB above) and kept on free lists by size when
 * released, so a training loop allocates from the driver only in its first step. All work runs
 * on the context's one stream, so a block freed after queuing a kernel may be reused by the next
 * queued kernel without waiting. When cudaMalloc fails the cache is returned to the driver and
 * the request retried once. */
void *fth_cuda_alloc(FthCudaContext *ctx, size_t bytes); /* 256-byte aligned; NULL on failure */
void fth_cuda_free(FthCudaContext *ctx, void *d_ptr);
void fth_cuda_empty_cache(FthCudaContext *ctx);

typedef struct {
  size_t in_use_bytes;   /* handed out now (rounded sizes) */
  size_t cached_bytes;   /* on the free lists */
  size_t peak_in_use_bytes;
  size_t driver_allocs;  /* cudaMalloc calls so far */
} FthCudaAllocStats;
void fth_cuda_alloc_stats(const FthCudaContext *ctx, FthCudaAllocStats *stats);

/* ---- Copies ----------------------------------------------------------------------------------- */

/* Host-to-device and device-to-host copies wait until the data has arrived (the host buffer may
 * be reused at once); device-to-device copies and memsets are queued. */
FthCudaStatus fth_cuda_copy_to_device(FthCudaContext *ctx, void *d_dst, const void *src, size_t bytes);
FthCudaStatus fth_cuda_copy_to_host(FthCudaContext *ctx, void *dst, const void *d_src, size_t bytes);
FthCudaStatus fth_cuda_copy_device(FthCudaContext *ctx, void *d_dst, const void *d_src, size_t bytes);
FthCudaStatus fth_cuda_memset_zero(FthCudaContext *ctx, void *d_dst, size_t bytes);
/* Copies `rows` rows of `row_bytes` between pitched layouts (concat and slice). */
FthCudaStatus fth_cuda_copy_rows(FthCudaContext *ctx, void *d_dst, size_t dst_pitch, const void *d_src,
                                 size_t src_pitch, size_t row_bytes, size_t rows);

/* ---- GEMM (gemm.cu) ----------------------------------------------------------------------------
 * Row-major C = alpha * op(A) op(B) + beta * C for `batch` matrices `stride_*` elements apart
 * (stride 0 shares one matrix). dtype of A, B and C: 0 f32, 1 f16, 2 bf16 (as FthDType);
 * accumulation is always f32. f32 operands follow the context's math mode. */
typedef enum {
  FTH_CUDA_DT_F32 = 0,
  FTH_CUDA_DT_F16 = 1,
  FTH_CUDA_DT_BF16 = 2,
} FthCudaDType;

FthCudaStatus fth_cuda_gemm(FthCudaContext *ctx, FthCudaDType dtype, int trans_a, int trans_b, int m,
                            int n, int k, float alpha, const void *d_a, int lda, long long stride_a,
                            const void *d_b, int ldb, long long stride_b, float beta, void *d_c, int ldc,
                            long long stride_c, int batch);

/* ---- Elementwise, activations, reductions, layout (elementwise.cu) ---------------------------- */

#define FTH_CUDA_MAX_DIMS 5

typedef enum {
  FTH_CUDA_BIN_ADD = 0,
  FTH_CUDA_BIN_SUB,
  FTH_CUDA_BIN_MUL,
} FthCudaBinaryOp;

/* y[i] = a[...] op b[...]: out_shape has ndim dimensions; a_strides and b_strides are in
 * elements, 0 along broadcast dimensions. */
FthCudaStatus fth_cuda_binary(FthCudaContext *ctx, FthCudaBinaryOp op, int ndim, const int64_t *out_shape,
                              const float *d_a, const int64_t *a_strides, const float *d_b,
                              const int64_t *b_strides, float *d_y);
FthCudaStatus fth_cuda_scale(FthCudaContext *ctx, const float *d_x, float *d_y, size_t n, float alpha,
                             float beta);
FthCudaStatus fth_cuda_fill(FthCudaContext *ctx, float *d_y, size_t n, float value);

typedef enum {
  FTH_CUDA_ACT_RELU = 0,
  FTH_CUDA_ACT_GELU,
  FTH_CUDA_ACT_GELU_TANH,
  FTH_CUDA_ACT_SILU,
  FTH_CUDA_ACT_SIGMOID,
  FTH_CUDA_ACT_TANH,
} FthCudaActivation;

/* y = act(x). */
FthCudaStatus fth_cuda_activation(FthCudaContext *ctx, FthCudaActivation act, const float *d_x, float *d_y,
                                  size_t n);
/* dx = dy * act'(...): `saved` is the forward output for relu, sigmoid and tanh, the forward
 * input for gelu and silu (as the CPU gradient nodes list them). */
FthCudaStatus fth_cuda_activation_grad(FthCudaContext *ctx, FthCudaActivation act, const float *d_dy,
                                       const float *d_saved, float *d_dx, size_t n);
/* y[r, c] = relu?(y[r, c] + bias[c]) over [rows, cols] (bias may be NULL). */
FthCudaStatus fth_cuda_bias_act(FthCudaContext *ctx, float *d_y, const float *d_bias, size_t rows,
                                size_t cols, int relu);
/* Same per channel of an [N, C, S] tensor (convolution epilogue). */
FthCudaStatus fth_cuda_channel_bias_act(FthCudaContext *ctx, float *d_y, const float *d_bias, size_t n,
                                        size_t c, size_t s, int relu);
/* dz = y > 0 ? dy : 0 (the fused ReLU's gradient). */
FthCudaStatus fth_cuda_relu_mask(FthCudaContext *ctx, const float *d_dy, const float *d_y, float *d_dz,
                                 size_t n);

/* y = factor * (x summed over the dimensions where y_shape is 1 and x_shape is not). Both shapes
 * have ndim entries (y's aligned to x's rank with 1s). Sums run in double in a fixed order, so
 * results do not depend on the launch. Covers SUM_TO, SUM, MEAN and bias gradients. */
FthCudaStatus fth_cuda_reduce_to(FthCudaContext *ctx, int ndim, const int64_t *x_shape, const float *d_x,
                                 const int64_t *y_shape, float *d_y, float factor);
/* y[(a * len + l) * inner + i] = factor * dy[a * inner + i] (BROADCAST_TO; a scalar dy is
 * outer = inner = 1). */
FthCudaStatus fth_cuda_broadcast(FthCudaContext *ctx, const float *d_dy, float *d_y, size_t outer, size_t len,
                                 size_t inner, float factor);
/* y = x with axes permuted: y's dimension d is x's dimension perm[d]. elem_size 1, 2, 4 or 8. */
FthCudaStatus fth_cuda_transpose(FthCudaContext *ctx, int ndim, const int64_t *x_shape, const int *perm,
                                 const void *d_x, void *d_y, size_t elem_size);

/* ---- Softmax and losses (softmax.cu) ----------------------------------------------------------
 * Rows of `len` values `inner` apart, outer * inner rows. */
FthCudaStatus fth_cuda_softmax(FthCudaContext *ctx, int log, const float *d_x, float *d_y, size_t outer,
                               size_t len, size_t inner);
/* Softmax: dx = y (dy - sum dy y); log-softmax: dx = dy - exp(y) sum dy. */
FthCudaStatus fth_cuda_softmax_grad(FthCudaContext *ctx, int log, const float *d_dy, const float *d_y,
                                    float *d_dx, size_t outer, size_t len, size_t inner);

/* Cross-entropy as ops-loss.c: logits [N, C, d...] (a row is one (n, position) pair, its C
 * logits `inner` = prod(d...) apart), i32 targets [N, d...], optional class weights [C] and
 * sample weights [N] (NULL: all 1; fth_cross_entropy_weighted's weighted mean), label
 * smoothing and an ignore index (has_ignore 0: none). The forward writes the mean loss, each
 * row's (log-sum-exp, weight) to row_stats [rows, 2] and the total weight to *total_weight (the
 * forward node's aux 0 and 1); d_terms: 2 * rows doubles of scratch. Targets outside 0..C-1 are
 * flagged and reported by fth_cuda_synchronize(). */
FthCudaStatus fth_cuda_cross_entropy(FthCudaContext *ctx, const float *d_logits, const int32_t *d_targets,
                                     const float *d_weights, const float *d_sample_weights, size_t n, size_t c,
                                     size_t inner, float label_smoothing,
                                     int has_ignore, int32_t ignore_index, double *d_terms, float *d_row_stats,
                                     float *d_total_weight, float *d_loss);
/* dlogits from the forward's row_stats and total weight, scaled by d_dy[0] / total weight. */
FthCudaStatus fth_cuda_cross_entropy_grad(FthCudaContext *ctx, const float *d_logits, const int32_t *d_targets,
                                          const float *d_weights, const float *d_sample_weights, size_t n, size_t c,
                                          size_t inner,
                                          float label_smoothing, int has_ignore, int32_t ignore_index,
                                          const float *d_row_stats, const float *d_total_weight, const float *d_dy,
                                          float *d_dx);
/* BCE with logits (mean over n elements, pos_weight over the last axis of length `last` or
 * NULL) and MSE; forward (d_dy NULL) writes the scalar, gradient writes d_out[n]. */
FthCudaStatus fth_cuda_bce_with_logits(FthCudaContext *ctx, const float *d_x, const float *d_t,
                                       const float *d_pos_weight, size_t n, size_t last, const float *d_dy,
                                       float *d_out);
FthCudaStatus fth_cuda_mse(FthCudaContext *ctx, const float *d_p, const float *d_t, size_t n, const float *d_dy,
                           float *d_out);

/* ---- Convolution (conv.cu; cuDNN when built with it, im2col + cuBLAS otherwise) ----------------
 * 2-D, NCHW, weights [O, C/groups, KH, KW]; conv1d is H = 1. */
typedef struct {
  int n, c, h, w;          /* input */
  int o, kh, kw;           /* output channels, kernel */
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
  int out_h, out_w;        /* filled by fth_cuda_conv_shape */
} FthCudaConvShape;

/* Fills out_h and out_w; FTH_CUDA_INVALID when the parameters do not fit. */
FthCudaStatus fth_cuda_conv_shape(FthCudaConvShape *s);
/* y = conv(x, w) (then bias and ReLU when given). */
FthCudaStatus fth_cuda_conv_forward(FthCudaContext *ctx, const FthCudaConvShape *s, const float *d_x,
                                    const float *d_w, const float *d_bias, int relu, float *d_y);
/* The fused conv2d + bias + ReLU (when relu) + 2x2 stride-2 max pool (floor) of ops-conv.c's
 * max_pool2, as kernels/cpu/conv.c's epilogue: d_y is [N, O, out_h/2, out_w/2]; d_argmax (may be
 * NULL) receives per pooled element the position 0..3 (row-major) of the first maximum of its
 * window, the layout of the forward node's aux 0. The pre-pool result lives in a scratch. */
FthCudaStatus fth_cuda_conv_forward_pool2(FthCudaContext *ctx, const FthCudaConvShape *s, const float *d_x,
                                          const float *d_w, const float *d_bias, int relu, float *d_y,
                                          uint8_t *d_argmax);
/* Gradient of the pre-activation conv output [N, O, out_h, out_w] from dy of the pooled output:
 * each dy goes to the window position its argmax names when (relu) the pooled y > 0; every other
 * position, an odd last row or column included, is 0. */
FthCudaStatus fth_cuda_conv_unpool2_grad(FthCudaContext *ctx, const FthCudaConvShape *s, const float *d_dy,
                                         const float *d_y, const uint8_t *d_argmax, int relu, float *d_dz);
/* dx from dy (already masked by the ReLU if there was one). */
FthCudaStatus fth_cuda_conv_backward_data(FthCudaContext *ctx, const FthCudaConvShape *s, const float *d_dy,
                                          const float *d_w, float *d_dx);
/* dw from dy and x (overwritten, not accumulated). */
FthCudaStatus fth_cuda_conv_backward_filter(FthCudaContext *ctx, const FthCudaConvShape *s,
                                            const float *d_dy, const float *d_x, float *d_dw);

/* ---- Pooling (pool.cu), as kernels/cpu/pool.c: floor mode, argmax = h * in_w + w of the first
 * maximum inside the plane ------------------------------------------------------------------- */
typedef struct {
  int planes, in_h, in_w, out_h, out_w;
  int k_h, k_w, stride_h, stride_w, pad_h, pad_w;
} FthCudaPoolShape;

FthCudaStatus fth_cuda_max_pool_forward(FthCudaContext *ctx, const FthCudaPoolShape *s, const float *d_x,
                                        float *d_y, int32_t *d_argmax);
FthCudaStatus fth_cuda_max_pool_backward(FthCudaContext *ctx, const FthCudaPoolShape *s, const float *d_dy,
                                         const int32_t *d_argmax, float *d_dx);
FthCudaStatus fth_cuda_avg_pool_forward(FthCudaContext *ctx, const FthCudaPoolShape *s, int count_include_pad,
                                        const float *d_x, float *d_y);
FthCudaStatus fth_cuda_avg_pool_backward(FthCudaContext *ctx, const FthCudaPoolShape *s,
                                         int count_include_pad, const float *d_dy, float *d_dx);

/* ---- Normalization (norm.cu), as kernels/cpu/norm.c: statistics in double ----------------------
 * Batch norm sees x as [N, C, S]; it saves mean and 1/std per channel. Training normalizes with
 * the batch statistics and updates the running buffers (momentum as PyTorch's, unbiased
 * variance); inference uses the running buffers. gamma and beta may be NULL. */
FthCudaStatus fth_cuda_batch_norm(FthCudaContext *ctx, const float *d_x, size_t n, size_t c, size_t s,
                                  int training, float eps, float momentum, float *d_running_mean,
                                  float *d_running_var, const float *d_gamma, const float *d_beta, float *d_y,
                                  float *d_mean, float *d_invstd);
/* Any of dx, dgamma, dbeta may be NULL. Training mode differentiates through the batch
 * statistics; inference mode: dx = dy * invstd * gamma. */
FthCudaStatus fth_cuda_batch_norm_backward(FthCudaContext *ctx, int training, const float *d_x, const float *d_dy,
                                           size_t n, size_t c, size_t s, const float *d_mean,
                                           const float *d_invstd, const float *d_gamma, float *d_dx,
                                           float *d_dgamma, float *d_dbeta);
/* Layer norm over the last axis of [rows, d]; saves mean and 1/std per row. */
FthCudaStatus fth_cuda_layer_norm(FthCudaContext *ctx, const float *d_x, size_t rows, size_t d,
                                  const float *d_gamma, const float *d_beta, float eps, float *d_y, float *d_mean,
                                  float *d_invstd);
FthCudaStatus fth_cuda_layer_norm_backward_input(FthCudaContext *ctx, const float *d_x, const float *d_dy,
                                                 size_t rows, size_t d, const float *d_gamma,
                                                 const float *d_mean, const float *d_invstd, float *d_dx);
/* Column sums over rows: dgamma = sum dy * xhat, dbeta = sum dy (either may be NULL; dbeta alone
 * needs no x, mean or invstd). */
FthCudaStatus fth_cuda_layer_norm_backward_params(FthCudaContext *ctx, const float *d_x, const float *d_dy,
                                                  size_t rows, size_t d, const float *d_mean,
                                                  const float *d_invstd, float *d_dgamma, float *d_dbeta);

/* ---- Attention (attention.cu), as kernels/cpu/attention.c ---------------------------------------
 * q, k, v, out [N, T, H * Dh] (heads side by side in the last axis); probs [N, H, T, T] saved by
 * the forward pass. Masked keys (key_mask [N, T] zero, or later than the query when causal) get
 * exactly zero probability; a query with no visible key gets a zero output. The GEMMs follow
 * the context's math mode. */
typedef struct {
  int batch, seq, heads, head_dim;
  float scale;
  int causal;
} FthCudaAttnShape;

FthCudaStatus fth_cuda_attention_forward(FthCudaContext *ctx, const FthCudaAttnShape *s, const float *d_q,
                                         const float *d_k, const float *d_v, const float *d_key_mask,
                                         float *d_probs, float *d_out);
/* Any of dq, dk, dv may be NULL; the others are overwritten. dS = P * (dP - rowsum(P dP)), which
 * dq and dk both need, is read from ds_in [N, H, T, T] when given (then neither probs nor v is
 * read), else computed from probs and v, and kept in ds_out when that is not NULL. q is needed
 * for dk, k for dq. */
FthCudaStatus fth_cuda_attention_backward(FthCudaContext *ctx, const FthCudaAttnShape *s, const float *d_q,
                                          const float *d_k, const float *d_v, const float *d_probs,
                                          const float *d_dout, const float *d_ds_in, float *d_ds_out, float *d_dq,
                                          float *d_dk, float *d_dv);

/* ---- Dropout and embedding (misc.cu) ----------------------------------------------------------
 * Dropout keeps element i when the Philox4x32-10 number (seed, stream, block (step << 32) + i / 4,
 * lane i % 4) maps to a uniform >= p: the CPU's stream (core/rng.c, ops-dropout.c), so the masks
 * of the two backends are identical. */
FthCudaStatus fth_cuda_dropout(FthCudaContext *ctx, const float *d_x, float *d_y, size_t n, float p,
                               uint64_t seed, uint64_t stream, uint64_t step);
/* y[i, :] = table[ids[i], :]; ids outside 0..V-1 are flagged (see fth_cuda_synchronize). */
FthCudaStatus fth_cuda_embedding(FthCudaContext *ctx, const int32_t *d_ids, size_t n_ids, const float *d_table,
                                 size_t vocab, size_t dim, float *d_y);
/* dtable = sum of dy rows per id (ids == padding_idx add nothing). Rows are added with atomics,
 * so the summation order (and the last bits) may vary between runs. */
FthCudaStatus fth_cuda_embedding_grad(FthCudaContext *ctx, const int32_t *d_ids, size_t n_ids,
                                      const float *d_dy, size_t vocab, size_t dim, int32_t padding_idx,
                                      float *d_dtable);

/* ---- Optimizers and mixed precision (optim.cu) -------------------------------------------------
 * The update rules of engine/nn/optim.c (PyTorch's), one fused pass per buffer. */
FthCudaStatus fth_cuda_sgd_step(FthCudaContext *ctx, float *d_w, const float *d_grad, float *d_buf, size_t n,
                                float lr, float weight_decay, float momentum, int nesterov);
/* step t counts from 1. */
FthCudaStatus fth_cuda_adamw_step(FthCudaContext *ctx, float *d_w, const float *d_grad, float *d_m, float *d_v,
                                  size_t n, float lr, float weight_decay, float beta1, float beta2, float eps,
                                  int64_t t);
/* Conversions between f32 and f16/bf16 (round to nearest even, as fth_f32_to_bf16). */
FthCudaStatus fth_cuda_convert(FthCudaContext *ctx, FthCudaDType to, void *d_dst, FthCudaDType from,
                               const void *d_src, size_t n);

/* Dynamic loss scaling (torch.cuda.amp.GradScaler's rule): after the backward pass of a loss
 * multiplied by `scale`, the gradients are multiplied by 1 / scale and checked for Inf/NaN on
 * the device; the step is skipped and the scale halved when one is found, and the scale doubles
 * after `growth_interval` clean steps. */
typedef struct {
  float scale;
  float growth_factor, backoff_factor;
  int growth_interval;
  int clean_steps;
  int32_t *d_found_inf; /* device flag, owned by the scaler */
} FthCudaLossScaler;

FthCudaStatus fth_cuda_loss_scaler_init(FthCudaContext *ctx, FthCudaLossScaler *s, float initial_scale);
void fth_cuda_loss_scaler_release(FthCudaContext *ctx, FthCudaLossScaler *s);
/* Unscales n_bufs gradient buffers in place and records whether any value is not finite. */
FthCudaStatus fth_cuda_loss_scaler_unscale(FthCudaContext *ctx, FthCudaLossScaler *s, float *const *d_grads,
                                           const size_t *counts, int n_bufs);
/* Reads the flag (waits for the device), updates the scale, clears the flag; *step_ok is 1 when
 * the optimizer may step. */
FthCudaStatus fth_cuda_loss_scaler_update(FthCudaContext *ctx, FthCudaLossScaler *s, int *step_ok);

/* ---- Data parallel (nccl.cu; FTH_CUDA_UNSUPPORTED without NCCL) ------------------------------- */

typedef struct FthCudaComm FthCudaComm;
#define FTH_CUDA_COMM_ID_BYTES 128

/* Rank 0 makes the id and hands it to the others (MPI broadcast, a file, the launcher). */
FthCudaStatus fth_cuda_comm_unique_id(unsigned char id[FTH_CUDA_COMM_ID_BYTES]);
/* A collective (or the joining) not done after timeout_s seconds, or an asynchronous NCCL error,
 * aborts the communicator (ncclCommAbort) and fails with FTH_CUDA_TIMEOUT (FTH_CUDA_FAILED);
 * every later call fails too. The calls below return once their collectives are done on the
 * device (fth_cuda_comm_reduce_async: at fth_cuda_comm_join), so that a hang is noticed. */
FthCudaStatus fth_cuda_comm_new(FthCudaContext *ctx, const unsigned char id[FTH_CUDA_COMM_ID_BYTES],
                                int n_ranks, int rank, double timeout_s, FthCudaComm **out);
/* One communicator per device of this process, for a single-process launcher (ncclCommInitAll). */
FthCudaStatus fth_cuda_comm_new_all(FthCudaContext *const *ctxs, int n, FthCudaComm **comms);
void fth_cuda_comm_free(FthCudaComm *comm);
/* In-place sum over ranks of n f32 values, then multiplied by `factor` (1 / ranks: a mean). */
FthCudaStatus fth_cuda_all_reduce(FthCudaComm *comm, float *d_buf, size_t n, float factor);
/* Gradient reduction in buckets: buffers are packed in order into buckets of about
 * bucket_bytes, each bucket all-reduced as one call (averaged over ranks) and unpacked. Buffers
 * larger than a bucket are reduced in place. One process per GPU calls it with its rank's
 * buffers. */
FthCudaStatus fth_cuda_all_reduce_buckets(FthCudaComm *comm, float *const *d_bufs, const size_t *counts,
                                          int n_bufs, size_t bucket_bytes);
/* Overlapped with the backward pass: fth_cuda_comm_reduce_async sums the buffers over the ranks
 * (in place, one NCCL group) on the communicator's own stream, once the work queued so far on the
 * context's stream is done (an event that stream waits for), so the backward kernels queued
 * after it run beside the reduction. fth_cuda_comm_join makes the context's stream wait for all
 * the reductions queued so far. Every rank queues the same buffers in the same order. */
FthCudaStatus fth_cuda_comm_reduce_async(FthCudaComm *comm, float *const *d_bufs, const size_t *counts,
                                         int n_bufs);
FthCudaStatus fth_cuda_comm_join(FthCudaComm *comm);
/* The same for every device of a single-process launcher: comms[r] with its buffers
 * d_bufs[r][0..n_bufs) (every rank the same counts); each bucket's collectives are issued as one
 * NCCL group. */
FthCudaStatus fth_cuda_all_reduce_buckets_local(FthCudaComm *const *comms, int n_comms, float *const *const *d_bufs,
                                                const size_t *counts, int n_bufs, size_t bucket_bytes);

#ifdef __cplusplus
}
#endif
