/* Seeded shuffles and stratified splits on the engine's counter-based RNG. */
#include "fathom/train.h"

#include <math.h>

G_DEFINE_QUARK(fth-train-error-quark, fth_train_error)

/* Uniform integer in [0, bound) from a 32-bit draw (multiply-shift; the bias is below 2^-32 *
 * bound, irrelevant for shuffles). */
static inline uint32_t
bounded(uint32_t x, uint32_t bound)
{
  return (uint32_t)(((uint64_t)x * bound) >> 32);
}

static void
shuffle(uint32_t *v, size_t n, uint64_t seed, uint64_t stream)
{
  uint32_t r[4];
  for (size_t i = n; i > 1; i--) {
    size_t k = n - i; /* draw number */
    if (k % 4 == 0)
      fth_philox4x32(seed, stream, k / 4, r);
    uint32_t j = bounded(r[k % 4], (uint32_t)i);
    uint32_t t = v[i - 1];
    v[i - 1] = v[j];
    v[j] = t;
  }
}

void
fth_shuffle_indices(uint32_t *perm, size_t n, uint64_t seed, uint64_t stream)
{
  for (size_t i = 0; i < n; i++)
    perm[i] = (uint32_t)i;
  shuffle(perm, n, seed, stream);
}

gboolean
fth_stratified_split(const int32_t *labels, size_t n, int n_classes, double val_frac,
                     double test_frac, uint64_t seed, FthSplit *out, GError **error)
{
  if (n_classes <= 0 || !(val_frac >= 0) || !(test_frac >= 0) || val_frac + test_frac > 1.0 ||
      n > UINT32_MAX) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "split: fractions must be >= 0 with val + test <= 1 (got %g and %g)", val_frac,
                test_frac);
    return FALSE;
  }
  g_autofree uint32_t *members = g_new(uint32_t, n ? n : 1);
  for (int c = 0; c < n_classes; c++) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if (labels[i] == c)
        members[m++] = (uint32_t)i;
    shuffle(members, m, seed, (uint64_t)c);
    size_t n_test = (size_t)llround((double)m * test_frac);
    size_t n_val = (size_t)llround((double)m * val_frac);
    if (n_test + n_val > m)
      n_val = m - n_test;
    for (size_t k = 0; k < m; k++)
      out[members[k]] = k < n_test ? FTH_SPLIT_TEST
                        : k < n_test + n_val ? FTH_SPLIT_VAL
                                              : FTH_SPLIT_TRAIN;
  }
  for (size_t i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= n_classes)
      out[i] = FTH_SPLIT_NONE;
  return TRUE;
}
