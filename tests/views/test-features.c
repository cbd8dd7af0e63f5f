/* Log-mel spectrogram against a float64 reference written here from the definition (naive DFT,
 * own mel scale), on a synthetic sine; the cache file round trip; the progressive decode the
 * waveform view reads (fth_audio_decode_file_chunks). */
#include <fathom/features.h>
#include <fathom/media.h>

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static double
ref_hz_to_mel(double hz)
{
  return 2595.0 * log10(1.0 + hz / 700.0);
}

static double
ref_mel_to_hz(double mel)
{
  return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
}

/* log(mel energies) of frame FRAME, in float64 all the way. */
static void
reference_frame(const float *x, gint64 n, const FthMelParams *p, gint64 frame, double *out)
{
  int nfft = p->n_fft, bins = nfft / 2 + 1, off = (nfft - p->win_length) / 2;
  double *power = g_new0(double, bins);
  for (int k = 0; k < bins; k++) {
    double re = 0, im = 0;
    for (int i = 0; i < nfft; i++) {
      gint64 s = frame * p->hop - nfft / 2 + i;
      int wi = i - off;
      double w = (wi >= 0 && wi < p->win_length) ? 0.5 - 0.5 * cos(2 * G_PI * wi / p->win_length)
                                                 : 0.0;
      double v = (s >= 0 && s < n) ? x[s] * w : 0.0;
      re += v * cos(2 * G_PI * k * i / nfft);
      im -= v * sin(2 * G_PI * k * i / nfft);
    }
    power[k] = re * re + im * im;
  }
  double lo = ref_hz_to_mel(p->f_min), hi = ref_hz_to_mel(p->f_max);
  for (int m = 0; m < p->n_mels; m++) {
    double l = ref_mel_to_hz(lo + (hi - lo) * m / (p->n_mels + 1));
    double c = ref_mel_to_hz(lo + (hi - lo) * (m + 1) / (p->n_mels + 1));
    double r = ref_mel_to_hz(lo + (hi - lo) * (m + 2) / (p->n_mels + 1));
    double e = 0;
    for (int k = 0; k < bins; k++) {
      double f = (double)k * p->sample_rate / nfft, w = 0;
      if (f > l && f <= c)
        w = (f - l) / (c - l);
      else if (f > c && f < r)
        w = (r - f) / (r - c);
      e += w * 2.0 / (r - l) * power[k];
    }
    out[m] = log(MAX(e, p->log_floor));
  }
  g_free(power);
}

static float *
make_sine(int rate, double hz, gint64 n)
{
  float *x = g_new(float, n);
  for (gint64 i = 0; i < n; i++)
    x[i] = (float)(0.5 * sin(2 * G_PI * hz * i / rate));
  return x;
}

static void
test_sine_against_reference(void)
{
  const int rate = 16000;
  const gint64 n = rate / 2;
  const double hz = 1000.0;
  g_autofree float *x = make_sine(rate, hz, n);
  FthMelParams p;
  fth_mel_params_init(&p, rate);
  g_assert_cmpint(p.n_fft, ==, 512);
  g_assert_cmpint(p.hop, ==, 160);
  FthMelSpectrogram spec;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_log_mel_compute(x, n, &p, &spec, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpint(spec.n_frames, ==, fth_mel_frame_count(&p, n));
  g_assert_cmpint(spec.n_mels, ==, 64);
  g_assert_cmpfloat_with_epsilon(spec.hop_s, 0.01, 1e-12);

  double ref[64];
  const gint64 frames[] = { 0, 1, 7, spec.n_frames / 2, spec.n_frames - 1 };
  for (guint f = 0; f < G_N_ELEMENTS(frames); f++) {
    reference_frame(x, n, &p, frames[f], ref);
    for (int m = 0; m < 64; m++) {
      double got = spec.data[frames[f] * 64 + m];
      /* Float32 FFT: tight where there is energy; the floor is exact. */
      double tol = ref[m] > -10.0 ? 2e-3 * MAX(1.0, fabs(ref[m])) : 0.05 * fabs(ref[m]);
      if (fabs(got - ref[m]) > tol)
        g_error("frame %" G_GINT64_FORMAT " mel %d: %g, reference %g", frames[f], m, got,
                ref[m]);
    }
  }

  /* The loudest band of a middle frame is the one whose triangle peaks nearest 1 kHz. */
  const float *row = spec.data + (spec.n_frames / 2) * 64;
  int best = 0;
  for (int m = 1; m < 64; m++)
    if (row[m] > row[best])
      best = m;
  double lo = fth_hz_to_mel(0), hi = fth_hz_to_mel(8000);
  double left = fth_mel_to_hz(lo + (hi - lo) * best / 65.0);
  double right = fth_mel_to_hz(lo + (hi - lo) * (best + 2) / 65.0);
  g_assert_cmpfloat(left, <, hz);
  g_assert_cmpfloat(right, >, hz);
  /* ... and carries far more energy than a band two octaves up. */
  int far = 0;
  while (fth_mel_to_hz(lo + (hi - lo) * (far + 1) / 65.0) < 4 * hz)
    far++;
  g_assert_cmpfloat(row[best] - row[far], >, 5.0);
  fth_mel_spectrogram_clear(&spec);
}

static void
test_filterbank_and_params(void)
{
  FthMelParams p;
  fth_mel_params_init(&p, 22050);
  g_autofree float *bank = fth_mel_filterbank(&p);
  int bins = p.n_fft / 2 + 1;
  /* Every filter has some weight and is zero outside its triangle. */
  for (int m = 0; m < p.n_mels; m++) {
    double sum = 0;
    for (int k = 0; k < bins; k++) {
      g_assert_cmpfloat(bank[m * bins + k], >=, 0.0f);
      sum += bank[m * bins + k];
    }
    g_assert_cmpfloat(sum, >, 0.0);
  }
  g_assert_cmpfloat_with_epsilon(fth_mel_to_hz(fth_hz_to_mel(1234.5)), 1234.5, 1e-9);

  g_autoptr(GError) error = NULL;
  p.n_fft = 500;
  FthMelSpectrogram spec;
  float x[4] = { 0 };
  g_assert_false(fth_log_mel_compute(x, 4, &p, &spec, NULL, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(error->message, "n_fft"));
  g_assert_null(spec.data);
}

static void
test_cancel(void)
{
  const int rate = 8000;
  g_autofree float *x = make_sine(rate, 440, rate * 2);
  FthMelParams p;
  fth_mel_params_init(&p, rate);
  g_autoptr(GCancellable) cancel = g_cancellable_new();
  g_cancellable_cancel(cancel);
  FthMelSpectrogram spec;
  g_autoptr(GError) error = NULL;
  g_assert_false(fth_log_mel_compute(x, rate * 2, &p, &spec, cancel, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null(spec.data);
}

static void
test_cache_round_trip(void)
{
  const int rate = 8000;
  g_autofree float *x = make_sine(rate, 300, rate);
  FthMelParams p;
  fth_mel_params_init(&p, rate);
  FthMelSpectrogram spec, back;
  g_assert_true(fth_log_mel_compute(x, rate, &p, &spec, NULL, NULL));
  g_autofree char *dir = g_dir_make_tmp("fth-mel-XXXXXX", NULL);
  g_autofree char *path = fth_mel_cache_path(dir, "abc123", &p);
  FthMelParams other = p;
  other.n_mels = 40;
  g_autofree char *other_path = fth_mel_cache_path(dir, "abc123", &other);
  g_assert_cmpstr(path, !=, other_path);

  g_autoptr(GError) error = NULL;
  g_assert_false(fth_mel_spectrogram_load(path, &back, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error(&error);

  g_assert_true(fth_mel_spectrogram_save(&spec, path, &error));
  g_assert_no_error(error);
  g_assert_true(fth_mel_spectrogram_load(path, &back, &error));
  g_assert_cmpint(back.n_frames, ==, spec.n_frames);
  g_assert_cmpint(back.n_mels, ==, spec.n_mels);
  g_assert_cmpfloat(back.hop_s, ==, spec.hop_s);
  g_assert_cmpmem(back.data, back.n_frames * back.n_mels * 4, spec.data,
                  spec.n_frames * spec.n_mels * 4);
  g_assert_cmpfloat(back.max_value, ==, spec.max_value);
  fth_mel_spectrogram_clear(&back);

  /* A cut-off file is refused, not read short. */
  g_autofree char *contents = NULL;
  gsize len;
  g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
  g_assert_true(g_file_set_contents(path, contents, (gssize)len - 3, NULL));
  g_assert_false(fth_mel_spectrogram_load(path, &back, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_nonnull(strstr(error->message, path));
  g_remove(path);
  g_rmdir(dir);
  fth_mel_spectrogram_clear(&spec);
}

/* ---- progressive decoding ------------------------------------------------------------------ */

/* SECONDS of 16-bit stereo PCM at RATE: a different tone in each channel. */
static char *
write_stereo_wav(const char *dir, int rate, double seconds)
{
  gint64 n = (gint64)(rate * seconds);
  gsize data_bytes = (gsize)n * 4;
  g_autofree guint8 *buf = g_malloc0(44 + data_bytes);
  guint32 v;
  guint16 h;
  memcpy(buf, "RIFF", 4);
  v = GUINT32_TO_LE((guint32)(36 + data_bytes));
  memcpy(buf + 4, &v, 4);
  memcpy(buf + 8, "WAVEfmt ", 8);
  v = GUINT32_TO_LE(16);
  memcpy(buf + 16, &v, 4);
  h = GUINT16_TO_LE(1);
  memcpy(buf + 20, &h, 2);
  h = GUINT16_TO_LE(2);
  memcpy(buf + 22, &h, 2);
  v = GUINT32_TO_LE((guint32)rate);
  memcpy(buf + 24, &v, 4);
  v = GUINT32_TO_LE((guint32)rate * 4);
  memcpy(buf + 28, &v, 4);
  h = GUINT16_TO_LE(4);
  memcpy(buf + 32, &h, 2);
  h = GUINT16_TO_LE(16);
  memcpy(buf + 34, &h, 2);
  memcpy(buf + 36, "data", 4);
  v = GUINT32_TO_LE((guint32)data_bytes);
  memcpy(buf + 40, &v, 4);
  gint16 *samples = (gint16 *)(buf + 44);
  for (gint64 i = 0; i < n; i++) {
    samples[2 * i] = GINT16_TO_LE((gint16)(12000 * sin(2 * G_PI * 440 * i / rate)));
    samples[2 * i + 1] = GINT16_TO_LE((gint16)(9000 * sin(2 * G_PI * 1000 * i / rate)));
  }
  char *path = g_strdup_printf("%s/stereo-%d.wav", dir, rate);
  g_assert_true(g_file_set_contents(path, (const char *)buf, (gssize)(44 + data_bytes), NULL));
  return path;
}

typedef struct {
  GArray *samples; /* float */
  FthAudioStreamInfo info;
  guint calls;
  guint stop_after; /* 0: never */
  GCancellable *cancel_after_first;
} Chunks;

static gboolean
collect_chunk(const FthAudioStreamInfo *info, const float *samples, gint64 frames, gpointer data)
{
  Chunks *c = data;
  if (c->calls > 0)
    g_assert_true(memcmp(info, &c->info, sizeof *info) == 0); /* one format for all pieces */
  c->info = *info;
  c->calls++;
  g_array_append_vals(c->samples, samples, (guint)(frames * info->channels));
  if (c->cancel_after_first != NULL)
    g_cancellable_cancel(c->cancel_after_first);
  return c->stop_after == 0 || c->calls < c->stop_after;
}

/* The pieces, put together, are what fth_audio_decode_file() gives at once: mixed to mono, at
 * no more than the rate asked (a file at a lower rate keeps its own), the length announced
 * from the start. Stopping (FALSE from the callback, or the cancellable) ends it with
 * G_IO_ERROR_CANCELLED. */
static void
test_decode_chunks(void)
{
  g_autofree char *dir = g_dir_make_tmp("fth-chunks-XXXXXX", NULL);
  const int rates[] = { 22050, 8000 };
  for (guint r = 0; r < G_N_ELEMENTS(rates); r++) {
    g_autofree char *path = write_stereo_wav(dir, rates[r], 3.0);
    int want_rate = MIN(rates[r], 16000);
    g_autoptr(GError) error = NULL;
    FthAudio whole = { 0 };
    g_assert_true(fth_audio_decode_file(path, want_rate, TRUE, &whole, &error));
    Chunks c = { g_array_new(FALSE, FALSE, sizeof(float)) };
    g_assert_true(fth_audio_decode_file_chunks(path, 16000, TRUE, collect_chunk, &c, NULL,
                                               &error));
    g_assert_no_error(error);
    g_assert_cmpuint(c.calls, >, 1);
    g_assert_cmpint(c.info.sample_rate, ==, want_rate);
    g_assert_cmpint(c.info.file_rate, ==, rates[r]);
    g_assert_cmpint(c.info.channels, ==, 1);
    g_assert_cmpint(llabs(c.info.frames - whole.frames), <=, 1);
    g_assert_cmpint(c.samples->len, ==, whole.frames);
    g_assert_true(memcmp(c.samples->data, whole.samples, sizeof(float) * whole.frames) == 0);
    fth_audio_clear(&whole);

    /* Stopped by the callback after two pieces. */
    g_array_set_size(c.samples, 0);
    c.calls = 0;
    c.stop_after = 2;
    g_assert_false(fth_audio_decode_file_chunks(path, 16000, TRUE, collect_chunk, &c, NULL,
                                                &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpuint(c.calls, ==, 2);
    g_clear_error(&error);

    /* Cancelled from outside during the first piece. */
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    c.calls = 0;
    c.stop_after = 0;
    c.cancel_after_first = cancellable;
    g_assert_false(fth_audio_decode_file_chunks(path, 16000, TRUE, collect_chunk, &c,
                                                cancellable, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpuint(c.calls, ==, 1);
    g_clear_error(&error);
    g_array_unref(c.samples);
    g_remove(path);
  }
  g_rmdir(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/features/sine-against-reference", test_sine_against_reference);
  g_test_add_func("/features/filterbank-and-params", test_filterbank_and_params);
  g_test_add_func("/features/cancel", test_cancel);
  g_test_add_func("/features/cache-round-trip", test_cache_round_trip);
  g_test_add_func("/features/decode-chunks", test_decode_chunks);
  return g_test_run();
}
