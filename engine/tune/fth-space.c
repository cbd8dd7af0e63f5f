/* Search spaces: the JSON declaration, its validation, and value conversions. */
#include "fth-tune-private.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

G_DEFINE_QUARK(fth-tune-error-quark, fth_tune_error)

struct _FthSearchSpace {
  gatomicrefcount ref;
  GPtrArray *params; /* FthTuneParam* */
  guint n_groups;
};

static void
param_free(gpointer data)
{
  FthTuneParam *p = data;
  g_free(p->name);
  for (guint i = 0; i < p->n_choices; i++)
    g_free(p->choices[i]);
  g_free(p->choices);
  g_free(p);
}

static FthSearchSpace *
space_new(void)
{
  FthSearchSpace *space = g_new0(FthSearchSpace, 1);
  g_atomic_ref_count_init(&space->ref);
  space->params = g_ptr_array_new_with_free_func(param_free);
  space->n_groups = 1;
  return space;
}

FthSearchSpace *
fth_search_space_ref(FthSearchSpace *space)
{
  g_atomic_ref_count_inc(&space->ref);
  return space;
}

void
fth_search_space_unref(FthSearchSpace *space)
{
  if (space == NULL || !g_atomic_ref_count_dec(&space->ref))
    return;
  g_ptr_array_unref(space->params);
  g_free(space);
}

guint
fth_search_space_get_n_params(const FthSearchSpace *space)
{
  return space->params->len;
}

const FthTuneParam *
fth_search_space_get_param(const FthSearchSpace *space, guint index)
{
  g_return_val_if_fail(index < space->params->len, NULL);
  return g_ptr_array_index(space->params, index);
}

int
fth_search_space_find(const FthSearchSpace *space, const char *name)
{
  for (guint i = 0; i < space->params->len; i++) {
    const FthTuneParam *p = g_ptr_array_index(space->params, i);
    if (g_strcmp0(p->name, name) == 0)
      return (int) i;
  }
  return -1;
}

guint
fth_search_space_get_n_groups(const FthSearchSpace *space)
{
  return space->n_groups;
}

static gboolean
space_error(GError **error, const char *source, const char *param, const char *fmt, ...)
  G_GNUC_PRINTF(4, 5);

static gboolean
space_error(GError **error, const char *source, const char *param, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (param != NULL)
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_SPACE, "%s: parameter \"%s\": %s", source,
                param, msg);
  else
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_SPACE, "%s: %s", source, msg);
  return FALSE;
}

static gboolean
read_number(JsonObject *obj, const char *member, double *out)
{
  JsonNode *node = json_object_get_member(obj, member);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
    return FALSE;
  GType t = json_node_get_value_type(node);
  if (t != G_TYPE_DOUBLE && t != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_double(node);
  return isfinite(*out);
}

static JsonArray *
member_array(JsonObject *obj, const char *member)
{
  JsonNode *n = json_object_get_member(obj, member);
  return n != NULL && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static JsonObject *
member_object(JsonObject *obj, const char *member)
{
  JsonNode *n = json_object_get_member(obj, member);
  return n != NULL && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static char *
node_to_text(JsonNode *node)
{
  return json_to_string(node, FALSE);
}

static gboolean
parse_param(FthSearchSpace *space, JsonNode *node, guint index, const char *source,
            GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT(node))
    return space_error(error, source, NULL, "params[%u] is not an object", index);
  JsonObject *obj = json_node_get_object(node);
  const char *name = json_object_get_string_member_with_default(obj, "name", NULL);
  if (name == NULL || *name == '\0')
    return space_error(error, source, NULL, "params[%u] has no \"name\" string", index);
  if (fth_search_space_find(space, name) >= 0)
    return space_error(error, source, name, "declared twice");
  const char *type = json_object_get_string_member_with_default(obj, "type", NULL);
  if (type == NULL)
    return space_error(error, source, name, "no \"type\" (float, int or categorical)");

  g_autofree FthTuneParam *p = g_new0(FthTuneParam, 1);
  p->parent = -1;
  if (g_str_equal(type, "float") || g_str_equal(type, "int")) {
    p->kind = g_str_equal(type, "float") ? FTH_PARAM_FLOAT : FTH_PARAM_INT;
    if (!read_number(obj, "low", &p->low) || !read_number(obj, "high", &p->high))
      return space_error(error, source, name, "\"low\" and \"high\" must be finite numbers");
    p->log = json_object_get_boolean_member_with_default(obj, "log", FALSE);
    p->step = p->kind == FTH_PARAM_INT ? 1.0 : 0.0;
    if (json_object_has_member(obj, "step") && !read_number(obj, "step", &p->step))
      return space_error(error, source, name, "\"step\" must be a number");
    if (p->low > p->high)
      return space_error(error, source, name, "empty range: low %g > high %g", p->low, p->high);
    if (p->log && p->low <= 0.0)
      return space_error(error, source, name,
                         "log scale needs positive bounds, but low is %g", p->low);
    if (p->kind == FTH_PARAM_INT) {
      if (p->low != floor(p->low) || p->high != floor(p->high))
        return space_error(error, source, name, "int bounds must be whole numbers");
      if (p->step < 1.0 || p->step != floor(p->step))
        return space_error(error, source, name, "int step must be a whole number >= 1");
      if (p->log && p->step != 1.0)
        return space_error(error, source, name, "a log int parameter cannot have a step");
      /* As Optuna: the high bound is lowered to the last reachable value. */
      p->high = p->low + floor((p->high - p->low) / p->step) * p->step;
    } else if (p->step != 0.0) {
      if (p->step < 0.0)
        return space_error(error, source, name, "step must be positive");
      if (p->log)
        return space_error(error, source, name, "a log float parameter cannot have a step");
      p->high = p->low + floor((p->high - p->low) / p->step + 1e-9) * p->step;
    }
  } else if (g_str_equal(type, "categorical")) {
    p->kind = FTH_PARAM_CATEGORICAL;
    JsonArray *choices = member_array(obj, "choices");
    if (choices == NULL || json_array_get_length(choices) == 0)
      return space_error(error, source, name, "\"choices\" must be a non-empty array");
    p->n_choices = json_array_get_length(choices);
    p->choices = g_new0(char *, p->n_choices + 1);
    for (guint i = 0; i < p->n_choices; i++) {
      JsonNode *c = json_array_get_element(choices, i);
      if (!JSON_NODE_HOLDS_VALUE(c)) {
        for (guint j = 0; j < i; j++)
          g_free(p->choices[j]);
        g_free(p->choices);
        return space_error(error, source, name, "choice %u is not a string, number or bool", i);
      }
      p->choices[i] = node_to_text(c);
      for (guint j = 0; j < i; j++)
        if (g_str_equal(p->choices[j], p->choices[i])) {
          g_autofree char *dup = g_strdup(p->choices[i]);
          for (guint k = 0; k <= i; k++)
            g_free(p->choices[k]);
          g_free(p->choices);
          return space_error(error, source, name, "choice %s appears twice", dup);
        }
    }
    p->low = 0;
    p->high = p->n_choices - 1;
  } else {
    return space_error(error, source, name,
                       "unknown type \"%s\" (float, int or categorical)", type);
  }

  JsonObject *cond = member_object(obj, "condition");
  if (json_object_has_member(obj, "condition") && cond == NULL) {
    param_free(g_steal_pointer(&p));
    return space_error(error, source, name, "\"condition\" must be an object");
  }
  if (cond != NULL) {
    const char *parent = json_object_get_string_member_with_default(cond, "parent", NULL);
    JsonArray *values = member_array(cond, "values");
    if (parent == NULL || values == NULL || json_array_get_length(values) == 0) {
      param_free(g_steal_pointer(&p));
      return space_error(error, source, name,
                         "a condition needs \"parent\" and a non-empty \"values\" array");
    }
    p->parent = fth_search_space_find(space, parent);
    if (p->parent < 0) {
      param_free(g_steal_pointer(&p));
      return space_error(error, source, name,
                         "condition on a missing parameter \"%s\" (declare it first)", parent);
    }
    const FthTuneParam *pp = g_ptr_array_index(space->params, p->parent);
    if (pp->kind != FTH_PARAM_CATEGORICAL || pp->n_choices > 64) {
      param_free(g_steal_pointer(&p));
      return space_error(error, source, name,
                         "condition parent \"%s\" must be categorical (at most 64 choices)",
                         parent);
    }
    for (guint i = 0; i < json_array_get_length(values); i++) {
      g_autofree char *text = node_to_text(json_array_get_element(values, i));
      gboolean found = FALSE;
      for (guint c = 0; c < pp->n_choices; c++)
        if (g_str_equal(pp->choices[c], text)) {
          p->parent_choices |= G_GUINT64_CONSTANT(1) << c;
          found = TRUE;
        }
      if (!found) {
        param_free(g_steal_pointer(&p));
        return space_error(error, source, name, "condition value %s is not a choice of \"%s\"",
                           text, parent);
      }
    }
  }
  p->name = g_strdup(name);
  g_ptr_array_add(space->params, g_steal_pointer(&p));
  return TRUE;
}

FthSearchSpace *
fth_search_space_new_from_json(const char *json, gssize length, const char *source,
                               GError **error)
{
  g_return_val_if_fail(json != NULL, NULL);
  if (source == NULL)
    source = "<string>";
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(GError) local = NULL;
  if (!json_parser_load_from_data(parser, json, length, &local)) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_SPACE, "%s: not valid JSON: %s", source,
                local->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    space_error(error, source, NULL, "the search space must be a JSON object");
    return NULL;
  }
  JsonObject *obj = json_node_get_object(root);
  JsonArray *params = member_array(obj, "params");
  if (params == NULL || json_array_get_length(params) == 0) {
    space_error(error, source, NULL, "\"params\" must be a non-empty array");
    return NULL;
  }
  g_autoptr(FthSearchSpace) space = space_new();
  for (guint i = 0; i < json_array_get_length(params); i++)
    if (!parse_param(space, json_array_get_element(params, i), i, source, error))
      return NULL;

  if (json_object_has_member(obj, "groups")) {
    JsonArray *groups = member_array(obj, "groups");
    if (groups == NULL) {
      space_error(error, source, NULL, "\"groups\" must be an array of arrays of names");
      return NULL;
    }
    guint n = json_array_get_length(groups);
    g_autofree gboolean *seen = g_new0(gboolean, space->params->len);
    for (guint g = 0; g < n; g++) {
      JsonNode *gn = json_array_get_element(groups, g);
      if (!JSON_NODE_HOLDS_ARRAY(gn)) {
        space_error(error, source, NULL, "groups[%u] is not an array of names", g);
        return NULL;
      }
      JsonArray *ga = json_node_get_array(gn);
      for (guint k = 0; k < json_array_get_length(ga); k++) {
        const char *name = json_node_get_string(json_array_get_element(ga, k));
        int idx = name != NULL ? fth_search_space_find(space, name) : -1;
        if (idx < 0) {
          space_error(error, source, name, "groups[%u] names a parameter that is not declared",
                      g);
          return NULL;
        }
        if (seen[idx]) {
          space_error(error, source, name, "is in two groups");
          return NULL;
        }
        seen[idx] = TRUE;
        ((FthTuneParam *) g_ptr_array_index(space->params, idx))->group = (int) g;
      }
    }
    gboolean rest = FALSE;
    for (guint i = 0; i < space->params->len; i++)
      if (!seen[i]) {
        ((FthTuneParam *) g_ptr_array_index(space->params, i))->group = (int) n;
        rest = TRUE;
      }
    space->n_groups = n + (rest ? 1 : 0);
    /* A child must share its parent's group: a sub-space is sampled on its own. */
    for (guint i = 0; i < space->params->len; i++) {
      const FthTuneParam *p = g_ptr_array_index(space->params, i);
      if (p->parent >= 0 &&
          ((const FthTuneParam *) g_ptr_array_index(space->params, p->parent))->group != p->group) {
        space_error(error, source, p->name, "must be in the same group as its parent");
        return NULL;
      }
    }
  }
  return g_steal_pointer(&space);
}

FthSearchSpace *
fth_search_space_new_from_file(const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &text, &len, error))
    return NULL;
  return fth_search_space_new_from_json(text, (gssize) len, path, error);
}

char *
fth_search_space_to_json(const FthSearchSpace *space)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "params");
  json_builder_begin_array(b);
  for (guint i = 0; i < space->params->len; i++) {
    const FthTuneParam *p = g_ptr_array_index(space->params, i);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, p->name);
    json_builder_set_member_name(b, "type");
    if (p->kind == FTH_PARAM_CATEGORICAL) {
      json_builder_add_string_value(b, "categorical");
      json_builder_set_member_name(b, "choices");
      json_builder_begin_array(b);
      for (guint c = 0; c < p->n_choices; c++)
        json_builder_add_value(b, json_from_string(p->choices[c], NULL));
      json_builder_end_array(b);
    } else {
      json_builder_add_string_value(b, p->kind == FTH_PARAM_FLOAT ? "float" : "int");
      json_builder_set_member_name(b, "low");
      json_builder_add_double_value(b, p->low);
      json_builder_set_member_name(b, "high");
      json_builder_add_double_value(b, p->high);
      json_builder_set_member_name(b, "log");
      json_builder_add_boolean_value(b, p->log);
      if (p->step != 0.0) {
        json_builder_set_member_name(b, "step");
        json_builder_add_double_value(b, p->step);
      }
    }
    if (p->parent >= 0) {
      const FthTuneParam *pp = g_ptr_array_index(space->params, p->parent);
      json_builder_set_member_name(b, "condition");
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "parent");
      json_builder_add_string_value(b, pp->name);
      json_builder_set_member_name(b, "values");
      json_builder_begin_array(b);
      for (guint c = 0; c < pp->n_choices; c++)
        if (p->parent_choices & (G_GUINT64_CONSTANT(1) << c))
          json_builder_add_value(b, json_from_string(pp->choices[c], NULL));
      json_builder_end_array(b);
      json_builder_end_object(b);
    }
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  if (space->n_groups > 1) {
    json_builder_set_member_name(b, "groups");
    json_builder_begin_array(b);
    for (guint g = 0; g < space->n_groups; g++) {
      json_builder_begin_array(b);
      for (guint i = 0; i < space->params->len; i++) {
        const FthTuneParam *p = g_ptr_array_index(space->params, i);
        if (p->group == (int) g)
          json_builder_add_string_value(b, p->name);
      }
      json_builder_end_array(b);
    }
    json_builder_end_array(b);
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return json_to_string(root, FALSE);
}

gboolean
fth_search_space_is_active(const FthSearchSpace *space, guint index, const double *values)
{
  const FthTuneParam *p = g_ptr_array_index(space->params, index);
  if (p->parent < 0)
    return TRUE;
  double pv = values[p->parent];
  if (isnan(pv) || !fth_search_space_is_active(space, (guint) p->parent, values))
    return FALSE;
  return (p->parent_choices >> (guint) pv) & 1;
}

void
fth_search_space_deactivate(const FthSearchSpace *space, double *values)
{
  for (guint i = 0; i < space->params->len; i++)
    if (!fth_search_space_is_active(space, i, values))
      values[i] = NAN;
}

void
fth_param_sampling_bounds(const FthTuneParam *p, double *low, double *high)
{
  switch (p->kind) {
  case FTH_PARAM_CATEGORICAL:
    *low = -0.5;
    *high = p->n_choices - 0.5;
    break;
  case FTH_PARAM_INT:
    if (p->log) {
      *low = log(p->low - 0.5);
      *high = log(p->high + 0.5);
    } else {
      *low = p->low - 0.5 * p->step;
      *high = p->high + 0.5 * p->step;
    }
    break;
  case FTH_PARAM_FLOAT:
    if (p->log) {
      *low = log(p->low);
      *high = log(p->high);
    } else if (p->step > 0) {
      *low = p->low - 0.5 * p->step;
      *high = p->high + 0.5 * p->step;
    } else {
      *low = p->low;
      *high = p->high;
    }
    break;
  }
}

double
fth_param_from_sampling(const FthTuneParam *p, double x)
{
  double v;
  switch (p->kind) {
  case FTH_PARAM_CATEGORICAL:
    v = nearbyint(x);
    break;
  case FTH_PARAM_INT:
    v = p->log ? nearbyint(exp(x)) : nearbyint((x - p->low) / p->step) * p->step + p->low;
    break;
  case FTH_PARAM_FLOAT:
  default:
    if (p->log)
      v = exp(x);
    else if (p->step > 0)
      v = nearbyint((x - p->low) / p->step) * p->step + p->low;
    else
      v = x;
    break;
  }
  return CLAMP(v, p->low, p->high);
}

double
fth_param_to_sampling(const FthTuneParam *p, double value)
{
  return (p->kind != FTH_PARAM_CATEGORICAL && p->log) ? log(value) : value;
}

void
fth_search_space_sample_uniform(const FthSearchSpace *space, GRand *rng, double *values)
{
  for (guint i = 0; i < space->params->len; i++) {
    const FthTuneParam *p = g_ptr_array_index(space->params, i);
    if (!fth_search_space_is_active(space, i, values)) {
      values[i] = NAN;
      continue;
    }
    if (!isnan(values[i]))
      continue;
    if (p->kind == FTH_PARAM_CATEGORICAL) {
      values[i] = g_rand_int_range(rng, 0, (gint32) p->n_choices);
      continue;
    }
    double lo, hi;
    fth_param_sampling_bounds(p, &lo, &hi);
    values[i] = fth_param_from_sampling(p, lo + (hi - lo) * g_rand_double(rng));
  }
}

char *
fth_search_space_values_to_json(const FthSearchSpace *space, const double *values)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  for (guint i = 0; i < space->params->len; i++) {
    const FthTuneParam *p = g_ptr_array_index(space->params, i);
    if (isnan(values[i]))
      continue;
    json_builder_set_member_name(b, p->name);
    if (p->kind == FTH_PARAM_CATEGORICAL)
      json_builder_add_value(b, json_from_string(p->choices[(guint) values[i]], NULL));
    else if (p->kind == FTH_PARAM_INT)
      json_builder_add_int_value(b, (gint64) values[i]);
    else
      json_builder_add_double_value(b, values[i]);
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return json_to_string(root, FALSE);
}

gboolean
fth_search_space_values_from_json(const FthSearchSpace *space, const char *json, double *values,
                                  GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(GError) local = NULL;
  if (!json_parser_load_from_data(parser, json, -1, &local)) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID, "parameters: not JSON: %s",
                local->message);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                "parameters: not a JSON object");
    return FALSE;
  }
  JsonObject *obj = json_node_get_object(root);
  for (guint i = 0; i < space->params->len; i++) {
    const FthTuneParam *p = g_ptr_array_index(space->params, i);
    JsonNode *n = json_object_get_member(obj, p->name);
    values[i] = NAN;
    if (n == NULL)
      continue;
    if (p->kind == FTH_PARAM_CATEGORICAL) {
      g_autofree char *text = node_to_text(n);
      for (guint c = 0; c < p->n_choices; c++)
        if (g_str_equal(text, p->choices[c]))
          values[i] = c;
      if (isnan(values[i])) {
        g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                    "parameter \"%s\": %s is not one of its choices", p->name, text);
        return FALSE;
      }
    } else {
      if (!JSON_NODE_HOLDS_VALUE(n) || (json_node_get_value_type(n) != G_TYPE_DOUBLE &&
                                        json_node_get_value_type(n) != G_TYPE_INT64)) {
        g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                    "parameter \"%s\": not a number", p->name);
        return FALSE;
      }
      values[i] = json_node_get_double(n);
      if (!(values[i] >= p->low && values[i] <= p->high)) {
        g_set_error(error, FTH_TUNE_ERROR, FTH_TUNE_ERROR_INVALID,
                    "parameter \"%s\": %g is outside [%g, %g]", p->name, values[i], p->low,
                    p->high);
        return FALSE;
      }
    }
  }
  return TRUE;
}

GRand *
fth_tune_rng_new(guint64 seed, int number, guint32 stream)
{
  guint32 key[4] = { (guint32) seed, (guint32) (seed >> 32), (guint32) number, stream };
  return g_rand_new_with_seed_array(key, 4);
}

double
fth_tune_rng_normal(GRand *rng)
{
  /* Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
  double u = 1.0 - g_rand_double(rng);
  double v = g_rand_double(rng);
  return sqrt(-2.0 * log(u)) * cos(2.0 * G_PI * v);
}

double
fth_tune_norm_cdf(double z)
{
  return 0.5 * erfc(-z / G_SQRT2);
}

double
fth_tune_log_norm_pdf(double z)
{
  return -0.5 * z * z - 0.91893853320467274178; /* log(sqrt(2 pi)) */
}

const char *
fth_tune_trial_state_to_string(FthTuneTrialState state)
{
  switch (state) {
  case FTH_TUNE_TRIAL_RUNNING:
    return "running";
  case FTH_TUNE_TRIAL_COMPLETE:
    return "complete";
  case FTH_TUNE_TRIAL_PRUNED:
    return "pruned";
  case FTH_TUNE_TRIAL_FAILED:
    return "failed";
  }
  return "unknown";
}
