/* fathom/features.h: audio features (engine/data). The log-mel spectrogram the waveform view
 * draws and the trainer feeds to audio models, so both see the same numbers.
 *
 * Pipeline per frame: take win_length samples every hop samples (the signal is zero-padded
 * by n_fft / 2 on both sides so frame i is centred on sample i * hop, as librosa's center=True),
 * multiply by a periodic Hann window, |FFT|^2 over n_fft points, n_mels triangular filters on
 * the HTK mel scale (mel = 2595 log10(1 + f / 700)), each normalised to unit area (Slaney
 * norm), then natural log of max(energy, log_floor).
 *
 * The computation is plain C on caller-provided samples, so it can run on any thread; long
 * inputs take a GCancellable. Results can be kept in a cache file keyed by the item's content
 * hash and the parameters (fth_mel_cache_path), so an item is analysed once. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
  int sample_rate;  /* of the samples given */
  int n_fft;        /* a power of two, >= win_length */
  int win_length;   /* samples per frame */
  int hop;          /* samples between frame starts */
  int n_mels;
  double f_min;     /* Hz */
  double f_max;     /* Hz, <= sample_rate / 2 */
  double log_floor; /* energies below are clamped before the log */
} FthMelParams;

/* 25 ms windows every 10 ms (rounded to samples; n_fft the next power of two), 64 mels from
 * 0 Hz to Nyquist, floor 1e-10. */
void fth_mel_params_init(FthMelParams *params, int sample_rate);
/* FALSE with G_IO_ERROR_INVALID_ARGUMENT naming the bad field. */
gboolean fth_mel_params_check(const FthMelParams *params, GError **error);

typedef struct {
  int n_frames;
  int n_mels;
  double hop_s;       /* seconds between frames: hop / sample_rate */
  float *data;        /* n_frames * n_mels, frame-major: data[frame * n_mels + mel] */
  float min_value;    /* over data, for display scaling */
  float max_value;
} FthMelSpectrogram;

/* Frames that N_SAMPLES samples give: 1 + n_samples / hop (0 for no samples). */
gint64 fth_mel_frame_count(const FthMelParams *params, gint64 n_samples);

/* Computes the log-mel spectrogram of mono SAMPLES into *OUT (cleared first). Fails on bad
 * parameters, on more than 2^31 frames, or with G_IO_ERROR_CANCELLED. */
gboolean fth_log_mel_compute(const float *samples, gint64 n_samples, const FthMelParams *params,
                             FthMelSpectrogram *out, GCancellable *cancellable, GError **error);
void fth_mel_spectrogram_clear(FthMelSpectrogram *spec);

/* The filterbank: n_mels rows of n_fft / 2 + 1 weights (g_free it). */
float *fth_mel_filterbank(const FthMelParams *params);
double fth_hz_to_mel(double hz);
double fth_mel_to_hz(double mel);

/* CACHE_DIR/<sha256>-<hash of the parameters>.logmel */
char *fth_mel_cache_path(const char *cache_dir, const char *sha256, const FthMelParams *params);
/* A file in host byte order (the cache is per machine): magic "FTHMEL1\0", n_frames, n_mels
 * (int32), hop_s (float64), then the data.
 * Written to a temporary file and renamed, so a reader never sees half a file. */
gboolean fth_mel_spectrogram_save(const FthMelSpectrogram *spec, const char *path,
                                  GError **error);
/* FALSE with G_IO_ERROR_NOT_FOUND when the file does not exist, G_IO_ERROR_INVALID_DATA when
 * it is not a complete cache file. */
gboolean fth_mel_spectrogram_load(const char *path, FthMelSpectrogram *spec, GError **error);

G_END_DECLS
