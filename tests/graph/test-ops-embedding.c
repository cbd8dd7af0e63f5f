/* Embedding: the gather against plain indexing, the table gradient against central finite
 * differences of a float64 reference (repeated ids accumulate, padding_idx gets none), and
 * out-of-range ids as a run-time error. */
#include "ops-check.h"

typedef struct {
  int n_ids, V, D;
  const int32_t *ids;
  double *table, *y;
  const float *r;
} EmbRef;

static double emb_loss(void *ctx) {
  EmbRef *e = ctx;
  for (int i = 0; i < e->n_ids; i++)
    for (int d = 0; d < e->D; d++)
      e->y[(size_t)i * e->D + d] = e->table[(size_t)e->ids[i] * e->D + d];
  return ops_dot_r(e->y, e->r, (size_t)e->n_ids * e->D);
}

static uint64_t seed;

static void emb_case(int32_t padding_idx) {
  const int N = 3, T = 7, V = 11, D = 19;
  int32_t ids[21];
  for (int i = 0; i < N * T; i++)
    ids[i] = (int32_t)(ops_next_u64() % (uint64_t)V);
  ids[0] = ids[5] = ids[9] = 4; /* repeats accumulate */
  if (padding_idx >= 0)
    ids[2] = ids[13] = padding_idx;
  float *table = g_new(float, V * D);
  ops_fill(table, (size_t)V * D, -1, 1);

  OpsGraph og;
  ops_graph_begin(&og, seed, N);
  FthNode *idn = ops_input_i32(&og, "ids", 2, (int64_t[]){N, T}, ids);
  FthNode *tn = ops_param(&og, "table", 2, (int64_t[]){V, D}, table);
  ops_graph_run(&og, fth_embedding(og.g, idn, tn, padding_idx), FTH_MODE_TRAIN);

  const float *y = ops_output(&og);
  for (int i = 0; i < N * T; i++)
    g_assert_cmpmem(y + (size_t)i * D, sizeof(float) * D, table + (size_t)ids[i] * D,
                    sizeof(float) * D);
  EmbRef ref = {.n_ids = N * T, .V = V, .D = D, .ids = ids, .r = og.r};
  ref.table = ops_to_double(table, (size_t)V * D);
  ref.y = g_new(double, (size_t)N * T * D);
  const float *grad = ops_grad(&og, tn);
  if (padding_idx >= 0) {
    /* The padding row gets nothing even though it is used; elsewhere finite differences. */
    for (int d = 0; d < D; d++)
      g_assert_cmpfloat(grad[(size_t)padding_idx * D + d], ==, 0.0f);
    ops_check_grad_fd("embedding d/dtable (rows before padding)", emb_loss, &ref, ref.table,
                      (size_t)padding_idx * D, grad);
    const size_t after = (size_t)(padding_idx + 1) * D;
    ops_check_grad_fd("embedding d/dtable (rows after padding)", emb_loss, &ref, ref.table + after,
                      (size_t)V * D - after, grad + after);
  } else {
    ops_check_grad_fd("embedding d/dtable", emb_loss, &ref, ref.table, (size_t)V * D, grad);
  }
  ops_graph_end(&og);
  g_free(table), g_free(ref.table), g_free(ref.y);
}

static void test_embedding(void) {
  emb_case(-1);
  emb_case(6);
}

static void test_embedding_bad_id(void) {
  int32_t ids[4] = {0, 1, 5, 2};
  float table[5 * 3] = {0};
  OpsGraph og;
  ops_graph_begin(&og, seed, 2);
  FthNode *idn = ops_input_i32(&og, "ids", 2, (int64_t[]){2, 2}, ids);
  FthNode *tn = ops_param(&og, "table", 2, (int64_t[]){5, 3}, table);
  FthNode *y = fth_embedding(og.g, idn, tn, -1);
  ops_check_status(fth_graph_mark_output(og.g, y), "mark");
  ops_check_status(fth_graph_plan(og.g, FTH_MODE_INFERENCE, 2), "plan");
  ops_check_status(fth_graph_set_batch(og.g, 2), "batch");
  ops_copy_leaves(&og);
  g_assert_cmpint(fth_graph_run(og.g), ==, FTH_STATUS_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(fth_last_error(), "outside"));
  ops_graph_end(&og);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  seed = ops_seed_init();
  g_test_add_func("/ops/embedding", test_embedding);
  g_test_add_func("/ops/embedding/bad-id", test_embedding_bad_id);
  return g_test_run();
}
