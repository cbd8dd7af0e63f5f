/* safetensors reader and writer; the header is JSON, handled with json-glib. */
#include "fathom/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(fth-safetensors-error-quark, fth_safetensors_error)

/* The reference implementation refuses headers above 100 MB; so do we. */
#define MAX_HEADER_BYTES (100u * 1000u * 1000u)

static const struct {
  const char *name;
  size_t size;
} dtype_info[] = {
  [FTH_ST_BOOL] = {"BOOL", 1}, [FTH_ST_U8] = {"U8", 1},   [FTH_ST_I8] = {"I8", 1},
  [FTH_ST_I16] = {"I16", 2},   [FTH_ST_U16] = {"U16", 2}, [FTH_ST_F16] = {"F16", 2},
  [FTH_ST_BF16] = {"BF16", 2}, [FTH_ST_I32] = {"I32", 4}, [FTH_ST_U32] = {"U32", 4},
  [FTH_ST_F32] = {"F32", 4},   [FTH_ST_I64] = {"I64", 8}, [FTH_ST_U64] = {"U64", 8},
  [FTH_ST_F64] = {"F64", 8},
};

const char *
fth_st_dtype_name(FthStDtype dtype)
{
  if ((unsigned)dtype >= G_N_ELEMENTS(dtype_info))
    return NULL;
  return dtype_info[dtype].name;
}

size_t
fth_st_dtype_size(FthStDtype dtype)
{
  if ((unsigned)dtype >= G_N_ELEMENTS(dtype_info))
    return 0;
  return dtype_info[dtype].size;
}

static gboolean
dtype_from_name(const char *name, FthStDtype *out)
{
  for (unsigned i = 0; i < G_N_ELEMENTS(dtype_info); i++)
    if (strcmp(dtype_info[i].name, name) == 0) {
      *out = (FthStDtype)i;
      return TRUE;
    }
  return FALSE;
}

/* prod(shape) * elem_size, FALSE on overflow or a negative dimension. */
static gboolean
tensor_bytes(const int64_t *shape, int ndim, size_t elem_size, size_t *out)
{
  size_t n = elem_size;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return FALSE;
    if (shape[d] != 0 && n > SIZE_MAX / (size_t)shape[d])
      return FALSE;
    n *= (size_t)shape[d];
  }
  *out = n;
  return TRUE;
}

gboolean
fth_safetensors_write(const char *path, const FthStTensor *tensors, size_t n,
                      GHashTable *metadata, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  json_builder_begin_object(b);
  if (metadata != NULL && g_hash_table_size(metadata) > 0) {
    /* Sorted keys keep the file bytes independent of hash order. */
    g_autofree gpointer *keys = g_hash_table_get_keys_as_array(metadata, NULL);
    guint nk = g_hash_table_size(metadata);
    qsort(keys, nk, sizeof *keys, (int (*)(const void *, const void *))g_strcmp0);
    json_builder_set_member_name(b, "__metadata__");
    json_builder_begin_object(b);
    for (guint i = 0; i < nk; i++) {
      json_builder_set_member_name(b, keys[i]);
      json_builder_add_string_value(b, g_hash_table_lookup(metadata, keys[i]));
    }
    json_builder_end_object(b);
  }
  size_t offset = 0;
  for (size_t i = 0; i < n; i++) {
    const FthStTensor *t = &tensors[i];
    size_t expect = 0;
    const char *why = NULL;
    if (t->name == NULL || t->name[0] == '\0' || strcmp(t->name, "__metadata__") == 0)
      why = "has an empty or reserved name";
    else if (g_hash_table_contains(seen, t->name))
      why = "appears twice";
    else if (fth_st_dtype_name(t->dtype) == NULL)
      why = "has an unknown dtype";
    else if (t->ndim < 0 || t->ndim > FTH_ST_MAX_DIMS)
      why = "has an unsupported number of dimensions";
    else if (!tensor_bytes(t->shape, t->ndim, fth_st_dtype_size(t->dtype), &expect))
      why = "has an invalid shape";
    else if (expect != t->nbytes)
      why = "has a byte count that does not match its shape and dtype";
    else if (t->nbytes > 0 && t->data == NULL)
      why = "has no data";
    if (why != NULL) {
      g_set_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_ARGUMENT,
                  "%s: tensor %zu '%s' %s", path, i, t->name ? t->name : "(null)", why);
      return FALSE;
    }
    g_hash_table_add(seen, (gpointer)t->name);
    json_builder_set_member_name(b, t->name);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "dtype");
    json_builder_add_string_value(b, fth_st_dtype_name(t->dtype));
    json_builder_set_member_name(b, "shape");
    json_builder_begin_array(b);
    for (int d = 0; d < t->ndim; d++)
      json_builder_add_int_value(b, t->shape[d]);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "data_offsets");
    json_builder_begin_array(b);
    json_builder_add_int_value(b, (gint64)offset);
    json_builder_add_int_value(b, (gint64)(offset + t->nbytes));
    json_builder_end_array(b);
    json_builder_end_object(b);
    offset += t->nbytes;
  }
  json_builder_end_object(b);

  g_autoptr(JsonGenerator) gen = json_generator_new();
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  gsize json_len = 0;
  g_autofree char *json = json_generator_to_data(gen, &json_len);
  /* Pad with spaces so the tensor data starts 8-byte aligned, as the reference writer does. */
  size_t header_len = (json_len + 7) & ~(size_t)7;
  g_autofree char *header = g_malloc(8 + header_len);
  for (int i = 0; i < 8; i++)
    header[i] = (char)(((guint64)header_len >> (8 * i)) & 0xff);
  memcpy(header + 8, json, json_len);
  memset(header + 8 + json_len, ' ', header_len - json_len);

  g_autofree FthFilePart *parts = g_new(FthFilePart, n + 1);
  parts[0] = (FthFilePart){header, 8 + header_len};
  for (size_t i = 0; i < n; i++)
    parts[i + 1] = (FthFilePart){tensors[i].data, tensors[i].nbytes};
  return fth_file_write_atomic(path, parts, n + 1, error);
}

struct _FthSafetensors {
  char *path;
  void *map;
  size_t map_len;
  FthStTensor *tensors;
  size_t n;
  GHashTable *by_name;   /* name -> FthStTensor* */
  GHashTable *metadata;  /* owned strings */
  GStringChunk *names;
};

void
fth_safetensors_free(FthSafetensors *st)
{
  if (st == NULL)
    return;
  if (st->map != NULL && st->map_len > 0)
    munmap(st->map, st->map_len);
  g_free(st->tensors);
  if (st->by_name)
    g_hash_table_unref(st->by_name);
  if (st->metadata)
    g_hash_table_unref(st->metadata);
  if (st->names)
    g_string_chunk_free(st->names);
  g_free(st->path);
  g_free(st);
}

static FthSafetensors *
format_error(FthSafetensors *st, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static FthSafetensors *
format_error(FthSafetensors *st, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_FORMAT, "%s: %s", st->path,
              msg);
  fth_safetensors_free(st);
  return NULL;
}

static gboolean
node_is_int(JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
         json_node_get_value_type(node) == G_TYPE_INT64;
}

static int
compare_offsets(const void *a, const void *b)
{
  const FthStTensor *x = a, *y = b;
  const char *px = x->data, *py = y->data;
  /* By start, empty tensors first: the reference writer places them where the next one starts. */
  if (px != py)
    return (px > py) - (px < py);
  return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

FthSafetensors *
fth_safetensors_open(const char *path, GError **error)
{
  FthSafetensors *st = g_new0(FthSafetensors, 1);
  st->path = g_strdup(path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    g_set_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_IO, "%s: cannot open: %s",
                path, g_strerror(err));
    fth_safetensors_free(st);
    return NULL;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int err = errno;
    close(fd);
    g_set_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_IO, "%s: cannot stat: %s",
                path, g_strerror(err));
    fth_safetensors_free(st);
    return NULL;
  }
  size_t size = (size_t)sb.st_size;
  if (size < 8) {
    close(fd);
    return format_error(st, error, "file is %zu bytes, too short for the 8-byte header length",
                        size);
  }
  st->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (st->map == MAP_FAILED) {
    int err = errno;
    st->map = NULL;
    g_set_error(error, FTH_SAFETENSORS_ERROR, FTH_SAFETENSORS_ERROR_IO, "%s: cannot map: %s",
                path, g_strerror(err));
    fth_safetensors_free(st);
    return NULL;
  }
  st->map_len = size;
  const unsigned char *bytes = st->map;
  guint64 header_len = 0;
  for (int i = 7; i >= 0; i--)
    header_len = (header_len << 8) | bytes[i];
  if (header_len > MAX_HEADER_BYTES)
    return format_error(st, error, "header length %" G_GUINT64_FORMAT " exceeds the limit of %u",
                        header_len, MAX_HEADER_BYTES);
  if (header_len > size - 8)
    return format_error(st, error,
                        "header length %" G_GUINT64_FORMAT " runs past the end of the file "
                        "(%zu bytes)", header_len, size);
  if (header_len < 2 || bytes[8] != '{')
    return format_error(st, error, "header does not start with a JSON object");
  const char *data = (const char *)bytes + 8 + header_len;
  size_t data_len = size - 8 - (size_t)header_len;

  g_autoptr(JsonParser) parser = json_parser_new();
  GError *jerr = NULL;
  if (!json_parser_load_from_data(parser, (const char *)bytes + 8, (gssize)header_len, &jerr)) {
    FthSafetensors *r = format_error(st, error, "header is not valid JSON: %s", jerr->message);
    g_error_free(jerr);
    return r;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
    return format_error(st, error, "header is not a JSON object");
  JsonObject *obj = json_node_get_object(root);

  st->metadata = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  st->by_name = g_hash_table_new(g_str_hash, g_str_equal);
  st->names = g_string_chunk_new(256);
  guint n_members = json_object_get_size(obj);
  st->tensors = g_new0(FthStTensor, n_members);

  JsonObjectIter it;
  const char *name;
  JsonNode *node;
  json_object_iter_init(&it, obj);
  while (json_object_iter_next(&it, &name, &node)) {
    if (strcmp(name, "__metadata__") == 0) {
      if (!JSON_NODE_HOLDS_OBJECT(node))
        return format_error(st, error, "__metadata__ is not an object");
      JsonObjectIter mit;
      const char *key;
      JsonNode *val;
      json_object_iter_init(&mit, json_node_get_object(node));
      while (json_object_iter_next(&mit, &key, &val)) {
        if (!JSON_NODE_HOLDS_VALUE(val) || json_node_get_value_type(val) != G_TYPE_STRING)
          return format_error(st, error, "__metadata__ member '%s' is not a string", key);
        g_hash_table_insert(st->metadata, g_strdup(key), g_strdup(json_node_get_string(val)));
      }
      continue;
    }
    if (!JSON_NODE_HOLDS_OBJECT(node))
      return format_error(st, error, "tensor '%s' is not an object", name);
    JsonObject *to = json_node_get_object(node);
    FthStTensor *t = &st->tensors[st->n];
    t->name = g_string_chunk_insert(st->names, name);

    JsonNode *dn = json_object_get_member(to, "dtype");
    if (dn == NULL || !JSON_NODE_HOLDS_VALUE(dn) || json_node_get_value_type(dn) != G_TYPE_STRING)
      return format_error(st, error, "tensor '%s': missing or non-string 'dtype'", name);
    if (!dtype_from_name(json_node_get_string(dn), &t->dtype))
      return format_error(st, error, "tensor '%s': unknown dtype '%s'", name,
                          json_node_get_string(dn));

    JsonNode *sn = json_object_get_member(to, "shape");
    if (sn == NULL || !JSON_NODE_HOLDS_ARRAY(sn))
      return format_error(st, error, "tensor '%s': missing or non-array 'shape'", name);
    JsonArray *sa = json_node_get_array(sn);
    guint nd = json_array_get_length(sa);
    if (nd > FTH_ST_MAX_DIMS)
      return format_error(st, error, "tensor '%s': %u dimensions, at most %d supported", name,
                          nd, FTH_ST_MAX_DIMS);
    t->ndim = (int)nd;
    for (guint d = 0; d < nd; d++) {
      JsonNode *e = json_array_get_element(sa, d);
      if (!node_is_int(e) || json_node_get_int(e) < 0)
        return format_error(st, error, "tensor '%s': shape[%u] is not a non-negative integer",
                            name, d);
      t->shape[d] = json_node_get_int(e);
    }

    JsonNode *on = json_object_get_member(to, "data_offsets");
    if (on == NULL || !JSON_NODE_HOLDS_ARRAY(on) ||
        json_array_get_length(json_node_get_array(on)) != 2)
      return format_error(st, error, "tensor '%s': 'data_offsets' is not a [begin, end] pair",
                          name);
    JsonNode *b0 = json_array_get_element(json_node_get_array(on), 0);
    JsonNode *b1 = json_array_get_element(json_node_get_array(on), 1);
    if (!node_is_int(b0) || !node_is_int(b1) || json_node_get_int(b0) < 0 ||
        json_node_get_int(b1) < json_node_get_int(b0))
      return format_error(st, error, "tensor '%s': 'data_offsets' must be integers with "
                          "0 <= begin <= end", name);
    guint64 begin = (guint64)json_node_get_int(b0), end = (guint64)json_node_get_int(b1);
    if (end > data_len)
      return format_error(st, error, "tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %"
                          G_GUINT64_FORMAT "] run past the %zu data bytes", name, begin, end,
                          data_len);
    size_t expect;
    if (!tensor_bytes(t->shape, t->ndim, fth_st_dtype_size(t->dtype), &expect) ||
        expect != end - begin)
      return format_error(st, error, "tensor '%s': %" G_GUINT64_FORMAT " data bytes do not "
                          "match its shape and dtype %s", name, end - begin,
                          fth_st_dtype_name(t->dtype));
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    st->n++;
  }

  /* Tensors must tile the data section exactly: no holes, no overlaps, nothing trailing. */
  qsort(st->tensors, st->n, sizeof *st->tensors, compare_offsets);
  size_t pos = 0;
  for (size_t i = 0; i < st->n; i++) {
    size_t begin = (size_t)((const char *)st->tensors[i].data - data);
    if (begin != pos)
      return format_error(st, error, "tensor '%s' starts at data byte %zu, expected %zu "
                          "(tensors overlap or leave a hole)", st->tensors[i].name, begin, pos);
    pos += st->tensors[i].nbytes;
  }
  if (pos != data_len)
    return format_error(st, error, "tensors cover %zu of the %zu data bytes", pos, data_len);
  for (size_t i = 0; i < st->n; i++)
    g_hash_table_insert(st->by_name, (gpointer)st->tensors[i].name, &st->tensors[i]);
  return st;
}

size_t
fth_safetensors_n_tensors(const FthSafetensors *st)
{
  return st->n;
}

const FthStTensor *
fth_safetensors_nth(const FthSafetensors *st, size_t i)
{
  return i < st->n ? &st->tensors[i] : NULL;
}

const FthStTensor *
fth_safetensors_find(const FthSafetensors *st, const char *name)
{
  return g_hash_table_lookup(st->by_name, name);
}

const char *
fth_safetensors_metadata(const FthSafetensors *st, const char *key)
{
  return g_hash_table_lookup(st->metadata, key);
}

const char *
fth_safetensors_path(const FthSafetensors *st)
{
  return st->path;
}
