/* Error domain, format sniffing and file mapping shared by the decoders. */
#include "media-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(fth-media-error-quark, fth_media_error)

void
fth_media_set_error(GError **error, FthMediaError code, const char *name, const char *format, ...)
{
  if (error == NULL)
    return;
  va_list args;
  va_start(args, format);
  g_autofree char *what = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, FTH_MEDIA_ERROR, code, "%s: %s", name, what);
}

gboolean
fth_media_file_map(const char *path, FthMediaFile *file, GError **error)
{
  memset(file, 0, sizeof *file);
  int fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    int saved = errno;
    fth_media_set_error(error, FTH_MEDIA_ERROR_IO, path, "cannot open (%s)", g_strerror(saved));
    return FALSE;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_IO, path, "not a regular file");
    close(fd);
    return FALSE;
  }
  if (st.st_size == 0) {
    close(fd);
    return TRUE;
  }
  g_autoptr(GError) map_error = NULL;
  file->mapped = g_mapped_file_new_from_fd(fd, FALSE, &map_error);
  close(fd);
  if (file->mapped == NULL) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_IO, path, "cannot read (%s)", map_error->message);
    return FALSE;
  }
  file->data = (const guint8 *) g_mapped_file_get_contents(file->mapped);
  file->len = g_mapped_file_get_length(file->mapped);
  return TRUE;
}

void
fth_media_file_unmap(FthMediaFile *file)
{
  g_clear_pointer(&file->mapped, g_mapped_file_unref);
  file->data = NULL;
  file->len = 0;
}

/* Valid UTF-8 without NUL, except that a character cut off by the end of the sample is fine. */
static gboolean
looks_like_text(const guint8 *data, gsize len)
{
  if (len == 0 || memchr(data, 0, len) != NULL)
    return FALSE;
  const char *end = NULL;
  if (g_utf8_validate_len((const char *) data, len, &end))
    return TRUE;
  gsize valid = (gsize) ((const guint8 *) end - data);
  if (len - valid >= 4)
    return FALSE;
  /* The rest must be the start of a multi-byte sequence. */
  gunichar c = g_utf8_get_char_validated((const char *) end, (gssize) (len - valid));
  return c == (gunichar) -2;
}

static gboolean
is_mp3_frame_header(const guint8 *p, gsize len)
{
  if (len < 4 || p[0] != 0xFF || (p[1] & 0xE0) != 0xE0)
    return FALSE;
  int version = (p[1] >> 3) & 3; /* 1 is reserved */
  int layer = (p[1] >> 1) & 3;   /* 1 = layer III; 0 is reserved */
  int bitrate = (p[2] >> 4) & 15;
  int rate = (p[2] >> 2) & 3;
  return version != 1 && layer == 1 && bitrate != 15 && bitrate != 0 && rate != 3;
}

FthMediaFormat
fth_media_sniff(const guint8 *data, gsize len)
{
  if (data == NULL || len == 0)
    return FTH_MEDIA_FORMAT_UNKNOWN;
  if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
    return FTH_MEDIA_FORMAT_JPEG;
  if (len >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
    return FTH_MEDIA_FORMAT_PNG;
  if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WAVE", 4) == 0)
    return FTH_MEDIA_FORMAT_WAV;
  if (len >= 4 && memcmp(data, "fLaC", 4) == 0)
    return FTH_MEDIA_FORMAT_FLAC;
  if (len >= 4 && memcmp(data, "OggS", 4) == 0)
    return FTH_MEDIA_FORMAT_OGG;
  if ((len >= 3 && memcmp(data, "ID3", 3) == 0) || is_mp3_frame_header(data, len))
    return FTH_MEDIA_FORMAT_MP3;
  /* IDX: two zero bytes, a known element type, 1..4 dimensions. */
  if (len >= 4 && data[0] == 0 && data[1] == 0 && data[3] >= 1 && data[3] <= 4 &&
      (data[2] == 0x08 || data[2] == 0x09 || data[2] == 0x0B || data[2] == 0x0C ||
       data[2] == 0x0D || data[2] == 0x0E))
    return FTH_MEDIA_FORMAT_IDX;
  if (looks_like_text(data, MIN(len, (gsize) 4096)))
    return FTH_MEDIA_FORMAT_TEXT;
  return FTH_MEDIA_FORMAT_UNKNOWN;
}

FthMediaFormat
fth_media_format_from_path(const char *path)
{
  g_autofree char *base = g_path_get_basename(path);
  g_autofree char *lower = g_ascii_strdown(base, -1);
  static const struct {
    const char *suffix;
    FthMediaFormat format;
  } suffixes[] = {
    {".jpg", FTH_MEDIA_FORMAT_JPEG},   {".jpeg", FTH_MEDIA_FORMAT_JPEG},
    {".png", FTH_MEDIA_FORMAT_PNG},    {".wav", FTH_MEDIA_FORMAT_WAV},
    {".flac", FTH_MEDIA_FORMAT_FLAC},  {".ogg", FTH_MEDIA_FORMAT_OGG},
    {".oga", FTH_MEDIA_FORMAT_OGG},    {".mp3", FTH_MEDIA_FORMAT_MP3},
    {".txt", FTH_MEDIA_FORMAT_TEXT},   {".csv", FTH_MEDIA_FORMAT_CSV},
    {".jsonl", FTH_MEDIA_FORMAT_JSONL}, {".idx", FTH_MEDIA_FORMAT_IDX},
    {".idx.gz", FTH_MEDIA_FORMAT_IDX}, {"-ubyte", FTH_MEDIA_FORMAT_IDX},
    {"-ubyte.gz", FTH_MEDIA_FORMAT_IDX},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(suffixes); i++)
    if (g_str_has_suffix(lower, suffixes[i].suffix))
      return suffixes[i].format;
  return FTH_MEDIA_FORMAT_UNKNOWN;
}

const char *
fth_media_format_name(FthMediaFormat format)
{
  switch (format) {
  case FTH_MEDIA_FORMAT_JPEG: return "JPEG";
  case FTH_MEDIA_FORMAT_PNG: return "PNG";
  case FTH_MEDIA_FORMAT_WAV: return "WAV";
  case FTH_MEDIA_FORMAT_FLAC: return "FLAC";
  case FTH_MEDIA_FORMAT_OGG: return "Ogg";
  case FTH_MEDIA_FORMAT_MP3: return "MP3";
  case FTH_MEDIA_FORMAT_IDX: return "IDX";
  case FTH_MEDIA_FORMAT_TEXT: return "text";
  case FTH_MEDIA_FORMAT_CSV: return "CSV";
  case FTH_MEDIA_FORMAT_JSONL: return "JSONL";
  case FTH_MEDIA_FORMAT_UNKNOWN: break;
  }
  return "unknown";
}

FthMediaKind
fth_media_format_kind(FthMediaFormat format)
{
  switch (format) {
  case FTH_MEDIA_FORMAT_JPEG:
  case FTH_MEDIA_FORMAT_PNG: return FTH_MEDIA_KIND_IMAGE;
  case FTH_MEDIA_FORMAT_WAV:
  case FTH_MEDIA_FORMAT_FLAC:
  case FTH_MEDIA_FORMAT_OGG:
  case FTH_MEDIA_FORMAT_MP3: return FTH_MEDIA_KIND_AUDIO;
  case FTH_MEDIA_FORMAT_TEXT: return FTH_MEDIA_KIND_TEXT;
  case FTH_MEDIA_FORMAT_CSV:
  case FTH_MEDIA_FORMAT_JSONL:
  case FTH_MEDIA_FORMAT_IDX: return FTH_MEDIA_KIND_RECORDS;
  case FTH_MEDIA_FORMAT_UNKNOWN: break;
  }
  return FTH_MEDIA_KIND_NONE;
}

void
fth_media_set_line_error(GError **error, FthMediaError code, const char *name, guint64 line,
                         const char *format, ...)
{
  if (error == NULL)
    return;
  va_list args;
  va_start(args, format);
  g_autofree char *what = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, FTH_MEDIA_ERROR, code, "%s:%" G_GUINT64_FORMAT ": %s", name, line, what);
}
