#include "attention.h"
#include "conv-simd.h"
#include "fth-kernels-cpu.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Row i of the scores in place -> probabilities, with keys [0, limit) visible unless masked. */
static void
masked_softmax_row (float *row, int T, int limit, const float *key_mask)
{
  float mx = -INFINITY;
  for (int j = 0; j < limit; j++)
    if ((!key_mask || key_mask[j] != 0.0f) && row[j] > mx)
      mx = row[j];
  if (mx == -INFINITY)
    {
      for (int j = 0; j < T; j++)
        row[j] = 0.0f;
      return;
    }
  double sum = 0.0;
  for (int j = 0; j < T; j++)
    {
      if (j >= limit || (key_mask && key_mask[j] == 0.0f))
        {
          row[j] = 0.0f;
          continue;
        }
      row[j] = expf (row[j] - mx);
      sum += row[j];
    }
  const float inv = (float) (1.0 / sum);
  for (int j = 0; j < limit; j++)
    row[j] *= inv;
}

/* V when keys [0, V) are visible and the rest masked (padding at the end of a sequence), else
 * -1. */
static int
visible_prefix (const float *key_mask, int T)
{
  if (!key_mask)
    return T;
  int V = 0;
  while (V < T && key_mask[V] != 0.0f)
    V++;
  for (int j = V; j < T; j++)
    if (key_mask[j] != 0.0f)
      return -1;
  return V;
}

void
fth_attention_forward (const FthAttnShape *s, const float *q, const float *k, const float *v,
                       const float *key_mask, float *probs, float *out, size_t bh0, size_t bh1)
{
  const int T = s->seq, H = s->heads, Dh = s->head_dim, E = H * Dh;
  for (size_t bh = bh0; bh < bh1; bh++)
    {
      const size_t n = bh / (size_t) H, h = bh % (size_t) H;
      const size_t base = n * (size_t) T * E + h * (size_t) Dh;
      float *P = probs + bh * (size_t) T * T;
      const float *km = key_mask ? key_mask + n * (size_t) T : NULL;
      const int V = s->causal ? -1 : visible_prefix (km, T);
      if (V >= 0)
        {
          /* Padded text: scores, softmax and the weighted sum over the V visible keys alone
           * (most of a short text's T), the masked columns exactly 0. */
          if (V == 0)
            {
              memset (P, 0, (size_t) T * T * sizeof *P);
              for (int i = 0; i < T; i++)
                memset (out + base + (size_t) i * E, 0, (size_t) Dh * sizeof *out);
              continue;
            }
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, T, V, Dh, s->scale, q + base, E,
                       k + base, E, 0.0f, P, T);
          for (int i = 0; i < T; i++)
            {
              float *row = P + (size_t) i * T;
              fth_k_softmax_rows (row, row, 1, (size_t) V);
              memset (row + V, 0, (size_t) (T - V) * sizeof *row);
            }
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, T, Dh, V, 1.0f, P, T, v + base,
                       E, 0.0f, out + base, E);
          continue;
        }
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, T, T, Dh, s->scale, q + base, E,
                   k + base, E, 0.0f, P, T);
      for (int i = 0; i < T; i++)
        masked_softmax_row (P + (size_t) i * T, T, s->causal ? i + 1 : T, km);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, T, Dh, T, 1.0f, P, T, v + base, E,
                   0.0f, out + base, E);
    }
}

size_t
fth_attention_backward_scratch_floats (const FthAttnShape *s)
{
  return 2 * (size_t) s->seq * s->seq;
}

void
fth_attention_backward (const FthAttnShape *s, const float *q, const float *k, const float *v,
                        const float *probs, const float *dout, const float *ds_in, float *ds_out,
                        float *dq, float *dk, float *dv, float *scratch, size_t bh0, size_t bh1)
{
  const int T = s->seq, H = s->heads, Dh = s->head_dim, E = H * Dh;
  const size_t TT = (size_t) T * T;
  for (size_t bh = bh0; bh < bh1; bh++)
    {
      const size_t n = bh / (size_t) H, h = bh % (size_t) H;
      const size_t base = n * (size_t) T * E + h * (size_t) Dh;
      if (dv)
        cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, T, Dh, T, 1.0f, probs + bh * TT, T,
                     dout + base, E, 0.0f, dv + base, E);
      if (!dq && !dk)
        continue;
      const float *dS;
      if (ds_in)
        dS = ds_in + bh * TT;
      else
        {
          const float *P = probs + bh * TT;
          float *dP = scratch, *dS_w = ds_out ? ds_out + bh * TT : scratch + TT;
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, T, T, Dh, 1.0f, dout + base, E,
                       v + base, E, 0.0f, dP, T);
          /* Softmax backward: dS = P * (dP - sum_j P dP). Zero probabilities give zero dS, so
           * masked positions pass no gradient to q or k. */
          for (int i = 0; i < T; i++)
            {
              const float *pr = P + (size_t) i * T, *gr = dP + (size_t) i * T;
              float *sr = dS_w + (size_t) i * T;
              const float dot = fth_simd_dot (pr, gr, (size_t) T);
              for (int j = 0; j < T; j++)
                sr[j] = pr[j] * (gr[j] - dot);
            }
          dS = dS_w;
        }
      if (dq)
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, T, Dh, T, s->scale, dS, T, k + base,
                     E, 0.0f, dq + base, E);
      if (dk)
        cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, T, Dh, T, s->scale, dS, T, q + base,
                     E, 0.0f, dk + base, E);
    }
}
