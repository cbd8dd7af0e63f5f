/* Multi-head attention softmax(Q K^T * scale + mask) V against a float64 reference written
 * here, gradients of q, k and v against central finite differences; masked keys (padding and
 * causal) get exactly zero weight, so their k and v rows get exactly zero gradient, and a
 * query that sees no key gets a zero output. */
#include "ops-check.h"

typedef struct {
  const char *name;
  int N, T, E, H;
  bool causal, use_mask;
  float scale; /* 0: 1/sqrt(Dh) */
  int masked_batch; /* -1, or a batch entry whose keys are all masked */
  bool q_no_grad;   /* q needs no gradient: the k gradient computes dS itself */
} AttnCase;

typedef struct {
  const AttnCase *c;
  double *q, *k, *v, *y, scale;
  const float *mask, *r;
} AttnRef;

static bool visible(const AttnRef *a, int n, int i, int j) {
  if (a->c->causal && j > i)
    return false;
  return !a->mask || a->mask[(size_t)n * a->c->T + j] != 0.0f;
}

static void ref_attn(AttnRef *a) {
  const int T = a->c->T, E = a->c->E, H = a->c->H, Dh = E / H;
  double *s = g_new(double, T);
  for (int n = 0; n < a->c->N; n++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < T; j++) {
          s[j] = 0.0;
          for (int d = 0; d < Dh; d++)
            s[j] += a->q[((size_t)n * T + i) * E + h * Dh + d] * a->k[((size_t)n * T + j) * E + h * Dh + d];
          s[j] *= a->scale;
          if (visible(a, n, i, j) && s[j] > mx)
            mx = s[j];
        }
        for (int j = 0; j < T; j++) {
          s[j] = visible(a, n, i, j) ? exp(s[j] - mx) : 0.0;
          sum += s[j];
        }
        for (int d = 0; d < Dh; d++) {
          double o = 0.0;
          for (int j = 0; j < T; j++)
            if (sum > 0.0)
              o += s[j] / sum * a->v[((size_t)n * T + j) * E + h * Dh + d];
          a->y[((size_t)n * T + i) * E + h * Dh + d] = o;
        }
      }
  g_free(s);
}

static double attn_loss(void *ctx) {
  AttnRef *a = ctx;
  ref_attn(a);
  return ops_dot_r(a->y, a->r, (size_t)a->c->N * a->c->T * a->c->E);
}

static void run_case(const AttnCase *c, uint64_t seed) {
  const size_t n = (size_t)c->N * c->T * c->E;
  float *q = g_new(float, n), *k = g_new(float, n), *v = g_new(float, n);
  float *mask = g_new(float, (size_t)c->N * c->T);
  ops_fill(q, n, -1, 1);
  ops_fill(k, n, -1, 1);
  ops_fill(v, n, -1, 1);
  for (int b = 0; b < c->N; b++)
    for (int j = 0; j < c->T; j++)
      /* padding at the end of each sequence, a different length per entry */
      mask[b * c->T + j] = b == c->masked_batch ? 0.0f : j < c->T - b - 1 ? 1.0f : 0.0f;

  OpsGraph og;
  ops_graph_begin(&og, seed, c->N);
  const int64_t shape[3] = {c->N, c->T, c->E};
  FthNode *qn = ops_input(&og, "q", 3, shape, q, !c->q_no_grad);
  FthNode *kn = ops_input(&og, "k", 3, shape, k, true);
  FthNode *vn = ops_input(&og, "v", 3, shape, v, true);
  FthNode *mn = c->use_mask ? ops_input(&og, "mask", 2, (int64_t[]){c->N, c->T}, mask, false) : NULL;
  FthAttentionParams p = {.n_heads = c->H, .causal = c->causal, .scale = c->scale};
  ops_graph_run(&og, fth_attention(og.g, qn, kn, vn, mn, &p), FTH_MODE_TRAIN);

  AttnRef ref = {.c = c, .mask = c->use_mask ? mask : NULL, .r = og.r};
  ref.scale = c->scale != 0.0f ? c->scale : 1.0 / sqrt((double)(c->E / c->H));
  ref.q = ops_to_double(q, n);
  ref.k = ops_to_double(k, n);
  ref.v = ops_to_double(v, n);
  ref.y = g_new(double, n);
  ref_attn(&ref);
  char what[160];
  g_snprintf(what, sizeof what, "%s forward", c->name);
  ops_assert_close(what, ops_output(&og), ref.y, n, 1e-5, 1e-4);
  const float *dq = c->q_no_grad ? NULL : ops_grad(&og, qn);
  const float *dk = ops_grad(&og, kn), *dv = ops_grad(&og, vn);
  if (dq) {
    g_snprintf(what, sizeof what, "%s d/dq", c->name);
    ops_check_grad_fd(what, attn_loss, &ref, ref.q, n, dq);
  }
  g_snprintf(what, sizeof what, "%s d/dk", c->name);
  ops_check_grad_fd(what, attn_loss, &ref, ref.k, n, dk);
  g_snprintf(what, sizeof what, "%s d/dv", c->name);
  ops_check_grad_fd(what, attn_loss, &ref, ref.v, n, dv);

  /* Exact zeros: padded keys get no weight, so no gradient reaches their k and v rows; a
   * query that sees no key outputs zeros. */
  if (c->use_mask) {
    const float *y = ops_output(&og);
    for (int b = 0; b < c->N; b++)
      for (int j = 0; j < c->T; j++) {
        if (mask[b * c->T + j] != 0.0f)
          continue;
        for (int e = 0; e < c->E; e++) {
          const size_t at = ((size_t)b * c->T + j) * c->E + e;
          if (dk[at] != 0.0f || dv[at] != 0.0f)
            g_error("%s: masked key %d of entry %d got gradient dk %g dv %g", c->name, j, b,
                    (double)dk[at], (double)dv[at]);
          if (b == c->masked_batch && (y[at] != 0.0f || (dq && dq[at] != 0.0f)))
            g_error("%s: a query with no visible key gave output %g, dq %g", c->name,
                    (double)y[at], dq ? (double)dq[at] : 0.0);
        }
      }
  }
  ops_graph_end(&og);
  g_free(q), g_free(k), g_free(v), g_free(mask);
  g_free(ref.q), g_free(ref.k), g_free(ref.v), g_free(ref.y);
}

static uint64_t seed;

static const AttnCase cases[] = {
    {"2 heads", 2, 5, 8, 2, false, false, 0.0f, -1},
    {"causal", 2, 6, 6, 3, true, false, 0.0f, -1},
    {"padding mask", 3, 7, 8, 2, false, true, 0.0f, -1},
    {"padding mask + causal, scale 0.3", 2, 6, 4, 1, true, true, 0.3f, -1},
    {"one entry fully masked", 3, 5, 4, 2, false, true, 0.0f, 1},
    {"T 19 (SIMD tails)", 1, 19, 6, 2, true, true, 0.0f, -1},
    {"padding mask, T 37 (visible keys alone, SIMD tails)", 2, 37, 8, 2, false, true, 0.0f, -1},
    {"q without gradient (k computes dS itself)", 2, 6, 8, 2, true, true, 0.0f, -1, true},
};

static void test_attention(void) {
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
    run_case(&cases[i], seed + i);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  seed = ops_seed_init();
  g_test_add_func("/ops/attention", test_attention);
  return g_test_run();
}
