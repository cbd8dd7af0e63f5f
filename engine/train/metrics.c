/* Classification metrics from a confusion matrix. */
#include "fathom/train.h"

#include <json-glib/json-glib.h>
#include <string.h>

FthConfusion *
fth_confusion_new(int n_classes)
{
  g_return_val_if_fail(n_classes > 0, NULL);
  FthConfusion *cm = g_new0(FthConfusion, 1);
  cm->n_classes = n_classes;
  cm->counts = g_new0(int64_t, (size_t)n_classes * (size_t)n_classes);
  return cm;
}

void
fth_confusion_free(FthConfusion *cm)
{
  if (cm == NULL)
    return;
  g_free(cm->counts);
  g_free(cm);
}

void
fth_confusion_reset(FthConfusion *cm)
{
  memset(cm->counts, 0, sizeof *cm->counts * (size_t)cm->n_classes * (size_t)cm->n_classes);
}

void
fth_confusion_add(FthConfusion *cm, int truth, int pred)
{
  if (truth < 0 || truth >= cm->n_classes || pred < 0 || pred >= cm->n_classes)
    return;
  cm->counts[truth * cm->n_classes + pred]++;
}

int64_t
fth_confusion_total(const FthConfusion *cm)
{
  int64_t t = 0;
  for (int i = 0; i < cm->n_classes * cm->n_classes; i++)
    t += cm->counts[i];
  return t;
}

double
fth_confusion_accuracy(const FthConfusion *cm)
{
  int64_t total = fth_confusion_total(cm), right = 0;
  for (int c = 0; c < cm->n_classes; c++)
    right += cm->counts[c * cm->n_classes + c];
  return total > 0 ? (double)right / (double)total : 0.0;
}

static int64_t
row_sum(const FthConfusion *cm, int cls)
{
  int64_t s = 0;
  for (int p = 0; p < cm->n_classes; p++)
    s += cm->counts[cls * cm->n_classes + p];
  return s;
}

static int64_t
col_sum(const FthConfusion *cm, int cls)
{
  int64_t s = 0;
  for (int t = 0; t < cm->n_classes; t++)
    s += cm->counts[t * cm->n_classes + cls];
  return s;
}

double
fth_confusion_precision(const FthConfusion *cm, int cls)
{
  int64_t predicted = col_sum(cm, cls);
  return predicted > 0 ? (double)cm->counts[cls * cm->n_classes + cls] / (double)predicted : 0.0;
}

double
fth_confusion_recall(const FthConfusion *cm, int cls)
{
  int64_t actual = row_sum(cm, cls);
  return actual > 0 ? (double)cm->counts[cls * cm->n_classes + cls] / (double)actual : 0.0;
}

double
fth_confusion_f1(const FthConfusion *cm, int cls)
{
  double p = fth_confusion_precision(cm, cls), r = fth_confusion_recall(cm, cls);
  return p + r > 0 ? 2.0 * p * r / (p + r) : 0.0;
}

double
fth_confusion_macro_f1(const FthConfusion *cm)
{
  double sum = 0.0;
  int present = 0;
  for (int c = 0; c < cm->n_classes; c++) {
    if (row_sum(cm, c) == 0 && col_sum(cm, c) == 0)
      continue;
    sum += fth_confusion_f1(cm, c);
    present++;
  }
  return present > 0 ? sum / present : 0.0;
}

char *
fth_confusion_to_json(const FthConfusion *cm, const char *const *label_names)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "labels");
  json_builder_begin_array(b);
  for (int c = 0; c < cm->n_classes; c++) {
    if (label_names != NULL) {
      json_builder_add_string_value(b, label_names[c]);
    } else {
      json_builder_add_int_value(b, c);
    }
  }
  json_builder_end_array(b);
  json_builder_set_member_name(b, "counts");
  json_builder_begin_array(b);
  for (int t = 0; t < cm->n_classes; t++) {
    json_builder_begin_array(b);
    for (int p = 0; p < cm->n_classes; p++)
      json_builder_add_int_value(b, cm->counts[t * cm->n_classes + p]);
    json_builder_end_array(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return json_to_string(root, FALSE);
}
