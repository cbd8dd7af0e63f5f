/* Checkpoints: weights and optimizer state as safetensors, the JSON sidecar as commit point. */
#include "fathom/safetensors.h"
#include "fathom/train.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#define SIDECAR "checkpoint.json"

void
fth_checkpoint_meta_free(FthCheckpointMeta *m)
{
  if (m == NULL)
    return;
  g_free(m->recipe_json);
  g_strfreev(m->vars);
  g_strfreev(m->labels);
  g_free(m->label_ids);
  g_free(m->mean);
  g_free(m->std);
  g_free(m->weights_file);
  g_free(m->optimizer_file);
  g_free(m->metrics_json);
  g_free(m);
}

static gboolean
engine_fail(GError **error, const char *what)
{
  g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE, "%s: %s", what, fth_last_error());
  return FALSE;
}

static gboolean
st_fail(GError **error, GError *st_error, int code)
{
  g_set_error_literal(error, FTH_TRAIN_ERROR, code, st_error->message);
  g_error_free(st_error);
  return FALSE;
}

static gboolean
save_weights(const char *path, FthGraph *g, int64_t step, GError **error)
{
  int n = fth_graph_n_params(g);
  g_autofree FthStTensor *ts = g_new0(FthStTensor, n ? n : 1);
  for (int i = 0; i < n; i++) {
    FthNode *p = fth_graph_param(g, i);
    FthTensor t;
    if (fth_graph_tensor(g, p, &t) != FTH_STATUS_OK)
      return engine_fail(error, path);
    const float *v = t.data;
    int64_t numel = fth_tensor_numel(&t);
    for (int64_t k = 0; k < numel; k++)
      if (!isfinite(v[k])) {
        g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_NUMERIC,
                    "%s: parameter '%s' holds %s values; the checkpoint is not written", path,
                    fth_node_name(p), isnan(v[k]) ? "NaN" : "infinite");
        return FALSE;
      }
    ts[i] = (FthStTensor){.name = fth_node_name(p), .dtype = FTH_ST_F32, .ndim = t.ndim,
                          .data = t.data, .nbytes = fth_tensor_nbytes(&t)};
    for (int d = 0; d < t.ndim; d++)
      ts[i].shape[d] = t.shape[d];
  }
  g_autoptr(GHashTable) meta = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
  g_hash_table_insert(meta, "format", g_strdup("pt"));
  g_hash_table_insert(meta, "fathom.step", g_strdup_printf("%" G_GINT64_FORMAT, (gint64)step));
  GError *st_error = NULL;
  if (!fth_safetensors_write(path, ts, (size_t)n, meta, &st_error))
    return st_fail(error, st_error, FTH_TRAIN_ERROR_IO);
  return TRUE;
}

static gboolean
save_optimizer(const char *path, FthOptimizer *opt, GError **error)
{
  size_t np = fth_optimizer_n_params(opt);
  int ns = fth_optimizer_n_state(opt);
  g_autofree FthStTensor *ts = g_new0(FthStTensor, np * (size_t)ns + 1);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  for (size_t i = 0; i < np; i++) {
    const FthParam *p = fth_optimizer_param(opt, i);
    for (int w = 0; w < ns; w++) {
      char *name = g_strdup_printf("%s.%s", p->name, fth_optimizer_state_name(opt, w));
      g_ptr_array_add(names, name);
      ts[i * (size_t)ns + (size_t)w] =
        (FthStTensor){.name = name, .dtype = FTH_ST_F32, .ndim = 1, .shape = {(int64_t)p->n},
                      .data = fth_optimizer_state(opt, i, w), .nbytes = p->n * sizeof(float)};
    }
  }
  g_autoptr(GHashTable) meta = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
  g_hash_table_insert(meta, "fathom.optimizer",
                      g_strdup(fth_optimizer_config(opt)->kind == FTH_OPTIM_SGD ? "sgd" : "adamw"));
  g_hash_table_insert(meta, "fathom.steps",
                      g_strdup_printf("%" G_GINT64_FORMAT, (gint64)fth_optimizer_steps(opt)));
  GError *st_error = NULL;
  if (!fth_safetensors_write(path, ts, np * (size_t)ns, meta, &st_error))
    return st_fail(error, st_error, FTH_TRAIN_ERROR_IO);
  return TRUE;
}

static void
add_string_array(JsonBuilder *b, const char *name, char **v)
{
  json_builder_set_member_name(b, name);
  json_builder_begin_array(b);
  for (int i = 0; v != NULL && v[i] != NULL; i++)
    json_builder_add_string_value(b, v[i]);
  json_builder_end_array(b);
}

static void
add_float_array(JsonBuilder *b, const char *name, const float *v, int n)
{
  json_builder_set_member_name(b, name);
  json_builder_begin_array(b);
  for (int i = 0; i < n; i++)
    json_builder_add_double_value(b, v[i]);
  json_builder_end_array(b);
}

static char *
sidecar_json(const FthCheckpointMeta *m, const char *weights, const char *optimizer)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "format");
  json_builder_add_string_value(b, "fathom-checkpoint");
  json_builder_set_member_name(b, "version");
  json_builder_add_int_value(b, 1);
  json_builder_set_member_name(b, "recipe");
  JsonNode *recipe = json_from_string(m->recipe_json, NULL);
  json_builder_add_value(b, recipe ? recipe : json_node_new(JSON_NODE_NULL));
  add_string_array(b, "vars", m->vars);
  add_string_array(b, "labels", m->labels);
  json_builder_set_member_name(b, "label_ids");
  json_builder_begin_array(b);
  for (int i = 0; i < m->n_labels; i++)
    json_builder_add_int_value(b, m->label_ids ? m->label_ids[i] : 0);
  json_builder_end_array(b);
  json_builder_set_member_name(b, "normalization");
  json_builder_begin_object(b);
  add_float_array(b, "mean", m->mean, m->n_norm);
  add_float_array(b, "std", m->std, m->n_norm);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "weights");
  json_builder_add_string_value(b, weights);
  json_builder_set_member_name(b, "optimizer_state");
  if (optimizer)
    json_builder_add_string_value(b, optimizer);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "rng");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "seed");
  /* As a string: JSON numbers lose 64-bit integers in many readers. */
  g_autofree char *seed = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)m->seed);
  json_builder_add_string_value(b, seed);
  json_builder_set_member_name(b, "generator");
  json_builder_add_string_value(b, "philox4x32-10 (seed, stream = epoch or item, counter)");
  json_builder_end_object(b);
  json_builder_set_member_name(b, "step");
  json_builder_add_int_value(b, m->step);
  json_builder_set_member_name(b, "epoch");
  json_builder_add_int_value(b, m->epoch);
  json_builder_set_member_name(b, "batch");
  json_builder_add_int_value(b, m->batch);
  json_builder_set_member_name(b, "accumulate");
  json_builder_add_int_value(b, m->accumulate);
  json_builder_set_member_name(b, "epochs_total");
  json_builder_add_int_value(b, m->epochs_total);
  json_builder_set_member_name(b, "lr");
  json_builder_add_double_value(b, m->lr);
  json_builder_set_member_name(b, "early_stopping");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "best");
  json_builder_add_double_value(b, isfinite(m->best_metric) ? m->best_metric : 1e300);
  json_builder_set_member_name(b, "bad_epochs");
  json_builder_add_int_value(b, m->bad_epochs);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "metrics");
  JsonNode *metrics = m->metrics_json ? json_from_string(m->metrics_json, NULL) : NULL;
  json_builder_add_value(b, metrics ? metrics : json_node_new(JSON_NODE_NULL));
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  json_generator_set_root(gen, root);
  return json_generator_to_data(gen, NULL);
}

gboolean
fth_checkpoint_save(const char *dir, const FthCheckpointMeta *meta, FthGraph *g,
                    FthOptimizer *opt, GError **error)
{
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_IO, "%s: cannot create the directory",
                dir);
    return FALSE;
  }
  g_autofree char *wname = g_strdup_printf("weights-%08" G_GINT64_FORMAT ".safetensors",
                                           (gint64)meta->step);
  g_autofree char *oname = opt ? g_strdup_printf("optimizer-%08" G_GINT64_FORMAT ".safetensors",
                                                 (gint64)meta->step)
                               : NULL;
  g_autofree char *wpath = g_build_filename(dir, wname, NULL);
  if (!save_weights(wpath, g, meta->step, error))
    return FALSE;
  if (opt != NULL) {
    g_autofree char *opath = g_build_filename(dir, oname, NULL);
    if (!save_optimizer(opath, opt, error))
      return FALSE;
  }
  g_autofree char *json = sidecar_json(meta, wname, oname);
  g_autofree char *spath = g_build_filename(dir, SIDECAR, NULL);
  FthFilePart part = {json, strlen(json)};
  GError *st_error = NULL;
  if (!fth_file_write_atomic(spath, &part, 1, &st_error))
    return st_fail(error, st_error, FTH_TRAIN_ERROR_IO);
  /* The sidecar now names the new files; older ones are garbage. */
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    gboolean ours = (g_str_has_prefix(name, "weights-") || g_str_has_prefix(name, "optimizer-")) &&
                    g_str_has_suffix(name, ".safetensors");
    if (ours && strcmp(name, wname) != 0 && (oname == NULL || strcmp(name, oname) != 0)) {
      g_autofree char *old = g_build_filename(dir, name, NULL);
      g_unlink(old);
    }
  }
  if (d)
    g_dir_close(d);
  return TRUE;
}

static char **
string_array(JsonObject *o, const char *name, int *n)
{
  JsonArray *a = json_object_has_member(o, name) ? json_object_get_array_member(o, name) : NULL;
  guint len = a ? json_array_get_length(a) : 0;
  char **v = g_new0(char *, len + 1);
  for (guint i = 0; i < len; i++)
    v[i] = g_strdup(json_array_get_string_element(a, i));
  if (n)
    *n = (int)len;
  return v;
}

FthCheckpointMeta *
fth_checkpoint_load_meta(const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename(dir, SIDECAR, NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  GError *jerr = NULL;
  if (!json_parser_load_from_file(parser, path, &jerr)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT, "%s: %s", path,
                jerr->message);
    g_error_free(jerr);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  if (o == NULL || g_strcmp0(json_object_get_string_member_with_default(o, "format", ""),
                             "fathom-checkpoint") != 0 ||
      !json_object_has_member(o, "recipe") || !json_object_has_member(o, "weights") ||
      !json_object_has_member(o, "labels")) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT,
                "%s: not a fathom checkpoint sidecar (needs format, recipe, weights, labels)",
                path);
    return NULL;
  }
  g_autoptr(FthCheckpointMeta) m = g_new0(FthCheckpointMeta, 1);
  m->recipe_json = json_to_string(json_object_get_member(o, "recipe"), FALSE);
  m->vars = string_array(o, "vars", NULL);
  m->labels = string_array(o, "labels", &m->n_labels);
  m->label_ids = g_new0(gint64, m->n_labels + 1);
  JsonArray *ids = json_object_has_member(o, "label_ids") ? json_object_get_array_member(o, "label_ids")
                                                          : NULL;
  for (int i = 0; ids && i < m->n_labels && (guint)i < json_array_get_length(ids); i++)
    m->label_ids[i] = json_array_get_int_element(ids, (guint)i);
  JsonObject *norm = json_object_has_member(o, "normalization")
                       ? json_object_get_object_member(o, "normalization") : NULL;
  JsonArray *mean = norm && json_object_has_member(norm, "mean") ? json_object_get_array_member(norm, "mean") : NULL;
  JsonArray *std = norm && json_object_has_member(norm, "std") ? json_object_get_array_member(norm, "std") : NULL;
  m->n_norm = mean ? (int)json_array_get_length(mean) : 0;
  m->mean = g_new0(float, m->n_norm + 1);
  m->std = g_new0(float, m->n_norm + 1);
  for (int i = 0; i < m->n_norm; i++) {
    m->mean[i] = (float)json_array_get_double_element(mean, (guint)i);
    m->std[i] = std && (guint)i < json_array_get_length(std) ? (float)json_array_get_double_element(std, (guint)i) : 1.0f;
  }
  m->weights_file = g_strdup(json_object_get_string_member(o, "weights"));
  const char *opt = json_object_get_string_member_with_default(o, "optimizer_state", NULL);
  m->optimizer_file = opt ? g_strdup(opt) : NULL;
  JsonObject *rng = json_object_has_member(o, "rng") ? json_object_get_object_member(o, "rng") : NULL;
  m->seed = rng ? g_ascii_strtoull(json_object_get_string_member_with_default(rng, "seed", "0"), NULL, 10) : 0;
  m->step = json_object_get_int_member_with_default(o, "step", 0);
  m->epoch = (int)json_object_get_int_member_with_default(o, "epoch", 0);
  m->batch = (int)json_object_get_int_member_with_default(o, "batch", 0);
  m->accumulate = (int)json_object_get_int_member_with_default(o, "accumulate", 0);
  m->epochs_total = (int)json_object_get_int_member_with_default(o, "epochs_total", 0);
  m->lr = json_object_get_double_member_with_default(o, "lr", 0);
  JsonObject *es = json_object_has_member(o, "early_stopping")
                     ? json_object_get_object_member(o, "early_stopping") : NULL;
  m->best_metric = es ? json_object_get_double_member_with_default(es, "best", INFINITY) : INFINITY;
  m->bad_epochs = es ? (int)json_object_get_int_member_with_default(es, "bad_epochs", 0) : 0;
  JsonNode *metrics = json_object_get_member(o, "metrics");
  m->metrics_json = metrics && !JSON_NODE_HOLDS_NULL(metrics) ? json_to_string(metrics, FALSE) : NULL;
  if (m->weights_file == NULL || strchr(m->weights_file, '/') != NULL ||
      (m->optimizer_file && strchr(m->optimizer_file, '/') != NULL)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT,
                "%s: 'weights' and 'optimizer_state' must be file names inside the directory",
                path);
    return NULL;
  }
  return g_steal_pointer(&m);
}

gboolean
fth_load_weights(FthGraph *g, const char *path, gboolean strict, int *n_loaded, GError **error)
{
  GError *st_error = NULL;
  FthSafetensors *st = fth_safetensors_open(path, &st_error);
  if (st == NULL)
    return st_fail(error, st_error, FTH_TRAIN_ERROR_CHECKPOINT);
  int loaded = 0;
  gboolean ok = TRUE;
  for (int i = 0; i < fth_graph_n_params(g) && ok; i++) {
    FthNode *p = fth_graph_param(g, i);
    const FthStTensor *src = fth_safetensors_find(st, fth_node_name(p));
    if (src == NULL) {
      if (strict) {
        g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT,
                    "%s: no tensor '%s' for the model's parameter", path, fth_node_name(p));
        ok = FALSE;
      }
      continue;
    }
    FthTensor t;
    if (fth_graph_tensor(g, p, &t) != FTH_STATUS_OK) {
      ok = engine_fail(error, path);
      break;
    }
    gboolean same = src->dtype == FTH_ST_F32 && src->ndim == t.ndim;
    for (int d = 0; same && d < t.ndim; d++)
      same = src->shape[d] == t.shape[d];
    if (!same) {
      g_autoptr(GString) want = g_string_new("[");
      for (int d = 0; d < t.ndim; d++)
        g_string_append_printf(want, "%s%" G_GINT64_FORMAT, d ? ", " : "", (gint64)t.shape[d]);
      g_string_append(want, "] F32");
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT,
                  "%s: tensor '%s' is %dD %s, the model needs %s", path, src->name, src->ndim,
                  fth_st_dtype_name(src->dtype), want->str);
      ok = FALSE;
      break;
    }
    memcpy(t.data, src->data, src->nbytes);
    loaded++;
  }
  fth_safetensors_free(st);
  if (n_loaded)
    *n_loaded = loaded;
  return ok;
}

gboolean
fth_load_optimizer_state(FthOptimizer *opt, const char *path, GError **error)
{
  GError *st_error = NULL;
  FthSafetensors *st = fth_safetensors_open(path, &st_error);
  if (st == NULL)
    return st_fail(error, st_error, FTH_TRAIN_ERROR_CHECKPOINT);
  const char *steps = fth_safetensors_metadata(st, "fathom.steps");
  gboolean ok = steps != NULL;
  if (!ok)
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT,
                "%s: no 'fathom.steps' in the metadata", path);
  for (size_t i = 0; ok && i < fth_optimizer_n_params(opt); i++) {
    const FthParam *p = fth_optimizer_param(opt, i);
    for (int w = 0; ok && w < fth_optimizer_n_state(opt); w++) {
      g_autofree char *name = g_strdup_printf("%s.%s", p->name, fth_optimizer_state_name(opt, w));
      const FthStTensor *src = fth_safetensors_find(st, name);
      if (src == NULL || src->dtype != FTH_ST_F32 || src->nbytes != p->n * sizeof(float)) {
        g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_CHECKPOINT,
                    "%s: optimizer state '%s' is missing or has the wrong size", path, name);
        ok = FALSE;
        break;
      }
      memcpy(fth_optimizer_state(opt, i, w), src->data, src->nbytes);
    }
  }
  if (ok)
    fth_optimizer_set_steps(opt, g_ascii_strtoll(steps, NULL, 10));
  fth_safetensors_free(st);
  return ok;
}
