/* IDX files (MNIST, Fashion-MNIST): header, dimensions and records, gzip'ed or plain. */
#include "media-private.h"

#include <string.h>
#include <zlib.h>

#define IDX_MAX_DIMS 8

struct FthIdx {
  guint8 *buffer; /* the whole (inflated) file */
  gsize buffer_len;
  FthIdxType dtype;
  guint n_dims;
  guint32 dims[IDX_MAX_DIMS];
  const guint8 *data; /* after the header */
  gsize data_len;
  gsize n_records;
  gsize record_size;
};

static gsize
element_size(int dtype)
{
  switch (dtype) {
  case FTH_IDX_U8:
  case FTH_IDX_I8: return 1;
  case FTH_IDX_I16: return 2;
  case FTH_IDX_I32:
  case FTH_IDX_F32: return 4;
  case FTH_IDX_F64: return 8;
  default: return 0;
  }
}

/* Inflates a gzip stream (possibly several members) into one buffer. The buffer is sized from
 * the trailer's ISIZE (the size mod 2^32 of the last member), so a single-member file inflates
 * in one pass with no reallocation. */
static guint8 *
gunzip(const guint8 *data, gsize len, const char *name, gsize *out_len, GError **error)
{
  gsize isize = len >= 18 ? (gsize) data[len - 4] | (gsize) data[len - 3] << 8 |
                                (gsize) data[len - 2] << 16 | (gsize) data[len - 1] << 24
                          : 0;
  /* ISIZE of a truncated or corrupt file is garbage: trust it only within deflate's largest
   * possible ratio (1032:1). +1 so that inflate reaches the end of the stream before the
   * buffer counts as full. */
  gboolean plausible = isize > 0 && isize <= len * 1032;
  gsize capacity = MIN(plausible ? isize : len * 4, (gsize) 1 << 30) + 1;
  guint8 *out = g_try_malloc(capacity);
  if (out == NULL) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_TOO_LARGE, name,
                        "cannot allocate %" G_GSIZE_FORMAT " bytes to decompress", capacity);
    return NULL;
  }
  z_stream zs = {0};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    g_free(out);
    fth_media_set_error(error, FTH_MEDIA_ERROR_IO, name, "cannot start zlib");
    return NULL;
  }
  gsize in_pos = 0, out_pos = 0;
  for (;;) {
    /* zlib counts in uInt; feed and drain at most 1 GiB at a time. */
    zs.next_in = (Bytef *) data + in_pos;
    zs.avail_in = (uInt) MIN(len - in_pos, (gsize) 1 << 30);
    zs.next_out = out + out_pos;
    zs.avail_out = (uInt) MIN(capacity - out_pos, (gsize) 1 << 30);
    uInt avail_in = zs.avail_in, avail_out = zs.avail_out;
    int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += avail_in - zs.avail_in;
    out_pos += avail_out - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (in_pos >= len)
        break;
      inflateReset(&zs); /* another gzip member follows */
      continue;
    }
    if (rc == Z_BUF_ERROR && in_pos >= len) {
      inflateEnd(&zs);
      g_free(out);
      fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, name,
                          "gzip data ends early (truncated at byte %" G_GSIZE_FORMAT ")", len);
      return NULL;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, name, "corrupt gzip data (%s)",
                          zs.msg ? zs.msg : "inflate failed");
      inflateEnd(&zs);
      g_free(out);
      return NULL;
    }
    if (out_pos == capacity) {
      if (capacity > ((gsize) 1 << 40)) {
        inflateEnd(&zs);
        g_free(out);
        fth_media_set_error(error, FTH_MEDIA_ERROR_TOO_LARGE, name, "decompresses to over 1 TiB");
        return NULL;
      }
      guint8 *grown = g_try_realloc(out, capacity * 2);
      if (grown == NULL) {
        inflateEnd(&zs);
        g_free(out);
        fth_media_set_error(error, FTH_MEDIA_ERROR_TOO_LARGE, name,
                            "cannot allocate %" G_GSIZE_FORMAT " bytes to decompress",
                            capacity * 2);
        return NULL;
      }
      out = grown;
      capacity *= 2;
    }
  }
  inflateEnd(&zs);
  *out_len = out_pos;
  return out;
}

/* Takes ownership of buffer. */
static FthIdx *
idx_parse(guint8 *buffer, gsize len, const char *name, GError **error)
{
  g_autofree guint8 *owned = buffer;
  if (len == 0) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_EMPTY, name, "file is empty (0 bytes)");
    return NULL;
  }
  if (len < 4) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, name,
                        "IDX header ends early (%" G_GSIZE_FORMAT " of 4 magic bytes)", len);
    return NULL;
  }
  gsize esize = element_size(buffer[2]);
  if (buffer[0] != 0 || buffer[1] != 0 || esize == 0) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, name,
                        "not an IDX file (magic %02x %02x %02x %02x)", buffer[0], buffer[1],
                        buffer[2], buffer[3]);
    return NULL;
  }
  guint n_dims = buffer[3];
  if (n_dims == 0 || n_dims > IDX_MAX_DIMS) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, name,
                        "IDX file with %u dimensions (1 to %d supported)", n_dims, IDX_MAX_DIMS);
    return NULL;
  }
  gsize header = 4 + 4 * (gsize) n_dims;
  if (len < header) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, name,
                        "IDX header ends early (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes)",
                        len, header);
    return NULL;
  }
  FthIdx *idx = g_new0(FthIdx, 1);
  idx->dtype = buffer[2];
  idx->n_dims = n_dims;
  guint64 record = esize;
  gboolean overflow = FALSE;
  for (guint i = 0; i < n_dims; i++) {
    const guint8 *p = buffer + 4 + 4 * i;
    idx->dims[i] = (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
    if (i > 0) {
      if (idx->dims[i] != 0 && record > G_MAXSIZE / idx->dims[i])
        overflow = TRUE;
      else
        record *= idx->dims[i];
    }
  }
  if (overflow || (idx->dims[0] != 0 && record > G_MAXSIZE / idx->dims[0])) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, name, "IDX dimensions overflow");
    g_free(idx);
    return NULL;
  }
  idx->n_records = idx->dims[0];
  idx->record_size = (gsize) record;
  gsize expected = idx->n_records * idx->record_size;
  if (len - header < expected) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, name,
                        "IDX data ends early: %u records of %" G_GSIZE_FORMAT
                        " bytes need %" G_GSIZE_FORMAT " bytes after the header, found %" G_GSIZE_FORMAT,
                        idx->dims[0], idx->record_size, expected, len - header);
    g_free(idx);
    return NULL;
  }
  idx->buffer = g_steal_pointer(&owned);
  idx->buffer_len = len;
  idx->data = idx->buffer + header;
  idx->data_len = expected;
  return idx;
}

FthIdx *
fth_idx_new_from_memory(const guint8 *data, gsize len, const char *name, GError **error)
{
  if (name == NULL)
    name = "<memory>";
  if (len >= 2 && data[0] == 0x1F && data[1] == 0x8B) {
    gsize out_len = 0;
    guint8 *inflated = gunzip(data, len, name, &out_len, error);
    if (inflated == NULL)
      return NULL;
    return idx_parse(inflated, out_len, name, error);
  }
  return idx_parse(g_memdup2(data, len), len, name, error);
}

FthIdx *
fth_idx_open(const char *path, GError **error)
{
  FthMediaFile file;
  if (!fth_media_file_map(path, &file, error))
    return NULL;
  FthIdx *idx = fth_idx_new_from_memory(file.data, file.len, path, error);
  fth_media_file_unmap(&file);
  return idx;
}

void
fth_idx_free(FthIdx *idx)
{
  if (idx == NULL)
    return;
  g_free(idx->buffer);
  g_free(idx);
}

FthIdxType
fth_idx_get_dtype(const FthIdx *idx)
{
  return idx->dtype;
}

guint
fth_idx_get_n_dims(const FthIdx *idx)
{
  return idx->n_dims;
}

guint32
fth_idx_get_dim(const FthIdx *idx, guint i)
{
  g_return_val_if_fail(i < idx->n_dims, 0);
  return idx->dims[i];
}

gsize
fth_idx_get_n_records(const FthIdx *idx)
{
  return idx->n_records;
}

gsize
fth_idx_get_record_size(const FthIdx *idx)
{
  return idx->record_size;
}

const guint8 *
fth_idx_get_record(const FthIdx *idx, gsize i)
{
  if (i >= idx->n_records)
    return NULL;
  return idx->data + i * idx->record_size;
}

const guint8 *
fth_idx_get_data(const FthIdx *idx, gsize *len)
{
  if (len)
    *len = idx->data_len;
  return idx->data;
}
