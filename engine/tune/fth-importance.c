/* Parameter importances by fANOVA (Hutter, Hoos and Leyton-Brown 2014, "An efficient approach
 * for assessing hyperparameter importance"), the method behind Optuna's default evaluator.
 *
 * A random forest of regression trees learns objective = f(parameters) from the completed
 * trials (bootstrap samples, every feature tried at every split, variance-reduction splits at
 * midpoints; categorical parameters split one choice against the rest). Each tree is a
 * piecewise-constant function over boxes; under the uniform measure on the space (in sampling
 * coordinates: log for log parameters, the choice index for categoricals) its total variance
 * and the variance of each parameter's marginal (the tree averaged over all other parameters)
 * are exact sums over its leaves. A parameter's importance is the mean over trees of
 * marginal variance / total variance, normalized so that the importances sum to 1.
 *
 * Optuna 3.1 measures differently: log parameters on the linear scale, integers on [low, high]
 * (the two end values weigh half) and categoricals one-hot. On the same coordinates the two
 * agree within Optuna's own seed-to-seed spread (bench/tune/run-importance.sh). */
#include "fth-tune-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void
fth_importance_options_init(FthImportanceOptions *o)
{
  o->n_trees = 64;
  o->max_depth = 64;
  o->min_samples_split = 2;
  o->seed = 0;
}

typedef struct {
  int feature;      /* -1: a leaf */
  double threshold; /* continuous: left when x < threshold; categorical: left when x == it */
  int left, right;
  double value;     /* a leaf's mean */
} Node;

typedef struct {
  guint d;
  const double *x; /* n x d, sampling coordinates */
  const double *y;
  const gboolean *categorical;
  const double *lo, *hi; /* continuous domain per feature; categorical: 0 .. n_choices */
  GArray *nodes;
  guint max_depth, min_split;
} Forest;

static double
mean_of(const Forest *f, const guint *rows, guint n)
{
  double s = 0;
  for (guint i = 0; i < n; i++)
    s += f->y[rows[i]];
  return s / n;
}

typedef struct {
  const Forest *f;
  guint feature;
} SortCtx;

static int
cmp_by_feature(const void *a, const void *b, void *data)
{
  const SortCtx *c = data;
  double va = c->f->x[*(const guint *) a * c->f->d + c->feature];
  double vb = c->f->x[*(const guint *) b * c->f->d + c->feature];
  return (va > vb) - (va < vb);
}

/* The best split of a node (the one that lowers the sum of squared errors most); FALSE when no
 * split separates anything. ORDER[k] holds the node's rows sorted by feature k (any order for
 * categorical features). */
static gboolean
best_split(const Forest *f, guint *const *order, guint n, int *out_feature,
           double *out_threshold)
{
  double best_gain = 1e-12, total = 0, total2 = 0;
  const guint *rows = order[0];
  for (guint i = 0; i < n; i++) {
    total += f->y[rows[i]];
    total2 += f->y[rows[i]] * f->y[rows[i]];
  }
  double sse = total2 - total * total / n;
  gboolean found = FALSE;
  for (guint k = 0; k < f->d; k++) {
    if (f->categorical[k]) {
      guint n_choices = (guint) f->hi[k];
      for (guint c = 0; c < n_choices; c++) {
        double s = 0, s2 = 0;
        guint m = 0;
        for (guint i = 0; i < n; i++)
          if (f->x[rows[i] * f->d + k] == c) {
            s += f->y[rows[i]];
            s2 += f->y[rows[i]] * f->y[rows[i]];
            m++;
          }
        if (m == 0 || m == n)
          continue;
        double rest = total - s, rest2 = total2 - s2;
        double split_sse = (s2 - s * s / m) + (rest2 - rest * rest / (n - m));
        if (sse - split_sse > best_gain) {
          best_gain = sse - split_sse;
          *out_feature = (int) k;
          *out_threshold = c;
          found = TRUE;
        }
      }
      continue;
    }
    const guint *sorted = order[k];
    double s = 0, s2 = 0;
    for (guint i = 0; i + 1 < n; i++) {
      double v = f->y[sorted[i]];
      s += v;
      s2 += v * v;
      double a = f->x[sorted[i] * f->d + k], b = f->x[sorted[i + 1] * f->d + k];
      if (a == b)
        continue;
      guint m = i + 1;
      double rest = total - s, rest2 = total2 - s2;
      double split_sse = (s2 - s * s / m) + (rest2 - rest * rest / (n - m));
      if (sse - split_sse > best_gain) {
        best_gain = sse - split_sse;
        *out_feature = (int) k;
        *out_threshold = 0.5 * (a + b);
        found = TRUE;
      }
    }
  }
  return found;
}

static gboolean
goes_left(const Forest *f, guint row, int feature, double threshold)
{
  double v = f->x[row * f->d + (guint) feature];
  return f->categorical[feature] ? v == threshold : v < threshold;
}

/* Grows the subtree of a node whose N rows ORDER holds (per feature, sorted once at the root,
 * kept sorted by stable partitions); TMP has room for N rows. */
static int
grow(Forest *f, guint *const *order, guint n, guint depth, guint *tmp)
{
  Node node = { -1, 0, -1, -1, mean_of(f, order[0], n) };
  int at = (int) f->nodes->len;
  g_array_append_val(f->nodes, node);
  int feature;
  double threshold;
  if (depth >= f->max_depth || n < f->min_split ||
      !best_split(f, order, n, &feature, &threshold))
    return at;
  /* Stable partition of every order: left rows first. */
  guint m = 0;
  for (guint k = 0; k < f->d; k++) {
    guint *rows = order[k], l = 0, r = 0;
    for (guint i = 0; i < n; i++)
      if (goes_left(f, rows[i], feature, threshold))
        rows[l++] = rows[i];
      else
        tmp[r++] = rows[i];
    memcpy(rows + l, tmp, r * sizeof *rows);
    m = l;
  }
  g_autofree guint **right = g_new(guint *, f->d);
  for (guint k = 0; k < f->d; k++)
    right[k] = order[k] + m;
  int l = grow(f, order, m, depth + 1, tmp);
  int r = grow(f, right, n - m, depth + 1, tmp);
  Node *self = &g_array_index(f->nodes, Node, at);
  self->feature = feature;
  self->threshold = threshold;
  self->left = l;
  self->right = r;
  return at;
}

/* A leaf's box: per feature an interval (continuous) or a set of choices (categorical). */
typedef struct {
  double value;
  double *lo, *hi; /* d each */
  guint64 *mask;   /* d each */
} Leaf;

static void
collect_leaves(const Forest *f, int at, double *lo, double *hi, guint64 *mask, GArray *leaves)
{
  const Node *node = &g_array_index(f->nodes, Node, at);
  guint d = f->d;
  if (node->feature < 0) {
    Leaf leaf = { node->value, g_memdup2(lo, d * sizeof *lo), g_memdup2(hi, d * sizeof *hi),
                  g_memdup2(mask, d * sizeof *mask) };
    g_array_append_val(leaves, leaf);
    return;
  }
  guint k = (guint) node->feature;
  double save_lo = lo[k], save_hi = hi[k];
  guint64 save_mask = mask[k];
  if (f->categorical[k]) {
    guint64 bit = G_GUINT64_CONSTANT(1) << (guint) node->threshold;
    mask[k] = save_mask & bit;
    collect_leaves(f, node->left, lo, hi, mask, leaves);
    mask[k] = save_mask & ~bit;
    collect_leaves(f, node->right, lo, hi, mask, leaves);
    mask[k] = save_mask;
    return;
  }
  hi[k] = MIN(save_hi, node->threshold);
  collect_leaves(f, node->left, lo, hi, mask, leaves);
  hi[k] = save_hi;
  lo[k] = MAX(save_lo, node->threshold);
  collect_leaves(f, node->right, lo, hi, mask, leaves);
  lo[k] = save_lo;
}

/* The fraction of feature K's domain that LEAF covers. */
static double
leaf_fraction(const Forest *f, const Leaf *leaf, guint k)
{
  if (f->categorical[k])
    return (double) __builtin_popcountll(leaf->mask[k]) / f->hi[k];
  double width = f->hi[k] - f->lo[k];
  if (width <= 0)
    return 1;
  return MAX(0, leaf->hi[k] - leaf->lo[k]) / width;
}

static int
cmp_double(gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Adds this tree's marginal variance fractions to SHARE (d). FALSE when the tree is constant. */
static gboolean
tree_shares(const Forest *f, double *share)
{
  guint d = f->d;
  g_autofree double *lo = g_memdup2(f->lo, d * sizeof *lo);
  g_autofree double *hi = g_memdup2(f->hi, d * sizeof *hi);
  g_autofree guint64 *mask = g_new(guint64, d);
  for (guint k = 0; k < d; k++)
    mask[k] = f->categorical[k] ? (f->hi[k] >= 64 ? G_MAXUINT64
                                                  : (G_GUINT64_CONSTANT(1) << (guint) f->hi[k]) - 1)
                                : 0;
  g_autoptr(GArray) leaves = g_array_new(FALSE, FALSE, sizeof(Leaf));
  collect_leaves(f, 0, lo, hi, mask, leaves);
  guint nl = leaves->len;
  g_autofree double *volume = g_new(double, nl);
  double mean = 0, var = 0;
  for (guint l = 0; l < nl; l++) {
    const Leaf *leaf = &g_array_index(leaves, Leaf, l);
    volume[l] = 1;
    for (guint k = 0; k < d; k++)
      volume[l] *= leaf_fraction(f, leaf, k);
    mean += volume[l] * leaf->value;
  }
  for (guint l = 0; l < nl; l++) {
    double dv = g_array_index(leaves, Leaf, l).value - mean;
    var += volume[l] * dv * dv;
  }
  gboolean ok = var > 0;
  for (guint k = 0; ok && k < d; k++) {
    /* The cells of feature K: between consecutive leaf bounds, or one per choice. Every leaf
     * either covers a cell whole or not at all. */
    g_autoptr(GArray) cuts = g_array_new(FALSE, FALSE, sizeof(double));
    guint n_cells;
    if (f->categorical[k]) {
      n_cells = (guint) f->hi[k];
    } else {
      g_array_append_val(cuts, f->lo[k]);
      g_array_append_val(cuts, f->hi[k]);
      for (guint l = 0; l < nl; l++) {
        const Leaf *leaf = &g_array_index(leaves, Leaf, l);
        g_array_append_val(cuts, leaf->lo[k]);
        g_array_append_val(cuts, leaf->hi[k]);
      }
      g_array_sort(cuts, cmp_double);
      n_cells = cuts->len - 1;
    }
    double marginal_var = 0;
    for (guint c = 0; c < n_cells; c++) {
      double weight, mid = 0;
      if (f->categorical[k]) {
        weight = 1.0 / n_cells;
      } else {
        double a = g_array_index(cuts, double, c), b = g_array_index(cuts, double, c + 1);
        if (b <= a)
          continue;
        weight = f->hi[k] > f->lo[k] ? (b - a) / (f->hi[k] - f->lo[k]) : 1;
        mid = 0.5 * (a + b);
      }
      /* The tree averaged over the other features, on this cell. */
      double fk = 0;
      for (guint l = 0; l < nl; l++) {
        const Leaf *leaf = &g_array_index(leaves, Leaf, l);
        gboolean inside = f->categorical[k]
                            ? (leaf->mask[k] >> c & 1) != 0
                            : leaf->lo[k] <= mid && mid < leaf->hi[k];
        if (!inside)
          continue;
        double frac_k = leaf_fraction(f, leaf, k);
        if (frac_k > 0)
          fk += leaf->value * volume[l] / frac_k;
      }
      marginal_var += weight * (fk - mean) * (fk - mean);
    }
    share[k] += marginal_var / var;
  }
  for (guint l = 0; l < nl; l++) {
    Leaf *leaf = &g_array_index(leaves, Leaf, l);
    g_free(leaf->lo);
    g_free(leaf->hi);
    g_free(leaf->mask);
  }
  return ok;
}

gboolean
fth_tune_importances(const FthSearchSpace *space, const FthTuneTrial *const *trials,
                     guint n_trials, const FthImportanceOptions *options, double *importances,
                     GError **error)
{
  FthImportanceOptions defaults;
  if (options == NULL) {
    fth_importance_options_init(&defaults);
    options = &defaults;
  }
  guint n_params = fth_search_space_get_n_params(space);
  for (guint j = 0; j < n_params; j++)
    importances[j] = NAN;
  /* The parameters active in every completed trial (Optuna's intersection space). */
  g_autoptr(GPtrArray) rows = g_ptr_array_new();
  for (guint i = 0; i < n_trials; i++)
    if (trials[i]->state == FTH_TUNE_TRIAL_COMPLETE && isfinite(trials[i]->value))
      g_ptr_array_add(rows, (gpointer) trials[i]);
  if (rows->len < 2) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                "parameter importances need at least 2 completed trials (%u)", rows->len);
    return FALSE;
  }
  g_autofree guint *dims = g_new(guint, n_params);
  guint d = 0;
  for (guint j = 0; j < n_params; j++) {
    const FthTuneParam *p = fth_search_space_get_param(space, j);
    gboolean always = TRUE;
    for (guint i = 0; i < rows->len && always; i++)
      always = !isnan(((const FthTuneTrial *) rows->pdata[i])->params[j]);
    if (!always)
      continue;
    if (p->kind == FTH_PARAM_CATEGORICAL && p->n_choices > 64) {
      g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                  "parameter \"%s\": importances handle at most 64 choices (%u)", p->name,
                  p->n_choices);
      return FALSE;
    }
    dims[d++] = j;
  }
  if (d == 0) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                "parameter importances: no parameter is active in every completed trial");
    return FALSE;
  }
  guint n = rows->len;
  g_autofree double *x = g_new(double, (gsize) n * d);
  g_autofree double *y = g_new(double, n);
  g_autofree double *lo = g_new(double, d);
  g_autofree double *hi = g_new(double, d);
  g_autofree gboolean *categorical = g_new(gboolean, d);
  for (guint k = 0; k < d; k++) {
    const FthTuneParam *p = fth_search_space_get_param(space, dims[k]);
    categorical[k] = p->kind == FTH_PARAM_CATEGORICAL;
    if (categorical[k]) {
      lo[k] = 0;
      hi[k] = p->n_choices;
    } else {
      fth_param_sampling_bounds(p, &lo[k], &hi[k]);
    }
  }
  /* The forest learns the standardized objective: importances do not change under an affine
   * map of the values, but the split search does (its gain floor is absolute, and sums of
   * squares of values far from zero cancel), so values of 1e-7 or around 1e9 would grow stumps.
   * Differences from the first value keep an offset out of the arithmetic. */
  double y0 = ((const FthTuneTrial *) rows->pdata[0])->value, d_mean = 0, d_var = 0;
  for (guint i = 0; i < n; i++)
    d_mean += ((const FthTuneTrial *) rows->pdata[i])->value - y0;
  d_mean /= n;
  for (guint i = 0; i < n; i++) {
    double dv = ((const FthTuneTrial *) rows->pdata[i])->value - y0 - d_mean;
    d_var += dv * dv;
  }
  double y_scale = d_var > 0 ? 1 / sqrt(d_var / n) : 1;
  for (guint i = 0; i < n; i++) {
    const FthTuneTrial *t = rows->pdata[i];
    y[i] = (t->value - y0 - d_mean) * y_scale;
    for (guint k = 0; k < d; k++) {
      const FthTuneParam *p = fth_search_space_get_param(space, dims[k]);
      x[(gsize) i * d + k] =
        categorical[k] ? t->params[dims[k]] : fth_param_to_sampling(p, t->params[dims[k]]);
    }
  }
  Forest f = { d, x, y, categorical, lo, hi, g_array_new(FALSE, FALSE, sizeof(Node)),
               MAX(options->max_depth, 1), MAX(options->min_samples_split, 2) };
  g_autofree guint *sample = g_new(guint, (gsize) n * d);
  g_autofree guint **order = g_new(guint *, d);
  g_autofree guint *tmp = g_new(guint, n);
  g_autofree double *share = g_new0(double, d);
  g_autoptr(GRand) rng = fth_tune_rng_new(options->seed, 0, 7);
  guint n_used = 0;
  for (guint t = 0; t < MAX(options->n_trees, 1); t++) {
    /* A bootstrap sample, sorted once per feature. */
    for (guint i = 0; i < n; i++)
      sample[i] = (guint) g_rand_int_range(rng, 0, (gint32) n);
    for (guint k = 0; k < d; k++) {
      order[k] = sample + (gsize) k * n;
      if (k > 0)
        memcpy(order[k], sample, n * sizeof *sample);
    }
    for (guint k = 0; k < d; k++) {
      SortCtx ctx = { &f, k };
      if (!categorical[k])
        qsort_r(order[k], n, sizeof *sample, cmp_by_feature, &ctx);
    }
    g_array_set_size(f.nodes, 0);
    grow(&f, order, n, 0, tmp);
    n_used += tree_shares(&f, share);
  }
  g_array_free(f.nodes, TRUE);
  double total = 0;
  for (guint k = 0; k < d; k++)
    total += share[k];
  for (guint k = 0; k < d; k++)
    importances[dims[k]] = n_used > 0 && total > 0 ? share[k] / total : 0;
  return TRUE;
}
