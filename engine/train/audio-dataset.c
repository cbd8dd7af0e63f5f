/* Audio datasets: the log-mel features of a project's audio items, computed once into a
 * memory-mapped float cache, and their augmentation (time shift, noise, SpecAugment masks)
 * when a batch is filled. */
#include "dataset-private.h"
#include "fathom/features.h"
#include "fathom/media.h"
#include "fathom/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FEAT_MAGIC "FTHMELC1"
#define FEAT_HEADER FTH_DATASET_CACHE_HEADER

/* The recipe's settings as the feature code takes them; hop and window are rounded down to
 * samples as the recipe parser does when it checks the input shape. */
static void
mel_params(const FthRecipeAudio *a, FthMelParams *p)
{
  fth_mel_params_init(p, a->sample_rate);
  p->win_length = MAX(1, a->win_ms * a->sample_rate / 1000);
  p->hop = MAX(1, a->hop_ms * a->sample_rate / 1000);
  p->n_fft = 1;
  while (p->n_fft < p->win_length)
    p->n_fft *= 2;
  p->n_mels = a->n_mels;
  p->f_min = a->f_min;
  p->f_max = a->f_max;
}

static gboolean
map_features(FthDataset *ds)
{
  const guint32 want[3] = {(guint32)ds->channels, (guint32)ds->height, (guint32)ds->width};
  guint32 dims[3];
  const uint8_t *data = fth_dataset_cache_map(ds, FEAT_MAGIC, sizeof(float), want, dims);
  ds->features = (const float *)(const void *)data;
  return data != NULL;
}

/* Decodes one item at the recipe's rate, crops or zero-pads it to n_samples and writes its
 * log-mel spectrogram as [mels, frames] into dst. */
static gboolean
item_features(FthStore *store, const Entry *e, const FthMelParams *p, float *wave,
              gint64 n_samples, int frames, float *dst, GError **error)
{
  g_autofree char *path = fth_store_resolve_path(store, e->path);
  FthAudio audio = {0};
  GError *err = NULL;
  if (!fth_audio_decode_file(path, p->sample_rate, TRUE, &audio, &err)) {
    /* Name the file once, whether or not the decoder already did. */
    if (g_str_has_prefix(err->message, path))
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, "%s", err->message);
    else
      g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, "%s: %s", path, err->message);
    g_error_free(err);
    return FALSE;
  }
  gint64 keep = MIN(audio.frames, n_samples);
  memcpy(wave, audio.samples, (size_t)keep * sizeof(float));
  memset(wave + keep, 0, (size_t)(n_samples - keep) * sizeof(float));
  fth_audio_clear(&audio);
  FthMelSpectrogram spec = {0};
  if (!fth_log_mel_compute(wave, n_samples, p, &spec, NULL, &err)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, "%s: %s", path, err->message);
    g_error_free(err);
    return FALSE;
  }
  if (spec.n_frames != frames || spec.n_mels != p->n_mels) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, "%s: %d frames of %d mels, the "
                "recipe expects %d of %d", path, spec.n_frames, spec.n_mels, frames, p->n_mels);
    fth_mel_spectrogram_clear(&spec);
    return FALSE;
  }
  /* Frame-major from the feature code; the model takes mels as rows, frames as columns. */
  for (int f = 0; f < frames; f++)
    for (int m = 0; m < p->n_mels; m++)
      dst[(size_t)m * (size_t)frames + (size_t)f] = spec.data[(size_t)f * (size_t)p->n_mels + (size_t)m];
  fth_mel_spectrogram_clear(&spec);
  return TRUE;
}

static gboolean
build_features(FthDataset *ds, FthStore *store, const FthMelParams *p, gint64 n_samples,
               GError **error)
{
  size_t n = ds->entries->len, sample = (size_t)ds->height * (size_t)ds->width;
  size_t total = FEAT_HEADER + n * sample * sizeof(float);
  g_autofree uint8_t *buf = g_try_malloc(total);
  if (buf == NULL) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_IO,
                "%s: cannot allocate %zu bytes for the feature cache", ds->cache_path, total);
    return FALSE;
  }
  fth_dataset_cache_header(ds, FEAT_MAGIC, buf);
  float *feat = (float *)(void *)(buf + FEAT_HEADER);
  g_autofree float *wave = g_new(float, (size_t)n_samples);
  for (size_t i = 0; i < n; i++)
    if (!item_features(store, &g_array_index(ds->entries, Entry, i), p, wave, n_samples,
                       ds->width, feat + i * sample, error))
      return FALSE;
  ds->n_decoded = n;
  if (!fth_dataset_cache_write(ds, buf, total, error))
    return FALSE;
  if (!map_features(ds)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_IO,
                "%s: the cache just written does not read back", ds->cache_path);
    return FALSE;
  }
  return TRUE;
}

FthDataset *
fth_dataset_open_recipe_audio(FthStore *store, const FthRecipe *recipe, FthDatasetScope scope,
                              GError **error)
{
  if (!recipe->audio) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID,
                "%s: the recipe's input is not audio (no input.audio)", recipe->source);
    return NULL;
  }
  FthMelParams p;
  mel_params(&recipe->audio_params, &p);
  GError *perr = NULL;
  if (!fth_mel_params_check(&p, &perr)) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_INVALID, "%s: input.audio: %s",
                recipe->source, perr->message);
    g_error_free(perr);
    return NULL;
  }
  gint64 n_samples = (gint64)(recipe->audio_params.duration * p.sample_rate + 0.5);
  g_autoptr(FthDataset) ds = g_new0(FthDataset, 1);
  ds->channels = 1;
  ds->height = p.n_mels;
  ds->width = (int)fth_mel_frame_count(&p, n_samples);
  ds->entries = g_array_new(FALSE, TRUE, sizeof(Entry));
  g_array_set_clear_func(ds->entries, fth_dataset_entry_clear);
  ds->class_names = g_ptr_array_new_with_free_func(g_free);
  ds->class_ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  if (!fth_dataset_collect_items(ds, store, scope, FTH_ITEM_AUDIO, error))
    return NULL;
  if (ds->entries->len == 0) {
    g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA, "%s: no %saudio items to train on",
                fth_store_get_dir(store), scope == FTH_DATASET_LABELED ? "labeled " : "");
    return NULL;
  }
  /* The cache key: every item's content hash, in order, and every feature setting. */
  g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
  for (guint i = 0; i < ds->entries->len; i++) {
    const Entry *e = &g_array_index(ds->entries, Entry, i);
    g_checksum_update(sum, (const guchar *)(e->sha256 ? e->sha256 : ""), -1);
    g_checksum_update(sum, (const guchar *)"\n", 1);
  }
  g_autofree char *settings =
    g_strdup_printf("rate %d samples %" G_GINT64_FORMAT " fft %d win %d hop %d mels %d "
                    "band %.9g-%.9g floor %.9g", p.sample_rate, n_samples, p.n_fft, p.win_length,
                    p.hop, p.n_mels, p.f_min, p.f_max, p.log_floor);
  g_checksum_update(sum, (const guchar *)settings, -1);
  g_autofree char *file = g_strdup_printf("logmel-%.24s.f32", g_checksum_get_string(sum));
  ds->cache_path = g_build_filename(fth_store_get_dir(store), "cache", file, NULL);
  if (!map_features(ds) && !build_features(ds, store, &p, n_samples, error))
    return NULL;
  return g_steal_pointer(&ds);
}

static inline float
unit(uint32_t x)
{
  return fth_u32_to_unit_float(x);
}

/* Salt of the noise draws, so they never coincide with the per-sample draws below. */
#define NOISE_STREAM_SALT 0x6e6f697365ULL

void
fth_samples_fill_features(const FthSamples *s, const uint32_t *indices, size_t n,
                          const FthAugment *aug, uint64_t seed, uint64_t epoch, float *x,
                          int32_t *y)
{
  int mels = s->height, frames = s->width;
  size_t sample = (size_t)s->channels * (size_t)mels * (size_t)frames;
  for (size_t k = 0; k < n; k++) {
    size_t i = indices[k];
    const float *src = s->features + i * sample;
    float *dst = x + k * sample;
    /* Standardized per item: log energies depend on the recording level. */
    double sum = 0, sq = 0;
    for (size_t j = 0; j < sample; j++) {
      sum += src[j];
      sq += (double)src[j] * src[j];
    }
    double mean = sum / (double)sample, var = sq / (double)sample - mean * mean;
    float m = (float)mean, inv = var > 1e-12 ? (float)(1.0 / sqrt(var)) : 1.0f;
    uint32_t r[8] = {0};
    uint64_t key = s->keys ? (uint64_t)s->keys[i] : (uint64_t)i;
    if (aug != NULL) {
      fth_philox4x32(seed, key, 2 * epoch, r);
      fth_philox4x32(seed, key, 2 * epoch + 1, r + 4);
    }
    int shift = 0;
    if (aug != NULL && aug->time_shift > 0)
      shift = (int)(unit(r[0]) * (float)(2 * aug->time_shift + 1)) - aug->time_shift;
    for (size_t c = 0; c < sample; c += (size_t)frames)
      for (int f = 0; f < frames; f++) {
        int from = f - shift;
        dst[c + (size_t)f] = from >= 0 && from < frames ? (src[c + (size_t)from] - m) * inv : 0.0f;
      }
    if (aug != NULL && aug->noise > 0) {
      /* Box-Muller on a counter-based stream: the same noise for (seed, key, epoch) anywhere. */
      for (size_t j = 0; j < sample; j += 4) {
        uint32_t u[4];
        fth_philox4x32(seed ^ NOISE_STREAM_SALT, key, (epoch << 32) | (j / 4), u);
        for (int h = 0; h < 2; h++) {
          float rad = sqrtf(-2.0f * logf(1.0f - unit(u[2 * h])));
          float ang = 2.0f * (float)M_PI * unit(u[2 * h + 1]);
          if (j + 2 * (size_t)h < sample)
            dst[j + 2 * (size_t)h] += aug->noise * rad * cosf(ang);
          if (j + 2 * (size_t)h + 1 < sample)
            dst[j + 2 * (size_t)h + 1] += aug->noise * rad * sinf(ang);
        }
      }
    }
    if (aug != NULL && aug->freq_mask > 0) {
      int w = MIN((int)(unit(r[1]) * (float)(aug->freq_mask + 1)), mels);
      int start = (int)(unit(r[2]) * (float)(mels - w + 1));
      for (size_t c = 0; c < (size_t)s->channels; c++)
        for (int b = start; b < start + w; b++)
          memset(dst + (c * (size_t)mels + (size_t)b) * (size_t)frames, 0,
                 (size_t)frames * sizeof(float));
    }
    if (aug != NULL && aug->time_mask > 0) {
      int w = MIN((int)(unit(r[3]) * (float)(aug->time_mask + 1)), frames);
      int start = (int)(unit(r[4]) * (float)(frames - w + 1));
      for (size_t c = 0; c < sample; c += (size_t)frames)
        for (int f = start; f < start + w; f++)
          dst[c + (size_t)f] = 0.0f;
    }
    if (y != NULL)
      y[k] = s->labels[i];
  }
}
