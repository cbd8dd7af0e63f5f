/* Scaled dot-product attention core, softmax(Q K^T * scale + mask) V, on raw float arrays.
 * q, k, v and out are [N, T, H * Dh] (heads side by side in the last axis, as the projections
 * produce them); probs is [N, H, T, T]. Work is split over (n, h) pairs [bh0, bh1). Masked
 * positions get exactly zero probability; a query with no visible key gets a zero output. */
#pragma once

#include <stddef.h>

typedef struct FthAttnShape {
  int batch, seq, heads, head_dim;
  float scale;
  int causal;
} FthAttnShape;

/* key_mask [N, T] (nonzero: visible) or NULL. probs is written (it is what the backward uses). */
void fth_attention_forward(const FthAttnShape *s, const float *q, const float *k, const float *v,
                           const float *key_mask, float *probs, float *out, size_t bh0, size_t bh1);

/* Scratch one worker needs for fth_attention_backward: two T x T matrices. */
size_t fth_attention_backward_scratch_floats(const FthAttnShape *s);

/* Gradients for the (n, h) pairs [bh0, bh1); each of dq, dk, dv may be NULL and is written
 * (not accumulated) in the columns of those heads. dS = P * (dP - rowsum(P dP)), the gradient
 * of the scaled scores, is what dq and dk both need: with ds_in ([N, H, T, T]) it is read from
 * there (v, dout and probs are then not used for dq/dk), otherwise it is computed, and stored
 * into ds_out when that is not NULL so a later call can pass it as ds_in. */
void fth_attention_backward(const FthAttnShape *s, const float *q, const float *k, const float *v,
                            const float *probs, const float *dout, const float *ds_in,
                            float *ds_out, float *dq, float *dk, float *dv, float *scratch,
                            size_t bh0, size_t bh1);
