/* Acquisition functions: per-item uncertainty scores, k-center greedy, k-means and the hybrid
 * batch picker. Distances go through OpenBLAS (one SGEMM for all pairs, one SGEMV per new
 * center) rather than hand-written SIMD: it already dispatches AVX-512 kernels at run time. */
#include "fathom/active.h"
#include "fathom/core.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK(fth-active-error-quark, fth_active_error)

static const char *const strategy_names[FTH_ACQ_N_STRATEGIES] = {
  "random", "least-confidence", "margin", "entropy", "bald", "coreset", "hybrid",
};

const char *
fth_acquisition_name(FthAcquisition strategy)
{
  if ((int)strategy < 0 || (int)strategy >= FTH_ACQ_N_STRATEGIES)
    return "unknown";
  return strategy_names[strategy];
}

gboolean
fth_acquisition_from_name(const char *name, FthAcquisition *out, GError **error)
{
  for (int i = 0; i < FTH_ACQ_N_STRATEGIES; i++) {
    if (name != NULL && strcmp(name, strategy_names[i]) == 0) {
      *out = (FthAcquisition)i;
      return TRUE;
    }
  }
  g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
              "unknown strategy “%s” (random, least-confidence, margin, entropy, bald, coreset, "
              "hybrid)", name ? name : "(null)");
  return FALSE;
}

void
fth_acq_options_init(FthAcqOptions *opt)
{
  memset(opt, 0, sizeof *opt);
  opt->strategy = FTH_ACQ_ENTROPY;
  opt->batch = 100;
  opt->seed = 1;
}

void
fth_acq_random(size_t n, uint64_t seed, float *scores)
{
  FthRng rng;
  fth_rng_init(&rng, seed, 0);
  fth_rng_uniform(&rng, scores, n, 0.0f, 1.0f);
}

void
fth_acq_least_confidence(const float *probs, size_t n, int n_classes, float *scores)
{
  for (size_t i = 0; i < n; i++) {
    const float *p = probs + i * (size_t)n_classes;
    float best = p[0];
    for (int k = 1; k < n_classes; k++)
      best = fmaxf(best, p[k]);
    scores[i] = 1.0f - best;
  }
}

void
fth_acq_margin(const float *probs, size_t n, int n_classes, float *scores)
{
  for (size_t i = 0; i < n; i++) {
    const float *p = probs + i * (size_t)n_classes;
    float first = -FLT_MAX, second = -FLT_MAX;
    for (int k = 0; k < n_classes; k++) {
      if (p[k] > first) {
        second = first;
        first = p[k];
      } else if (p[k] > second) {
        second = p[k];
      }
    }
    /* One class only: no runner-up, the model cannot be undecided. */
    scores[i] = n_classes > 1 ? 1.0f - (first - second) : 0.0f;
  }
}

/* Entropy in nats of one distribution, accumulated in double: 0 ln 0 counts as 0. */
static double
row_entropy(const float *p, int n_classes)
{
  double h = 0;
  for (int k = 0; k < n_classes; k++)
    if (p[k] > 0)
      h -= (double)p[k] * log((double)p[k]);
  return h;
}

void
fth_acq_entropy(const float *probs, size_t n, int n_classes, float *scores)
{
  for (size_t i = 0; i < n; i++)
    scores[i] = (float)row_entropy(probs + i * (size_t)n_classes, n_classes);
}

void
fth_acq_bald(const float *mc_probs, int n_passes, size_t n, int n_classes, float *scores,
             float *mean_probs)
{
  size_t table = n * (size_t)n_classes;
  g_autofree double *mean = g_new(double, (size_t)n_classes);
  for (size_t i = 0; i < n; i++) {
    double mean_h = 0;
    memset(mean, 0, sizeof(double) * (size_t)n_classes);
    for (int t = 0; t < n_passes; t++) {
      const float *p = mc_probs + (size_t)t * table + i * (size_t)n_classes;
      mean_h += row_entropy(p, n_classes);
      for (int k = 0; k < n_classes; k++)
        mean[k] += p[k];
    }
    double h_mean = 0;
    for (int k = 0; k < n_classes; k++) {
      mean[k] /= n_passes;
      if (mean[k] > 0)
        h_mean -= mean[k] * log(mean[k]);
      if (mean_probs != NULL)
        mean_probs[i * (size_t)n_classes + (size_t)k] = (float)mean[k];
    }
    /* Mutual information is >= 0 (Jensen); rounding may make it a hair negative. */
    scores[i] = (float)fmax(0.0, h_mean - mean_h / n_passes);
  }
}

static void
row_sq_norms(const float *x, size_t n, int dim, float *out)
{
  for (size_t i = 0; i < n; i++) {
    const float *r = x + i * (size_t)dim;
    out[i] = cblas_sdot(dim, r, 1, r, 1);
  }
}

void
fth_sq_distances(const float *a, size_t n, const float *b, size_t m, int dim, float *out)
{
  if (n == 0 || m == 0)
    return;
  g_autofree float *na = g_new(float, n);
  g_autofree float *nb = g_new(float, m);
  row_sq_norms(a, n, dim, na);
  row_sq_norms(b, m, dim, nb);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, (blasint)m, dim, -2.0f, a,
              dim, b, dim, 0.0f, out, (blasint)m);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < m; j++)
      out[i * m + j] = fmaxf(0.0f, out[i * m + j] + na[i] + nb[j]);
}

/* min_d[i] = min(min_d[i], |x_i - c|^2) for one new center c: one SGEMV for all dot products. */
static void
update_min_distances(const float *x, const float *norms, size_t n, int dim, const float *c,
                     float *dot, float *min_d)
{
  float nc = cblas_sdot(dim, c, 1, c, 1);
  cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)n, dim, 1.0f, x, dim, c, 1, 0.0f, dot, 1);
  for (size_t i = 0; i < n; i++) {
    float d = fmaxf(0.0f, norms[i] + nc - 2.0f * dot[i]);
    min_d[i] = fminf(min_d[i], d);
  }
}

size_t
fth_acq_coreset(const float *emb, size_t n, int dim, const float *centers, size_t n_centers,
                size_t k, uint32_t *selected, float *dist)
{
  k = MIN(k, n);
  if (k == 0)
    return 0;
  g_autofree float *norms = g_new(float, n);
  g_autofree float *min_d = g_new(float, n);
  g_autofree float *dot = g_new(float, n);
  g_autofree guint8 *taken = g_new0(guint8, n);
  row_sq_norms(emb, n, dim, norms);
  for (size_t i = 0; i < n; i++)
    min_d[i] = INFINITY;
  if (n_centers > 0) {
    /* Blocks of labeled centers keep the distance matrix small (n x 256 floats). */
    const size_t block = 256;
    g_autofree float *d = g_new(float, n * block);
    for (size_t c0 = 0; c0 < n_centers; c0 += block) {
      size_t m = MIN(block, n_centers - c0);
      fth_sq_distances(emb, n, centers + c0 * (size_t)dim, m, dim, d);
      for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++)
          min_d[i] = fminf(min_d[i], d[i * m + j]);
    }
  }
  size_t j0 = 0;
  if (n_centers == 0) {
    /* The first pick is the point farthest from the pool mean (the mean is no center: the
     * distances start from that pick alone). */
    g_autofree float *mean = g_new0(float, (size_t)dim);
    g_autofree float *to_mean = g_new(float, n);
    for (size_t i = 0; i < n; i++) {
      cblas_saxpy(dim, 1.0f / (float)n, emb + i * (size_t)dim, 1, mean, 1);
      to_mean[i] = INFINITY;
    }
    update_min_distances(emb, norms, n, dim, mean, dot, to_mean);
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
      if (to_mean[i] > to_mean[best])
        best = i;
    selected[0] = (uint32_t)best;
    if (dist != NULL)
      dist[0] = sqrtf(to_mean[best]);
    taken[best] = 1;
    update_min_distances(emb, norms, n, dim, emb + best * (size_t)dim, dot, min_d);
    j0 = 1;
  }
  for (size_t j = j0; j < k; j++) {
    size_t best = n;
    for (size_t i = 0; i < n; i++)
      if (!taken[i] && (best == n || min_d[i] > min_d[best]))
        best = i;
    selected[j] = (uint32_t)best;
    if (dist != NULL)
      dist[j] = sqrtf(min_d[best]);
    taken[best] = 1;
    if (j + 1 < k)
      update_min_distances(emb, norms, n, dim, emb + best * (size_t)dim, dot, min_d);
  }
  return k;
}

int
fth_kmeans(const float *x, size_t n, int dim, int k, int max_iter, uint64_t seed,
           uint32_t *assign, float *centroids_out)
{
  if (n == 0 || k < 1)
    return 0;
  k = (int)MIN((size_t)k, n);
  g_autofree float *cent = g_new(float, (size_t)k * (size_t)dim);
  g_autofree float *norms = g_new(float, n);
  g_autofree float *min_d = g_new(float, n);
  g_autofree float *dot = g_new(float, n);
  row_sq_norms(x, n, dim, norms);
  FthRng rng;
  fth_rng_init(&rng, seed, 1);
  /* k-means++: the first centroid uniformly, each next one with probability ~ D(x)^2. */
  size_t first = (size_t)(fth_rng_u32(&rng) % (uint32_t)n);
  memcpy(cent, x + first * (size_t)dim, sizeof(float) * (size_t)dim);
  for (size_t i = 0; i < n; i++)
    min_d[i] = INFINITY;
  update_min_distances(x, norms, n, dim, cent, dot, min_d);
  for (int c = 1; c < k; c++) {
    double total = 0;
    for (size_t i = 0; i < n; i++)
      total += min_d[i];
    float u;
    fth_rng_uniform(&rng, &u, 1, 0.0f, 1.0f);
    double target = u * total, acc = 0;
    size_t pick = n - 1;
    for (size_t i = 0; i < n; i++) {
      acc += min_d[i];
      if (acc > target) {
        pick = i;
        break;
      }
    }
    memcpy(cent + (size_t)c * (size_t)dim, x + pick * (size_t)dim, sizeof(float) * (size_t)dim);
    update_min_distances(x, norms, n, dim, cent + (size_t)c * (size_t)dim, dot, min_d);
  }
  g_autofree float *d = g_new(float, n * (size_t)k);
  g_autofree double *sum = g_new(double, (size_t)k * (size_t)dim);
  g_autofree size_t *count = g_new(size_t, (size_t)k);
  for (size_t i = 0; i < n; i++)
    assign[i] = UINT32_MAX;
  int iter = 0;
  while (iter < max_iter) {
    iter++;
    fth_sq_distances(x, n, cent, (size_t)k, dim, d);
    gboolean moved = FALSE;
    for (size_t i = 0; i < n; i++) {
      uint32_t best = 0;
      for (int c = 1; c < k; c++)
        if (d[i * (size_t)k + (size_t)c] < d[i * (size_t)k + best])
          best = (uint32_t)c;
      if (assign[i] != best) {
        assign[i] = best;
        moved = TRUE;
      }
    }
    if (!moved)
      break;
    memset(sum, 0, sizeof(double) * (size_t)k * (size_t)dim);
    memset(count, 0, sizeof(size_t) * (size_t)k);
    for (size_t i = 0; i < n; i++) {
      count[assign[i]]++;
      for (int j = 0; j < dim; j++)
        sum[(size_t)assign[i] * (size_t)dim + (size_t)j] += x[i * (size_t)dim + (size_t)j];
    }
    /* An emptied cluster keeps its old centroid. */
    for (int c = 0; c < k; c++)
      if (count[c] > 0)
        for (int j = 0; j < dim; j++)
          cent[(size_t)c * (size_t)dim + (size_t)j] =
            (float)(sum[(size_t)c * (size_t)dim + (size_t)j] / (double)count[c]);
  }
  if (centroids_out != NULL)
    memcpy(centroids_out, cent, sizeof(float) * (size_t)k * (size_t)dim);
  return iter;
}

typedef struct {
  const float *scores;
} ScoreOrder;

/* Descending score, then ascending index: a total order, so ranks are reproducible. */
static int
by_score_desc(const void *a, const void *b, void *data)
{
  const float *s = ((const ScoreOrder *)data)->scores;
  uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
  if (s[i] > s[j])
    return -1;
  if (s[i] < s[j])
    return 1;
  return i < j ? -1 : i > j;
}

static uint32_t *
rank_by_score(const float *scores, size_t n)
{
  uint32_t *order = g_new(uint32_t, n ? n : 1);
  for (size_t i = 0; i < n; i++)
    order[i] = (uint32_t)i;
  ScoreOrder so = {scores};
  qsort_r(order, n, sizeof(uint32_t), by_score_desc, &so);
  return order;
}

/* Top candidates by entropy, k-means on their embeddings, then round-robin over the clusters
 * (clusters in the order of their most uncertain member), each time the cluster's most
 * uncertain remaining candidate: an uncertain batch that is not k near-duplicates. */
static size_t
hybrid_pick(const FthAcqPool *pool, const FthAcqOptions *opt, const float *unc, uint32_t *selected,
            float *scores_out)
{
  size_t n = pool->n, batch = MIN(opt->batch, n);
  size_t per_pick = opt->hybrid_candidates > 0 ? (size_t)opt->hybrid_candidates : 10;
  size_t n_cand = MIN(n, batch * per_pick);
  int k = opt->hybrid_clusters > 0 ? opt->hybrid_clusters : (int)MIN(batch, (size_t)10);
  g_autofree uint32_t *order = rank_by_score(unc, n);
  g_autofree float *cand_emb = g_new(float, n_cand * (size_t)pool->dim);
  for (size_t i = 0; i < n_cand; i++)
    memcpy(cand_emb + i * (size_t)pool->dim, pool->emb + (size_t)order[i] * (size_t)pool->dim,
           sizeof(float) * (size_t)pool->dim);
  g_autofree uint32_t *assign = g_new(uint32_t, n_cand);
  fth_kmeans(cand_emb, n_cand, pool->dim, k, 50, opt->seed, assign, NULL);
  k = (int)MIN((size_t)k, n_cand);
  /* Candidates are already in uncertainty order, so each cluster's list is too. */
  g_autofree size_t *next = g_new0(size_t, (size_t)k); /* cursor into the candidate order */
  g_autofree int *cluster_order = g_new(int, (size_t)k);
  int n_clusters = 0;
  g_autofree guint8 *seen = g_new0(guint8, (size_t)k);
  for (size_t i = 0; i < n_cand && n_clusters < k; i++)
    if (!seen[assign[i]]) {
      seen[assign[i]] = 1;
      cluster_order[n_clusters++] = (int)assign[i];
    }
  size_t picked = 0;
  while (picked < batch) {
    for (int ci = 0; ci < n_clusters && picked < batch; ci++) {
      int c = cluster_order[ci];
      while (next[c] < n_cand && assign[next[c]] != (uint32_t)c)
        next[c]++;
      if (next[c] < n_cand) {
        selected[picked] = order[next[c]];
        scores_out[picked] = unc[order[next[c]]];
        picked++;
        next[c]++;
      }
    }
  }
  return picked;
}

gboolean
fth_acquire(const FthAcqPool *pool, const FthAcqOptions *opt, uint32_t *selected, float *scores,
            size_t *n_selected, GError **error)
{
  *n_selected = 0;
  if (opt->batch == 0) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID, "the batch size must be at "
                "least 1");
    return FALSE;
  }
  const char *name = fth_acquisition_name(opt->strategy);
  gboolean needs_probs = opt->strategy == FTH_ACQ_LEAST_CONFIDENCE ||
                         opt->strategy == FTH_ACQ_MARGIN || opt->strategy == FTH_ACQ_ENTROPY ||
                         opt->strategy == FTH_ACQ_HYBRID;
  if (needs_probs && (pool->probs == NULL || pool->n_classes < 1)) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "strategy %s needs class probabilities for the pool (run a prediction first)",
                name);
    return FALSE;
  }
  if (opt->strategy == FTH_ACQ_BALD && (pool->mc_probs == NULL || pool->n_passes < 2)) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "strategy bald needs at least 2 Monte-Carlo dropout passes (got %d)",
                pool->mc_probs ? pool->n_passes : 0);
    return FALSE;
  }
  if ((opt->strategy == FTH_ACQ_CORESET || opt->strategy == FTH_ACQ_HYBRID) &&
      (pool->emb == NULL || pool->dim < 1)) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "strategy %s needs embeddings for the pool (run a prediction first)", name);
    return FALSE;
  }
  size_t n = pool->n;
  if (n == 0)
    return TRUE;
  if (opt->strategy == FTH_ACQ_CORESET) {
    *n_selected = fth_acq_coreset(pool->emb, n, pool->dim, pool->labeled_emb, pool->n_labeled,
                                  opt->batch, selected, scores);
    return TRUE;
  }
  g_autofree float *s = g_new(float, n);
  switch (opt->strategy) {
  case FTH_ACQ_RANDOM:
    fth_acq_random(n, opt->seed, s);
    break;
  case FTH_ACQ_LEAST_CONFIDENCE:
    fth_acq_least_confidence(pool->probs, n, pool->n_classes, s);
    break;
  case FTH_ACQ_MARGIN:
    fth_acq_margin(pool->probs, n, pool->n_classes, s);
    break;
  case FTH_ACQ_BALD:
    fth_acq_bald(pool->mc_probs, pool->n_passes, n, pool->n_classes, s, NULL);
    break;
  case FTH_ACQ_ENTROPY:
  case FTH_ACQ_HYBRID:
    fth_acq_entropy(pool->probs, n, pool->n_classes, s);
    break;
  case FTH_ACQ_CORESET:
  default:
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID, "unknown strategy %d",
                (int)opt->strategy);
    return FALSE;
  }
  if (opt->strategy == FTH_ACQ_HYBRID) {
    *n_selected = hybrid_pick(pool, opt, s, selected, scores);
    return TRUE;
  }
  g_autofree uint32_t *order = rank_by_score(s, n);
  size_t k = MIN(opt->batch, n);
  for (size_t j = 0; j < k; j++) {
    selected[j] = order[j];
    scores[j] = s[order[j]];
  }
  *n_selected = k;
  return TRUE;
}
