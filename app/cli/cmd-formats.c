/* fathom export --format audacity|segments-jsonl|spans-jsonl|conll, fathom import-annotations:
 * audio segments and text spans in the formats of <fathom/formats.h>.
 *
 * Items are named in files by their stored path ("path#member" for a record inside a container
 * file); Audacity and CoNLL files name none, so one file goes with one item: exporting several
 * items writes a folder of <item-stem>.txt (Audacity) or <item-stem>.conll, and importing matches
 * a file to the item with the same stem (or --item). */
#include "cli.h"

#include <errno.h>
#include <fathom/formats.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Called by cmd-export.c and main.c. */
gboolean fth_cli_annotation_format_known(const char *name);
int fth_cli_export_annotations(const char *dir, const char *format_name, const char *output,
                               gint64 item_id);
int fth_cli_import_annotations(int argc, char **argv);

typedef enum { FMT_AUDACITY, FMT_SEGMENTS_JSONL, FMT_SPANS_JSONL, FMT_CONLL } AnnFormat;

static const char *const format_names[] = { "audacity", "segments-jsonl", "spans-jsonl",
                                            "conll" };
#define FORMAT_LIST "audacity, segments-jsonl, spans-jsonl or conll"

static gboolean
parse_format(const char *name, AnnFormat *out)
{
  for (guint i = 0; name && i < G_N_ELEMENTS(format_names); i++)
    if (g_str_equal(name, format_names[i])) {
      *out = (AnnFormat)i;
      return TRUE;
    }
  return FALSE;
}

gboolean
fth_cli_annotation_format_known(const char *name)
{
  AnnFormat f;
  return parse_format(name, &f);
}

static gboolean
is_segments(AnnFormat f)
{
  return f == FMT_AUDACITY || f == FMT_SEGMENTS_JSONL;
}

static gboolean
one_file_per_item(AnnFormat f)
{
  return f == FMT_AUDACITY || f == FMT_CONLL;
}

/* ---- items -------------------------------------------------------------------------------- */

static char *
item_key(const FthItemRecord *it)
{
  if (it->member >= 0)
    return g_strdup_printf("%s#%" G_GINT64_FORMAT, it->path, it->member);
  return g_strdup(it->path);
}

/* The base name without its extension ("a/b/x.wav" -> "x"); "-member" for container records. */
static char *
stem_of(const char *path, gint64 member)
{
  char *base = g_path_get_basename(path);
  char *dot = strrchr(base, '.');
  if (dot && dot != base)
    *dot = '\0';
  if (member >= 0) {
    char *with = g_strdup_printf("%s-%" G_GINT64_FORMAT, base, member);
    g_free(base);
    return with;
  }
  return base;
}

static GPtrArray *
list_items(FthStore *store, FthItemKind kind, GError **error)
{
  FthItemFilter filter;
  fth_item_filter_init(&filter);
  filter.kind = kind;
  GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)fth_item_record_free);
  gint64 after = 0;
  for (;;) {
    GPtrArray *page = fth_store_list_items_after(store, &filter, after, 512, error);
    if (!page) {
      g_ptr_array_unref(all);
      return NULL;
    }
    if (page->len == 0) {
      g_ptr_array_unref(page);
      return all;
    }
    after = ((FthItemRecord *)g_ptr_array_index(page, page->len - 1))->id;
    g_ptr_array_extend_and_steal(all, page);
  }
}

static FthItemRecord *
get_item_of_kind(FthStore *store, gint64 id, FthItemKind kind, const char *format_name)
{
  g_autoptr(GError) error = NULL;
  FthItemRecord *item = fth_store_get_item(store, id, &error);
  if (!item) {
    fth_cli_fail_error(error);
    return NULL;
  }
  if (item->kind != kind) {
    fth_cli_fail("item %" G_GINT64_FORMAT " (%s) is not %s; %s holds %s", id, item->path,
                 kind == FTH_ITEM_AUDIO ? "audio" : "text", format_name,
                 kind == FTH_ITEM_AUDIO ? "audio segments" : "text spans");
    fth_item_record_free(item);
    return NULL;
  }
  return item;
}

/* The document a text item's spans are offsets into. */
static char *
item_text(FthStore *store, const FthItemRecord *it, GError **error)
{
  if (it->text)
    return g_strdup(it->text);
  g_autofree char *abs = fth_store_resolve_path(store, it->path);
  char *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents(abs, &data, &len, error))
    return NULL;
  if (!g_utf8_validate_len(data, len, NULL)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: not UTF-8 text", abs);
    g_free(data);
    return NULL;
  }
  return data;
}

/* ---- export ------------------------------------------------------------------------------- */

static gboolean
write_output(const char *path, const char *data, gsize len)
{
  g_autoptr(GError) error = NULL;
  if (!g_file_set_contents(path, data, (gssize)len, &error)) {
    fth_cli_fail_error(error);
    return FALSE;
  }
  return TRUE;
}

int
fth_cli_export_annotations(const char *dir, const char *format_name, const char *output,
                           gint64 item_id)
{
  AnnFormat format;
  if (!parse_format(format_name, &format))
    return fth_cli_usage_error("export", "unknown format “%s”", format_name);
  if (item_id < 0)
    return fth_cli_usage_error("export", "--item takes an item id (1 or more)");
  gboolean folder = one_file_per_item(format) && item_id == 0;
  if (folder && !output)
    return fth_cli_usage_error("export",
                               "%s writes one file per item: give -o DIR, or --item ID",
                               format_name);
  g_autoptr(FthStore) store = fth_cli_open_store(dir);
  if (!store)
    return FTH_EXIT_FAILURE;
  FthItemKind kind = is_segments(format) ? FTH_ITEM_AUDIO : FTH_ITEM_TEXT;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) items = NULL;
  if (item_id > 0) {
    FthItemRecord *item = get_item_of_kind(store, item_id, kind, format_name);
    if (!item)
      return FTH_EXIT_FAILURE;
    items = g_ptr_array_new_with_free_func((GDestroyNotify)fth_item_record_free);
    g_ptr_array_add(items, item);
  } else if (!(items = list_items(store, kind, &error))) {
    return fth_cli_fail_error(error);
  }
  if (folder && g_mkdir_with_parents(output, 0777) != 0)
    return fth_cli_fail("%s: %s", output, g_strerror(errno));

  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GString) joined = g_string_new(NULL);
  guint n_items = 0, n_records = 0;
  for (guint i = 0; i < items->len; i++) {
    const FthItemRecord *it = g_ptr_array_index(items, i);
    g_autoptr(GPtrArray) recs =
        is_segments(format) ? fth_item_list_segments(store, it->id, FTH_AUTHOR_HUMAN, &error)
                            : fth_item_list_spans(store, it->id, FTH_AUTHOR_HUMAN, &error);
    if (!recs)
      return fth_cli_fail_error(error);
    if (recs->len == 0 && item_id == 0)
      continue;
    g_autofree char *key = item_key(it);
    for (guint j = 0; j < recs->len; j++) {
      /* path is the first member of both record types */
      char **path = is_segments(format) ? &((FthSegmentLabel *)recs->pdata[j])->path
                                        : &((FthSpanLabel *)recs->pdata[j])->path;
      g_free(*path);
      *path = g_strdup(key);
    }
    g_autofree char *chunk = NULL;
    guint left_out = 0;
    switch (format) {
    case FMT_AUDACITY:
      chunk = fth_audacity_labels_write(recs);
      break;
    case FMT_SEGMENTS_JSONL:
      chunk = fth_segments_jsonl_write(recs);
      break;
    case FMT_SPANS_JSONL: {
      /* Without the document the records lose only their "text" fields. */
      g_autofree char *text = item_text(store, it, NULL);
      chunk = fth_spans_jsonl_write(recs, text);
      break;
    }
    case FMT_CONLL: {
      g_autofree char *text = item_text(store, it, &error);
      if (!text) {
        g_ptr_array_add(problems, g_strdup_printf("%s: %s: left out", key, error->message));
        g_clear_error(&error);
        continue;
      }
      g_autoptr(GPtrArray) report = NULL;
      chunk = fth_conll_write(text, recs, &report);
      for (guint j = 0; report && j < report->len; j++)
        g_ptr_array_add(problems,
                        g_strdup_printf("%s: %s", key, (const char *)report->pdata[j]));
      left_out = report ? report->len : 0;
      break;
    }
    }
    if (!chunk) {
      g_ptr_array_add(problems, g_strdup_printf("%s: could not be written: left out", key));
      continue;
    }
    if (folder) {
      g_autofree char *stem = stem_of(it->path, it->member);
      char *name = g_strconcat(stem, format == FMT_AUDACITY ? ".txt" : ".conll", NULL);
      if (g_hash_table_contains(names, name)) {
        g_ptr_array_add(problems, g_strdup_printf("%s: another item is also written as %s: "
                                                  "left out (export it with --item)",
                                                  key, name));
        g_free(name);
        continue;
      }
      g_hash_table_add(names, name);
      g_autofree char *path = g_build_filename(output, name, NULL);
      if (!write_output(path, chunk, strlen(chunk)))
        return FTH_EXIT_FAILURE;
    } else {
      g_string_append(joined, chunk);
    }
    n_items++;
    n_records += recs->len - left_out;
  }
  if (!folder) {
    if (output) {
      if (!write_output(output, joined->str, joined->len))
        return FTH_EXIT_FAILURE;
    } else if (fwrite(joined->str, 1, joined->len, stdout) != joined->len ||
               fflush(stdout) != 0) {
      return fth_cli_fail("stdout: %s", g_strerror(errno));
    }
  }
  for (guint i = 0; i < problems->len; i++)
    fprintf(stderr, "fathom: %s\n", (const char *)problems->pdata[i]);
  if (output)
    fprintf(stderr, "Exported %u %s of %u items to %s\n", n_records,
            is_segments(format) ? "segments" : "spans", n_items, output);
  return problems->len ? FTH_EXIT_PARTIAL : FTH_EXIT_OK;
}

/* ---- import ------------------------------------------------------------------------------- */

typedef struct {
  FthStore *store;
  GHashTable *by_key;  /* item key -> id */
  GHashTable *by_base; /* base name -> id, 0 when several items share it */
  GHashTable *by_stem; /* stem -> id, 0 when shared */
} ItemIndex;

static void
index_add(GHashTable *table, char *name, gint64 id)
{
  gpointer old;
  if (g_hash_table_lookup_extended(table, name, NULL, &old)) {
    if (GPOINTER_TO_SIZE(old) != (gsize)id)
      g_hash_table_insert(table, name, GSIZE_TO_POINTER(0));
    else
      g_free(name);
  } else {
    g_hash_table_insert(table, name, GSIZE_TO_POINTER((gsize)id));
  }
}

static void
index_init(ItemIndex *ix, FthStore *store, GPtrArray *items)
{
  ix->store = store;
  ix->by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  ix->by_base = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  ix->by_stem = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < items->len; i++) {
    const FthItemRecord *it = g_ptr_array_index(items, i);
    index_add(ix->by_key, item_key(it), it->id);
    index_add(ix->by_stem, stem_of(it->path, it->member), it->id);
    if (it->member < 0)
      index_add(ix->by_base, g_path_get_basename(it->path), it->id);
  }
}

static void
index_clear(ItemIndex *ix)
{
  g_hash_table_unref(ix->by_key);
  g_hash_table_unref(ix->by_base);
  g_hash_table_unref(ix->by_stem);
}

static gint64
lookup(GHashTable *table, const char *name)
{
  return (gint64)GPOINTER_TO_SIZE(g_hash_table_lookup(table, name));
}

/* The item a record's path names: the stored path, the same file named another way, or a
 * base name that one item has. 0 when none. */
static gint64
match_path(ItemIndex *ix, const char *path)
{
  if (!path || !*path)
    return 0;
  gint64 id = lookup(ix->by_key, path);
  if (id)
    return id;
  if (!strchr(path, '#')) {
    g_autofree char *rel = fth_store_relative_path(ix->store, path);
    if (rel && (id = lookup(ix->by_key, rel)))
      return id;
    g_autofree char *base = g_path_get_basename(path);
    return lookup(ix->by_base, base);
  }
  return 0;
}

static double
snap_to_sample(double t, int rate)
{
  /* Times written with six decimals come back within half a microsecond of a sample. */
  if (rate <= 0)
    return t;
  double s = t * rate, r = round(s);
  return fabs(s - r) <= 0.5e-6 * rate + 1e-9 ? r / rate : t;
}

typedef struct {
  gint64 item_id;
  char *source; /* the file the records come from */
  GPtrArray *records;
} Batch;

static void
batch_free(Batch *b)
{
  g_free(b->source);
  g_ptr_array_unref(b->records);
  g_free(b);
}

static Batch *
batch_new(GPtrArray *batches, gint64 item_id, const char *source, GDestroyNotify free_func)
{
  for (guint i = 0; i < batches->len; i++) {
    Batch *b = g_ptr_array_index(batches, i);
    if (b->item_id == item_id && g_str_equal(b->source, source))
      return b;
  }
  Batch *b = g_new0(Batch, 1);
  b->item_id = item_id;
  b->source = g_strdup(source);
  b->records = g_ptr_array_new_with_free_func(free_func);
  g_ptr_array_add(batches, b);
  return b;
}

/* Token i of TEXT: the runs of non-whitespace, as character offsets. */
static GArray *
tokenize(const char *text)
{
  GArray *tokens = g_array_new(FALSE, FALSE, sizeof(gint64) * 2);
  gint64 pos = 0, start = -1;
  for (const char *p = text;; p = g_utf8_next_char(p), pos++) {
    gunichar c = g_utf8_get_char(p);
    gboolean space = c == 0 || g_unichar_isspace(c);
    if (!space && start < 0)
      start = pos;
    if (space && start >= 0) {
      gint64 t[2] = { start, pos };
      g_array_append_vals(tokens, t, 1);
      start = -1;
    }
    if (c == 0)
      break;
  }
  return tokens;
}

/* Moves SPANS, offsets into PARSED (rebuilt from CoNLL tokens), onto the item's TEXT, which
 * must hold the same tokens. */
static gboolean
align_spans(const char *parsed, const char *text, GPtrArray *spans, const char *file,
            char **problem)
{
  if (g_str_equal(parsed, text))
    return TRUE;
  g_autoptr(GArray) a = tokenize(parsed), b = tokenize(text);
  for (guint i = 0; i < a->len && i < b->len; i++) {
    const gint64 *ta = &g_array_index(a, gint64, 2 * i), *tb = &g_array_index(b, gint64, 2 * i);
    const char *pa = g_utf8_offset_to_pointer(parsed, ta[0]);
    const char *pb = g_utf8_offset_to_pointer(text, tb[0]);
    gsize la = (gsize)(g_utf8_offset_to_pointer(pa, ta[1] - ta[0]) - pa);
    gsize lb = (gsize)(g_utf8_offset_to_pointer(pb, tb[1] - tb[0]) - pb);
    if (la != lb || memcmp(pa, pb, la) != 0) {
      *problem = g_strdup_printf("%s: token %u “%.*s” is “%.*s” in the item's text: left out",
                                 file, i + 1, (int)la, pa, (int)lb, pb);
      return FALSE;
    }
  }
  if (a->len != b->len) {
    *problem = g_strdup_printf("%s: %u tokens, the item's text has %u: left out", file, a->len,
                               b->len);
    return FALSE;
  }
  for (guint i = 0; i < spans->len; i++) {
    FthSpanLabel *s = g_ptr_array_index(spans, i);
    gint64 start = -1, end = -1;
    for (guint k = 0; k < a->len; k++) {
      if (g_array_index(a, gint64, 2 * k) == s->start)
        start = g_array_index(b, gint64, 2 * k);
      if (g_array_index(a, gint64, 2 * k + 1) == s->end)
        end = g_array_index(b, gint64, 2 * k + 1);
    }
    if (start < 0 || end < 0) {
      *problem = g_strdup_printf("%s: span %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT
                                 " (%s) does not fall on tokens: left out",
                                 file, s->start, s->end, s->label);
      return FALSE;
    }
    s->start = start;
    s->end = end;
  }
  return TRUE;
}

/* Drops records equal to the item's human annotations (importing a file twice adds nothing). */
static guint
drop_existing(FthStore *store, Batch *b, gboolean segments, GError **error)
{
  g_autoptr(GPtrArray) have = segments
                                  ? fth_item_list_segments(store, b->item_id, FTH_AUTHOR_HUMAN, error)
                                  : fth_item_list_spans(store, b->item_id, FTH_AUTHOR_HUMAN, error);
  if (!have)
    return G_MAXUINT;
  guint dropped = 0;
  for (guint i = b->records->len; i-- > 0;) {
    gboolean same = FALSE;
    for (guint k = 0; k < have->len && !same; k++) {
      if (segments) {
        const FthSegmentLabel *x = b->records->pdata[i], *y = have->pdata[k];
        same = g_str_equal(x->label, y->label) && x->t0 == y->t0 && x->t1 == y->t1;
      } else {
        const FthSpanLabel *x = b->records->pdata[i], *y = have->pdata[k];
        same = g_str_equal(x->label, y->label) && x->start == y->start && x->end == y->end;
      }
    }
    if (same) {
      g_ptr_array_remove_index(b->records, i);
      dropped++;
    }
  }
  return dropped;
}

int
fth_cli_import_annotations(int argc, char **argv)
{
  char *format_name = NULL;
  gint64 item_id = 0;
  const GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format_name, FORMAT_LIST, "FORMAT" },
    { "item", 'i', 0, G_OPTION_ARG_INT64, &item_id,
      "Add everything to item ID (default: match the files' paths or names)", "ID" },
    { NULL },
  };
  gboolean parsed = fth_cli_parse_options(
      "import-annotations", "DIR --format FORMAT FILE... [--item ID]",
      "Adds the audio segments or text spans in FILEs to the items of the project in DIR.",
      "audacity: Audacity label tracks (t0<TAB>t1<TAB>label), one file per audio item.\n"
      "segments-jsonl: {\"path\",\"t0\",\"t1\",\"label\"} per line.\n"
      "spans-jsonl: {\"path\",\"start\",\"end\",\"label\"} per line, character offsets.\n"
      "conll: token<TAB>BIO-tag per line, one file per text item.\n"
      "JSONL records name their item by path (the stored path, another path to the same\n"
      "file, or a base name one item has); an Audacity or CoNLL file goes with the item of\n"
      "the same name without extension. Records the item already has are not added again.\n"
      "Files or records that match no item are listed on stderr (exit 3).",
      entries, &argc, &argv);
  g_autofree char *o1 = format_name;
  if (!parsed)
    return FTH_EXIT_USAGE;
  if (argc < 3)
    return fth_cli_usage_error("import-annotations", argc < 2 ? "missing DIR" : "missing FILE");
  if (!format_name)
    return fth_cli_usage_error("import-annotations", "missing --format (" FORMAT_LIST ")");
  AnnFormat format;
  if (!parse_format(format_name, &format))
    return fth_cli_usage_error("import-annotations", "unknown format “%s” (" FORMAT_LIST ")",
                               format_name);
  if (item_id < 0)
    return fth_cli_usage_error("import-annotations", "--item takes an item id (1 or more)");
  g_autoptr(FthStore) store = fth_cli_open_store(argv[1]);
  if (!store)
    return FTH_EXIT_FAILURE;
  gboolean segments = is_segments(format);
  FthItemKind kind = segments ? FTH_ITEM_AUDIO : FTH_ITEM_TEXT;
  GDestroyNotify free_func =
      segments ? (GDestroyNotify)fth_segment_label_free : (GDestroyNotify)fth_span_label_free;
  g_autoptr(GError) error = NULL;
  g_autoptr(FthItemRecord) target = NULL;
  g_autoptr(GPtrArray) items = NULL;
  if (item_id > 0) {
    if (!(target = get_item_of_kind(store, item_id, kind, format_name)))
      return FTH_EXIT_FAILURE;
    items = g_ptr_array_new_with_free_func((GDestroyNotify)fth_item_record_free);
  } else if (!(items = list_items(store, kind, &error))) {
    return fth_cli_fail_error(error);
  }
  ItemIndex ix;
  index_init(&ix, store, items);
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) batches = g_ptr_array_new_with_free_func((GDestroyNotify)batch_free);
  int status = FTH_EXIT_OK;

  /* Every file is read and checked before anything is added. */
  for (int f = 2; f < argc && status == FTH_EXIT_OK; f++) {
    const char *file = argv[f];
    g_autofree char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(file, &data, &len, &error)) {
      status = fth_cli_fail_error(error);
      break;
    }
    g_autofree char *stem = stem_of(file, -1);
    gint64 file_item = item_id > 0 ? item_id : lookup(ix.by_stem, stem);
    g_autoptr(GPtrArray) recs = NULL;
    switch (format) {
    case FMT_AUDACITY:
      recs = fth_audacity_labels_parse(data, len, file, &error);
      break;
    case FMT_SEGMENTS_JSONL:
      recs = fth_segments_jsonl_parse(data, len, file, &error);
      break;
    case FMT_SPANS_JSONL:
      recs = fth_spans_jsonl_parse(data, len, file, &error);
      break;
    case FMT_CONLL: {
      g_autofree char *text = NULL;
      if (fth_conll_parse(data, len, file, &text, &recs, &error) && file_item > 0) {
        g_autoptr(FthItemRecord) it = fth_store_get_item(store, file_item, &error);
        g_autofree char *doc = it ? item_text(store, it, &error) : NULL;
        char *problem = NULL;
        if (!doc) {
          g_clear_pointer(&recs, g_ptr_array_unref);
        } else if (!align_spans(text, doc, recs, file, &problem)) {
          g_ptr_array_add(problems, problem);
          continue;
        }
      }
      break;
    }
    }
    if (!recs) {
      status = fth_cli_fail_error(error);
      break;
    }
    if (one_file_per_item(format)) {
      if (file_item <= 0) {
        g_ptr_array_add(problems,
                        g_strdup_printf("%s: no %s item named “%s” (or several; use --item ID): "
                                        "left out",
                                        file, segments ? "audio" : "text", stem));
        continue;
      }
      Batch *b = batch_new(batches, file_item, file, free_func);
      g_ptr_array_extend_and_steal(b->records, g_steal_pointer(&recs));
      continue;
    }
    g_autoptr(GHashTable) unmatched = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < recs->len; i++) {
      const char *path = segments ? ((FthSegmentLabel *)recs->pdata[i])->path
                                  : ((FthSpanLabel *)recs->pdata[i])->path;
      gint64 id = item_id > 0 ? item_id : match_path(&ix, path);
      if (id <= 0) {
        char *key = g_strdup(path ? path : "(no path)");
        gsize n = GPOINTER_TO_SIZE(g_hash_table_lookup(unmatched, key));
        g_hash_table_insert(unmatched, key, GSIZE_TO_POINTER(n + 1));
        continue;
      }
      Batch *b = batch_new(batches, id, file, free_func);
      g_ptr_array_add(b->records, recs->pdata[i]);
      recs->pdata[i] = NULL;
    }
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, unmatched);
    while (g_hash_table_iter_next(&it, &key, &value))
      g_ptr_array_add(problems,
                      g_strdup_printf("%s: no %s item “%s” (%zu records; use --item ID): left out",
                                      file, segments ? "audio" : "text", (const char *)key,
                                      (size_t)GPOINTER_TO_SIZE(value)));
  }
  index_clear(&ix);
  if (status != FTH_EXIT_OK)
    return status;

  guint n_added = 0, n_same = 0, n_items = 0;
  for (guint i = 0; i < batches->len; i++) {
    Batch *b = g_ptr_array_index(batches, i);
    g_autoptr(FthItemRecord) it = fth_store_get_item(store, b->item_id, &error);
    if (!it)
      return fth_cli_fail_error(error);
    if (segments)
      for (guint k = 0; k < b->records->len; k++) {
        FthSegmentLabel *s = b->records->pdata[k];
        s->t0 = snap_to_sample(s->t0, it->sample_rate);
        s->t1 = snap_to_sample(s->t1, it->sample_rate);
      }
    guint same = drop_existing(store, b, segments, &error);
    if (same == G_MAXUINT)
      return fth_cli_fail_error(error);
    n_same += same;
    gboolean ok = segments ? fth_item_add_segments(store, b->item_id, b->records, &error)
                           : fth_item_add_spans(store, b->item_id, b->records, &error);
    if (!ok) {
      g_ptr_array_add(problems, g_strdup_printf("%s: %s: left out", b->source, error->message));
      g_clear_error(&error);
      continue;
    }
    n_added += b->records->len;
    n_items++;
  }
  for (guint i = 0; i < problems->len; i++)
    fprintf(stderr, "fathom: %s\n", (const char *)problems->pdata[i]);
  printf("Imported %u %s into %u items", n_added, segments ? "segments" : "spans", n_items);
  if (n_same)
    printf(" (%u already there)", n_same);
  printf("\n");
  return problems->len ? FTH_EXIT_PARTIAL : FTH_EXIT_OK;
}
