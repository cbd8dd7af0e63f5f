/* Metrics against values computed by hand, splits and shuffles for their invariants. */
#include <fathom/train.h>
#include <math.h>
#include <string.h>

/* truth: 0 0 0 1 1 2 2 2 2 ; pred: 0 1 0 1 2 2 2 0 2
 * matrix rows=truth: [2 1 0] [0 1 1] [1 0 3]
 * precision: c0 2/3, c1 1/2, c2 3/4; recall: c0 2/3, c1 1/2, c2 3/4; f1 equal to those;
 * accuracy 6/9; macro-F1 (2/3 + 1/2 + 3/4) / 3 = 23/36. */
static void
test_confusion_by_hand(void)
{
  int truth[] = {0, 0, 0, 1, 1, 2, 2, 2, 2};
  int pred[] = {0, 1, 0, 1, 2, 2, 2, 0, 2};
  g_autoptr(FthConfusion) cm = fth_confusion_new(3);
  for (int i = 0; i < 9; i++)
    fth_confusion_add(cm, truth[i], pred[i]);
  fth_confusion_add(cm, 5, 0); /* ignored */
  int64_t want[9] = {2, 1, 0, 0, 1, 1, 1, 0, 3};
  g_assert_cmpmem(cm->counts, sizeof want, want, sizeof want);
  g_assert_cmpint(fth_confusion_total(cm), ==, 9);
  g_assert_cmpfloat_with_epsilon(fth_confusion_accuracy(cm), 6.0 / 9, 1e-12);
  g_assert_cmpfloat_with_epsilon(fth_confusion_precision(cm, 0), 2.0 / 3, 1e-12);
  g_assert_cmpfloat_with_epsilon(fth_confusion_precision(cm, 1), 0.5, 1e-12);
  g_assert_cmpfloat_with_epsilon(fth_confusion_precision(cm, 2), 0.75, 1e-12);
  g_assert_cmpfloat_with_epsilon(fth_confusion_recall(cm, 2), 0.75, 1e-12);
  g_assert_cmpfloat_with_epsilon(fth_confusion_macro_f1(cm), 23.0 / 36, 1e-12);
  g_autofree char *json = fth_confusion_to_json(cm, (const char *const[]){"a", "b", "c"});
  g_assert_cmpstr(json, ==, "{\"labels\":[\"a\",\"b\",\"c\"],\"counts\":[[2,1,0],[0,1,1],[1,0,3]]}");
}

/* Asymmetric case: truth 0 0 1 1 1, pred 0 1 1 1 1 -> P0 = 1, R0 = 1/2, F1_0 = 2/3;
 * P1 = 3/4, R1 = 1, F1_1 = 6/7; class 2 never occurs and is left out of the macro average. */
static void
test_f1_asymmetric(void)
{
  g_autoptr(FthConfusion) cm = fth_confusion_new(3);
  int truth[] = {0, 0, 1, 1, 1}, pred[] = {0, 1, 1, 1, 1};
  for (int i = 0; i < 5; i++)
    fth_confusion_add(cm, truth[i], pred[i]);
  g_assert_cmpfloat_with_epsilon(fth_confusion_f1(cm, 0), 2.0 / 3, 1e-12);
  g_assert_cmpfloat_with_epsilon(fth_confusion_f1(cm, 1), 6.0 / 7, 1e-12);
  g_assert_cmpfloat(fth_confusion_f1(cm, 2), ==, 0.0);
  g_assert_cmpfloat_with_epsilon(fth_confusion_macro_f1(cm), (2.0 / 3 + 6.0 / 7) / 2, 1e-12);
  fth_confusion_reset(cm);
  g_assert_cmpint(fth_confusion_total(cm), ==, 0);
  g_assert_cmpfloat(fth_confusion_accuracy(cm), ==, 0.0);
}

static void
test_stratified_split(void)
{
  enum { N = 1000 };
  int32_t labels[N];
  int per_class[4] = {0};
  for (int i = 0; i < N; i++) {
    labels[i] = i % 7 == 0 ? -1 : (i * 31) % 4;
    if (labels[i] >= 0)
      per_class[labels[i]]++;
  }
  FthSplit a[N], b[N], c[N];
  GError *error = NULL;
  g_assert_true(fth_stratified_split(labels, N, 4, 0.1, 0.2, 42, a, &error));
  g_assert_true(fth_stratified_split(labels, N, 4, 0.1, 0.2, 42, b, &error));
  g_assert_true(fth_stratified_split(labels, N, 4, 0.1, 0.2, 43, c, &error));
  g_assert_cmpmem(a, sizeof a, b, sizeof b);
  g_assert_true(memcmp(a, c, sizeof a) != 0);
  for (int k = 0; k < 4; k++) {
    int n_test = 0, n_val = 0, n_train = 0;
    for (int i = 0; i < N; i++)
      if (labels[i] == k) {
        n_test += a[i] == FTH_SPLIT_TEST;
        n_val += a[i] == FTH_SPLIT_VAL;
        n_train += a[i] == FTH_SPLIT_TRAIN;
      }
    g_assert_cmpint(n_test, ==, (int)lround(per_class[k] * 0.2));
    g_assert_cmpint(n_val, ==, (int)lround(per_class[k] * 0.1));
    g_assert_cmpint(n_train + n_val + n_test, ==, per_class[k]);
  }
  for (int i = 0; i < N; i++)
    if (labels[i] < 0)
      g_assert_cmpint(a[i], ==, FTH_SPLIT_NONE);
  g_assert_false(fth_stratified_split(labels, N, 4, 0.7, 0.4, 1, a, &error));
  g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID);
  g_clear_error(&error);
}

static void
test_shuffle(void)
{
  enum { N = 500 };
  uint32_t p[N], q[N], r[N];
  fth_shuffle_indices(p, N, 7, 1);
  fth_shuffle_indices(q, N, 7, 1);
  fth_shuffle_indices(r, N, 7, 2);
  g_assert_cmpmem(p, sizeof p, q, sizeof q);
  g_assert_true(memcmp(p, r, sizeof p) != 0);
  gboolean seen[N] = {0};
  int fixed = 0;
  for (int i = 0; i < N; i++) {
    g_assert_cmpuint(p[i], <, N);
    g_assert_false(seen[p[i]]);
    seen[p[i]] = TRUE;
    fixed += p[i] == (uint32_t)i;
  }
  g_assert_cmpint(fixed, <, 10); /* a permutation, not the identity (expected fixed points: 1) */
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/metrics/confusion-by-hand", test_confusion_by_hand);
  g_test_add_func("/metrics/f1-asymmetric", test_f1_asymmetric);
  g_test_add_func("/split/stratified", test_stratified_split);
  g_test_add_func("/split/shuffle", test_shuffle);
  return g_test_run();
}
