/* Job events: copy/free and the JSON-lines form documented in fathom/jobs.h. */
#include <fathom/jobs.h>

#include <json-glib/json-glib.h>
#include <math.h>

G_DEFINE_QUARK(fth-job-error-quark, fth_job_error)

/* Registered by hand: G_DEFINE_BOXED_TYPE casts through a union, which -Wpedantic rejects. */
GType
fth_job_event_get_type(void)
{
  static gsize type_id;
  if (g_once_init_enter(&type_id)) {
    GType t = g_boxed_type_register_static(g_intern_static_string("FthJobEvent"),
                                           (GBoxedCopyFunc)fth_job_event_copy,
                                           (GBoxedFreeFunc)fth_job_event_free);
    g_once_init_leave(&type_id, t);
  }
  return type_id;
}

static const char *const event_type_names[] = {
  [FTH_JOB_EVENT_STARTED] = "started",
  [FTH_JOB_EVENT_PROGRESS] = "progress",
  [FTH_JOB_EVENT_SUCCEEDED] = "succeeded",
  [FTH_JOB_EVENT_FAILED] = "failed",
  [FTH_JOB_EVENT_CANCELLED] = "cancelled",
};

const char *
fth_job_event_type_to_string(FthJobEventType type)
{
  if ((guint)type >= G_N_ELEMENTS(event_type_names))
    return "unknown";
  return event_type_names[type];
}

gboolean
fth_job_event_is_terminal(const FthJobEvent *event)
{
  return event->type == FTH_JOB_EVENT_SUCCEEDED || event->type == FTH_JOB_EVENT_FAILED ||
         event->type == FTH_JOB_EVENT_CANCELLED;
}

gboolean
fth_job_event_get_metric(const FthJobEvent *event, const char *name, double *value)
{
  for (guint i = 0; i < event->n_metrics; i++) {
    if (g_strcmp0(event->metrics[i].name, name) == 0) {
      if (value)
        *value = event->metrics[i].value;
      return TRUE;
    }
  }
  return FALSE;
}

FthJobEvent *
fth_job_event_copy(const FthJobEvent *event)
{
  FthJobEvent *copy = g_new0(FthJobEvent, 1);
  *copy = *event;
  copy->job = g_strdup(event->job);
  copy->message = g_strdup(event->message);
  copy->metrics = event->n_metrics ? g_new0(FthJobMetric, event->n_metrics) : NULL;
  for (guint i = 0; i < event->n_metrics; i++) {
    copy->metrics[i].name = g_strdup(event->metrics[i].name);
    copy->metrics[i].value = event->metrics[i].value;
  }
  copy->error = event->error ? g_error_copy(event->error) : NULL;
  return copy;
}

void
fth_job_event_free(FthJobEvent *event)
{
  if (!event)
    return;
  g_free(event->job);
  g_free(event->message);
  for (guint i = 0; i < event->n_metrics; i++)
    g_free(event->metrics[i].name);
  g_free(event->metrics);
  g_clear_error(&event->error);
  g_free(event);
}

/* Written by hand rather than with JsonGenerator: json-glib 1.6 writes a double such as
 * 5e-300 as "5e-300.0", which is not JSON, and pads every double to 17 digits. */
static void
append_json_string(GString *out, const char *s)
{
  g_string_append_c(out, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': g_string_append(out, "\\\""); break;
    case '\\': g_string_append(out, "\\\\"); break;
    case '\n': g_string_append(out, "\\n"); break;
    case '\r': g_string_append(out, "\\r"); break;
    case '\t': g_string_append(out, "\\t"); break;
    default:
      if (*p < 0x20)
        g_string_append_printf(out, "\\u%04x", *p);
      else
        g_string_append_c(out, (char)*p);
    }
  }
  g_string_append_c(out, '"');
}

/* The shortest decimal form that reads back to the same double; null when not finite. */
static void
append_json_number(GString *out, double v)
{
  if (!isfinite(v)) {
    g_string_append(out, "null");
    return;
  }
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  /* Whole numbers as integers: %g would pick "1e+01" for 10 as the shortest form. */
  if (v == (double)(gint64)v && fabs(v) < 1e15) {
    g_string_append_printf(out, "%" G_GINT64_FORMAT, (gint64)v);
    return;
  }
  for (int digits = 1; digits <= 17; digits++) {
    char fmt[8];
    g_snprintf(fmt, sizeof fmt, "%%.%dg", digits);
    g_ascii_formatd(buf, sizeof buf, fmt, v);
    if (g_ascii_strtod(buf, NULL) == v)
      break;
  }
  g_string_append(out, buf);
}

static void
append_member(GString *out, const char *name)
{
  if (out->len > 1)
    g_string_append_c(out, ',');
  append_json_string(out, name);
  g_string_append_c(out, ':');
}

char *
fth_job_event_to_json_line(const FthJobEvent *event)
{
  GString *out = g_string_new("{");
  append_member(out, "type");
  append_json_string(out, fth_job_event_type_to_string(event->type));
  append_member(out, "job");
  append_json_string(out, event->job ? event->job : "");
  append_member(out, "id");
  g_string_append_printf(out, "%" G_GUINT64_FORMAT, event->job_id);
  append_member(out, "step");
  g_string_append_printf(out, "%" G_GINT64_FORMAT, event->step);
  append_member(out, "total");
  g_string_append_printf(out, "%" G_GINT64_FORMAT, event->total);
  if (event->message) {
    append_member(out, "message");
    append_json_string(out, event->message);
  }
  if (event->n_metrics > 0) {
    append_member(out, "metrics");
    g_string_append_c(out, '{');
    for (guint i = 0; i < event->n_metrics; i++) {
      if (i > 0)
        g_string_append_c(out, ',');
      append_json_string(out, event->metrics[i].name);
      g_string_append_c(out, ':');
      append_json_number(out, event->metrics[i].value);
    }
    g_string_append_c(out, '}');
  }
  append_member(out, "elapsed_s");
  append_json_number(out, event->elapsed_s);
  append_member(out, "eta_s");
  append_json_number(out, event->eta_s >= 0 ? event->eta_s : NAN);
  if (event->type == FTH_JOB_EVENT_FAILED) {
    append_member(out, "error");
    g_string_append(out, "{\"domain\":");
    append_json_string(out, g_quark_to_string(event->error ? event->error->domain : FTH_JOB_ERROR));
    g_string_append_printf(out, ",\"code\":%d,\"message\":",
                           event->error ? event->error->code : FTH_JOB_ERROR_FAILED);
    append_json_string(out, event->error ? event->error->message : "failed");
    g_string_append_c(out, '}');
  }
  g_string_append_c(out, '}');
  return g_string_free(out, FALSE);
}

static gboolean
parse_fail(GError **error, const char *what, const char *member)
{
  g_set_error(error, FTH_JOB_ERROR, FTH_JOB_ERROR_PARSE, "job event line: member “%s” %s",
              member, what);
  return FALSE;
}

static gboolean
get_int(JsonObject *o, const char *member, gboolean required, gint64 *out, GError **error)
{
  JsonNode *n = json_object_get_member(o, member);
  if (!n)
    return required ? parse_fail(error, "is missing", member) : TRUE;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
    return parse_fail(error, "is not an integer", member);
  *out = json_node_get_int(n);
  return TRUE;
}

/* Accepts integers too: "1" and "1.0" are the same number to a JSON writer. */
static gboolean
node_get_number(JsonNode *n, double *out)
{
  if (!JSON_NODE_HOLDS_VALUE(n))
    return FALSE;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_DOUBLE)
    *out = json_node_get_double(n);
  else if (t == G_TYPE_INT64)
    *out = (double)json_node_get_int(n);
  else
    return FALSE;
  return TRUE;
}

static gboolean
get_string(JsonObject *o, const char *member, gboolean required, char **out, GError **error)
{
  JsonNode *n = json_object_get_member(o, member);
  if (!n)
    return required ? parse_fail(error, "is missing", member) : TRUE;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return parse_fail(error, "is not a string", member);
  *out = g_strdup(json_node_get_string(n));
  return TRUE;
}

FthJobEvent *
fth_job_event_from_json_line(const char *line, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(GError) local = NULL;
  if (!json_parser_load_from_data(parser, line, -1, &local)) {
    g_set_error(error, FTH_JOB_ERROR, FTH_JOB_ERROR_PARSE, "job event line: not JSON: %s",
                local->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error_literal(error, FTH_JOB_ERROR, FTH_JOB_ERROR_PARSE,
                        "job event line: not a JSON object");
    return NULL;
  }
  JsonObject *o = json_node_get_object(root);

  g_autoptr(FthJobEvent) ev = g_new0(FthJobEvent, 1);
  ev->eta_s = -1;
  g_autofree char *type = NULL;
  if (!get_string(o, "type", TRUE, &type, error))
    return NULL;
  guint t;
  for (t = 0; t < G_N_ELEMENTS(event_type_names); t++)
    if (g_str_equal(type, event_type_names[t]))
      break;
  if (t == G_N_ELEMENTS(event_type_names)) {
    g_set_error(error, FTH_JOB_ERROR, FTH_JOB_ERROR_PARSE,
                "job event line: unknown event type “%s”", type);
    return NULL;
  }
  ev->type = (FthJobEventType)t;

  gint64 id = 0;
  if (!get_string(o, "job", TRUE, &ev->job, error) || !get_int(o, "id", TRUE, &id, error) ||
      !get_int(o, "step", TRUE, &ev->step, error) ||
      !get_int(o, "total", TRUE, &ev->total, error) ||
      !get_string(o, "message", FALSE, &ev->message, error))
    return NULL;
  if (id < 0 || ev->step < 0 || ev->total < 0) {
    parse_fail(error, "is negative", id < 0 ? "id" : ev->step < 0 ? "step" : "total");
    return NULL;
  }
  ev->job_id = (guint64)id;

  JsonNode *n = json_object_get_member(o, "elapsed_s");
  if (!n) {
    parse_fail(error, "is missing", "elapsed_s");
    return NULL;
  }
  if (!node_get_number(n, &ev->elapsed_s)) {
    parse_fail(error, "is not a number", "elapsed_s");
    return NULL;
  }
  n = json_object_get_member(o, "eta_s");
  if (n && !JSON_NODE_HOLDS_NULL(n) && !node_get_number(n, &ev->eta_s)) {
    parse_fail(error, "is not a number or null", "eta_s");
    return NULL;
  }

  n = json_object_get_member(o, "metrics");
  if (n) {
    if (!JSON_NODE_HOLDS_OBJECT(n)) {
      parse_fail(error, "is not an object", "metrics");
      return NULL;
    }
    JsonObject *m = json_node_get_object(n);
    /* json_object_get_members keeps the order the members were written in. */
    GList *names = json_object_get_members(m);
    ev->n_metrics = g_list_length(names);
    ev->metrics = ev->n_metrics ? g_new0(FthJobMetric, ev->n_metrics) : NULL;
    guint i = 0;
    for (GList *l = names; l; l = l->next, i++) {
      JsonNode *v = json_object_get_member(m, l->data);
      ev->metrics[i].name = g_strdup(l->data);
      if (JSON_NODE_HOLDS_NULL(v)) {
        ev->metrics[i].value = NAN;
      } else if (!node_get_number(v, &ev->metrics[i].value)) {
        g_set_error(error, FTH_JOB_ERROR, FTH_JOB_ERROR_PARSE,
                    "job event line: metric “%s” is not a number", (const char *)l->data);
        g_list_free(names);
        return NULL;
      }
    }
    g_list_free(names);
  }

  if (ev->type == FTH_JOB_EVENT_FAILED) {
    n = json_object_get_member(o, "error");
    if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
      parse_fail(error, "is missing or not an object on a failed event", "error");
      return NULL;
    }
    JsonObject *e = json_node_get_object(n);
    g_autofree char *domain = NULL;
    g_autofree char *msg = NULL;
    gint64 code = 0;
    if (!get_string(e, "domain", TRUE, &domain, error) || !get_int(e, "code", TRUE, &code, error) ||
        !get_string(e, "message", TRUE, &msg, error))
      return NULL;
    if (code < G_MININT || code > G_MAXINT) {
      parse_fail(error, "is out of range", "code");
      return NULL;
    }
    ev->error = g_error_new_literal(g_quark_from_string(domain), (int)code, msg);
  }
  return g_steal_pointer(&ev);
}
