/* Audio decoding through GStreamer: giostreamsrc (over the file's mapping or the caller's
 * buffer) ! decodebin ! audioconvert ! audioresample ! F32LE caps ! appsink, run synchronously
 * with no main loop. WAV headers are checked here first, because wavparse silently decodes a
 * truncated file and the importer must report it. */
#include "media-private.h"

#include <gio/gio.h>
#include <gst/app/gstappsink.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <string.h>

/* A pipeline that makes no progress for this long is given up (a decoder that neither errors
 * nor ends). */
#define STALL_TIMEOUT_S 30

static gboolean
ensure_gst(const char *name, GError **error)
{
  static gsize once = 0;
  static gboolean ok = FALSE;
  static char *init_message = NULL;
  if (g_once_init_enter(&once)) {
    GError *init_error = NULL;
    ok = gst_init_check(NULL, NULL, &init_error);
    if (!ok) {
      init_message = g_strdup(init_error->message);
      g_error_free(init_error);
    }
    g_once_init_leave(&once, 1);
  }
  if (!ok)
    fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, name, "GStreamer cannot start (%s)",
                        init_message);
  return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* WAV header */

typedef struct {
  int format_tag;
  int channels;
  int sample_rate;
  int block_align;
  int bits;
  gsize fmt_offset; /* of the fmt chunk's 8-byte header */
  gsize fmt_size;   /* its body */
  gsize data_offset;
  gsize data_size; /* clipped to the file for streaming headers that give no size */
} WavHeader;

static guint32
le32(const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

static guint16
le16(const guint8 *p)
{
  return (guint16) (p[0] | p[1] << 8);
}

static gboolean
wav_parse_header(const guint8 *data, gsize len, const char *name, WavHeader *h, GError **error)
{
  memset(h, 0, sizeof *h);
  if (len < 12) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, name,
                        "WAV header ends early (truncated at byte %" G_GSIZE_FORMAT ")", len);
    return FALSE;
  }
  gboolean have_fmt = FALSE;
  gsize pos = 12;
  for (;;) {
    if (pos + 8 > len) {
      fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, name,
                          have_fmt ? "WAV file has no data chunk (ends at byte %" G_GSIZE_FORMAT ")"
                                   : "WAV file has no fmt chunk (ends at byte %" G_GSIZE_FORMAT ")",
                          len);
      return FALSE;
    }
    const guint8 *chunk = data + pos;
    gsize size = le32(chunk + 4);
    if (memcmp(chunk, "fmt ", 4) == 0) {
      if (size < 16 || pos + 8 + 16 > len) {
        fth_media_set_error(error, size < 16 ? FTH_MEDIA_ERROR_CORRUPT : FTH_MEDIA_ERROR_TRUNCATED,
                            name, "WAV fmt chunk is too short (%" G_GSIZE_FORMAT " bytes)",
                            size < 16 ? size : len - pos - 8);
        return FALSE;
      }
      const guint8 *f = chunk + 8;
      h->format_tag = le16(f);
      h->channels = le16(f + 2);
      h->sample_rate = (int) MIN(le32(f + 4), (guint32) G_MAXINT);
      h->block_align = le16(f + 12);
      h->bits = le16(f + 14);
      if (h->format_tag == 0xFFFE && size >= 40 && pos + 8 + 26 <= len)
        h->format_tag = le16(f + 24); /* WAVE_FORMAT_EXTENSIBLE: the sub-format GUID's tag */
      h->fmt_offset = pos;
      h->fmt_size = size;
      have_fmt = TRUE;
    } else if (memcmp(chunk, "data", 4) == 0) {
      if (!have_fmt) {
        fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, name,
                            "WAV data chunk comes before the fmt chunk");
        return FALSE;
      }
      h->data_offset = pos + 8;
      gsize available = len - h->data_offset;
      /* 0 and 0xFFFFFFFF are what streaming writers leave when the size is not known. */
      if (size == 0 || size == 0xFFFFFFFFu) {
        h->data_size = available;
      } else if (size > available) {
        fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, name,
                            "WAV data chunk declares %" G_GSIZE_FORMAT " bytes but only %" G_GSIZE_FORMAT
                            " follow it (truncated)",
                            size, available);
        return FALSE;
      } else {
        h->data_size = size;
      }
      break;
    }
    if (size > len - pos - 8) {
      fth_media_set_error(error, FTH_MEDIA_ERROR_TRUNCATED, name,
                          "WAV chunk '%.4s' declares %" G_GSIZE_FORMAT " bytes but the file ends "
                          "%" G_GSIZE_FORMAT " bytes later",
                          g_ascii_isprint(chunk[0]) && g_ascii_isprint(chunk[1]) &&
                                  g_ascii_isprint(chunk[2]) && g_ascii_isprint(chunk[3])
                              ? (const char *) chunk
                              : "????",
                          size, len - pos - 8);
      return FALSE;
    }
    pos += 8 + size + (size & 1);
  }

  if (h->channels < 1 || h->channels > 64) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, name,
                        "WAV header says %d channels (1 to 64 expected)", h->channels);
    return FALSE;
  }
  if (h->sample_rate < 1 || h->sample_rate > 768000) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, name,
                        "WAV header says %d samples per second (1 to 768000 expected)",
                        h->sample_rate);
    return FALSE;
  }
  if (h->format_tag == 1 || h->format_tag == 3) { /* integer PCM, IEEE float */
    if (h->bits == 0 || h->bits > 64 || h->bits % 8 != 0 ||
        h->block_align != h->channels * (h->bits / 8)) {
      fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, name,
                          "WAV header is inconsistent: %d channels of %d bits but %d bytes per "
                          "frame",
                          h->channels, h->bits, h->block_align);
      return FALSE;
    }
  }
  return TRUE;
}

/* Integer PCM or IEEE float: the header alone gives the exact length. */
static gboolean
wav_is_plain_pcm(const WavHeader *h)
{
  return h->format_tag == 1 || h->format_tag == 3;
}

/* WAV reaches GStreamer rebuilt as RIFF header, the file's fmt chunk and the data chunk (not
 * copied), whatever other chunks the file has: wavparse 1.22 spins forever on some odd chunk
 * layouts (an empty LIST chunk found by fuzz-wav, tests/data/fixtures/empty-list-chunk.wav),
 * and the chunk structure has already been checked here. Called only after wav_parse_header
 * succeeded, so both chunks lie inside data. */
static GInputStream *
wav_rebuilt_stream(const guint8 *data, const WavHeader *h)
{
  gsize fmt_chunk = 8 + h->fmt_size + (h->fmt_size & 1);
  gsize size = h->data_size;
  if (h->block_align > 0) /* whole frames (PCM) or blocks (ADPCM) only */
    size -= size % (gsize) h->block_align;
  size = MIN(size, (gsize) 0xFFFFFFFFu - 12 - fmt_chunk);
  gsize header_len = 12 + fmt_chunk + 8;
  guint8 *header = g_malloc0(header_len);
  const guint32 riff_size = GUINT32_TO_LE((guint32) (4 + fmt_chunk + 8 + size));
  memcpy(header, "RIFF", 4);
  memcpy(header + 4, &riff_size, 4);
  memcpy(header + 8, "WAVE", 4);
  memcpy(header + 12, data + h->fmt_offset, 8 + h->fmt_size); /* a pad byte stays zero */
  const guint32 data_size = GUINT32_TO_LE((guint32) size);
  memcpy(header + 12 + fmt_chunk, "data", 4);
  memcpy(header + 12 + fmt_chunk + 4, &data_size, 4);
  GInputStream *stream = g_memory_input_stream_new_from_data(header, (gssize) header_len, g_free);
  g_memory_input_stream_add_data(G_MEMORY_INPUT_STREAM(stream), data + h->data_offset,
                                 (gssize) size, NULL);
  return stream;
}

/* ------------------------------------------------------------------------------------------ */
/* Pipeline */

typedef struct {
  const char *name;
  GstElement *pipeline;
  GstElement *convert;
  GstElement *sink;
  GByteArray *samples; /* float32, interleaved; NULL when the samples go to chunk_func */
  FthAudioChunkFunc chunk_func;
  gpointer chunk_data;
  GCancellable *cancellable;
  FthAudioStreamInfo stream; /* for chunk_func, filled at the first buffer */
  gboolean stopped;          /* chunk_func or the cancellable stopped the decoding */
  gboolean count_only; /* probing: count the bytes, keep nothing */
  gsize n_bytes;       /* decoded so far */
  gint progress;       /* bumped by the streaming thread on every buffer (atomic) */
  gboolean too_large;  /* set by the streaming thread, read after it stopped */
} Decoder;

static void
on_pad_added(GstElement *decodebin, GstPad *pad, gpointer user_data)
{
  Decoder *d = user_data;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (caps == NULL)
    caps = gst_pad_query_caps(pad, NULL);
  const char *media = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  if (g_str_has_prefix(media, "audio/")) {
    GstPad *sinkpad = gst_element_get_static_pad(d->convert, "sink");
    if (!gst_pad_is_linked(sinkpad))
      gst_pad_link(pad, sinkpad);
    gst_object_unref(sinkpad);
  }
  gst_caps_unref(caps);
}

/* Asks decoder_run, waiting on the bus, to give up (from any thread). */
static void
post_stop(GstElement *pipeline)
{
  gst_element_post_message(pipeline, gst_message_new_application(
                                       GST_OBJECT(pipeline), gst_structure_new_empty("fth-stop")));
}

static void
on_cancelled(GCancellable *cancellable, gpointer user_data)
{
  post_stop(user_data);
}

/* The format of the first buffer, the file's own rate and the length the file announces. */
static void
stream_info_init(Decoder *d, GstSample *sample)
{
  GstAudioInfo info;
  GstCaps *caps = gst_sample_get_caps(sample);
  if (caps != NULL && gst_audio_info_from_caps(&info, caps)) {
    d->stream.sample_rate = GST_AUDIO_INFO_RATE(&info);
    d->stream.channels = GST_AUDIO_INFO_CHANNELS(&info);
  }
  d->stream.file_rate = d->stream.sample_rate;
  GstPad *pad = gst_element_get_static_pad(d->convert, "sink");
  GstCaps *file_caps = gst_pad_get_current_caps(pad);
  if (file_caps != NULL && gst_audio_info_from_caps(&info, file_caps))
    d->stream.file_rate = GST_AUDIO_INFO_RATE(&info);
  if (file_caps != NULL)
    gst_caps_unref(file_caps);
  gst_object_unref(pad);
  gint64 duration = -1;
  d->stream.frames = -1;
  pad = gst_element_get_static_pad(d->sink, "sink");
  if (gst_pad_peer_query_duration(pad, GST_FORMAT_TIME, &duration) && duration >= 0)
    d->stream.frames = (gint64) gst_util_uint64_scale_round(
      (guint64) duration, (guint64) d->stream.sample_rate, GST_SECOND);
  gst_object_unref(pad);
}

/* Hands one buffer to chunk_func; FALSE when the decoding is to stop. */
static gboolean
deliver_chunk(Decoder *d, GstSample *sample, const GstMapInfo *map)
{
  if (d->stream.sample_rate == 0)
    stream_info_init(d, sample);
  gsize frame_bytes = sizeof(float) * (gsize) MAX(1, d->stream.channels);
  if (g_cancellable_is_cancelled(d->cancellable) ||
      !d->chunk_func(&d->stream, (const float *) (gconstpointer) map->data,
                     (gint64) (map->size / frame_bytes), d->chunk_data)) {
    d->stopped = TRUE;
    post_stop(d->pipeline);
    return FALSE;
  }
  return TRUE;
}

static GstFlowReturn
on_new_sample(GstAppSink *sink, gpointer user_data)
{
  Decoder *d = user_data;
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (sample == NULL)
    return GST_FLOW_EOS;
  GstBuffer *buffer = gst_sample_get_buffer(sample);
  GstMapInfo map;
  GstFlowReturn ret = GST_FLOW_OK;
  if (buffer != NULL && gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    if (d->count_only) {
      d->n_bytes += map.size;
    } else if (d->stopped) {
      ret = GST_FLOW_EOS;
    } else if (d->n_bytes + map.size > FTH_AUDIO_MAX_BYTES) {
      d->too_large = TRUE;
      ret = GST_FLOW_ERROR;
    } else if (d->chunk_func != NULL) {
      if (!deliver_chunk(d, sample, &map))
        ret = GST_FLOW_EOS;
      d->n_bytes += map.size;
    } else {
      g_byte_array_append(d->samples, map.data, (guint) map.size);
      d->n_bytes += map.size;
    }
    gst_buffer_unmap(buffer, &map);
  }
  gst_sample_unref(sample);
  g_atomic_int_inc(&d->progress);
  return ret;
}

static FthMediaError
media_error_from_gst(const GError *e)
{
  if (e->domain == GST_STREAM_ERROR) {
    switch (e->code) {
    case GST_STREAM_ERROR_TYPE_NOT_FOUND:
    case GST_STREAM_ERROR_WRONG_TYPE:
    case GST_STREAM_ERROR_CODEC_NOT_FOUND:
    case GST_STREAM_ERROR_NOT_IMPLEMENTED:
      return FTH_MEDIA_ERROR_UNSUPPORTED;
    default:
      return FTH_MEDIA_ERROR_CORRUPT;
    }
  }
  if (e->domain == GST_CORE_ERROR && e->code == GST_CORE_ERROR_MISSING_PLUGIN)
    return FTH_MEDIA_ERROR_UNSUPPORTED;
  if (e->domain == GST_RESOURCE_ERROR)
    return FTH_MEDIA_ERROR_IO;
  return FTH_MEDIA_ERROR_CORRUPT;
}

/* Builds the pipeline over data (not copied; must outlive the decoder). With RATE_IS_MAX, a
 * file at no more than TARGET_RATE keeps its rate. */
static gboolean
decoder_init(Decoder *d, const guint8 *data, gsize len, const WavHeader *wav, const char *name,
             int target_rate, gboolean rate_is_max, gboolean mono, GError **error)
{
  memset(d, 0, sizeof *d);
  d->name = name;
  GstElement *src = gst_element_factory_make("giostreamsrc", NULL);
  GstElement *decode = gst_element_factory_make("decodebin", NULL);
  d->convert = gst_element_factory_make("audioconvert", NULL);
  GstElement *resample = gst_element_factory_make("audioresample", NULL);
  GstElement *filter = gst_element_factory_make("capsfilter", NULL);
  d->sink = gst_element_factory_make("appsink", NULL);
  if (!src || !decode || !d->convert || !resample || !filter || !d->sink) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, name,
                        "GStreamer lacks an element this decoder needs (giostreamsrc, decodebin, "
                        "audioconvert, audioresample, capsfilter, appsink)");
    GstElement *all[] = {src, decode, d->convert, resample, filter, d->sink};
    for (gsize i = 0; i < G_N_ELEMENTS(all); i++)
      if (all[i])
        gst_object_unref(gst_object_ref_sink(all[i]));
    return FALSE;
  }
  d->pipeline = gst_pipeline_new(NULL);
  gst_bin_add_many(GST_BIN(d->pipeline), src, decode, d->convert, resample, filter, d->sink,
                   NULL);

  GInputStream *stream = wav ? wav_rebuilt_stream(data, wav)
                             : g_memory_input_stream_new_from_data(data, (gssize) len, NULL);
  g_object_set(src, "stream", stream, NULL);
  g_object_unref(stream);

  GstCaps *caps = gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "F32LE", "layout",
                                      G_TYPE_STRING, "interleaved", NULL);
  if (target_rate > 0 && rate_is_max) /* audioresample picks the rate nearest the file's */
    gst_caps_set_simple(caps, "rate", GST_TYPE_INT_RANGE, 1, target_rate, NULL);
  else if (target_rate > 0)
    gst_caps_set_simple(caps, "rate", G_TYPE_INT, target_rate, NULL);
  if (mono)
    gst_caps_set_simple(caps, "channels", G_TYPE_INT, 1, NULL);
  g_object_set(filter, "caps", caps, NULL);
  gst_caps_unref(caps);

  g_object_set(d->sink, "sync", FALSE, NULL);
  GstAppSinkCallbacks callbacks = {.new_sample = on_new_sample};
  gst_app_sink_set_callbacks(GST_APP_SINK(d->sink), &callbacks, d, NULL);
  d->samples = g_byte_array_new();

  gst_element_link(src, decode);
  gst_element_link_many(d->convert, resample, filter, d->sink, NULL);
  g_signal_connect(decode, "pad-added", G_CALLBACK(on_pad_added), d);
  return TRUE;
}

static void
decoder_clear(Decoder *d)
{
  if (d->pipeline) {
    gst_element_set_state(d->pipeline, GST_STATE_NULL);
    gst_object_unref(d->pipeline);
    d->pipeline = NULL;
  }
  if (d->samples)
    g_byte_array_unref(d->samples);
  d->samples = NULL;
}

/* Runs the pipeline to `target` (PLAYING: until EOS; PAUSED: until prerolled) or an error. */
static gboolean
decoder_run(Decoder *d, GstState target, GError **error)
{
  GstBus *bus = gst_element_get_bus(d->pipeline);
  gboolean ok = FALSE;
  GstMessageType wanted = GST_MESSAGE_ERROR |
                          (target == GST_STATE_PLAYING ? GST_MESSAGE_EOS : GST_MESSAGE_ASYNC_DONE);
  if (gst_element_set_state(d->pipeline, target) == GST_STATE_CHANGE_FAILURE) {
    /* The error message on the bus says why; fall through to read it. */
  }
  if (d->cancellable != NULL || d->chunk_func != NULL)
    wanted |= GST_MESSAGE_APPLICATION;
  gulong cancel_id = d->cancellable != NULL ? g_cancellable_connect(d->cancellable,
                                                                   G_CALLBACK(on_cancelled),
                                                                   d->pipeline, NULL)
                                            : 0;
  gint last_progress = -1;
  gint64 last_change = g_get_monotonic_time();
  for (;;) {
    GstMessage *msg = gst_bus_timed_pop_filtered(bus, GST_SECOND / 2, wanted);
    if (msg == NULL) {
      gint progress = g_atomic_int_get(&d->progress);
      if (progress != last_progress) {
        last_progress = progress;
        last_change = g_get_monotonic_time();
      } else if (g_get_monotonic_time() - last_change > STALL_TIMEOUT_S * G_USEC_PER_SEC) {
        fth_media_set_error(error, FTH_MEDIA_ERROR_CORRUPT, d->name,
                            "audio decoding made no progress for %d s", STALL_TIMEOUT_S);
        break;
      }
      continue;
    }
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
      GError *gst_error = NULL;
      gst_message_parse_error(msg, &gst_error, NULL);
      /* Stop the streaming threads before reading what they set. */
      gst_element_set_state(d->pipeline, GST_STATE_NULL);
      if (d->too_large)
        fth_media_set_error(error, FTH_MEDIA_ERROR_TOO_LARGE, d->name,
                            "decoded audio is over the 1 GiB limit");
      else
        fth_media_set_error(error, media_error_from_gst(gst_error), d->name,
                            "cannot decode audio (%s)", gst_error->message);
      g_error_free(gst_error);
      gst_message_unref(msg);
      break;
    }
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_APPLICATION) {
      gst_message_unref(msg);
      if (!d->stopped && !g_cancellable_is_cancelled(d->cancellable))
        continue; /* not ours */
      gst_element_set_state(d->pipeline, GST_STATE_NULL);
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s: decoding stopped", d->name);
      break;
    }
    gst_message_unref(msg);
    /* A stop asked for just before the end: the caller still learns that it stopped. */
    if (d->stopped) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s: decoding stopped", d->name);
      break;
    }
    ok = TRUE;
    break;
  }
  g_cancellable_disconnect(d->cancellable, cancel_id);
  gst_object_unref(bus);
  return ok;
}

/* Rate and channels as negotiated at the appsink. */
static gboolean
decoder_get_format(Decoder *d, int *rate, int *channels)
{
  GstPad *pad = gst_element_get_static_pad(d->sink, "sink");
  GstCaps *caps = gst_pad_get_current_caps(pad);
  gst_object_unref(pad);
  if (caps == NULL)
    return FALSE;
  GstAudioInfo info;
  gboolean ok = gst_audio_info_from_caps(&info, caps);
  gst_caps_unref(caps);
  if (ok) {
    *rate = GST_AUDIO_INFO_RATE(&info);
    *channels = GST_AUDIO_INFO_CHANNELS(&info);
  }
  return ok;
}

static gboolean
check_input(const guint8 *data, gsize len, const char *name, WavHeader *wav, gboolean *is_wav,
            GError **error)
{
  *is_wav = FALSE;
  if (len == 0) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_EMPTY, name, "file is empty (0 bytes)");
    return FALSE;
  }
  FthMediaFormat format = fth_media_sniff(data, len);
  if (format == FTH_MEDIA_FORMAT_WAV) {
    *is_wav = TRUE;
    return wav_parse_header(data, len, name, wav, error);
  }
  if (fth_media_format_kind(format) != FTH_MEDIA_KIND_AUDIO &&
      format != FTH_MEDIA_FORMAT_UNKNOWN) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, name,
                        "not audio: the content is %s", fth_media_format_name(format));
    return FALSE;
  }
  return TRUE;
}

gboolean
fth_audio_decode_memory(const guint8 *data, gsize len, const char *name, int target_rate,
                        gboolean mono, FthAudio *audio, GError **error)
{
  *audio = (FthAudio){0};
  if (name == NULL)
    name = "<memory>";
  WavHeader wav;
  gboolean is_wav;
  if (!check_input(data, len, name, &wav, &is_wav, error) || !ensure_gst(name, error))
    return FALSE;
  if (target_rate < 0 || target_rate > 768000) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, name,
                        "cannot resample to %d Hz", target_rate);
    return FALSE;
  }
  Decoder d;
  if (!decoder_init(&d, data, len, is_wav ? &wav : NULL, name, target_rate, FALSE, mono, error))
    return FALSE;
  gboolean ok = decoder_run(&d, GST_STATE_PLAYING, error);
  int rate = 0, channels = 0;
  if (ok && !decoder_get_format(&d, &rate, &channels)) {
    if (is_wav && wav.data_size == 0) { /* a valid, empty recording */
      rate = target_rate > 0 ? target_rate : wav.sample_rate;
      channels = mono ? 1 : wav.channels;
    } else {
      fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, name,
                          "no audio stream found in the file");
      ok = FALSE;
    }
  }
  if (ok) {
    gst_element_set_state(d.pipeline, GST_STATE_NULL);
    audio->sample_rate = rate;
    audio->channels = channels;
    audio->frames = (gint64) (d.samples->len / (sizeof(float) * (gsize) channels));
    audio->samples = (float *) (gpointer) g_byte_array_free(d.samples, audio->frames == 0);
    d.samples = NULL;
  }
  decoder_clear(&d);
  return ok;
}

gboolean
fth_audio_decode_file(const char *path, int target_rate, gboolean mono, FthAudio *audio,
                      GError **error)
{
  FthMediaFile file;
  *audio = (FthAudio){0};
  if (!fth_media_file_map(path, &file, error))
    return FALSE;
  gboolean ok = fth_audio_decode_memory(file.data, file.len, path, target_rate, mono, audio, error);
  fth_media_file_unmap(&file);
  return ok;
}

gboolean
fth_audio_decode_file_chunks(const char *path, int max_rate, gboolean mono,
                             FthAudioChunkFunc func, gpointer user_data, GCancellable *cancellable,
                             GError **error)
{
  g_return_val_if_fail(func != NULL, FALSE);
  if (max_rate < 0 || max_rate > 768000) {
    fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, path, "cannot resample to %d Hz",
                        max_rate);
    return FALSE;
  }
  FthMediaFile file;
  if (!fth_media_file_map(path, &file, error))
    return FALSE;
  WavHeader wav;
  gboolean is_wav;
  Decoder d;
  gboolean ok = check_input(file.data, file.len, path, &wav, &is_wav, error) &&
                ensure_gst(path, error) &&
                decoder_init(&d, file.data, file.len, is_wav ? &wav : NULL, path, max_rate, TRUE,
                             mono, error);
  if (ok) {
    g_clear_pointer(&d.samples, g_byte_array_unref);
    d.chunk_func = func;
    d.chunk_data = user_data;
    d.cancellable = cancellable;
    ok = decoder_run(&d, GST_STATE_PLAYING, error);
    decoder_clear(&d);
  }
  fth_media_file_unmap(&file);
  return ok;
}

gboolean
fth_audio_probe_file(const char *path, FthAudioInfo *info, GError **error)
{
  *info = (FthAudioInfo){.frames = -1, .duration = -1};
  FthMediaFile file;
  if (!fth_media_file_map(path, &file, error))
    return FALSE;
  WavHeader wav;
  gboolean is_wav;
  gboolean ok = check_input(file.data, file.len, path, &wav, &is_wav, error);
  if (ok && is_wav && wav_is_plain_pcm(&wav)) {
    info->sample_rate = wav.sample_rate;
    info->channels = wav.channels;
    info->frames = (gint64) (wav.data_size / (gsize) wav.block_align);
    info->duration = (double) info->frames / wav.sample_rate;
  } else if (ok && ensure_gst(path, error)) {
    Decoder d;
    ok = decoder_init(&d, file.data, file.len, is_wav ? &wav : NULL, path, 0, FALSE, FALSE,
                      error) &&
         decoder_run(&d, GST_STATE_PAUSED, error);
    if (ok && !decoder_get_format(&d, &info->sample_rate, &info->channels)) {
      fth_media_set_error(error, FTH_MEDIA_ERROR_UNSUPPORTED, path,
                          "no audio stream found in the file");
      ok = FALSE;
    }
    gint64 duration = -1;
    if (ok && (!gst_element_query_duration(d.pipeline, GST_FORMAT_TIME, &duration) ||
               duration < 0)) {
      /* No length in the headers (MP3 without a Xing/VBRI frame): decode and count. */
      d.count_only = TRUE;
      ok = decoder_run(&d, GST_STATE_PLAYING, error);
      gst_element_set_state(d.pipeline, GST_STATE_NULL);
      if (ok)
        duration = (gint64) gst_util_uint64_scale(d.n_bytes / (sizeof(float) * (gsize) info->channels),
                                                  GST_SECOND, (guint64) info->sample_rate);
    }
    if (ok && duration >= 0) {
      info->duration = (double) duration / GST_SECOND;
      info->frames = (gint64) gst_util_uint64_scale_round((guint64) duration,
                                                          (guint64) info->sample_rate, GST_SECOND);
    }
    if (ok && d.count_only) /* exact, not through the rounding above */
      info->frames = (gint64) (d.n_bytes / (sizeof(float) * (gsize) info->channels));
    decoder_clear(&d);
  } else {
    ok = FALSE;
  }
  fth_media_file_unmap(&file);
  return ok;
}

void
fth_audio_clear(FthAudio *audio)
{
  g_clear_pointer(&audio->samples, g_free);
  audio->sample_rate = audio->channels = 0;
  audio->frames = 0;
}
