/* fathom/media.h: decoding the media Fathom imports (engine/data).
 *
 * Images (JPEG through libjpeg-turbo, PNG through libpng), audio (WAV, FLAC, Ogg/Vorbis, MP3
 * through GStreamer, decoded to interleaved float32), the IDX format of (Fashion-)MNIST, UTF-8
 * text, CSV (RFC 4180) and JSON Lines.
 *
 * Every function that can fail takes a GError in the FTH_MEDIA_ERROR domain whose message starts
 * with the file name (or the caller-supplied name for memory buffers) and says what is wrong, for
 * example "photo.jpg: JPEG data ends early (truncated at byte 10240)" or
 * "data.csv:17: unterminated quoted field". Nothing here prints, exits or aborts on bad input.
 * All functions are safe to call from any thread (no shared state apart from a one-time
 * gst_init).
 */
#pragma once

#include <gio/gio.h>
#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* ---------------------------------------------------------------------------------------------
 * Errors
 */

#define FTH_MEDIA_ERROR (fth_media_error_quark())
GQuark fth_media_error_quark(void);

typedef enum {
  FTH_MEDIA_ERROR_IO,              /* the file cannot be opened or read */
  FTH_MEDIA_ERROR_EMPTY,           /* zero bytes */
  FTH_MEDIA_ERROR_CORRUPT,         /* malformed data (bad marker, bad CRC, bad header field) */
  FTH_MEDIA_ERROR_TRUNCATED,       /* the data ends before the format says it should */
  FTH_MEDIA_ERROR_UNSUPPORTED,     /* a valid file of a kind or variant we do not decode */
  FTH_MEDIA_ERROR_TOO_LARGE,       /* over the size limits below */
  FTH_MEDIA_ERROR_ENCODING,        /* text that is not valid UTF-8 (or not convertible) */
  FTH_MEDIA_ERROR_MISSING_COLUMN,  /* a CSV column asked for by name does not exist */
  FTH_MEDIA_ERROR_PARSE,           /* CSV/JSONL syntax errors */
  FTH_MEDIA_ERROR_BUFFER_TOO_SMALL /* a caller-provided output buffer cannot hold the result */
} FthMediaError;

/* ---------------------------------------------------------------------------------------------
 * Formats
 */

typedef enum {
  FTH_MEDIA_FORMAT_UNKNOWN,
  FTH_MEDIA_FORMAT_JPEG,
  FTH_MEDIA_FORMAT_PNG,
  FTH_MEDIA_FORMAT_WAV,
  FTH_MEDIA_FORMAT_FLAC,
  FTH_MEDIA_FORMAT_OGG,
  FTH_MEDIA_FORMAT_MP3,
  FTH_MEDIA_FORMAT_IDX,
  FTH_MEDIA_FORMAT_TEXT,
  FTH_MEDIA_FORMAT_CSV,  /* only from a path: CSV is not recognisable by content */
  FTH_MEDIA_FORMAT_JSONL /* only from a path */
} FthMediaFormat;

typedef enum {
  FTH_MEDIA_KIND_NONE,
  FTH_MEDIA_KIND_IMAGE,
  FTH_MEDIA_KIND_AUDIO,
  FTH_MEDIA_KIND_TEXT,
  FTH_MEDIA_KIND_RECORDS /* one file holding many items: CSV, JSONL, IDX */
} FthMediaKind;

/* By magic bytes; a few hundred bytes from the start of the file are enough. TEXT means valid
 * UTF-8 without NUL bytes (a multi-byte character cut by the end of the buffer is allowed).
 * Gzip data is UNKNOWN here (an IDX .gz is recognised by fth_media_format_from_path). */
FthMediaFormat fth_media_sniff(const guint8 *data, gsize len);
/* By extension, case-insensitive: .jpg .jpeg .png .wav .flac .ogg .oga .mp3 .txt .csv .jsonl
 * .idx, and *-ubyte / *-ubyte.gz / .idx.gz for IDX. */
FthMediaFormat fth_media_format_from_path(const char *path);
const char *fth_media_format_name(FthMediaFormat format); /* "JPEG", ..., "unknown" */
FthMediaKind fth_media_format_kind(FthMediaFormat format);

/* ---------------------------------------------------------------------------------------------
 * Images
 */

#define FTH_IMAGE_MAX_SIDE 32768
#define FTH_IMAGE_MAX_BYTES ((gsize) 1 << 30) /* decoded size limit, 1 GiB */

/* 8 bits per channel, row-major, channels interleaved, rows packed (stride = width * channels).
 * channels is 1 (gray), 3 (RGB) or 4 (RGBA, PNG with alpha or transparency). Pixels are as
 * stored: EXIF orientation is not applied, and no gamma or colour-profile conversion is done
 * (CMYK JPEGs are converted to RGB naively). */
typedef struct {
  int width;
  int height;
  int channels;
  guint8 *pixels; /* g_malloc'ed, freed by fth_image_clear() */
} FthImage;

typedef struct {
  int width;
  int height;
  int channels; /* what a decode with the same flags produces */
} FthImageInfo;

typedef enum {
  FTH_IMAGE_DECODE_DEFAULT = 0,
  /* One channel: luma (ITU-R BT.601 weights as libjpeg and libpng use); alpha is dropped. */
  FTH_IMAGE_DECODE_GRAYSCALE = 1 << 0,
  /* Drop the alpha channel (RGBA -> RGB, gray+alpha -> gray), colour values as stored, like
   * PIL's convert("RGB"). */
  FTH_IMAGE_DECODE_NO_ALPHA = 1 << 1,
  /* Always three channels (gray expanded to RGB); implies NO_ALPHA. Ignored with GRAYSCALE. */
  FTH_IMAGE_DECODE_RGB = 1 << 2,
  /* JPEG only: faster, slightly less exact IDCT and upsampling (libjpeg's JDCT_IFAST, no
   * fancy upsampling). */
  FTH_IMAGE_DECODE_FAST = 1 << 3
} FthImageDecodeFlags;

/* Width, height and channels from the headers only (JPEG up to SOF, PNG up to IDAT), without
 * decoding pixels. The file variant reads only the start of the file when that suffices. */
gboolean fth_image_probe_memory(const guint8 *data, gsize len, const char *name,
                                FthImageDecodeFlags flags, FthImageInfo *info, GError **error);
gboolean fth_image_probe_file(const char *path, FthImageDecodeFlags flags, FthImageInfo *info,
                              GError **error);

/* Decodes a JPEG or PNG (chosen by content, not by name). On failure *image is left cleared. */
gboolean fth_image_decode_memory(const guint8 *data, gsize len, const char *name,
                                 FthImageDecodeFlags flags, FthImage *image, GError **error);
gboolean fth_image_decode_file(const char *path, FthImageDecodeFlags flags, FthImage *image,
                               GError **error);

/* Decodes straight into pixels[0 .. capacity), packed as in FthImage, with no intermediate
 * copy (for the trainer's cache). Fails with BUFFER_TOO_SMALL, before decoding anything, when
 * width * height * channels > capacity; *info is filled in either case when the headers parse,
 * so a caller can probe and decode with one call. After any other failure the buffer holds
 * whatever was decoded before the error. */
gboolean fth_image_decode_into(const guint8 *data, gsize len, const char *name,
                               FthImageDecodeFlags flags, guint8 *pixels, gsize capacity,
                               FthImageInfo *info, GError **error);

/* JPEG only: decodes at 1/REDUCTION of each side (REDUCTION 1, 2, 4 or 8; sides round up) with
 * libjpeg-turbo's DCT scaling, several times faster than a full decode: each pixel is close to
 * the mean of a REDUCTION x REDUCTION block of the full image, so a view can show it stretched
 * while the full image decodes. Other formats fail with FTH_MEDIA_ERROR_UNSUPPORTED. The size
 * limits are those of the full image. */
gboolean fth_image_decode_reduced_memory(const guint8 *data, gsize len, const char *name,
                                         FthImageDecodeFlags flags, int reduction,
                                         FthImage *image, GError **error);
gboolean fth_image_decode_reduced_file(const char *path, FthImageDecodeFlags flags,
                                       int reduction, FthImage *image, GError **error);
/* The largest reduction (1, 2, 4 or 8) for a WIDTH x HEIGHT image fitted to a VIEW_WIDTH x
 * VIEW_HEIGHT view (device pixels) whose reduced copy still has a pixel for every view pixel;
 * 8 when the view has no size yet. */
int fth_image_reduction_for_view(int width, int height, int view_width, int view_height);

void fth_image_clear(FthImage *image);

/* ---------------------------------------------------------------------------------------------
 * Audio (GStreamer; gst_init is called once, thread-safely, on first use; no main loop needed)
 */

#define FTH_AUDIO_MAX_BYTES ((gsize) 1 << 30) /* decoded float32 size limit, 1 GiB */

typedef struct {
  int sample_rate;
  int channels;
  gint64 frames;  /* samples per channel */
  float *samples; /* frames * channels, interleaved, in [-1, 1]; freed by fth_audio_clear() */
} FthAudio;

typedef struct {
  int sample_rate;
  int channels;
  gint64 frames;   /* from the header (WAV) or duration * rate; -1 when the length is unknown */
  double duration; /* seconds, -1 when unknown */
} FthAudioInfo;

/* Decodes WAV, FLAC, Ogg/Vorbis or MP3 (anything GStreamer's decodebin handles) to float32.
 * target_rate 0 keeps the file's rate, else the audio is resampled; mono mixes the channels
 * down. A WAV whose data chunk declares more bytes than the file holds fails with TRUNCATED
 * (naming expected and actual bytes) instead of silently decoding a prefix: a cut-off
 * recording in a data set is almost always a broken copy that should be reported. */
gboolean fth_audio_decode_file(const char *path, int target_rate, gboolean mono, FthAudio *audio,
                               GError **error);
gboolean fth_audio_decode_memory(const guint8 *data, gsize len, const char *name, int target_rate,
                                 gboolean mono, FthAudio *audio, GError **error);
/* Progressive decoding, for a view that shows the audio as it comes. FUNC gets the decoded
 * audio piece by piece, in order, on a GStreamer streaming thread (one call at a time) while
 * the caller's thread waits in this function. INFO gives the format of SAMPLES (interleaved
 * float32), the file's own rate and the length the file announces (frames at INFO's rate, -1
 * when it announces none, as some MP3s). FUNC returning FALSE, or CANCELLABLE, stops the
 * decoding with G_IO_ERROR_CANCELLED. MAX_RATE 0 keeps the file's rate; otherwise a file at a
 * higher rate is resampled to MAX_RATE. The checks and errors are fth_audio_decode_file()'s. */
typedef struct {
  int sample_rate; /* of the samples given to FUNC */
  int channels;
  int file_rate;   /* the file's own */
  gint64 frames;   /* expected at sample_rate; -1 when unknown */
} FthAudioStreamInfo;

typedef gboolean (*FthAudioChunkFunc)(const FthAudioStreamInfo *info, const float *samples,
                                      gint64 frames, gpointer user_data);

gboolean fth_audio_decode_file_chunks(const char *path, int max_rate, gboolean mono,
                                      FthAudioChunkFunc func, gpointer user_data,
                                      GCancellable *cancellable, GError **error);
/* Rate, channels and length. WAV is read from its header; other formats are prerolled. */
gboolean fth_audio_probe_file(const char *path, FthAudioInfo *info, GError **error);

void fth_audio_clear(FthAudio *audio);

/* ---------------------------------------------------------------------------------------------
 * IDX (LeCun's MNIST format, also Fashion-MNIST): gzip'ed or plain, loaded whole.
 */

typedef enum {
  FTH_IDX_U8 = 0x08,
  FTH_IDX_I8 = 0x09,
  FTH_IDX_I16 = 0x0B,
  FTH_IDX_I32 = 0x0C,
  FTH_IDX_F32 = 0x0D,
  FTH_IDX_F64 = 0x0E
} FthIdxType;

typedef struct FthIdx FthIdx;

/* Gzip is recognised by content. Fails with TRUNCATED when the data is shorter than the
 * dimensions say (the message gives expected and actual bytes), CORRUPT on a bad magic. */
FthIdx *fth_idx_open(const char *path, GError **error);
FthIdx *fth_idx_new_from_memory(const guint8 *data, gsize len, const char *name, GError **error);
void fth_idx_free(FthIdx *idx);

FthIdxType fth_idx_get_dtype(const FthIdx *idx);
guint fth_idx_get_n_dims(const FthIdx *idx);
guint32 fth_idx_get_dim(const FthIdx *idx, guint i);
gsize fth_idx_get_n_records(const FthIdx *idx); /* dim 0 */
gsize fth_idx_get_record_size(const FthIdx *idx); /* bytes: product of dims 1.. * element size */
/* Multi-byte elements stay big-endian, as stored. Returns NULL when i >= n_records. */
const guint8 *fth_idx_get_record(const FthIdx *idx, gsize i);
const guint8 *fth_idx_get_data(const FthIdx *idx, gsize *len); /* all records, no header */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthIdx, fth_idx_free)

/* ---------------------------------------------------------------------------------------------
 * Text. A "character offset" is a count of Unicode code points (as Python's str indexing and
 * Label Studio spans use): "é" written as e + U+0301 is two characters, an emoji one.
 */

/* Reads a file that must be UTF-8 (a leading BOM is removed). Invalid UTF-8 fails with ENCODING
 * naming the byte offset and suggesting encodings to convert from. *utf8 is NUL-terminated. */
gboolean fth_text_load_file(const char *path, char **utf8, gsize *len, GError **error);
/* Validates in place; same error as fth_text_load_file. */
gboolean fth_text_validate(const char *data, gsize len, const char *name, GError **error);
/* Converts from from_encoding (any name iconv knows: "ISO-8859-1", "GB18030", "UTF-16") to
 * UTF-8 via g_convert. Returns NULL with ENCODING on failure. */
char *fth_text_convert(const char *data, gsize len, const char *from_encoding, const char *name,
                       gsize *out_len, GError **error);

/* Number of code points in valid UTF-8. */
gsize fth_text_char_count(const char *utf8, gsize len);
/* Byte offset -> character offset. FALSE when byte_offset > len or falls inside a character. */
gboolean fth_text_byte_to_char_offset(const char *utf8, gsize len, gsize byte_offset,
                                      gsize *char_offset);
/* Character offset -> byte offset. FALSE when char_offset is past the end. */
gboolean fth_text_char_to_byte_offset(const char *utf8, gsize len, gsize char_offset,
                                      gsize *byte_offset);

/* ---------------------------------------------------------------------------------------------
 * CSV (RFC 4180): comma-separated, fields optionally in double quotes, "" for a quote inside
 * quotes, newlines inside quoted fields, LF or CRLF line ends, an optional UTF-8 BOM. The
 * first row is the header. Read as a stream: memory use is one row, not the file.
 */

typedef struct FthCsvReader FthCsvReader;

FthCsvReader *fth_csv_reader_open(const char *path, GError **error);
/* Copies data. */
FthCsvReader *fth_csv_reader_new_from_memory(const char *data, gsize len, const char *name,
                                             GError **error);
void fth_csv_reader_free(FthCsvReader *reader);

const char *const *fth_csv_reader_get_columns(FthCsvReader *reader, guint *n_columns);
/* Index of the first column with this name, or -1 with MISSING_COLUMN:
 * "data.csv: no column 'text' (columns: id, body, label)". */
int fth_csv_reader_find_column(FthCsvReader *reader, const char *name, GError **error);
/* Next data row; fields stay valid until the next call. Returns FALSE at the end (error unset)
 * or on an error (set; PARSE or ENCODING, "data.csv:17: ..." with the line the row starts on).
 * Empty lines are skipped. A row with a different number of fields than the header fails. */
gboolean fth_csv_reader_next_row(FthCsvReader *reader, const char *const **fields,
                                 guint *n_fields, GError **error);
/* 1-based line on which the last row returned (or the header) started. */
guint64 fth_csv_reader_get_line(FthCsvReader *reader);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthCsvReader, fth_csv_reader_free)

/* ---------------------------------------------------------------------------------------------
 * JSON Lines: one JSON object per line; blank lines are skipped.
 */

typedef struct FthJsonlReader FthJsonlReader;

FthJsonlReader *fth_jsonl_reader_open(const char *path, GError **error);
FthJsonlReader *fth_jsonl_reader_new_from_memory(const char *data, gsize len, const char *name,
                                                 GError **error);
void fth_jsonl_reader_free(FthJsonlReader *reader);
/* Next object (transfer full, json_object_unref it). FALSE at the end (error unset) or on an
 * error: PARSE "data.jsonl:3: ..." for bad JSON or a line that is not an object, ENCODING for
 * invalid UTF-8. */
gboolean fth_jsonl_reader_next(FthJsonlReader *reader, JsonObject **object, GError **error);
guint64 fth_jsonl_reader_get_line(FthJsonlReader *reader); /* of the last object returned */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthJsonlReader, fth_jsonl_reader_free)

G_END_DECLS
