/* Audio decoding: a WAV written here by hand (sines) compared sample by sample, resampling
 * checked by frame count and dominant frequency, FLAC/Ogg/MP3 fixtures, probing, bad headers,
 * decoding from several threads at once. */
#include <fathom/media.h>

#include "fth-config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define FIXTURES FTH_SOURCE_DIR "/tests/data/fixtures"

static void
put_le16(GByteArray *a, guint16 v)
{
  guint8 b[2] = {(guint8) v, (guint8) (v >> 8)};
  g_byte_array_append(a, b, 2);
}

static void
put_le32(GByteArray *a, guint32 v)
{
  guint8 b[4] = {(guint8) v, (guint8) (v >> 8), (guint8) (v >> 16), (guint8) (v >> 24)};
  g_byte_array_append(a, b, 4);
}

/* A canonical 44-byte-header WAV. format_tag 1 (PCM) or 3 (float). */
static GByteArray *
make_wav(int format_tag, int bits, int channels, int rate, const guint8 *data, guint32 data_len)
{
  GByteArray *a = g_byte_array_new();
  g_byte_array_append(a, (const guint8 *) "RIFF", 4);
  put_le32(a, 36 + data_len);
  g_byte_array_append(a, (const guint8 *) "WAVEfmt ", 8);
  put_le32(a, 16);
  put_le16(a, (guint16) format_tag);
  put_le16(a, (guint16) channels);
  put_le32(a, (guint32) rate);
  put_le32(a, (guint32) (rate * channels * bits / 8));
  put_le16(a, (guint16) (channels * bits / 8));
  put_le16(a, (guint16) bits);
  g_byte_array_append(a, (const guint8 *) "data", 4);
  put_le32(a, data_len);
  g_byte_array_append(a, data, data_len);
  return a;
}

/* Stereo 16-bit: 440 Hz left, 880 Hz right; returns the integer samples too. */
static GByteArray *
make_sine_wav16(int rate, int frames, gint16 **out_samples)
{
  gint16 *s = g_new(gint16, frames * 2);
  for (int i = 0; i < frames; i++) {
    s[2 * i] = (gint16) lround(12000 * sin(2 * G_PI * 440 * i / rate));
    s[2 * i + 1] = (gint16) lround(-9000 * sin(2 * G_PI * 880 * i / rate));
  }
  GByteArray *wav = make_wav(1, 16, 2, rate, (const guint8 *) s, (guint32) (frames * 4));
  *out_samples = s;
  return wav;
}

/* The frequency (1 Hz steps in [lo, hi]) with the largest DFT magnitude, by Goertzel. */
static int
dominant_frequency(const float *x, gint64 n, int stride, int rate, int lo, int hi)
{
  int best = lo;
  double best_power = -1;
  for (int f = lo; f <= hi; f += 1) {
    double w = 2 * G_PI * f / rate, c = 2 * cos(w), s1 = 0, s2 = 0;
    for (gint64 i = 0; i < n; i++) {
      double s0 = x[i * stride] + c * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    double power = s1 * s1 + s2 * s2 - c * s1 * s2;
    if (power > best_power) {
      best_power = power;
      best = f;
    }
  }
  return best;
}

static char *
write_temp(const char *dir, const char *name, const guint8 *data, gsize len)
{
  char *path = g_build_filename(dir, name, NULL);
  g_assert_true(g_file_set_contents(path, (const char *) data, (gssize) len, NULL));
  return path;
}

static void
test_wav_exact(void)
{
  const int rate = 22050, frames = 11025;
  g_autofree gint16 *ref = NULL;
  g_autoptr(GByteArray) wav = make_sine_wav16(rate, frames, &ref);
  g_autofree char *dir = g_dir_make_tmp("fth-audio-XXXXXX", NULL);
  g_autofree char *path = write_temp(dir, "sine.wav", wav->data, wav->len);

  FthAudio a;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_audio_decode_file(path, 0, FALSE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.sample_rate, ==, rate);
  g_assert_cmpint(a.channels, ==, 2);
  g_assert_cmpint(a.frames, ==, frames);
  for (int i = 0; i < frames * 2; i++)
    g_assert_cmpfloat_with_epsilon(a.samples[i], ref[i] / 32768.0, 1e-6);
  fth_audio_clear(&a);
  g_assert_null(a.samples);

  /* Mono: the two channels averaged. */
  g_assert_true(fth_audio_decode_memory(wav->data, wav->len, "sine.wav", 0, TRUE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.channels, ==, 1);
  g_assert_cmpint(a.frames, ==, frames);
  for (int i = 0; i < frames; i++)
    g_assert_cmpfloat_with_epsilon(a.samples[i], (ref[2 * i] + ref[2 * i + 1]) / 65536.0, 1e-4);
  fth_audio_clear(&a);

  FthAudioInfo info;
  g_assert_true(fth_audio_probe_file(path, &info, &error));
  g_assert_cmpint(info.sample_rate, ==, rate);
  g_assert_cmpint(info.channels, ==, 2);
  g_assert_cmpint(info.frames, ==, frames);
  g_assert_cmpfloat_with_epsilon(info.duration, 0.5, 1e-9);
  g_remove(path);
  g_rmdir(dir);
}

static void
test_wav_resample(void)
{
  const int rate = 44100, frames = 44100; /* 1 s */
  g_autofree gint16 *ref = NULL;
  g_autoptr(GByteArray) wav = make_sine_wav16(rate, frames, &ref);
  FthAudio a;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_audio_decode_memory(wav->data, wav->len, "s.wav", 16000, FALSE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.sample_rate, ==, 16000);
  g_assert_cmpint(a.channels, ==, 2);
  g_assert_cmpint(a.frames, >=, 16000 - 2);
  g_assert_cmpint(a.frames, <=, 16000 + 2);
  g_assert_cmpint(dominant_frequency(a.samples, a.frames, 2, 16000, 300, 1000), ==, 440);
  g_assert_cmpint(dominant_frequency(a.samples + 1, a.frames, 2, 16000, 300, 1000), ==, 880);
  fth_audio_clear(&a);
}

static void
test_wav_float_and_24bit(void)
{
  const int rate = 8000, frames = 800;
  g_autofree float *f = g_new(float, frames);
  g_autofree guint8 *s24 = g_malloc(frames * 3);
  g_autofree gint32 *ref24 = g_new(gint32, frames);
  for (int i = 0; i < frames; i++) {
    f[i] = (float) (0.75 * sin(2 * G_PI * 300 * i / rate));
    ref24[i] = (gint32) lround(8388607.0 * 0.6 * cos(2 * G_PI * 500 * i / rate));
    s24[3 * i] = (guint8) ref24[i];
    s24[3 * i + 1] = (guint8) (ref24[i] >> 8);
    s24[3 * i + 2] = (guint8) (ref24[i] >> 16);
  }
  g_autoptr(GByteArray) wf = make_wav(3, 32, 1, rate, (const guint8 *) f, frames * 4);
  g_autoptr(GByteArray) w24 = make_wav(1, 24, 1, rate, s24, frames * 3);
  FthAudio a;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_audio_decode_memory(wf->data, wf->len, "f.wav", 0, FALSE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.frames, ==, frames);
  for (int i = 0; i < frames; i++)
    g_assert_cmpfloat(a.samples[i], ==, f[i]);
  fth_audio_clear(&a);
  g_assert_true(fth_audio_decode_memory(w24->data, w24->len, "24.wav", 0, FALSE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.frames, ==, frames);
  for (int i = 0; i < frames; i++)
    g_assert_cmpfloat_with_epsilon(a.samples[i], ref24[i] / 8388608.0, 1e-6);
  fth_audio_clear(&a);
}

/* The fixtures: 1 s of a 440 Hz sine at half scale, 22050 Hz mono, whose sample i is
 * 0.5 sin(2 pi 440 (i + 1) / 22050) (audiotestsrc starts one step in; see fixtures/README.md). */
static void
test_fixtures(void)
{
  const struct {
    const char *file;
    gboolean exact_length; /* MP3 keeps the encoder's delay and padding */
    double max_error;      /* against the sine, lossless formats only */
  } files[] = {
    {"sine440.flac", TRUE, 2.0 / 32768},
    {"sine440.ogg", TRUE, -1},
    {"sine440.mp3", FALSE, -1},
  };
  for (gsize k = 0; k < G_N_ELEMENTS(files); k++) {
    g_autofree char *path = g_build_filename(FIXTURES, files[k].file, NULL);
    FthAudio a;
    g_autoptr(GError) error = NULL;
    g_assert_true(fth_audio_decode_file(path, 0, FALSE, &a, &error));
    g_assert_no_error(error);
    g_test_message("%s: %d Hz, %d channels, %" G_GINT64_FORMAT " frames", files[k].file,
                   a.sample_rate, a.channels, a.frames);
    g_assert_cmpint(a.sample_rate, ==, 22050);
    g_assert_cmpint(a.channels, ==, 1);
    if (files[k].exact_length)
      g_assert_cmpint(a.frames, ==, 22050);
    else
      g_assert_cmpfloat(fabs(a.frames / 22050.0 - 1.0), <, 0.1);
    g_assert_cmpint(dominant_frequency(a.samples, MIN(a.frames, 22050), 1, 22050, 300, 600), ==,
                    440);
    if (files[k].max_error > 0)
      for (gint64 i = 0; i < a.frames; i++)
        g_assert_cmpfloat(fabs(a.samples[i] - 0.5 * sin(2 * G_PI * 440 * (i + 1) / 22050)), <=,
                          files[k].max_error);
    fth_audio_clear(&a);

    g_assert_true(fth_audio_decode_file(path, 16000, TRUE, &a, &error));
    g_assert_cmpint(a.sample_rate, ==, 16000);
    if (files[k].exact_length)
      g_assert_cmpint(labs((long) a.frames - 16000), <=, 2);
    fth_audio_clear(&a);

    FthAudioInfo info;
    g_assert_true(fth_audio_probe_file(path, &info, &error));
    g_assert_no_error(error);
    g_assert_cmpint(info.sample_rate, ==, 22050);
    g_assert_cmpint(info.channels, ==, 1);
    g_assert_cmpfloat(fabs(info.duration - 1.0), <, files[k].exact_length ? 0.001 : 0.1);
  }
}

static void
test_bad_headers(void)
{
  const int rate = 8000, frames = 400;
  g_autofree gint16 *pcm = g_new0(gint16, frames);
  FthAudio a;
  g_autoptr(GError) error = NULL;

  /* Truncated: the data chunk says 800 bytes, 500 follow. */
  g_autoptr(GByteArray) wav = make_wav(1, 16, 1, rate, (const guint8 *) pcm, frames * 2);
  g_assert_false(fth_audio_decode_memory(wav->data, wav->len - 300, "cut.wav", 0, FALSE, &a,
                                         &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_TRUNCATED);
  g_assert_cmpstr(error->message, ==,
                  "cut.wav: WAV data chunk declares 800 bytes but only 500 follow it (truncated)");
  g_assert_null(a.samples);
  g_clear_error(&error);

  /* A streaming header (size 0xFFFFFFFF) means "to the end of the file". */
  wav->data[40] = wav->data[41] = wav->data[42] = wav->data[43] = 0xFF;
  g_assert_true(fth_audio_decode_memory(wav->data, wav->len, "stream.wav", 0, FALSE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.frames, ==, frames);
  fth_audio_clear(&a);

  /* A header with an empty data chunk is a valid recording of no frames. */
  g_autoptr(GByteArray) none = make_wav(1, 16, 2, rate, NULL, 0);
  g_assert_true(fth_audio_decode_memory(none->data, none->len, "none.wav", 0, FALSE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.sample_rate, ==, rate);
  g_assert_cmpint(a.channels, ==, 2);
  g_assert_cmpint(a.frames, ==, 0);
  fth_audio_clear(&a);

  /* Lying fmt chunks. */
  g_autoptr(GByteArray) zero_ch = make_wav(1, 16, 1, rate, (const guint8 *) pcm, frames * 2);
  zero_ch->data[22] = 0;
  g_assert_false(fth_audio_decode_memory(zero_ch->data, zero_ch->len, "ch.wav", 0, FALSE, &a,
                                         &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_CORRUPT);
  g_assert_cmpstr(error->message, ==, "ch.wav: WAV header says 0 channels (1 to 64 expected)");
  g_clear_error(&error);
  g_autoptr(GByteArray) align = make_wav(1, 16, 1, rate, (const guint8 *) pcm, frames * 2);
  align->data[32] = 7; /* block align */
  g_assert_false(fth_audio_decode_memory(align->data, align->len, "al.wav", 0, FALSE, &a, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_CORRUPT);
  g_clear_error(&error);

  g_assert_false(fth_audio_decode_memory(wav->data, 0, "empty.wav", 0, FALSE, &a, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_EMPTY);
  g_clear_error(&error);

  g_assert_false(fth_audio_decode_memory((const guint8 *) "just some words\n", 16, "t.wav", 0,
                                         FALSE, &a, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_UNSUPPORTED);
  g_clear_error(&error);

  /* Bytes no GStreamer type finder recognises. */
  guint8 noise[4096];
  for (gsize i = 0; i < sizeof noise; i++)
    noise[i] = (guint8) (0x80 | ((i * 2654435761u) >> 13));
  g_assert_false(fth_audio_decode_memory(noise, sizeof noise, "noise.bin", 0, FALSE, &a, &error));
  g_assert_nonnull(error);
  g_assert_true(g_str_has_prefix(error->message, "noise.bin: "));
  g_test_message("noise: %s", error->message);
  g_clear_error(&error);

  g_assert_false(fth_audio_decode_file("/nonexistent/a.wav", 0, FALSE, &a, &error));
  g_assert_error(error, FTH_MEDIA_ERROR, FTH_MEDIA_ERROR_IO);
}

/* WAVE_FORMAT_EXTENSIBLE (16-bit PCM sub-format) and mu-law, each with LIST and fact chunks
 * around the fmt chunk, as editors write them. */
static void
test_wav_other_formats(void)
{
  GByteArray *ext = g_byte_array_new();
  const gint16 pcm[4][2] = {{1000, -1000}, {2000, -2000}, {-32768, 32767}, {0, 5}};
  g_byte_array_append(ext, (const guint8 *) "RIFF\0\0\0\0WAVE", 12);
  g_byte_array_append(ext, (const guint8 *) "LIST\4\0\0\0INFO", 12);
  g_byte_array_append(ext, (const guint8 *) "fmt ", 4);
  put_le32(ext, 40);
  put_le16(ext, 0xFFFE);
  put_le16(ext, 2);
  put_le32(ext, 16000);
  put_le32(ext, 16000 * 4);
  put_le16(ext, 4);
  put_le16(ext, 16);
  put_le16(ext, 22);   /* cbSize */
  put_le16(ext, 16);   /* valid bits */
  put_le32(ext, 0x3);  /* front left, front right */
  g_byte_array_append(ext, (const guint8 *) "\x01\0\0\0\0\0\x10\0\x80\0\0\xAA\0\x38\x9B\x71", 16);
  g_byte_array_append(ext, (const guint8 *) "fact\4\0\0\0\4\0\0\0", 12);
  g_byte_array_append(ext, (const guint8 *) "data", 4);
  put_le32(ext, sizeof pcm);
  g_byte_array_append(ext, (const guint8 *) pcm, sizeof pcm);
  FthAudio a;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_audio_decode_memory(ext->data, ext->len, "ext.wav", 0, FALSE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.channels, ==, 2);
  g_assert_cmpint(a.sample_rate, ==, 16000);
  g_assert_cmpint(a.frames, ==, 4);
  for (int i = 0; i < 8; i++)
    g_assert_cmpfloat_with_epsilon(a.samples[i], pcm[i / 2][i % 2] / 32768.0, 1e-6);
  fth_audio_clear(&a);
  g_byte_array_unref(ext);

  /* G.711 mu-law: 0xFF is 0, 0x80 is +32124, 0x00 is -32124 (of 32768). */
  const guint8 ulaw[6] = {0xFF, 0x80, 0x00, 0xFF, 0x80, 0x00};
  GByteArray *mu = g_byte_array_new();
  g_byte_array_append(mu, (const guint8 *) "RIFF\0\0\0\0WAVEfmt ", 16);
  put_le32(mu, 18);
  put_le16(mu, 7);
  put_le16(mu, 1);
  put_le32(mu, 8000);
  put_le32(mu, 8000);
  put_le16(mu, 1);
  put_le16(mu, 8);
  put_le16(mu, 0);
  g_byte_array_append(mu, (const guint8 *) "LIST\0\0\0\0data", 12);
  put_le32(mu, sizeof ulaw);
  g_byte_array_append(mu, ulaw, sizeof ulaw);
  g_assert_true(fth_audio_decode_memory(mu->data, mu->len, "mu.wav", 0, FALSE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.frames, ==, 6);
  const float expect[3] = {0.0f, 32124 / 32768.0f, -32124 / 32768.0f};
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat_with_epsilon(a.samples[i], expect[i % 3], 1e-4);
  fth_audio_clear(&a);
  g_byte_array_unref(mu);
}

/* Found by fuzz-wav: an empty LIST chunk before the data made GStreamer 1.22's wavparse spin
 * forever. The header is valid (24-bit PCM, 8 kHz, 64 frames), so it must decode, promptly. */
static void
test_wav_odd_chunks(void)
{
  g_autofree char *path = g_build_filename(FIXTURES, "empty-list-chunk.wav", NULL);
  FthAudio a;
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(fth_audio_decode_file(path, 0, FALSE, &a, &error));
  g_assert_no_error(error);
  g_assert_cmpint(a.sample_rate, ==, 8000);
  g_assert_cmpint(a.channels, ==, 1);
  g_assert_cmpint(a.frames, ==, 64);
  g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
  fth_audio_clear(&a);
}

static gpointer
decode_in_thread(gpointer path)
{
  FthAudio *a = g_new0(FthAudio, 1);
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_audio_decode_file(path, 16000, TRUE, a, &error));
  g_assert_no_error(error);
  return a;
}

static void
test_threads(void)
{
  g_autofree char *path = g_build_filename(FIXTURES, "sine440.ogg", NULL);
  GThread *threads[4];
  for (int i = 0; i < 4; i++)
    threads[i] = g_thread_new("decode", decode_in_thread, path);
  FthAudio *first = g_thread_join(threads[0]);
  g_assert_cmpint(first->frames, >, 0);
  for (int i = 1; i < 4; i++) {
    FthAudio *other = g_thread_join(threads[i]);
    g_assert_cmpint(other->frames, ==, first->frames);
    g_assert_cmpmem(other->samples, (gsize) other->frames * sizeof(float), first->samples,
                    (gsize) first->frames * sizeof(float));
    fth_audio_clear(other);
    g_free(other);
  }
  fth_audio_clear(first);
  g_free(first);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/audio/wav-exact", test_wav_exact);
  g_test_add_func("/audio/wav-resample", test_wav_resample);
  g_test_add_func("/audio/wav-float-24bit", test_wav_float_and_24bit);
  g_test_add_func("/audio/fixtures", test_fixtures);
  g_test_add_func("/audio/bad-headers", test_bad_headers);
  g_test_add_func("/audio/wav-other-formats", test_wav_other_formats);
  g_test_add_func("/audio/wav-odd-chunks", test_wav_odd_chunks);
  g_test_add_func("/audio/threads", test_threads);
  return g_test_run();
}
