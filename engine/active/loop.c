/* Simulated active learning: the oracle's labels are revealed as the strategy asks. The same code
 * drives the benchmark (trainer-backed model) and the tests (a fake model). */
#include "fathom/active.h"

#include <stdlib.h>
#include <string.h>

void
fth_al_options_init(FthAlOptions *opt)
{
  memset(opt, 0, sizeof *opt);
  fth_acq_options_init(&opt->acq);
  opt->start = 100;
  opt->rounds = 10;
  opt->mc_passes = 10;
  opt->pseudo_weight = 0.5f;
}

typedef struct {
  uint32_t index;
  int32_t cls;
  float confidence;
} Confident;

static int
by_class_then_confidence(const void *a, const void *b)
{
  const Confident *x = a, *y = b;
  if (x->cls != y->cls)
    return x->cls < y->cls ? -1 : 1;
  if (x->confidence != y->confidence)
    return x->confidence > y->confidence ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Confident predictions among the unlabeled rows (probs rows follow unl[]), capped per class. */
static GArray *
pick_pseudo_labels(const float *probs, const uint32_t *unl, size_t n_unl, int n_classes,
                   double threshold, guint cap)
{
  GArray *picked = g_array_new(FALSE, FALSE, sizeof(Confident));
  for (size_t i = 0; i < n_unl; i++) {
    const float *p = probs + i * (size_t)n_classes;
    int top = 0;
    for (int k = 1; k < n_classes; k++)
      if (p[k] > p[top])
        top = k;
    if (p[top] >= threshold) {
      Confident c = {unl[i], top, p[top]};
      g_array_append_val(picked, c);
    }
  }
  if (picked->len > 1)
    qsort(picked->data, picked->len, sizeof(Confident), by_class_then_confidence);
  if (cap == 0)
    return picked;
  guint out = 0, in_class = 0;
  int32_t last = -1;
  for (guint i = 0; i < picked->len; i++) {
    Confident c = g_array_index(picked, Confident, i);
    in_class = c.cls == last ? in_class + 1 : 0;
    last = c.cls;
    if (in_class < cap)
      g_array_index(picked, Confident, out++) = c;
  }
  g_array_set_size(picked, out);
  return picked;
}

gboolean
fth_al_simulate(const FthAlModel *model, gpointer self, const int32_t *oracle, size_t n_pool,
                const FthAlOptions *opt, GArray *rounds, GError **error)
{
  const FthAcquisition strategy = opt->acq.strategy;
  const int c = model->n_classes;
  gboolean want_emb = strategy == FTH_ACQ_CORESET || strategy == FTH_ACQ_HYBRID;
  int passes = strategy == FTH_ACQ_BALD ? opt->mc_passes : 0;
  if (opt->start == 0 || opt->start > n_pool) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "the start set (%zu labels) must be between 1 and the pool size (%zu)",
                opt->start, n_pool);
    return FALSE;
  }
  if (want_emb && model->dim < 1) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "strategy %s needs embeddings and the model has none",
                fth_acquisition_name(strategy));
    return FALSE;
  }
  if (strategy == FTH_ACQ_BALD && passes < 2) {
    g_set_error(error, FTH_ACTIVE_ERROR, FTH_ACTIVE_ERROR_INVALID,
                "strategy bald needs at least 2 dropout passes (got %d)", passes);
    return FALSE;
  }
  g_autofree guint8 *labeled = g_new0(guint8, n_pool);
  g_autofree uint32_t *lab_idx = g_new(uint32_t, n_pool);
  g_autofree int32_t *lab_y = g_new(int32_t, n_pool);
  g_autofree float *lab_w = g_new(float, n_pool);
  size_t n_lab = 0;
  {
    /* The start set: the pool's `start` best random draws under a stream of its own. */
    FthAcqOptions ro = opt->acq;
    ro.strategy = FTH_ACQ_RANDOM;
    ro.seed = opt->acq.seed ^ 0x5eed5eed5eed5eedULL;
    ro.batch = opt->start;
    FthAcqPool rp = {.n = n_pool};
    g_autofree uint32_t *sel = g_new(uint32_t, opt->start);
    g_autofree float *sc = g_new(float, opt->start);
    size_t k;
    if (!fth_acquire(&rp, &ro, sel, sc, &k, error))
      return FALSE;
    for (size_t j = 0; j < k; j++)
      labeled[sel[j]] = 1;
  }
  g_autofree uint32_t *all = g_new(uint32_t, n_pool);
  for (size_t i = 0; i < n_pool; i++)
    all[i] = (uint32_t)i;
  g_autofree float *probs = g_new0(float, n_pool * (size_t)c);
  g_autofree float *emb = want_emb ? g_new(float, n_pool * (size_t)model->dim) : NULL;
  g_autofree float *mc = passes ? g_new(float, (size_t)passes * n_pool * (size_t)c) : NULL;
  g_autoptr(GArray) pseudo = NULL;
  for (guint r = 0;; r++) {
    if (g_cancellable_set_error_if_cancelled(opt->cancellable, error))
      return FALSE;
    /* Labeled set in pool order (deterministic), then the pseudo-labels. */
    n_lab = 0;
    for (size_t i = 0; i < n_pool; i++)
      if (labeled[i]) {
        lab_idx[n_lab] = (uint32_t)i;
        lab_y[n_lab] = oracle[i];
        lab_w[n_lab] = 1.0f;
        n_lab++;
      }
    size_t n_human = n_lab;
    for (guint j = 0; pseudo != NULL && j < pseudo->len; j++) {
      const Confident *pc = &g_array_index(pseudo, Confident, j);
      if (labeled[pc->index])
        continue;
      lab_idx[n_lab] = pc->index;
      lab_y[n_lab] = pc->cls;
      lab_w[n_lab] = opt->pseudo_weight;
      n_lab++;
    }
    FthAlRound rec = {.round = r, .n_labels = n_human, .n_pseudo = n_lab - n_human};
    gint64 t0 = g_get_monotonic_time();
    if (!model->fit(self, lab_idx, lab_y, n_lab > n_human ? lab_w : NULL, n_lab, r, error))
      return FALSE;
    gint64 t1 = g_get_monotonic_time();
    rec.fit_s = (double)(t1 - t0) / 1e6;
    if (!model->evaluate(self, &rec.accuracy, error))
      return FALSE;
    gboolean last = r >= opt->rounds || n_human >= n_pool;
    if (!last) {
      gint64 t2 = g_get_monotonic_time();
      /* Every pool item is scored: the labeled ones give core-set its centers. Random sampling
       * needs no scores (unless they make pseudo-labels). */
      if ((strategy != FTH_ACQ_RANDOM || opt->pseudo_threshold > 0) &&
          !model->predict(self, all, n_pool, probs, emb, passes, mc, error))
        return FALSE;
      size_t n_unl = n_pool - n_human;
      g_autofree uint32_t *unl = g_new(uint32_t, n_unl ? n_unl : 1);
      g_autofree float *u_probs = g_new(float, n_unl * (size_t)c + 1);
      g_autofree float *u_emb = want_emb ? g_new(float, n_unl * (size_t)model->dim) : NULL;
      g_autofree float *l_emb = want_emb ? g_new(float, n_human * (size_t)model->dim) : NULL;
      g_autofree float *u_mc = passes ? g_new(float, (size_t)passes * n_unl * (size_t)c) : NULL;
      size_t u = 0, l = 0;
      for (size_t i = 0; i < n_pool; i++) {
        if (labeled[i]) {
          if (want_emb)
            memcpy(l_emb + l * (size_t)model->dim, emb + i * (size_t)model->dim,
                   sizeof(float) * (size_t)model->dim);
          l++;
          continue;
        }
        unl[u] = (uint32_t)i;
        memcpy(u_probs + u * (size_t)c, probs + i * (size_t)c, sizeof(float) * (size_t)c);
        if (want_emb)
          memcpy(u_emb + u * (size_t)model->dim, emb + i * (size_t)model->dim,
                 sizeof(float) * (size_t)model->dim);
        for (int t = 0; t < passes; t++)
          memcpy(u_mc + ((size_t)t * n_unl + u) * (size_t)c,
                 mc + ((size_t)t * n_pool + i) * (size_t)c, sizeof(float) * (size_t)c);
        u++;
      }
      FthAcqPool ap = {
        .n = n_unl, .n_classes = c, .probs = u_probs, .mc_probs = u_mc, .n_passes = passes,
        .emb = u_emb, .dim = model->dim, .labeled_emb = l_emb, .n_labeled = n_human,
      };
      FthAcqOptions ao = opt->acq;
      ao.seed = opt->acq.seed + r; /* random sampling draws afresh each round */
      g_autofree uint32_t *sel = g_new(uint32_t, ao.batch);
      g_autofree float *sc = g_new(float, ao.batch);
      size_t k;
      if (!fth_acquire(&ap, &ao, sel, sc, &k, error))
        return FALSE;
      for (size_t j = 0; j < k; j++)
        labeled[unl[sel[j]]] = 1;
      if (opt->pseudo_threshold > 0) {
        if (pseudo != NULL)
          g_array_unref(pseudo);
        pseudo = pick_pseudo_labels(u_probs, unl, n_unl, c, opt->pseudo_threshold,
                                    opt->pseudo_cap);
      }
      rec.score_s = (double)(g_get_monotonic_time() - t2) / 1e6;
    }
    g_array_append_val(rounds, rec);
    if (opt->on_round != NULL)
      opt->on_round(&rec, opt->on_round_data);
    if (last)
      return TRUE;
  }
}
