/* UTF-8 text: loading with validation, conversion from other encodings, character offsets. */
#include "media-private.h"

#include <string.h>

/* A guess at what the bytes are, for the error message: UTF-16 has a BOM or many NULs; bytes
 * that GB18030 accepts in pairs are likely Chinese; otherwise a Western 8-bit encoding. */
static const char *
suggest_encodings(const char *data, gsize len)
{
  if (len >= 2 && (((guint8) data[0] == 0xFF && (guint8) data[1] == 0xFE) ||
                   ((guint8) data[0] == 0xFE && (guint8) data[1] == 0xFF)))
    return "UTF-16 (it starts with a UTF-16 byte order mark)";
  gsize sample = MIN(len, (gsize) 4096), nuls = 0;
  for (gsize i = 0; i < sample; i++)
    nuls += data[i] == 0;
  if (nuls * 4 > sample)
    return "UTF-16LE or UTF-16BE (many NUL bytes)";
  /* Latin-1 text almost never forms valid GB18030 byte pairs; Chinese text always does. */
  g_autoptr(GError) gb_error = NULL;
  g_autofree char *gb = g_convert(data, (gssize) sample, "UTF-8", "GB18030", NULL, NULL, &gb_error);
  if (gb != NULL || g_error_matches(gb_error, G_CONVERT_ERROR, G_CONVERT_ERROR_PARTIAL_INPUT))
    return "GB18030, Windows-1252 or ISO-8859-1";
  return "Windows-1252, ISO-8859-1 or GB18030";
}

gboolean
fth_text_validate(const char *data, gsize len, const char *name, GError **error)
{
  if (name == NULL)
    name = "<memory>";
  const char *end = NULL;
  if (g_utf8_validate_len(data, len, &end))
    return TRUE;
  gsize offset = (gsize) (end - data);
  if (data[offset] == '\0')
    fth_media_set_error(error, FTH_MEDIA_ERROR_ENCODING, name,
                        "not valid UTF-8: NUL byte at byte %" G_GSIZE_FORMAT "; if this is text, "
                        "convert it from %s",
                        offset, suggest_encodings(data, len));
  else
    fth_media_set_error(error, FTH_MEDIA_ERROR_ENCODING, name,
                        "not valid UTF-8 at byte %" G_GSIZE_FORMAT " (0x%02X); convert it from "
                        "the right encoding, perhaps %s",
                        offset, (guint8) data[offset], suggest_encodings(data, len));
  return FALSE;
}

gboolean
fth_text_load_file(const char *path, char **utf8, gsize *len, GError **error)
{
  *utf8 = NULL;
  if (len)
    *len = 0;
  FthMediaFile file;
  if (!fth_media_file_map(path, &file, error))
    return FALSE;
  const char *data = (const char *) file.data;
  gsize n = file.len;
  if (n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
    data += 3;
    n -= 3;
  }
  gboolean ok = n == 0 || fth_text_validate(data, n, path, error);
  if (ok) {
    char *copy = g_malloc(n + 1);
    if (n > 0)
      memcpy(copy, data, n);
    copy[n] = '\0';
    *utf8 = copy;
    if (len)
      *len = n;
  }
  fth_media_file_unmap(&file);
  return ok;
}

char *
fth_text_convert(const char *data, gsize len, const char *from_encoding, const char *name,
                 gsize *out_len, GError **error)
{
  if (name == NULL)
    name = "<memory>";
  g_autoptr(GError) conv_error = NULL;
  gsize read = 0, written = 0;
  char *out = g_convert(data, (gssize) len, "UTF-8", from_encoding, &read, &written, &conv_error);
  if (out == NULL) {
    if (g_error_matches(conv_error, G_CONVERT_ERROR, G_CONVERT_ERROR_NO_CONVERSION))
      fth_media_set_error(error, FTH_MEDIA_ERROR_ENCODING, name, "unknown encoding '%s'",
                          from_encoding);
    else
      fth_media_set_error(error, FTH_MEDIA_ERROR_ENCODING, name,
                          "not valid %s at byte %" G_GSIZE_FORMAT " (%s)", from_encoding, read,
                          conv_error->message);
    if (out_len)
      *out_len = 0;
    return NULL;
  }
  if (out_len)
    *out_len = written;
  return out;
}

/* The number of code points is the number of bytes that do not continue a sequence. */
gsize
fth_text_char_count(const char *utf8, gsize len)
{
  gsize count = 0;
  for (gsize i = 0; i < len; i++)
    count += ((guint8) utf8[i] & 0xC0) != 0x80;
  return count;
}

gboolean
fth_text_byte_to_char_offset(const char *utf8, gsize len, gsize byte_offset, gsize *char_offset)
{
  if (byte_offset > len || (byte_offset < len && ((guint8) utf8[byte_offset] & 0xC0) == 0x80))
    return FALSE;
  *char_offset = fth_text_char_count(utf8, byte_offset);
  return TRUE;
}

gboolean
fth_text_char_to_byte_offset(const char *utf8, gsize len, gsize char_offset, gsize *byte_offset)
{
  gsize chars = 0;
  for (gsize i = 0; i < len; i++) {
    if (((guint8) utf8[i] & 0xC0) != 0x80) {
      if (chars == char_offset) {
        *byte_offset = i;
        return TRUE;
      }
      chars++;
    }
  }
  if (chars == char_offset) { /* the end of the text is a valid offset */
    *byte_offset = len;
    return TRUE;
  }
  return FALSE;
}
