/* The importer: files and folders into a project store (see fathom/import.h). */
#include <fathom/core.h>
#include <fathom/import.h>
#include <fathom/media.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

G_DEFINE_QUARK(fth-import-error-quark, fth_import_error)

const char *const fth_fashion_mnist_classes[10] = {
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

/* How often (records) a long record file checks for cancellation and reports progress. */
#define RECORD_CHECK_INTERVAL 512

void
fth_import_options_init(FthImportOptions *options)
{
  memset(options, 0, sizeof *options);
  options->verify = TRUE;
  options->text_column = "text";
  options->jsonl_text_field = "text";
  options->jsonl_label_field = "label";
  options->split = FTH_SPLIT_NONE;
  options->batch_size = 1000;
}

static void
problem_free(gpointer data)
{
  FthImportProblem *p = data;
  g_free(p->path);
  g_free(p->reason);
  g_free(p);
}

FthImportReport *
fth_import_report_new(void)
{
  FthImportReport *r = g_new0(FthImportReport, 1);
  r->problems = g_ptr_array_new_with_free_func(problem_free);
  return r;
}

void
fth_import_report_free(FthImportReport *report)
{
  if (!report)
    return;
  g_ptr_array_unref(report->problems);
  g_free(report);
}

typedef struct {
  char *path;      /* absolute, canonical */
  char *root;      /* the folder source it was found under; NULL for a file source */
  gint64 size;
  gint64 mtime;
  gboolean consumed; /* an IDX labels file read together with its images file */
} SourceFile;

static void
source_file_free(gpointer data)
{
  SourceFile *sf = data;
  g_free(sf->path);
  g_free(sf->root);
  g_free(sf);
}

typedef struct {
  FthStore *store;
  const FthImportOptions *opt;
  GCancellable *cancellable;
  FthImportReport *report;
  FthImportProgressFunc progress;
  gpointer progress_data;
  gint64 done_bytes, total_bytes;
  guint in_batch;
  gboolean in_txn;
  GHashTable *labels; /* name -> gint64* id */
} Importer;

static void
add_problem(Importer *im, const char *path, gint64 member, const char *reason)
{
  FthImportProblem *p = g_new0(FthImportProblem, 1);
  p->path = g_strdup(path);
  p->member = member;
  p->reason = g_strdup(reason);
  g_ptr_array_add(im->report->problems, p);
}

/* Media errors start with the file name; the report keeps path and reason apart. */
static void
add_problem_error(Importer *im, const char *path, gint64 member, const GError *e)
{
  const char *msg = e->message;
  gsize n = strlen(path);
  if (strncmp(msg, path, n) == 0 && msg[n] == ':') {
    msg += n + 1;
    while (*msg == ' ')
      msg++;
  }
  add_problem(im, path, member, msg);
}

static void
report_progress(Importer *im, gint64 done, const char *current)
{
  if (im->progress)
    im->progress(done, im->total_bytes, current, im->report, im->progress_data);
}

static gboolean
ensure_txn(Importer *im, GError **error)
{
  if (im->in_txn)
    return TRUE;
  if (!fth_store_begin(im->store, error))
    return FALSE;
  im->in_txn = TRUE;
  im->in_batch = 0;
  return TRUE;
}

static gboolean
commit_txn(Importer *im, GError **error)
{
  if (!im->in_txn)
    return TRUE;
  im->in_txn = FALSE;
  if (!fth_store_commit(im->store, error)) {
    fth_store_rollback(im->store, NULL);
    return FALSE;
  }
  return TRUE;
}

static gboolean
lookup_label(Importer *im, const char *name, gint64 *out_id, GError **error)
{
  gint64 *cached = g_hash_table_lookup(im->labels, name);
  if (cached) {
    *out_id = *cached;
    return TRUE;
  }
  g_autoptr(GError) local = NULL;
  g_autoptr(FthLabel) label = fth_store_find_label(im->store, name, &local);
  if (local) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  gint64 id;
  if (label) {
    id = label->id;
  } else {
    if (!fth_store_add_label(im->store, name, NULL, NULL, FTH_LABEL_CLASS, &id, error))
      return FALSE;
    im->report->labels_created++;
  }
  g_hash_table_insert(im->labels, g_strdup(name), g_memdup2(&id, sizeof id));
  *out_id = id;
  return TRUE;
}

/* Adds an item and (when LABEL is set) its class annotation, both or neither. A duplicate
 * is counted, not an error. FALSE only for store failures, which end the import. */
static gboolean
add_item(Importer *im, const FthItemRecord *rec, const char *label, GError **error)
{
  if (!ensure_txn(im, error))
    return FALSE;
  gint64 id = 0;
  gboolean duplicate = FALSE;
  if (!fth_store_add_item(im->store, rec, &id, &duplicate, error)) {
    if (duplicate) {
      im->report->duplicates++;
      return TRUE;
    }
    return FALSE;
  }
  if (label && *label) {
    gint64 label_id;
    g_autoptr(FthAnnotation) ann = fth_annotation_new();
    gboolean ok = lookup_label(im, label, &label_id, error);
    if (ok) {
      ann->item_id = id;
      ann->label_id = label_id;
      ann->geom = FTH_GEOM_WHOLE;
      ann->author = FTH_AUTHOR_HUMAN;
      ok = fth_store_add_annotation(im->store, ann, NULL, error);
    }
    if (!ok) {
      fth_store_delete_item(im->store, id, NULL);
      return FALSE;
    }
    im->report->annotations++;
  }
  im->report->added++;
  switch (rec->kind) {
  case FTH_ITEM_IMAGE: im->report->added_images++; break;
  case FTH_ITEM_AUDIO: im->report->added_audio++; break;
  default: im->report->added_text++; break;
  }
  if (++im->in_batch >= MAX(im->opt->batch_size, 1u))
    return commit_txn(im, error);
  return TRUE;
}

/* The resume check. Returns TRUE when the item (stored path, member) is already there and
 * unchanged (counted as existing). A file that changed since is a problem (*changed). */
static gboolean
already_imported(Importer *im, const char *stored, gint64 member, gint64 size, gint64 mtime,
                 gboolean *changed, GError **error)
{
  *changed = FALSE;
  g_autoptr(FthItemRecord) item = fth_store_find_item(im->store, stored, member, error);
  if (!item)
    return FALSE;
  if (item->mtime != mtime || (size >= 0 && item->size_bytes != size)) {
    *changed = TRUE;
    return FALSE;
  }
  im->report->existing++;
  return TRUE;
}

static const char *
changed_reason(void)
{
  return "changed since it was imported (size or modification time differ); remove its items "
         "to import it again";
}

static char *
folder_label(Importer *im, const SourceFile *sf)
{
  if (!im->opt->folder_labels || !sf->root)
    return NULL;
  gsize n = strlen(sf->root);
  if (strncmp(sf->path, sf->root, n) != 0 || sf->path[n] != G_DIR_SEPARATOR)
    return NULL;
  const char *rel = sf->path + n + 1;
  const char *slash = strchr(rel, G_DIR_SEPARATOR);
  return slash ? g_strndup(rel, (gsize)(slash - rel)) : NULL;
}

/* TRUE (with ERROR set) when the import was cancelled. */
static gboolean
check_cancel(Importer *im, GError **error)
{
  return g_cancellable_set_error_if_cancelled(im->cancellable, error);
}

/* ---- single-file items ------------------------------------------------------------------ */

/* Single-file items are read, hashed and decoded on the shared intra-op pool (fathom/core.h:
 * the same threads the numeric kernels use, so an import next to a training run does not
 * oversubscribe the cores), a chunk of files at a time; the store writes stay on the import
 * thread, in walk order. */
#define SINGLE_CHUNK 64

typedef struct {
  const SourceFile *sf;
  FthMediaFormat format;
  gboolean skip;         /* already imported, or reported during the check */
  gboolean prepared;     /* the worker ran (not cancelled before it) */
  FthItemRecord *rec;    /* on success; path, split and label are set by the import thread */
  GError *error;         /* why the file cannot be imported */
} SingleJob;

typedef struct {
  SingleJob *jobs;
  gboolean verify;
  GCancellable *cancellable;
} SingleChunk;

/* Thread-safe: touches only the file and its SingleJob. */
static void
prepare_single(SingleJob *job, gboolean verify)
{
  const SourceFile *sf = job->sf;
  GError *local = NULL;
  g_autoptr(GMappedFile) mapped = g_mapped_file_new(sf->path, FALSE, &local);
  if (!mapped) {
    job->error = local;
    return;
  }
  const guint8 *data = (const guint8 *)g_mapped_file_get_contents(mapped);
  gsize len = g_mapped_file_get_length(mapped);
  if (len == 0) {
    job->error = g_error_new_literal(FTH_IMPORT_ERROR, FTH_IMPORT_ERROR_CONTENT, "empty file");
    return;
  }
  g_autoptr(FthItemRecord) rec = fth_item_record_new();
  rec->member = -1;
  rec->sha256 = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
  rec->size_bytes = (gint64)len;
  rec->mtime = sf->mtime;

  switch (fth_media_format_kind(job->format)) {
  case FTH_MEDIA_KIND_IMAGE: {
    rec->kind = FTH_ITEM_IMAGE;
    if (verify) {
      FthImage image = { 0 };
      if (!fth_image_decode_memory(data, len, sf->path, FTH_IMAGE_DECODE_DEFAULT, &image,
                                   &local))
        break;
      rec->width = image.width;
      rec->height = image.height;
      fth_image_clear(&image);
    } else {
      FthImageInfo info;
      if (!fth_image_probe_memory(data, len, sf->path, FTH_IMAGE_DECODE_DEFAULT, &info, &local))
        break;
      rec->width = info.width;
      rec->height = info.height;
    }
    break;
  }
  case FTH_MEDIA_KIND_AUDIO: {
    rec->kind = FTH_ITEM_AUDIO;
    if (verify) {
      FthAudio audio = { 0 };
      if (!fth_audio_decode_file(sf->path, 0, FALSE, &audio, &local))
        break;
      rec->sample_rate = audio.sample_rate;
      rec->duration_s = audio.sample_rate > 0 ? (double)audio.frames / audio.sample_rate : 0;
      fth_audio_clear(&audio);
    } else {
      FthAudioInfo info;
      if (!fth_audio_probe_file(sf->path, &info, &local))
        break;
      rec->sample_rate = info.sample_rate;
      rec->duration_s = info.duration;
    }
    break;
  }
  default: {
    rec->kind = FTH_ITEM_TEXT;
    if (!fth_text_validate((const char *)data, len, sf->path, &local))
      break;
    /* A leading UTF-8 byte order mark is not part of the text. */
    gsize skip = len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    rec->length_chars = (gint64)fth_text_char_count((const char *)data + skip, len - skip);
    break;
  }
  }
  if (local)
    job->error = local;
  else
    job->rec = g_steal_pointer(&rec);
}

static void
prepare_range(void *ctx, size_t begin, size_t end, int worker)
{
  SingleChunk *chunk = ctx;
  for (size_t i = begin; i < end; i++) {
    SingleJob *job = &chunk->jobs[i];
    if (job->skip || g_cancellable_is_cancelled(chunk->cancellable))
      continue;
    prepare_single(job, chunk->verify);
    job->prepared = TRUE;
  }
}

/* Imports the single-file items FILES[0..N): resume checks, parallel preparation, then the
 * store writes in order. */
static gboolean
import_singles(Importer *im, SourceFile **files, const FthMediaFormat *formats, guint n,
               GError **error)
{
  SingleJob jobs[SINGLE_CHUNK] = { 0 };
  gboolean ok = TRUE;
  for (guint i = 0; i < n; i++) {
    jobs[i].sf = files[i];
    jobs[i].format = formats[i];
    g_autofree char *stored = fth_store_relative_path(im->store, files[i]->path);
    gboolean changed = FALSE;
    GError *local = NULL;
    if (already_imported(im, stored, -1, files[i]->size, files[i]->mtime, &changed, &local)) {
      jobs[i].skip = TRUE;
    } else if (local) {
      g_propagate_error(error, local);
      return FALSE;
    } else if (changed) {
      jobs[i].skip = TRUE;
      add_problem(im, files[i]->path, -1, changed_reason());
    }
  }
  SingleChunk chunk = { jobs, im->opt->verify, im->cancellable };
  fth_parallel_for(n, 1, prepare_range, &chunk);

  for (guint i = 0; i < n; i++) {
    SingleJob *job = &jobs[i];
    const SourceFile *sf = job->sf;
    /* Cancellation is honoured file by file, also inside a prepared chunk. */
    if (ok && check_cancel(im, error))
      ok = FALSE;
    if (ok)
      im->report->files++;
    if (ok && job->error)
      add_problem_error(im, sf->path, -1, job->error);
    if (ok && job->rec) {
      job->rec->path = fth_store_relative_path(im->store, sf->path);
      job->rec->split = im->opt->split;
      g_autofree char *label = folder_label(im, sf);
      ok = add_item(im, job->rec, label, error);
    }
    g_clear_error(&job->error);
    g_clear_pointer(&job->rec, fth_item_record_free);
    if (ok) {
      im->done_bytes += sf->size;
      report_progress(im, im->done_bytes, sf->path);
    }
  }
  return ok;
}

/* ---- CSV and JSONL ---------------------------------------------------------------------- */

typedef struct {
  Importer *im;
  const SourceFile *sf;
  char *stored;
} RecordFile;

/* FALSE with ERROR set: fatal. FALSE without: stop reading this file (already reported). */
static gboolean
record_file_begin(Importer *im, const SourceFile *sf, RecordFile *rf, GError **error)
{
  rf->im = im;
  rf->sf = sf;
  rf->stored = fth_store_relative_path(im->store, sf->path);
  g_autoptr(FthItemRecord) first = fth_store_find_item(im->store, rf->stored, 0, error);
  if (!first)
    return error == NULL || *error == NULL;
  if (first->mtime != sf->mtime) {
    add_problem(im, sf->path, -1, changed_reason());
    return FALSE;
  }
  return TRUE;
}

static gboolean
add_text_record(RecordFile *rf, gint64 member, const char *text, const char *label,
                GError **error)
{
  Importer *im = rf->im;
  g_autoptr(FthItemRecord) existing = fth_store_find_item(im->store, rf->stored, member, error);
  if (existing) {
    im->report->existing++;
    return TRUE;
  }
  if (error && *error)
    return FALSE;
  if (!text || !*text) {
    add_problem(im, rf->sf->path, member, "empty text");
    return TRUE;
  }
  gsize len = strlen(text);
  g_autoptr(FthItemRecord) rec = fth_item_record_new();
  rec->kind = FTH_ITEM_TEXT;
  rec->path = g_strdup(rf->stored);
  rec->member = member;
  rec->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, text, (gssize)len);
  rec->size_bytes = (gint64)len;
  rec->length_chars = (gint64)fth_text_char_count(text, len);
  rec->text = g_strdup(text);
  rec->split = im->opt->split;
  rec->mtime = rf->sf->mtime;
  return add_item(im, rec, label, error);
}

static gboolean
import_csv(Importer *im, const SourceFile *sf, GError **error)
{
  RecordFile rf = { 0 };
  GError *local = NULL;
  gboolean ok = record_file_begin(im, sf, &rf, error);
  g_autofree char *stored = rf.stored;
  if (!ok)
    return error == NULL || *error == NULL;

  g_autoptr(FthCsvReader) reader = fth_csv_reader_open(sf->path, &local);
  if (!reader) {
    add_problem_error(im, sf->path, -1, local);
    g_clear_error(&local);
    return TRUE;
  }
  const char *text_name = im->opt->text_column ? im->opt->text_column : "text";
  int text_col = fth_csv_reader_find_column(reader, text_name, &local);
  int label_col = -1;
  if (text_col >= 0 && im->opt->label_column)
    label_col = fth_csv_reader_find_column(reader, im->opt->label_column, &local);
  if (local) {
    add_problem_error(im, sf->path, -1, local);
    g_clear_error(&local);
    return TRUE;
  }
  if (!im->opt->label_column) {
    guint n_cols = 0;
    const char *const *cols = fth_csv_reader_get_columns(reader, &n_cols);
    for (guint i = 0; i < n_cols && label_col < 0; i++)
      if (g_strcmp0(cols[i], "label") == 0)
        label_col = (int)i;
  }

  const char *const *fields;
  guint n_fields;
  for (gint64 row = 0; fth_csv_reader_next_row(reader, &fields, &n_fields, &local); row++) {
    if (row % RECORD_CHECK_INTERVAL == 0 && check_cancel(im, error))
      return FALSE;
    const char *label = label_col >= 0 && (guint)label_col < n_fields ? fields[label_col] : NULL;
    const char *text = (guint)text_col < n_fields ? fields[text_col] : NULL;
    if (!add_text_record(&rf, row, text, label, error))
      return FALSE;
  }
  if (local) {
    add_problem_error(im, sf->path, -1, local);
    g_clear_error(&local);
  }
  return TRUE;
}

static gboolean
import_jsonl(Importer *im, const SourceFile *sf, GError **error)
{
  RecordFile rf = { 0 };
  GError *local = NULL;
  gboolean ok = record_file_begin(im, sf, &rf, error);
  g_autofree char *stored = rf.stored;
  if (!ok)
    return error == NULL || *error == NULL;

  g_autoptr(FthJsonlReader) reader = fth_jsonl_reader_open(sf->path, &local);
  if (!reader) {
    add_problem_error(im, sf->path, -1, local);
    g_clear_error(&local);
    return TRUE;
  }
  const char *text_field = im->opt->jsonl_text_field ? im->opt->jsonl_text_field : "text";
  const char *label_field = im->opt->jsonl_label_field ? im->opt->jsonl_label_field : "label";
  JsonObject *obj = NULL;
  for (gint64 member = 0; fth_jsonl_reader_next(reader, &obj, &local); member++) {
    if (member % RECORD_CHECK_INTERVAL == 0 && check_cancel(im, error)) {
      json_object_unref(obj);
      return FALSE;
    }
    JsonNode *text_node = json_object_get_member(obj, text_field);
    if (!text_node || !JSON_NODE_HOLDS_VALUE(text_node) ||
        json_node_get_value_type(text_node) != G_TYPE_STRING) {
      g_autofree char *reason = g_strdup_printf(
          "line %" G_GUINT64_FORMAT ": no string field “%s”",
          fth_jsonl_reader_get_line(reader), text_field);
      add_problem(im, sf->path, member, reason);
      json_object_unref(obj);
      continue;
    }
    JsonNode *label_node = json_object_get_member(obj, label_field);
    g_autofree char *label = NULL;
    if (label_node && JSON_NODE_HOLDS_VALUE(label_node)) {
      if (json_node_get_value_type(label_node) == G_TYPE_STRING)
        label = g_strdup(json_node_get_string(label_node));
      else if (json_node_get_value_type(label_node) == G_TYPE_INT64)
        label = g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(label_node));
    }
    gboolean added = add_text_record(&rf, member, json_node_get_string(text_node), label, error);
    json_object_unref(obj);
    if (!added)
      return FALSE;
  }
  if (local) {
    add_problem_error(im, sf->path, -1, local);
    g_clear_error(&local);
  }
  return TRUE;
}

/* ---- IDX -------------------------------------------------------------------------------- */

/* "X-images-idx3-ubyte.gz" -> "X-labels-idx1-ubyte.gz"; NULL when the name is not of that form. */
static char *
idx_labels_partner(const char *images_path)
{
  g_autofree char *base = g_path_get_basename(images_path);
  char *at = strstr(base, "images-idx3");
  if (!at)
    return NULL;
  g_autofree char *dir = g_path_get_dirname(images_path);
  g_autofree char *prefix = g_strndup(base, (gsize)(at - base));
  g_autofree char *name = g_strconcat(prefix, "labels-idx1", at + strlen("images-idx3"), NULL);
  return g_build_filename(dir, name, NULL);
}

static char *
idx_images_partner(const char *labels_path)
{
  g_autofree char *base = g_path_get_basename(labels_path);
  char *at = strstr(base, "labels-idx1");
  if (!at)
    return NULL;
  g_autofree char *dir = g_path_get_dirname(labels_path);
  g_autofree char *prefix = g_strndup(base, (gsize)(at - base));
  g_autofree char *name = g_strconcat(prefix, "images-idx3", at + strlen("labels-idx1"), NULL);
  return g_build_filename(dir, name, NULL);
}

static FthSplit
split_from_name(Importer *im, const char *path)
{
  g_autofree char *base = g_path_get_basename(path);
  if (g_str_has_prefix(base, "t10k"))
    return FTH_SPLIT_TEST;
  if (g_str_has_prefix(base, "train"))
    return FTH_SPLIT_TRAIN;
  return im->opt->split;
}

static gboolean
import_idx(Importer *im, const SourceFile *sf, GError **error)
{
  GError *local = NULL;
  g_autofree char *labels_path = idx_labels_partner(sf->path);
  g_autoptr(FthIdx) images = fth_idx_open(sf->path, &local);
  if (!images) {
    add_problem_error(im, sf->path, -1, local);
    g_clear_error(&local);
    return TRUE;
  }
  if (fth_idx_get_dtype(images) != FTH_IDX_U8 || fth_idx_get_n_dims(images) != 3) {
    add_problem(im, sf->path, -1,
                "not an IDX image file (expected 3 dimensions of unsigned bytes: count, rows, "
                "columns)");
    return TRUE;
  }
  gsize n = fth_idx_get_n_records(images);
  gint64 labels_size = 0;
  g_autoptr(FthIdx) labels = NULL;
  if (labels_path && g_file_test(labels_path, G_FILE_TEST_IS_REGULAR)) {
    struct stat st;
    if (stat(labels_path, &st) == 0)
      labels_size = st.st_size;
    labels = fth_idx_open(labels_path, &local);
    if (!labels) {
      add_problem_error(im, labels_path, -1, local);
      g_clear_error(&local);
      return TRUE;
    }
    if (fth_idx_get_dtype(labels) != FTH_IDX_U8 || fth_idx_get_n_dims(labels) != 1) {
      add_problem(im, labels_path, -1,
                  "not an IDX label file (expected 1 dimension of unsigned bytes)");
      return TRUE;
    }
    if (fth_idx_get_n_records(labels) != n) {
      g_autofree char *reason = g_strdup_printf(
          "holds %" G_GSIZE_FORMAT " labels but %s holds %" G_GSIZE_FORMAT " images",
          fth_idx_get_n_records(labels), sf->path, n);
      add_problem(im, labels_path, -1, reason);
      return TRUE;
    }
  }

  /* Class names, created in class order so label positions follow the class index. */
  g_autofree char *lower = g_ascii_strdown(sf->path, -1);
  gboolean fashion = strstr(lower, "fashion") != NULL;
  guint n_classes = 0;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  if (labels) {
    const guint8 *lv = fth_idx_get_data(labels, NULL);
    guint max = 0;
    for (gsize i = 0; i < n; i++)
      max = MAX(max, lv[i]);
    n_classes = max + 1;
    if (fashion && n_classes > G_N_ELEMENTS(fth_fashion_mnist_classes)) {
      g_autofree char *reason = g_strdup_printf(
          "label value %u is out of range for Fashion-MNIST (0..9)", max);
      add_problem(im, labels_path, -1, reason);
      return TRUE;
    }
    if (fashion)
      n_classes = G_N_ELEMENTS(fth_fashion_mnist_classes);
    for (guint c = 0; c < n_classes; c++) {
      g_ptr_array_add(names, fashion ? g_strdup(fth_fashion_mnist_classes[c])
                                     : g_strdup_printf("%u", c));
    }
  }

  g_autofree char *stored = fth_store_relative_path(im->store, sf->path);
  g_autoptr(FthItemRecord) last = fth_store_find_item(im->store, stored, (gint64)n - 1, &local);
  if (local) {
    g_propagate_error(error, local);
    return FALSE;
  }
  if (last && last->mtime != sf->mtime) {
    add_problem(im, sf->path, -1, changed_reason());
    return TRUE;
  }
  if (labels && !last) {
    if (!ensure_txn(im, error))
      return FALSE;
    for (guint c = 0; c < names->len; c++) {
      gint64 id;
      if (!lookup_label(im, g_ptr_array_index(names, c), &id, error))
        return FALSE;
    }
  }

  gsize rsize = fth_idx_get_record_size(images);
  FthSplit split = split_from_name(im, sf->path);
  const guint8 *label_values = labels ? fth_idx_get_data(labels, NULL) : NULL;
  gint64 bytes = sf->size + labels_size;
  GChecksum *checksum = g_checksum_new(G_CHECKSUM_SHA256);
  gboolean ok = TRUE;
  for (gsize i = 0; i < n && ok; i++) {
    if (i % RECORD_CHECK_INTERVAL == 0) {
      if (check_cancel(im, error)) {
        ok = FALSE;
        break;
      }
      report_progress(im, im->done_bytes + (gint64)((double)bytes * (double)i / (double)n),
                      sf->path);
    }
    /* Checked for every record: a cancelled run may have stopped anywhere in the file. */
    g_autoptr(FthItemRecord) existing = fth_store_find_item(im->store, stored, (gint64)i, &local);
    if (local) {
      g_propagate_error(error, local);
      ok = FALSE;
      break;
    }
    if (existing) {
      im->report->existing++;
      continue;
    }
    const guint8 *rec_data = fth_idx_get_record(images, i);
    g_checksum_reset(checksum);
    g_checksum_update(checksum, rec_data, (gssize)rsize);
    FthItemRecord rec = {
      .kind = FTH_ITEM_IMAGE,
      .path = stored,
      .member = (gint64)i,
      .sha256 = (char *)g_checksum_get_string(checksum),
      .size_bytes = (gint64)rsize,
      .height = (int)fth_idx_get_dim(images, 1),
      .width = (int)fth_idx_get_dim(images, 2),
      .split = split,
      .mtime = sf->mtime,
    };
    const char *label = label_values ? g_ptr_array_index(names, label_values[i]) : NULL;
    ok = add_item(im, &rec, label, error);
  }
  g_checksum_free(checksum);
  im->done_bytes += labels_size;
  return ok;
}

/* ---- walking and copying ---------------------------------------------------------------- */

static gboolean
is_project_file(Importer *im, const char *path)
{
  g_autofree char *dir = g_path_get_dirname(path);
  if (g_strcmp0(dir, fth_store_get_dir(im->store)) != 0)
    return FALSE;
  g_autofree char *base = g_path_get_basename(path);
  return g_str_has_prefix(base, FTH_STORE_DB_NAME);
}

static int
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
walk(Importer *im, const char *path, const char *root, GPtrArray *out)
{
  struct stat st;
  if (lstat(path, &st) != 0) {
    add_problem(im, path, -1, g_strerror(errno));
    return;
  }
  if (S_ISLNK(st.st_mode)) {
    /* Links to files are followed; links to folders are not (they can loop). */
    if (stat(path, &st) != 0) {
      add_problem(im, path, -1, "broken symbolic link");
      return;
    }
    if (S_ISDIR(st.st_mode))
      return;
  }
  if (S_ISDIR(st.st_mode)) {
    GError *e = NULL;
    GDir *dir = g_dir_open(path, 0, &e);
    if (!dir) {
      add_problem(im, path, -1, e->message);
      g_error_free(e);
      return;
    }
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(dir)))
      if (name[0] != '.')
        g_ptr_array_add(names, g_strdup(name));
    g_dir_close(dir);
    g_ptr_array_sort(names, compare_names);
    for (guint i = 0; i < names->len; i++) {
      g_autofree char *child = g_build_filename(path, g_ptr_array_index(names, i), NULL);
      walk(im, child, root, out);
    }
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    add_problem(im, path, -1, "not a regular file");
    return;
  }
  if (is_project_file(im, path))
    return;
  SourceFile *sf = g_new0(SourceFile, 1);
  sf->path = g_strdup(path);
  sf->root = g_strdup(root);
  sf->size = st.st_size;
  sf->mtime = st.st_mtime;
  g_ptr_array_add(out, sf);
}

static gboolean
path_is_inside(const char *path, const char *dir)
{
  gsize n = strlen(dir);
  return strncmp(path, dir, n) == 0 && (path[n] == G_DIR_SEPARATOR || path[n] == '\0');
}

/* Copies SF into DEST (creating folders) unless an identical-size copy is there already, then
 * points SF at the copy. FALSE (reported) when the copy fails. */
static gboolean
copy_into_media(Importer *im, SourceFile *sf, const char *dest, const char *dest_root)
{
  struct stat st;
  if (stat(dest, &st) == 0) {
    if (st.st_size != sf->size) {
      g_autofree char *reason = g_strdup_printf(
          "cannot copy into the project: %s exists with different content", dest);
      add_problem(im, sf->path, -1, reason);
      return FALSE;
    }
  } else {
    g_autofree char *dir = g_path_get_dirname(dest);
    g_autoptr(GError) e = NULL;
    g_autoptr(GFile) from = g_file_new_for_path(sf->path);
    g_autoptr(GFile) to = g_file_new_for_path(dest);
    if (g_mkdir_with_parents(dir, 0755) != 0) {
      g_autofree char *reason =
          g_strdup_printf("cannot create %s: %s", dir, g_strerror(errno));
      add_problem(im, sf->path, -1, reason);
      return FALSE;
    }
    /* All metadata: the copy keeps the modification time, so a re-run recognises it. */
    if (!g_file_copy(from, to, G_FILE_COPY_ALL_METADATA, im->cancellable, NULL, NULL, &e)) {
      g_autofree char *reason = g_strdup_printf("cannot copy into the project: %s", e->message);
      add_problem(im, sf->path, -1, reason);
      return FALSE;
    }
    im->report->copied++;
    if (stat(dest, &st) != 0)
      return FALSE;
  }
  g_free(sf->path);
  sf->path = g_strdup(dest);
  g_free(sf->root);
  sf->root = g_strdup(dest_root);
  sf->size = st.st_size;
  sf->mtime = st.st_mtime;
  return TRUE;
}

static gboolean
collect_sources(Importer *im, const char *const *sources, GPtrArray *files, GError **error)
{
  const char *project = fth_store_get_dir(im->store);
  g_autofree char *media = g_build_filename(project, "media", NULL);
  for (guint s = 0; sources[s]; s++) {
    g_autofree char *abs = g_canonicalize_filename(sources[s], NULL);
    if (!g_file_test(abs, G_FILE_TEST_EXISTS)) {
      g_set_error(error, FTH_IMPORT_ERROR, FTH_IMPORT_ERROR_SOURCE, "%s: no such file or folder",
                  sources[s]);
      return FALSE;
    }
    gboolean is_dir = g_file_test(abs, G_FILE_TEST_IS_DIR);
    guint first = files->len;
    walk(im, abs, is_dir ? abs : NULL, files);
    if (!im->opt->copy || path_is_inside(abs, project))
      continue;
    g_autofree char *base = g_path_get_basename(abs);
    g_autofree char *dest_root = g_build_filename(media, base, NULL);
    for (guint i = first; i < files->len; i++) {
      SourceFile *sf = g_ptr_array_index(files, i);
      if (g_cancellable_set_error_if_cancelled(im->cancellable, error))
        return FALSE;
      g_autofree char *dest = is_dir ? g_build_filename(dest_root, sf->path + strlen(abs) + 1, NULL)
                                     : g_strdup(dest_root);
      if (!copy_into_media(im, sf, dest, is_dir ? dest_root : NULL))
        sf->consumed = TRUE;
    }
  }
  /* An IDX labels file is read with its images file; alone it cannot be imported. */
  g_autoptr(GHashTable) paths = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < files->len; i++)
    g_hash_table_add(paths, ((SourceFile *)g_ptr_array_index(files, i))->path);
  for (guint i = 0; i < files->len; i++) {
    SourceFile *sf = g_ptr_array_index(files, i);
    if (sf->consumed || fth_media_format_from_path(sf->path) != FTH_MEDIA_FORMAT_IDX)
      continue;
    g_autofree char *images = idx_images_partner(sf->path);
    if (!images)
      continue;
    sf->consumed = TRUE;
    if (!g_hash_table_contains(paths, images) && !g_file_test(images, G_FILE_TEST_IS_REGULAR)) {
      g_autofree char *reason =
          g_strdup_printf("IDX labels file without its images file (%s)", images);
      add_problem(im, sf->path, -1, reason);
    } else if (!g_hash_table_contains(paths, images)) {
      g_autofree char *reason =
          g_strdup_printf("IDX labels file: import its images file %s instead", images);
      add_problem(im, sf->path, -1, reason);
    }
  }
  return TRUE;
}

static FthMediaFormat
detect_format(const SourceFile *sf)
{
  FthMediaFormat by_name = fth_media_format_from_path(sf->path);
  if (by_name == FTH_MEDIA_FORMAT_CSV || by_name == FTH_MEDIA_FORMAT_JSONL ||
      by_name == FTH_MEDIA_FORMAT_IDX)
    return by_name;
  guint8 head[512];
  gsize n = 0;
  FILE *f = fopen(sf->path, "rb");
  if (f) {
    n = fread(head, 1, sizeof head, f);
    fclose(f);
  }
  FthMediaFormat by_content = fth_media_sniff(head, n);
  if (by_content != FTH_MEDIA_FORMAT_UNKNOWN)
    return by_content;
  /* A .txt that is not UTF-8 is still text: decoding it reports the encoding problem. */
  return by_name == FTH_MEDIA_FORMAT_TEXT ? FTH_MEDIA_FORMAT_TEXT : FTH_MEDIA_FORMAT_UNKNOWN;
}

/* Files that are not single items: record files and the ones that cannot be imported. */
static gboolean
import_file(Importer *im, SourceFile *sf, FthMediaFormat format, GError **error)
{
  im->report->files++;
  switch (format) {
  case FTH_MEDIA_FORMAT_CSV:
    return import_csv(im, sf, error);
  case FTH_MEDIA_FORMAT_JSONL:
    return import_jsonl(im, sf, error);
  case FTH_MEDIA_FORMAT_IDX:
    return import_idx(im, sf, error);
  default: {
    FthMediaFormat by_name = fth_media_format_from_path(sf->path);
    g_autofree char *reason =
        by_name != FTH_MEDIA_FORMAT_UNKNOWN
            ? g_strdup_printf("not a valid %s file (its content is not recognised)",
                              fth_media_format_name(by_name))
            : g_strdup("unsupported format (not an image, audio, text, CSV, JSONL or IDX file)");
    add_problem(im, sf->path, -1, reason);
    return TRUE;
  }
  }
}

gboolean
fth_import_run(FthStore *store, const char *const *sources, const FthImportOptions *options,
               GCancellable *cancellable, FthImportProgressFunc progress, gpointer progress_data,
               FthImportReport **report_out, GError **error)
{
  g_return_val_if_fail(FTH_IS_STORE(store) && sources != NULL, FALSE);
  FthImportOptions defaults;
  if (!options) {
    fth_import_options_init(&defaults);
    options = &defaults;
  }
  gint64 t0 = g_get_monotonic_time();
  Importer im = {
    .store = store,
    .opt = options,
    .cancellable = cancellable,
    .report = fth_import_report_new(),
    .progress = progress,
    .progress_data = progress_data,
    .labels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
  };
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(source_file_free);
  GError *local = NULL;
  gboolean ok = collect_sources(&im, sources, files, &local);
  for (guint i = 0; ok && i < files->len; i++) {
    SourceFile *sf = g_ptr_array_index(files, i);
    if (!sf->consumed)
      im.total_bytes += sf->size;
  }
  SourceFile *singles[SINGLE_CHUNK];
  FthMediaFormat single_formats[SINGLE_CHUNK];
  guint n_singles = 0;
  for (guint i = 0; ok && i <= files->len; i++) {
    SourceFile *sf = i < files->len ? g_ptr_array_index(files, i) : NULL;
    if (sf && sf->consumed)
      continue;
    FthMediaFormat format = sf ? detect_format(sf) : FTH_MEDIA_FORMAT_UNKNOWN;
    FthMediaKind kind = fth_media_format_kind(format);
    gboolean single = sf && (kind == FTH_MEDIA_KIND_IMAGE || kind == FTH_MEDIA_KIND_AUDIO ||
                             kind == FTH_MEDIA_KIND_TEXT);
    /* A chunk of single files is imported when it is full or the next file is different. */
    if (n_singles > 0 && (!single || n_singles == SINGLE_CHUNK)) {
      if (check_cancel(&im, &local)) {
        ok = FALSE;
        break;
      }
      ok = import_singles(&im, singles, single_formats, n_singles, &local);
      n_singles = 0;
      if (!ok)
        break;
    }
    if (!sf)
      break;
    if (single) {
      singles[n_singles] = sf;
      single_formats[n_singles++] = format;
      continue;
    }
    if (check_cancel(&im, &local)) {
      ok = FALSE;
      break;
    }
    report_progress(&im, im.done_bytes, sf->path);
    ok = import_file(&im, sf, format, &local);
    im.done_bytes += sf->size;
  }
  if (ok) {
    ok = commit_txn(&im, &local);
  } else if (im.in_txn) {
    /* Cancelled: keep the complete items of this batch. On a store failure nothing more can
     * be trusted from this batch, so it is rolled back. */
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      GError *commit_error = NULL;
      if (!commit_txn(&im, &commit_error)) {
        g_clear_error(&local);
        local = commit_error;
      }
    } else {
      im.in_txn = FALSE;
      fth_store_rollback(store, NULL);
    }
  }
  if (ok)
    report_progress(&im, im.total_bytes, NULL);
  g_hash_table_unref(im.labels);
  im.report->elapsed_s = (double)(g_get_monotonic_time() - t0) / 1e6;
  if (report_out)
    *report_out = im.report;
  else
    fth_import_report_free(im.report);
  if (local)
    g_propagate_error(error, local);
  return ok;
}

/* ---- as a job --------------------------------------------------------------------------- */

typedef struct {
  FthStore *store;
  char **sources;
  FthImportOptions options;
  char *strings[4]; /* owned copies of the options' strings */
  FthImportReport *report;
  guint problems_sent;
  gint64 last_progress_us;
} ImportJob;

static void
import_job_free(gpointer data)
{
  ImportJob *ij = data;
  g_object_unref(ij->store);
  g_strfreev(ij->sources);
  for (guint i = 0; i < G_N_ELEMENTS(ij->strings); i++)
    g_free(ij->strings[i]);
  fth_import_report_free(ij->report);
  g_free(ij);
}

static void
send_problems(FthJob *job, ImportJob *ij, gint64 done, gint64 total, const FthImportReport *r)
{
  for (; ij->problems_sent < r->problems->len; ij->problems_sent++) {
    const FthImportProblem *p = g_ptr_array_index(r->problems, ij->problems_sent);
    g_autofree char *msg =
        p->member >= 0
            ? g_strdup_printf("%s:%" G_GINT64_FORMAT ": %s", p->path, p->member, p->reason)
            : g_strdup_printf("%s: %s", p->path, p->reason);
    fth_job_progress(job, done, total, msg);
  }
}

typedef struct {
  FthJob *job;
  ImportJob *ij;
} JobProgress;

static void
import_job_progress(gint64 done, gint64 total, const char *current,
                    const FthImportReport *report, gpointer user_data)
{
  JobProgress *jp = user_data;
  send_problems(jp->job, jp->ij, done, total, report);
  /* Counts ride on progress events at most every 100 ms (and at the end): events with
   * metrics are never coalesced by the job. */
  gint64 now = g_get_monotonic_time();
  if (done != total && now - jp->ij->last_progress_us < 100 * G_TIME_SPAN_MILLISECOND)
    return;
  jp->ij->last_progress_us = now;
  FthJobMetric metrics[] = {
    { "added", (double)report->added },
    { "duplicates", (double)report->duplicates },
    { "existing", (double)report->existing },
    { "problems", (double)report->problems->len },
  };
  fth_job_progress_metrics(jp->job, done, total, NULL, metrics, G_N_ELEMENTS(metrics));
}

static gboolean
import_job_run(FthJob *job, GCancellable *cancellable, gpointer user_data, GError **error)
{
  ImportJob *ij = user_data;
  JobProgress jp = { job, ij };
  gboolean ok = fth_import_run(ij->store, (const char *const *)ij->sources, &ij->options,
                               cancellable, import_job_progress, &jp, &ij->report, error);
  send_problems(job, ij, 0, 0, ij->report);
  return ok;
}

FthJob *
fth_import_job_new(FthStore *store, const char *const *sources, const FthImportOptions *options)
{
  ImportJob *ij = g_new0(ImportJob, 1);
  ij->store = g_object_ref(store);
  ij->sources = g_strdupv((char **)sources);
  if (options)
    ij->options = *options;
  else
    fth_import_options_init(&ij->options);
  const char **fields[] = { &ij->options.text_column, &ij->options.label_column,
                            &ij->options.jsonl_text_field, &ij->options.jsonl_label_field };
  for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
    ij->strings[i] = g_strdup(*fields[i]);
    *fields[i] = ij->strings[i];
  }
  FthJob *job = fth_job_new("import", import_job_run, ij, NULL);
  g_object_set_data_full(G_OBJECT(job), "fth-import-job", ij, import_job_free);
  return job;
}

const FthImportReport *
fth_import_job_get_report(FthJob *job)
{
  ImportJob *ij = g_object_get_data(G_OBJECT(job), "fth-import-job");
  return ij ? ij->report : NULL;
}
