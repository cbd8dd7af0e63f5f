/* features.c: the log-mel spectrogram (see fathom/features.h). A radix-2 FFT of its own keeps
 * the engine free of another dependency; filters are stored as [first, last] bin ranges so the
 * mel step only touches their non-zero weights. */
#include <fathom/features.h>

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define MEL_MAGIC "FTHMEL1"

double
fth_hz_to_mel(double hz)
{
  return 2595.0 * log10(1.0 + hz / 700.0);
}

double
fth_mel_to_hz(double mel)
{
  return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
}

void
fth_mel_params_init(FthMelParams *params, int sample_rate)
{
  memset(params, 0, sizeof *params);
  params->sample_rate = sample_rate;
  params->win_length = MAX(1, (int)lround(sample_rate * 0.025));
  params->hop = MAX(1, (int)lround(sample_rate * 0.010));
  params->n_fft = 1;
  while (params->n_fft < params->win_length)
    params->n_fft *= 2;
  params->n_mels = 64;
  params->f_min = 0.0;
  params->f_max = sample_rate / 2.0;
  params->log_floor = 1e-10;
}

gboolean
fth_mel_params_check(const FthMelParams *p, GError **error)
{
  const char *bad = NULL;
  if (p->sample_rate <= 0)
    bad = "sample_rate must be positive";
  else if (p->n_fft < 2 || p->n_fft > (1 << 20) || (p->n_fft & (p->n_fft - 1)) != 0)
    bad = "n_fft must be a power of two between 2 and 2^20";
  else if (p->win_length < 1 || p->win_length > p->n_fft)
    bad = "win_length must be in [1, n_fft]";
  else if (p->hop < 1)
    bad = "hop must be positive";
  else if (p->n_mels < 1 || p->n_mels > 4096)
    bad = "n_mels must be in [1, 4096]";
  else if (!(p->f_min >= 0.0) || !(p->f_max > p->f_min) || p->f_max > p->sample_rate / 2.0 + 1e-9)
    bad = "need 0 <= f_min < f_max <= sample_rate / 2";
  else if (!(p->log_floor > 0.0))
    bad = "log_floor must be positive";
  if (bad != NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "log-mel parameters: %s", bad);
    return FALSE;
  }
  return TRUE;
}

gint64
fth_mel_frame_count(const FthMelParams *params, gint64 n_samples)
{
  return n_samples <= 0 ? 0 : 1 + n_samples / params->hop;
}

/* Triangles between mel-spaced edges, each scaled to unit area (2 / width in Hz). */
float *
fth_mel_filterbank(const FthMelParams *p)
{
  int n_bins = p->n_fft / 2 + 1;
  float *bank = g_new0(float, (gsize)p->n_mels * n_bins);
  double mel_lo = fth_hz_to_mel(p->f_min), mel_hi = fth_hz_to_mel(p->f_max);
  for (int m = 0; m < p->n_mels; m++) {
    double left = fth_mel_to_hz(mel_lo + (mel_hi - mel_lo) * m / (p->n_mels + 1));
    double centre = fth_mel_to_hz(mel_lo + (mel_hi - mel_lo) * (m + 1) / (p->n_mels + 1));
    double right = fth_mel_to_hz(mel_lo + (mel_hi - mel_lo) * (m + 2) / (p->n_mels + 1));
    double norm = 2.0 / (right - left);
    for (int k = 0; k < n_bins; k++) {
      double f = (double)k * p->sample_rate / p->n_fft;
      double w = 0.0;
      if (f > left && f <= centre)
        w = (f - left) / (centre - left);
      else if (f > centre && f < right)
        w = (right - f) / (right - centre);
      bank[(gsize)m * n_bins + k] = (float)(w * norm);
    }
  }
  return bank;
}

typedef struct {
  int n;
  int *bitrev;
  float *cos_table, *sin_table; /* n / 2 twiddles */
} Fft;

static void
fft_init(Fft *fft, int n)
{
  fft->n = n;
  fft->bitrev = g_new(int, n);
  int bits = 0;
  while ((1 << bits) < n)
    bits++;
  for (int i = 0; i < n; i++) {
    int r = 0;
    for (int b = 0; b < bits; b++)
      r |= ((i >> b) & 1) << (bits - 1 - b);
    fft->bitrev[i] = r;
  }
  fft->cos_table = g_new(float, MAX(1, n / 2));
  fft->sin_table = g_new(float, MAX(1, n / 2));
  for (int i = 0; i < n / 2; i++) {
    fft->cos_table[i] = (float)cos(2.0 * G_PI * i / n);
    fft->sin_table[i] = (float)-sin(2.0 * G_PI * i / n);
  }
}

static void
fft_clear(Fft *fft)
{
  g_free(fft->bitrev);
  g_free(fft->cos_table);
  g_free(fft->sin_table);
}

/* In place on (re, im), which must already be in bit-reversed order. */
static void
fft_run(const Fft *fft, float *re, float *im)
{
  int n = fft->n;
  for (int len = 2; len <= n; len *= 2) {
    int half = len / 2, step = n / len;
    for (int start = 0; start < n; start += len) {
      for (int j = 0; j < half; j++) {
        float wr = fft->cos_table[j * step], wi = fft->sin_table[j * step];
        int a = start + j, b = a + half;
        float tr = re[b] * wr - im[b] * wi;
        float ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
      }
    }
  }
}

void
fth_mel_spectrogram_clear(FthMelSpectrogram *spec)
{
  g_free(spec->data);
  memset(spec, 0, sizeof *spec);
}

gboolean
fth_log_mel_compute(const float *samples, gint64 n_samples, const FthMelParams *p,
                    FthMelSpectrogram *out, GCancellable *cancellable, GError **error)
{
  memset(out, 0, sizeof *out);
  if (!fth_mel_params_check(p, error))
    return FALSE;
  gint64 n_frames = fth_mel_frame_count(p, n_samples);
  if (n_frames > G_MAXINT32 / MAX(1, p->n_mels)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "log-mel: %" G_GINT64_FORMAT " samples give too many frames", n_samples);
    return FALSE;
  }
  int n = p->n_fft, n_bins = n / 2 + 1;
  float *bank = fth_mel_filterbank(p);
  int *first = g_new(int, p->n_mels), *last = g_new(int, p->n_mels);
  for (int m = 0; m < p->n_mels; m++) {
    first[m] = n_bins;
    last[m] = -1;
    for (int k = 0; k < n_bins; k++)
      if (bank[(gsize)m * n_bins + k] != 0.0f) {
        first[m] = MIN(first[m], k);
        last[m] = k;
      }
  }
  /* Periodic Hann, centred in the n_fft frame when the window is shorter. */
  float *window = g_new0(float, n);
  int offset = (n - p->win_length) / 2;
  for (int i = 0; i < p->win_length; i++)
    window[offset + i] = (float)(0.5 - 0.5 * cos(2.0 * G_PI * i / p->win_length));

  Fft fft;
  fft_init(&fft, n);
  float *re = g_new(float, n), *im = g_new(float, n), *power = g_new(float, n_bins);
  out->n_frames = (int)n_frames;
  out->n_mels = p->n_mels;
  out->hop_s = (double)p->hop / p->sample_rate;
  out->data = g_new(float, (gsize)n_frames * p->n_mels + 1);
  float lo = G_MAXFLOAT, hi = -G_MAXFLOAT;
  gboolean ok = TRUE;
  for (gint64 f = 0; f < n_frames; f++) {
    if ((f & 1023) == 0 && g_cancellable_set_error_if_cancelled(cancellable, error)) {
      ok = FALSE;
      break;
    }
    gint64 start = f * p->hop - n / 2;
    for (int i = 0; i < n; i++) {
      gint64 s = start + i;
      float v = (s >= 0 && s < n_samples) ? samples[s] * window[i] : 0.0f;
      re[fft.bitrev[i]] = v;
      im[fft.bitrev[i]] = 0.0f;
    }
    fft_run(&fft, re, im);
    for (int k = 0; k < n_bins; k++)
      power[k] = re[k] * re[k] + im[k] * im[k];
    float *row = out->data + f * p->n_mels;
    for (int m = 0; m < p->n_mels; m++) {
      double e = 0.0;
      const float *w = bank + (gsize)m * n_bins;
      for (int k = first[m]; k <= last[m]; k++)
        e += (double)w[k] * power[k];
      float v = (float)log(MAX(e, p->log_floor));
      row[m] = v;
      lo = MIN(lo, v);
      hi = MAX(hi, v);
    }
  }
  out->min_value = n_frames > 0 ? lo : 0.0f;
  out->max_value = n_frames > 0 ? hi : 0.0f;
  fft_clear(&fft);
  g_free(re);
  g_free(im);
  g_free(power);
  g_free(window);
  g_free(bank);
  g_free(first);
  g_free(last);
  if (!ok)
    fth_mel_spectrogram_clear(out);
  return ok;
}

char *
fth_mel_cache_path(const char *cache_dir, const char *sha256, const FthMelParams *p)
{
  g_autofree char *key = g_strdup_printf("%d/%d/%d/%d/%d/%.6g/%.6g/%.6g", p->sample_rate,
                                         p->n_fft, p->win_length, p->hop, p->n_mels, p->f_min,
                                         p->f_max, p->log_floor);
  g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA1, key, -1);
  g_autofree char *name = g_strdup_printf("%s-%.12s.logmel", sha256, hash);
  return g_build_filename(cache_dir, name, NULL);
}

typedef struct {
  char magic[8];
  gint32 n_frames, n_mels;
  double hop_s;
} CacheHeader;

gboolean
fth_mel_spectrogram_save(const FthMelSpectrogram *spec, const char *path, GError **error)
{
  CacheHeader header = { MEL_MAGIC, spec->n_frames, spec->n_mels, spec->hop_s };
  gsize data_len = (gsize)spec->n_frames * spec->n_mels * sizeof(float);
  g_autofree guint8 *buf = g_malloc(sizeof header + data_len);
  memcpy(buf, &header, sizeof header);
  if (data_len > 0)
    memcpy(buf + sizeof header, spec->data, data_len);
  g_autofree char *dir = g_path_get_dirname(path);
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    int saved = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s: cannot create: %s", dir,
                g_strerror(saved));
    return FALSE;
  }
  return g_file_set_contents(path, (const char *)buf, (gssize)(sizeof header + data_len), error);
}

gboolean
fth_mel_spectrogram_load(const char *path, FthMelSpectrogram *spec, GError **error)
{
  memset(spec, 0, sizeof *spec);
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents(path, &contents, &len, &local)) {
    g_set_error(error, G_IO_ERROR,
                g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? G_IO_ERROR_NOT_FOUND
                                                                         : G_IO_ERROR_FAILED,
                "%s", local->message);
    return FALSE;
  }
  CacheHeader header;
  if (len < sizeof header) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: too short for a log-mel cache",
                path);
    return FALSE;
  }
  memcpy(&header, contents, sizeof header);
  if (memcmp(header.magic, MEL_MAGIC, sizeof header.magic) != 0 || header.n_frames < 0 ||
      header.n_mels < 1 ||
      (guint64)len - sizeof header != (guint64)header.n_frames * header.n_mels * sizeof(float)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "%s: not a complete log-mel cache file", path);
    return FALSE;
  }
  spec->n_frames = header.n_frames;
  spec->n_mels = header.n_mels;
  spec->hop_s = header.hop_s;
  gsize n = (gsize)header.n_frames * header.n_mels;
  spec->data = g_new(float, n + 1);
  memcpy(spec->data, contents + sizeof header, n * sizeof(float));
  float lo = G_MAXFLOAT, hi = -G_MAXFLOAT;
  for (gsize i = 0; i < n; i++) {
    lo = MIN(lo, spec->data[i]);
    hi = MAX(hi, spec->data[i]);
  }
  spec->min_value = n > 0 ? lo : 0.0f;
  spec->max_value = n > 0 ? hi : 0.0f;
  return TRUE;
}
