/* Recipe parsing (json-glib) and validation; the graph builder is in model.c. */
#include "fathom/recipe.h"
#include "fth-config.h"

#include <json-glib/json-glib.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK(fth-recipe-error-quark, fth_recipe_error)

typedef struct {
  const char *source;
  GHashTable *vars;  /* name -> GINT_TO_POINTER(value) */
  GError **error;
} Ctx;

static gboolean G_GNUC_PRINTF(3, 4)
fail(Ctx *ctx, const char *where, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (where != NULL)
    g_set_error(ctx->error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_PARSE, "%s: %s: %s", ctx->source,
                where, msg);
  else
    g_set_error(ctx->error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_PARSE, "%s: %s", ctx->source, msg);
  return FALSE;
}

static gboolean
is_int_node(JsonNode *n)
{
  return n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64;
}

static gboolean
is_number_node(JsonNode *n)
{
  return n != NULL && JSON_NODE_HOLDS_VALUE(n) &&
         (json_node_get_value_type(n) == G_TYPE_INT64 ||
          json_node_get_value_type(n) == G_TYPE_DOUBLE);
}

/* An integer: a JSON integer, "$var", "$var*K" or (when classes_ok) "classes". */
static gboolean
int_value(Ctx *ctx, const char *where, const char *field, JsonNode *n, gboolean classes_ok,
          int *out)
{
  if (is_int_node(n)) {
    gint64 v = json_node_get_int(n);
    if (v < INT_MIN || v > INT_MAX)
      return fail(ctx, where, "'%s' is out of range", field);
    *out = (int)v;
    return TRUE;
  }
  if (n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
    const char *s = json_node_get_string(n);
    if (classes_ok && strcmp(s, "classes") == 0) {
      *out = FTH_RECIPE_CLASSES;
      return TRUE;
    }
    if (s[0] == '$') {
      /* "$var", or "$var" followed by one of * + - and an integer. */
      g_autofree char *name = g_strdup(s + 1);
      char *op = strpbrk(name, "*+-");
      char op_char = op ? *op : '\0';
      long k = 0;
      if (op != NULL) {
        char *end;
        *op = '\0';
        k = strtol(op + 1, &end, 10);
        if (*end != '\0' || op[1] == '\0')
          return fail(ctx, where, "'%s': '%s' is not of the form $var, $var*K, $var+K or $var-K",
                      field, s);
      }
      gpointer v;
      if (!g_hash_table_lookup_extended(ctx->vars, name, NULL, &v))
        return fail(ctx, where, "'%s': unknown variable '%s'", field, name);
      int x = GPOINTER_TO_INT(v);
      *out = op_char == '*' ? x * (int)k : op_char == '+' ? x + (int)k
                                           : op_char == '-' ? x - (int)k : x;
      return TRUE;
    }
  }
  return fail(ctx, where, "'%s' must be an integer%s", field,
              classes_ok ? ", a $variable or \"classes\"" : " or a $variable");
}

static gboolean
get_int(Ctx *ctx, JsonObject *o, const char *where, const char *field, int def, gboolean required,
        gboolean classes_ok, int min, int *out)
{
  JsonNode *n = json_object_get_member(o, field);
  if (n == NULL) {
    if (required)
      return fail(ctx, where, "missing '%s'", field);
    *out = def;
    return TRUE;
  }
  if (!int_value(ctx, where, field, n, classes_ok, out))
    return FALSE;
  if (*out < min && !(classes_ok && *out == FTH_RECIPE_CLASSES))
    return fail(ctx, where, "'%s' must be at least %d (got %d)", field, min, *out);
  return TRUE;
}

/* An [h, w] pair given as one integer or a two-element array. */
static gboolean
get_pair(Ctx *ctx, JsonObject *o, const char *where, const char *field, const int *def,
         gboolean required, int min, int out[2])
{
  JsonNode *n = json_object_get_member(o, field);
  if (n == NULL) {
    if (required)
      return fail(ctx, where, "missing '%s'", field);
    out[0] = def[0];
    out[1] = def[1];
    return TRUE;
  }
  if (JSON_NODE_HOLDS_ARRAY(n)) {
    JsonArray *a = json_node_get_array(n);
    if (json_array_get_length(a) != 2)
      return fail(ctx, where, "'%s' must be an integer or an [h, w] pair", field);
    for (int i = 0; i < 2; i++)
      if (!int_value(ctx, where, field, json_array_get_element(a, (guint)i), FALSE, &out[i]))
        return FALSE;
  } else {
    if (!int_value(ctx, where, field, n, FALSE, &out[0]))
      return FALSE;
    out[1] = out[0];
  }
  if (out[0] < min || out[1] < min)
    return fail(ctx, where, "'%s' must be at least %d", field, min);
  return TRUE;
}

static gboolean
get_float(Ctx *ctx, JsonObject *o, const char *where, const char *field, double def, double min,
          double max, float *out)
{
  JsonNode *n = json_object_get_member(o, field);
  if (n == NULL) {
    *out = (float)def;
    return TRUE;
  }
  if (!is_number_node(n))
    return fail(ctx, where, "'%s' must be a number", field);
  double v = json_node_get_double(n);
  if (!(v >= min && v <= max))
    return fail(ctx, where, "'%s' must be in [%g, %g] (got %g)", field, min, max, v);
  *out = (float)v;
  return TRUE;
}

static gboolean
get_bool(Ctx *ctx, JsonObject *o, const char *where, const char *field, bool def, bool *out)
{
  JsonNode *n = json_object_get_member(o, field);
  if (n == NULL) {
    *out = def;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
    return fail(ctx, where, "'%s' must be true or false", field);
  *out = json_node_get_boolean(n);
  return TRUE;
}

static const char *
get_string(JsonObject *o, const char *field)
{
  JsonNode *n = json_object_get_member(o, field);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(n);
}

/* Refuses members not in `allowed` (NULL-terminated), so a typo is an error, not a default. */
static gboolean
check_fields(Ctx *ctx, JsonObject *o, const char *where, const char *const *allowed)
{
  JsonObjectIter it;
  const char *name;
  JsonNode *node;
  json_object_iter_init(&it, o);
  while (json_object_iter_next(&it, &name, &node)) {
    gboolean ok = FALSE;
    for (int i = 0; allowed[i] != NULL && !ok; i++)
      ok = strcmp(allowed[i], name) == 0;
    if (!ok)
      return fail(ctx, where, "unknown field '%s'", name);
  }
  return TRUE;
}

static const struct {
  const char *type;
  FthLayerKind kind;
  const char *fields[12];
} layer_types[] = {
  {"linear", FTH_LAYER_LINEAR, {"out_features", "bias", "activation"}},
  {"conv2d", FTH_LAYER_CONV2D,
   {"out_channels", "kernel", "stride", "padding", "dilation", "groups", "depthwise", "bias",
    "activation"}},
  {"batch_norm", FTH_LAYER_BATCH_NORM, {"eps", "momentum"}},
  {"layer_norm", FTH_LAYER_LAYER_NORM, {"eps"}},
  {"relu", FTH_LAYER_RELU, {NULL}},
  {"gelu", FTH_LAYER_GELU, {NULL}},
  {"silu", FTH_LAYER_SILU, {NULL}},
  {"sigmoid", FTH_LAYER_SIGMOID, {NULL}},
  {"tanh", FTH_LAYER_TANH, {NULL}},
  {"max_pool2d", FTH_LAYER_MAX_POOL2D, {"kernel", "stride", "padding"}},
  {"avg_pool2d", FTH_LAYER_AVG_POOL2D, {"kernel", "stride", "padding"}},
  {"global_avg_pool2d", FTH_LAYER_GLOBAL_AVG_POOL2D, {NULL}},
  {"flatten", FTH_LAYER_FLATTEN, {NULL}},
  {"dropout", FTH_LAYER_DROPOUT, {"p"}},
  {"residual", FTH_LAYER_RESIDUAL, {"layers", "shortcut", "activation"}},
  {"embedding", FTH_LAYER_EMBEDDING, {"dim", "positions", "layer_norm", "dropout"}},
  {"transformer_encoder", FTH_LAYER_TRANSFORMER_ENCODER, {"heads", "ffn", "dropout", "norm", "eps"}},
  {"text_cnn", FTH_LAYER_TEXT_CNN, {"kernels", "channels", "activation"}},
  {"pool", FTH_LAYER_POOL, {"mode"}},
};

static void
layer_clear(FthLayerSpec *l)
{
  for (int i = 0; i < l->n_body; i++)
    layer_clear(&l->body[i]);
  for (int i = 0; i < l->n_shortcut; i++)
    layer_clear(&l->shortcut[i]);
  g_free(l->body);
  g_free(l->shortcut);
  g_free(l->where);
  g_free(l->name);
}

static void
layer_copy(FthLayerSpec *dst, const FthLayerSpec *src, const char *where, const char *name)
{
  *dst = *src;
  dst->where = g_strdup(where);
  dst->name = g_strdup(name);
  dst->body = g_new0(FthLayerSpec, src->n_body + 1);
  for (int i = 0; i < src->n_body; i++)
    layer_copy(&dst->body[i], &src->body[i], src->body[i].where, src->body[i].name);
  dst->shortcut = g_new0(FthLayerSpec, src->n_shortcut + 1);
  for (int i = 0; i < src->n_shortcut; i++)
    layer_copy(&dst->shortcut[i], &src->shortcut[i], src->shortcut[i].where, src->shortcut[i].name);
}

static gboolean parse_layers(Ctx *ctx, JsonNode *n, const char *where_prefix, const char *what,
                             FthLayerSpec **out, int *n_out);

static gboolean
parse_activation(Ctx *ctx, JsonObject *o, const char *where, FthActivation *act)
{
  const char *a = get_string(o, "activation");
  if (json_object_get_member(o, "activation") == NULL || (a && strcmp(a, "none") == 0)) {
    *act = FTH_ACT_NONE;
    return TRUE;
  }
  if (a && strcmp(a, "relu") == 0) {
    *act = FTH_ACT_RELU;
    return TRUE;
  }
  return fail(ctx, where, "'activation' must be \"none\" or \"relu\"");
}

/* One layer object; `where` is e.g. "layer 3" or "layer 4.2". */
static gboolean
parse_layer(Ctx *ctx, JsonNode *node, const char *where, FthLayerSpec *l)
{
  if (!JSON_NODE_HOLDS_OBJECT(node))
    return fail(ctx, where, "a layer must be an object");
  JsonObject *o = json_node_get_object(node);
  const char *type = get_string(o, "type");
  if (type == NULL)
    return fail(ctx, where, "missing 'type'");
  int t = -1;
  for (unsigned i = 0; i < G_N_ELEMENTS(layer_types); i++)
    if (strcmp(layer_types[i].type, type) == 0)
      t = (int)i;
  if (t < 0)
    return fail(ctx, where, "unknown layer type '%s'", type);
  g_autofree char *w = g_strdup_printf("%s '%s'", where, type);
  const char *allowed[16] = {"type", "name", "repeat"};
  int na = 3;
  for (int i = 0; layer_types[t].fields[i] != NULL; i++)
    allowed[na++] = layer_types[t].fields[i];
  allowed[na] = NULL;
  if (!check_fields(ctx, o, w, allowed))
    return FALSE;

  memset(l, 0, sizeof *l);
  l->kind = layer_types[t].kind;
  l->where = g_strdup(w);
  const int one[2] = {1, 1}, zero[2] = {0, 0};
  switch (l->kind) {
  case FTH_LAYER_LINEAR:
    if (!get_int(ctx, o, w, "out_features", 0, TRUE, TRUE, 1, &l->out) ||
        !get_bool(ctx, o, w, "bias", true, &l->bias) || !parse_activation(ctx, o, w, &l->act))
      return FALSE;
    break;
  case FTH_LAYER_CONV2D:
    if (!get_bool(ctx, o, w, "depthwise", false, &l->depthwise))
      return FALSE;
    if (l->depthwise && json_object_get_member(o, "out_channels") == NULL)
      l->out = 0; /* same as the input's channels */
    else if (!get_int(ctx, o, w, "out_channels", 0, TRUE, TRUE, 1, &l->out))
      return FALSE;
    if (!get_pair(ctx, o, w, "kernel", one, TRUE, 1, l->kernel) ||
        !get_pair(ctx, o, w, "stride", one, FALSE, 1, l->stride) ||
        !get_pair(ctx, o, w, "padding", zero, FALSE, 0, l->padding) ||
        !get_pair(ctx, o, w, "dilation", one, FALSE, 1, l->dilation) ||
        !get_int(ctx, o, w, "groups", 1, FALSE, FALSE, 1, &l->groups) ||
        !get_bool(ctx, o, w, "bias", true, &l->bias) || !parse_activation(ctx, o, w, &l->act))
      return FALSE;
    if (l->depthwise && json_object_get_member(o, "groups") != NULL)
      return fail(ctx, w, "'groups' and 'depthwise' exclude each other");
    break;
  case FTH_LAYER_BATCH_NORM:
    if (!get_float(ctx, o, w, "eps", 1e-5, 0, 1, &l->eps) ||
        !get_float(ctx, o, w, "momentum", 0.1, 0, 1, &l->momentum))
      return FALSE;
    break;
  case FTH_LAYER_LAYER_NORM:
    if (!get_float(ctx, o, w, "eps", 1e-5, 0, 1, &l->eps))
      return FALSE;
    break;
  case FTH_LAYER_MAX_POOL2D:
  case FTH_LAYER_AVG_POOL2D:
    if (!get_pair(ctx, o, w, "kernel", one, TRUE, 1, l->kernel) ||
        !get_pair(ctx, o, w, "stride", l->kernel, FALSE, 1, l->stride) ||
        !get_pair(ctx, o, w, "padding", zero, FALSE, 0, l->padding))
      return FALSE;
    break;
  case FTH_LAYER_DROPOUT:
    if (json_object_get_member(o, "p") == NULL)
      return fail(ctx, w, "missing 'p'");
    if (!get_float(ctx, o, w, "p", 0, 0, 0.999, &l->p))
      return FALSE;
    break;
  case FTH_LAYER_RESIDUAL: {
    JsonNode *body = json_object_get_member(o, "layers");
    if (body == NULL)
      return fail(ctx, w, "missing 'layers'");
    if (!parse_layers(ctx, body, where, "layers", &l->body, &l->n_body))
      return FALSE;
    if (l->n_body == 0)
      return fail(ctx, w, "'layers' is empty");
    JsonNode *sc = json_object_get_member(o, "shortcut");
    g_autofree char *sc_where = g_strdup_printf("%s shortcut", where);
    if (sc != NULL && !parse_layers(ctx, sc, sc_where, "shortcut", &l->shortcut, &l->n_shortcut))
      return FALSE;
    if (!parse_activation(ctx, o, w, &l->act))
      return FALSE;
    break;
  }
  case FTH_LAYER_EMBEDDING:
    if (!get_int(ctx, o, w, "dim", 0, TRUE, FALSE, 1, &l->out) ||
        !get_bool(ctx, o, w, "positions", true, &l->positions) ||
        !get_bool(ctx, o, w, "layer_norm", false, &l->layer_norm) ||
        !get_float(ctx, o, w, "dropout", 0, 0, 0.999, &l->p))
      return FALSE;
    l->eps = 1e-12f;
    break;
  case FTH_LAYER_TRANSFORMER_ENCODER: {
    if (!get_int(ctx, o, w, "heads", 0, TRUE, FALSE, 1, &l->heads) ||
        !get_int(ctx, o, w, "ffn", 0, TRUE, FALSE, 1, &l->ffn) ||
        !get_float(ctx, o, w, "dropout", 0.1, 0, 0.999, &l->p) ||
        !get_float(ctx, o, w, "eps", 1e-12, 0, 1, &l->eps))
      return FALSE;
    const char *norm = get_string(o, "norm");
    if (json_object_get_member(o, "norm") != NULL &&
        (norm == NULL || (strcmp(norm, "pre") != 0 && strcmp(norm, "post") != 0)))
      return fail(ctx, w, "'norm' must be \"post\" or \"pre\"");
    l->pre_norm = norm != NULL && strcmp(norm, "pre") == 0;
    break;
  }
  case FTH_LAYER_TEXT_CNN: {
    JsonNode *k = json_object_get_member(o, "kernels");
    if (k == NULL)
      return fail(ctx, w, "missing 'kernels'");
    JsonArray *ka = JSON_NODE_HOLDS_ARRAY(k) ? json_node_get_array(k) : NULL;
    guint nk = ka ? json_array_get_length(ka) : 0;
    if (nk < 1 || nk > FTH_RECIPE_MAX_KERNELS)
      return fail(ctx, w, "'kernels' must be an array of 1 to %d widths", FTH_RECIPE_MAX_KERNELS);
    for (guint i = 0; i < nk; i++) {
      if (!int_value(ctx, w, "kernels", json_array_get_element(ka, i), FALSE, &l->kernels[i]))
        return FALSE;
      if (l->kernels[i] < 1)
        return fail(ctx, w, "'kernels' entries must be at least 1");
    }
    l->n_kernels = (int)nk;
    if (!get_int(ctx, o, w, "channels", 0, TRUE, FALSE, 1, &l->out))
      return FALSE;
    if (json_object_get_member(o, "activation") == NULL)
      l->act = FTH_ACT_RELU;
    else if (!parse_activation(ctx, o, w, &l->act))
      return FALSE;
    break;
  }
  case FTH_LAYER_POOL: {
    const char *mode = get_string(o, "mode");
    if (json_object_get_member(o, "mode") == NULL || (mode && strcmp(mode, "mean") == 0))
      l->pool = FTH_POOL_MEAN;
    else if (mode && strcmp(mode, "max") == 0)
      l->pool = FTH_POOL_MAX;
    else if (mode && strcmp(mode, "cls") == 0)
      l->pool = FTH_POOL_CLS;
    else
      return fail(ctx, w, "'mode' must be \"mean\", \"max\" or \"cls\"");
    break;
  }
  default:
    break;
  }
  return TRUE;
}

/* A "layers" array with "repeat" expanded; default names are the expanded indices. */
static gboolean
parse_layers(Ctx *ctx, JsonNode *n, const char *where_prefix, const char *what,
             FthLayerSpec **out, int *n_out)
{
  *out = NULL;
  *n_out = 0;
  if (!JSON_NODE_HOLDS_ARRAY(n))
    return fail(ctx, where_prefix, "'%s' must be an array of layers", what);
  JsonArray *a = json_node_get_array(n);
  GArray *specs = g_array_new(FALSE, TRUE, sizeof(FthLayerSpec));
  gboolean ok = TRUE;
  for (guint i = 0; i < json_array_get_length(a) && ok; i++) {
    g_autofree char *where = where_prefix ? g_strdup_printf("%s.%u", where_prefix, i + 1)
                                          : g_strdup_printf("layer %u", i + 1);
    JsonNode *ln = json_array_get_element(a, i);
    FthLayerSpec spec = {0};
    if (!parse_layer(ctx, ln, where, &spec)) {
      layer_clear(&spec); /* a residual may have parsed part of its body */
      ok = FALSE;
      break;
    }
    JsonObject *o = json_node_get_object(ln);
    int repeat = 1;
    if (!get_int(ctx, o, spec.where, "repeat", 1, FALSE, FALSE, 0, &repeat)) {
      layer_clear(&spec);
      ok = FALSE;
      break;
    }
    const char *name = get_string(o, "name");
    if (json_object_get_member(o, "name") != NULL && (name == NULL || name[0] == '\0')) {
      fail(ctx, spec.where, "'name' must be a non-empty string");
      layer_clear(&spec);
      ok = FALSE;
      break;
    }
    for (int r = 0; r < repeat; r++) {
      FthLayerSpec copy;
      g_autofree char *cname = name == NULL ? g_strdup_printf("%u", specs->len)
                               : repeat > 1 ? g_strdup_printf("%s.%d", name, r)
                                            : g_strdup(name);
      layer_copy(&copy, &spec, spec.where, cname);
      g_array_append_val(specs, copy);
    }
    layer_clear(&spec);
  }
  *n_out = (int)specs->len;
  *out = (FthLayerSpec *)(void *)g_array_free(specs, FALSE);
  return ok;
}

static gboolean
parse_norm(Ctx *ctx, JsonObject *input, const char *field, int n, float **out)
{
  *out = g_new(float, n);
  JsonNode *node = json_object_get_member(input, field);
  for (int i = 0; i < n; i++)
    (*out)[i] = strcmp(field, "std") == 0 ? 1.0f : 0.0f;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY(node) || (int)json_array_get_length(json_node_get_array(node)) != n)
    return fail(ctx, "input", "'%s' must be an array of %d numbers (one per channel)", field, n);
  for (int i = 0; i < n; i++) {
    JsonNode *e = json_array_get_element(json_node_get_array(node), (guint)i);
    if (!is_number_node(e))
      return fail(ctx, "input", "'%s'[%d] is not a number", field, i);
    (*out)[i] = (float)json_node_get_double(e);
    if (strcmp(field, "std") == 0 && !((*out)[i] > 0))
      return fail(ctx, "input", "'std'[%d] must be positive", i);
  }
  return TRUE;
}

static gboolean
parse_shape_input(Ctx *ctx, JsonObject *io, FthRecipe *r)
{
  JsonNode *shape = json_object_get_member(io, "shape");
  guint nd = shape && JSON_NODE_HOLDS_ARRAY(shape) ? json_array_get_length(json_node_get_array(shape)) : 0;
  if (nd != 1 && nd != 3) {
    fail(ctx, "input", "'shape' must be [features] or [channels, height, width]");
    return FALSE;
  }
  r->in_ndim = (int)nd;
  for (guint i = 0; i < nd; i++) {
    int v;
    if (!int_value(ctx, "input", "shape", json_array_get_element(json_node_get_array(shape), i),
                   FALSE, &v))
      return FALSE;
    if (v < 1) {
      fail(ctx, "input", "'shape' entries must be positive");
      return FALSE;
    }
    r->in_shape[i] = v;
  }
  r->n_norm = nd == 3 ? (int)r->in_shape[0] : 1;
  if (!parse_norm(ctx, io, "mean", r->n_norm, &r->mean) ||
      !parse_norm(ctx, io, "std", r->n_norm, &r->std))
    return FALSE;
  return TRUE;
}

/* "input": {"shape": [1, n_mels, frames], "audio": {...}}: log-mel features of audio items; the
 * shape must be the one the settings give. */
static gboolean
parse_audio_input(Ctx *ctx, JsonObject *io, FthRecipe *r)
{
  JsonNode *an = json_object_get_member(io, "audio");
  if (!JSON_NODE_HOLDS_OBJECT(an))
    return fail(ctx, "input", "'audio' must be an object");
  JsonObject *ao = json_node_get_object(an);
  static const char *const fields[] = {"sample_rate", "duration", "n_mels", "win_ms", "hop_ms",
                                       "f_min", "f_max", NULL};
  FthRecipeAudio *a = &r->audio_params;
  float duration, f_min, f_max;
  if (!check_fields(ctx, ao, "input.audio", fields) ||
      !get_int(ctx, ao, "input.audio", "sample_rate", 16000, FALSE, FALSE, 1000, &a->sample_rate) ||
      !get_float(ctx, ao, "input.audio", "duration", 1.0, 0.05, 600, &duration) ||
      !get_int(ctx, ao, "input.audio", "n_mels", 40, FALSE, FALSE, 1, &a->n_mels) ||
      !get_int(ctx, ao, "input.audio", "win_ms", 25, FALSE, FALSE, 1, &a->win_ms) ||
      !get_int(ctx, ao, "input.audio", "hop_ms", 10, FALSE, FALSE, 1, &a->hop_ms) ||
      !get_float(ctx, ao, "input.audio", "f_min", 0, 0, a->sample_rate / 2.0, &f_min) ||
      !get_float(ctx, ao, "input.audio", "f_max", a->sample_rate / 2.0, 0, a->sample_rate / 2.0,
                 &f_max))
    return FALSE;
  if (!(f_max > f_min))
    return fail(ctx, "input.audio", "'f_max' must be above 'f_min'");
  a->duration = duration;
  a->f_min = f_min;
  a->f_max = f_max;
  int64_t samples = (int64_t)(a->duration * a->sample_rate + 0.5);
  int64_t hop = MAX(1, (int64_t)a->hop_ms * a->sample_rate / 1000);
  int64_t frames = 1 + samples / hop;
  if (r->in_ndim != 3 || r->in_shape[0] != 1 || r->in_shape[1] != a->n_mels ||
      r->in_shape[2] != frames)
    return fail(ctx, "input", "an audio input's 'shape' must be [1, n_mels, frames] = [1, %d, %"
                G_GINT64_FORMAT "] for these settings", a->n_mels, (gint64)frames);
  r->audio = true;
  return TRUE;
}

/* "input": {"tokens": T, "vocab": V, ...}: T token ids per item. */
static gboolean
parse_token_input(Ctx *ctx, JsonObject *io, FthRecipe *r)
{
  static const char *const shape_only[] = {"shape", "mean", "std"};
  for (unsigned i = 0; i < G_N_ELEMENTS(shape_only); i++)
    if (json_object_get_member(io, shape_only[i]) != NULL)
      return fail(ctx, "input", "'tokens' and '%s' exclude each other", shape_only[i]);
  int t, v;
  if (!get_int(ctx, io, "input", "tokens", 0, TRUE, FALSE, 2, &t) ||
      !get_int(ctx, io, "input", "vocab", 0, TRUE, FALSE, 16, &v) ||
      !get_bool(ctx, io, "input", "lowercase", true, &r->lowercase))
    return FALSE;
  const char *task = get_string(io, "task"), *tk = get_string(io, "tokenizer");
  if (json_object_get_member(io, "task") != NULL &&
      (task == NULL || (strcmp(task, "classification") != 0 && strcmp(task, "tagging") != 0)))
    return fail(ctx, "input", "'task' must be \"classification\" or \"tagging\"");
  if (json_object_get_member(io, "tokenizer") != NULL &&
      (tk == NULL || (strcmp(tk, "wordpiece") != 0 && strcmp(tk, "bpe") != 0)))
    return fail(ctx, "input", "'tokenizer' must be \"wordpiece\" or \"bpe\"");
  r->tokens = true;
  r->tagging = task != NULL && strcmp(task, "tagging") == 0;
  r->bpe = tk != NULL && strcmp(tk, "bpe") == 0;
  r->vocab = v;
  r->in_ndim = 1;
  r->in_shape[0] = t;
  r->n_norm = 1;
  r->mean = g_new0(float, 1);
  r->std = g_new(float, 1);
  r->std[0] = 1.0f;
  return TRUE;
}

static gboolean
parse_train(Ctx *ctx, JsonObject *o, FthRecipeTrain *t)
{
  static const char *const allowed[] = {
    "optimizer", "lr", "momentum", "nesterov", "weight_decay", "beta1", "beta2", "eps",
    "clip_norm", "batch", "epochs", "schedule", "warmup_steps", "step_size", "gamma", "min_lr",
    "pct_start", "label_smoothing", "augment", "accumulate", NULL};
  const char *w = "train";
  if (!check_fields(ctx, o, w, allowed))
    return FALSE;
  const char *opt = get_string(o, "optimizer");
  FthOptimKind kind = FTH_OPTIM_SGD;
  if (json_object_get_member(o, "optimizer") != NULL) {
    if (opt != NULL && strcmp(opt, "sgd") == 0)
      kind = FTH_OPTIM_SGD;
    else if (opt != NULL && strcmp(opt, "adamw") == 0)
      kind = FTH_OPTIM_ADAMW;
    else
      return fail(ctx, w, "'optimizer' must be \"sgd\" or \"adamw\"");
  }
  FthOptimConfig d = fth_optim_config_default(kind);
  t->optim.kind = kind;
  FthLrKind lk = FTH_LR_CONSTANT;
  const char *sched = get_string(o, "schedule");
  if (json_object_get_member(o, "schedule") != NULL &&
      (sched == NULL || !fth_lr_kind_from_name(sched, &lk)))
    return fail(ctx, w, "'schedule' must be \"constant\", \"step\", \"cosine\" or \"one-cycle\"");
  int warmup = 0, step_size = 1;
  if (!get_float(ctx, o, w, "lr", d.lr, 0, 10, &t->optim.lr) ||
      !get_float(ctx, o, w, "momentum", d.momentum, 0, 1, &t->optim.momentum) ||
      !get_bool(ctx, o, w, "nesterov", false, &t->optim.nesterov) ||
      !get_float(ctx, o, w, "weight_decay", d.weight_decay, 0, 1, &t->optim.weight_decay) ||
      !get_float(ctx, o, w, "beta1", d.beta1, 0, 1, &t->optim.beta1) ||
      !get_float(ctx, o, w, "beta2", d.beta2, 0, 1, &t->optim.beta2) ||
      !get_float(ctx, o, w, "eps", d.eps, 0, 1, &t->optim.eps) ||
      !get_float(ctx, o, w, "clip_norm", 0, 0, 1e9, &t->optim.clip_norm) ||
      !get_int(ctx, o, w, "batch", t->batch, FALSE, FALSE, 1, &t->batch) ||
      !get_int(ctx, o, w, "epochs", t->epochs, FALSE, FALSE, 1, &t->epochs) ||
      !get_int(ctx, o, w, "accumulate", 1, FALSE, FALSE, 1, &t->accumulate) ||
      !get_int(ctx, o, w, "warmup_steps", 0, FALSE, FALSE, 0, &warmup) ||
      !get_int(ctx, o, w, "step_size", 1, FALSE, FALSE, 1, &step_size) ||
      !get_float(ctx, o, w, "label_smoothing", 0, 0, 1, &t->label_smoothing))
    return FALSE;
  if (t->optim.nesterov && t->optim.momentum == 0)
    return fail(ctx, w, "'nesterov' needs a 'momentum' above 0");
  t->schedule = fth_lr_schedule_default(lk, t->optim.lr, 0);
  t->schedule.warmup_steps = warmup;
  t->schedule.step_size = step_size;
  if (!get_float(ctx, o, w, "gamma", 0.1, 0, 1, &t->schedule.gamma) ||
      !get_float(ctx, o, w, "min_lr", 0, 0, 10, &t->schedule.min_lr) ||
      !get_float(ctx, o, w, "pct_start", 0.3, 0.01, 0.99, &t->schedule.pct_start))
    return FALSE;
  JsonNode *aug = json_object_get_member(o, "augment");
  if (aug != NULL) {
    static const char *const aug_fields[] = {"flip", "crop_padding", "rotate_deg", "brightness",
                                             "contrast", "token_dropout", "token_swap",
                                             "time_shift", "noise", "freq_mask", "time_mask",
                                             NULL};
    if (!JSON_NODE_HOLDS_OBJECT(aug))
      return fail(ctx, w, "'augment' must be an object");
    JsonObject *ao = json_node_get_object(aug);
    if (!check_fields(ctx, ao, "train.augment", aug_fields) ||
        !get_float(ctx, ao, "train.augment", "flip", 0, 0, 1, &t->flip_prob) ||
        !get_int(ctx, ao, "train.augment", "crop_padding", 0, FALSE, FALSE, 0, &t->crop_padding) ||
        !get_float(ctx, ao, "train.augment", "rotate_deg", 0, 0, 45, &t->rotate_deg) ||
        !get_float(ctx, ao, "train.augment", "brightness", 0, 0, 1, &t->brightness) ||
        !get_float(ctx, ao, "train.augment", "contrast", 0, 0, 1, &t->contrast) ||
        !get_float(ctx, ao, "train.augment", "token_dropout", 0, 0, 0.5, &t->token_dropout) ||
        !get_float(ctx, ao, "train.augment", "token_swap", 0, 0, 0.5, &t->token_swap) ||
        !get_int(ctx, ao, "train.augment", "time_shift", 0, FALSE, FALSE, 0, &t->time_shift) ||
        !get_float(ctx, ao, "train.augment", "noise", 0, 0, 10, &t->noise) ||
        !get_int(ctx, ao, "train.augment", "freq_mask", 0, FALSE, FALSE, 0, &t->freq_mask) ||
        !get_int(ctx, ao, "train.augment", "time_mask", 0, FALSE, FALSE, 0, &t->time_mask))
      return FALSE;
  }
  return TRUE;
}

void
fth_recipe_free(FthRecipe *r)
{
  if (r == NULL)
    return;
  for (int i = 0; i < r->n_layers; i++)
    layer_clear(&r->layers[i]);
  g_free(r->layers);
  g_free(r->mean);
  g_free(r->std);
  g_free(r->source);
  g_free(r->name);
  g_free(r->json);
  g_free(r);
}

static gboolean
parse_vars(Ctx *ctx, JsonObject *root, const char *const *overrides)
{
  JsonNode *vn = json_object_get_member(root, "vars");
  if (vn != NULL) {
    if (!JSON_NODE_HOLDS_OBJECT(vn))
      return fail(ctx, NULL, "'vars' must be an object of integers");
    JsonObjectIter it;
    const char *name;
    JsonNode *node;
    json_object_iter_init(&it, json_node_get_object(vn));
    while (json_object_iter_next(&it, &name, &node)) {
      if (!is_int_node(node))
        return fail(ctx, "vars", "'%s' must be an integer", name);
      g_hash_table_insert(ctx->vars, g_strdup(name), GINT_TO_POINTER((int)json_node_get_int(node)));
    }
  }
  for (int i = 0; overrides != NULL && overrides[i] != NULL; i++) {
    const char *eq = strchr(overrides[i], '=');
    char *end = NULL;
    long v = eq ? strtol(eq + 1, &end, 10) : 0;
    if (eq == NULL || eq == overrides[i] || end == eq + 1 || *end != '\0')
      return fail(ctx, NULL, "variable setting '%s' is not NAME=INTEGER", overrides[i]);
    g_autofree char *name = g_strndup(overrides[i], (gsize)(eq - overrides[i]));
    if (!g_hash_table_contains(ctx->vars, name))
      return fail(ctx, NULL, "variable '%s' is not declared in 'vars'", name);
    g_hash_table_insert(ctx->vars, g_steal_pointer(&name), GINT_TO_POINTER((int)v));
  }
  return TRUE;
}

FthRecipe *
fth_recipe_parse(const char *json, gssize len, const char *source,
                 const char *const *vars_override, GError **error)
{
  g_autoptr(GHashTable) vars = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  Ctx ctx = {source ? source : "recipe", vars, error};
  g_autoptr(JsonParser) parser = json_parser_new();
  GError *jerr = NULL;
  if (!json_parser_load_from_data(parser, json, len, &jerr)) {
    fail(&ctx, NULL, "not valid JSON: %s", jerr->message);
    g_error_free(jerr);
    return NULL;
  }
  JsonNode *rn = json_parser_get_root(parser);
  if (rn == NULL || !JSON_NODE_HOLDS_OBJECT(rn)) {
    fail(&ctx, NULL, "the recipe must be a JSON object");
    return NULL;
  }
  JsonObject *root = json_node_get_object(rn);
  static const char *const top[] = {"name", "description", "input", "vars", "layers", "train",
                                    NULL};
  if (!check_fields(&ctx, root, "recipe", top) || !parse_vars(&ctx, root, vars_override))
    return NULL;

  g_autoptr(FthRecipe) r = g_new0(FthRecipe, 1);
  r->source = g_strdup(ctx.source);
  r->json = len < 0 ? g_strdup(json) : g_strndup(json, (gsize)len);
  const char *name = get_string(root, "name");
  r->name = g_strdup(name ? name : "model");

  JsonNode *in = json_object_get_member(root, "input");
  if (in == NULL || !JSON_NODE_HOLDS_OBJECT(in)) {
    fail(&ctx, NULL, "missing 'input' object");
    return NULL;
  }
  JsonObject *io = json_node_get_object(in);
  static const char *const in_fields[] = {"shape", "mean", "std", "tokens", "vocab", "task",
                                          "tokenizer", "lowercase", "audio", NULL};
  if (!check_fields(&ctx, io, "input", in_fields))
    return NULL;
  if (json_object_get_member(io, "tokens") != NULL) {
    if (!parse_token_input(&ctx, io, r))
      return NULL;
  } else if (!parse_shape_input(&ctx, io, r) ||
             (json_object_get_member(io, "audio") != NULL && !parse_audio_input(&ctx, io, r))) {
    return NULL;
  }

  JsonNode *layers = json_object_get_member(root, "layers");
  if (layers == NULL) {
    fail(&ctx, NULL, "missing 'layers'");
    return NULL;
  }
  if (!parse_layers(&ctx, layers, NULL, "layers", &r->layers, &r->n_layers))
    return NULL;
  if (r->n_layers == 0) {
    fail(&ctx, NULL, "'layers' is empty");
    return NULL;
  }

  r->train.optim = fth_optim_config_default(FTH_OPTIM_SGD);
  r->train.schedule = fth_lr_schedule_default(FTH_LR_CONSTANT, r->train.optim.lr, 0);
  r->train.batch = 64;
  r->train.epochs = 10;
  JsonNode *tn = json_object_get_member(root, "train");
  if (tn != NULL) {
    if (!JSON_NODE_HOLDS_OBJECT(tn)) {
      fail(&ctx, NULL, "'train' must be an object");
      return NULL;
    }
    if (!parse_train(&ctx, json_node_get_object(tn), &r->train))
      return NULL;
  }
  return g_steal_pointer(&r);
}

FthRecipe *
fth_recipe_load(const char *path, const char *const *vars_override, GError **error)
{
  g_autofree char *text = NULL;
  gsize len;
  GError *ferr = NULL;
  if (!g_file_get_contents(path, &text, &len, &ferr)) {
    g_set_error(error, FTH_RECIPE_ERROR, FTH_RECIPE_ERROR_IO, "%s", ferr->message);
    g_error_free(ferr);
    return NULL;
  }
  g_autofree char *base = g_path_get_basename(path);
  return fth_recipe_parse(text, (gssize)len, base, vars_override, error);
}

char *
fth_recipe_find(const char *name_or_path)
{
  if (g_file_test(name_or_path, G_FILE_TEST_IS_REGULAR))
    return g_strdup(name_or_path);
  g_autofree char *file = g_strdup_printf("%s.json", name_or_path);
  const char *env = g_getenv("FTH_SOURCE_DIR");
  const char *dirs[] = {env, FTH_SOURCE_DIR, FTH_DATADIR};
  for (unsigned i = 0; i < G_N_ELEMENTS(dirs); i++) {
    if (dirs[i] == NULL)
      continue;
    g_autofree char *p = i == 2 ? g_build_filename(dirs[i], "recipes", file, NULL)
                                : g_build_filename(dirs[i], "data", "recipes", file, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_REGULAR))
      return g_steal_pointer(&p);
  }
  return NULL;
}
