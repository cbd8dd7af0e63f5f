/* Entity-level counts over BIO tag sequences, as seqeval's default (non-strict) mode. */
#include "text-private.h"

GArray *
fth_bio_entities(const int32_t *tags, const int32_t *truth, size_t n)
{
  GArray *out = g_array_new(FALSE, FALSE, sizeof(FthEntity));
  FthEntity cur = {-1, 0, 0};
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (truth[i] < 0)
      continue;
    int32_t v = tags[i];
    int type = v > 0 ? (v - 1) / 2 : -1;
    gboolean begin = v > 0 && (v - 1) % 2 == 0;
    if (cur.type >= 0 && (type != cur.type || begin)) {
      cur.end = j;
      g_array_append_val(out, cur);
      cur.type = -1;
    }
    if (type >= 0 && cur.type < 0)
      cur = (FthEntity){type, j, 0};
    j++;
  }
  if (cur.type >= 0) {
    cur.end = j;
    g_array_append_val(out, cur);
  }
  return out;
}

void
fth_entity_counts_add(FthEntityCounts *c, const int32_t *truth, const int32_t *pred, size_t n)
{
  g_autoptr(GArray) t = fth_bio_entities(truth, truth, n);
  g_autoptr(GArray) p = fth_bio_entities(pred, truth, n);
  c->n_true += t->len;
  c->n_pred += p->len;
  /* Both lists are ordered by start and do not overlap within themselves. */
  for (guint a = 0, b = 0; a < t->len && b < p->len;) {
    const FthEntity *x = &g_array_index(t, FthEntity, a), *y = &g_array_index(p, FthEntity, b);
    if (x->start == y->start) {
      c->n_correct += x->end == y->end && x->type == y->type;
      a++;
      b++;
    } else if (x->start < y->start) {
      a++;
    } else {
      b++;
    }
  }
}

double
fth_entity_f1(const FthEntityCounts *c)
{
  double p = c->n_pred > 0 ? (double)c->n_correct / (double)c->n_pred : 0.0;
  double r = c->n_true > 0 ? (double)c->n_correct / (double)c->n_true : 0.0;
  return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}
