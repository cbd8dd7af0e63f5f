/* fth-waveform-view.c: see fth-waveform-view.h. The audio is decoded once, mono, at no more than
 * DISPLAY_RATE (drawing needs no more; times are still snapped to the file's own rate), into a
 * shared, reference-counted block that the worker threads and the drawing read. Drawing costs
 * at most a few reads per pixel column at any zoom: the pyramid level is chosen so that a
 * column spans only a few of its blocks.
 *
 * Everything is progressive. The decode worker appends each piece GStreamer gives it to the
 * samples and the min/max pyramid, publishes how far it got, and a few times a second asks the
 * main loop to take it: the view draws what is decoded and the rest of the timeline (its length
 * from the file's header when it has one) hatched as pending. The spectrogram worker computes
 * blocks of SPEC_BLOCK frames as soon as their samples are decoded, the block at the start of
 * the view first, and they are drawn as they come. The spectrogram cache is written only once
 * the whole file is decoded and computed, so a load cut short leaves none.
 *
 * Threads: only the decode worker grows the arrays (under storage_lock as writer); it writes
 * samples and pyramid entries past the published count without a lock, since nobody reads
 * there. The spectrogram worker and the drawing read under storage_lock as readers, and only
 * what was published: samples and whole pyramid entries below n_decoded, blocks whose flag is
 * set. The main thread never touches a worker's state but through those. */
#include "fth-waveform-view.h"
#include "fth-background-thread.h"
#include "fth-label-color.h"

#include <fathom/features.h>
#include <fathom/media.h>
#include <glib/gi18n.h>
#include <gst/gst.h>
#include <math.h>
#include <string.h>

#define DISPLAY_RATE 16000
#define N_LEVELS 6
#define LEVEL0_BLOCK 64 /* samples per block of level 0; each level is 4x the one below */
#define STRIP_H 26.0
#define LANE_H 22.0
#define EDGE_GRAB_PX 6.0
#define MIN_DRAG_PX 3.0
#define SPEC_BLOCK 1000 /* spectrogram frames computed at a time: 10 s at the default hop */
#define PROGRESS_US 250000 /* a worker tells the main loop about new data at most this often */
#define WAIT_US 100000     /* the spectrogram worker looks for cancellation this often */
#define UNKNOWN_LENGTH_S 60 /* first room for a file that does not say how long it is */

typedef enum { DECODE_RUNNING, DECODE_DONE, DECODE_FAILED } DecodeState;

typedef struct {
  GRWLock storage_lock; /* the arrays' addresses and capacities (see the top of the file) */
  float *samples;       /* mono at rate */
  gint64 capacity;      /* samples */
  float *mins[N_LEVELS], *maxs[N_LEVELS];
  FthMelParams params;
  FthMelSpectrogram spec; /* data holds spec_capacity frames; n_frames is set when complete */
  gint64 spec_capacity;
  gint *spec_done;        /* per block of the capacity, atomic */

  /* Under lock, signalled on cond: how far the decode is. rate and file_rate are written once
   * before the first n_decoded, so whoever read n_decoded > 0 or a state other than RUNNING
   * under lock may read them. */
  GMutex lock;
  GCond cond;
  int rate;      /* of samples */
  int file_rate; /* of the file, for snapping */
  gint64 n_decoded;
  gint64 expected; /* samples the file announces, -1 when it does not */
  DecodeState state;

  gint n_spec_done;   /* atomic */
  gint wanted_block;  /* atomic: the block at the start of the view, computed next */
  gint redraw_queued; /* atomic: a progress update is on its way to the main loop */
  GMutex range_lock;  /* spec.min_value and max_value, over the blocks so far */
} AudioData;

static AudioData *
audio_data_new(void)
{
  AudioData *d = g_atomic_rc_box_new0(AudioData);
  g_rw_lock_init(&d->storage_lock);
  g_mutex_init(&d->lock);
  g_cond_init(&d->cond);
  g_mutex_init(&d->range_lock);
  d->expected = -1;
  d->state = DECODE_RUNNING;
  d->spec.min_value = G_MAXFLOAT;
  d->spec.max_value = -G_MAXFLOAT;
  return d;
}

static void
audio_data_clear(AudioData *data)
{
  g_free(data->samples);
  for (int i = 0; i < N_LEVELS; i++) {
    g_free(data->mins[i]);
    g_free(data->maxs[i]);
  }
  fth_mel_spectrogram_clear(&data->spec);
  g_free(data->spec_done);
  g_rw_lock_clear(&data->storage_lock);
  g_mutex_clear(&data->lock);
  g_cond_clear(&data->cond);
  g_mutex_clear(&data->range_lock);
}

static void
audio_data_unref(AudioData *data)
{
  g_atomic_rc_box_release_full(data, (GDestroyNotify)audio_data_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AudioData, audio_data_unref)

typedef enum { DRAG_NONE, DRAG_SELECT, DRAG_EDGE_START, DRAG_EDGE_END, DRAG_SEGMENT } DragMode;

typedef struct {
  const FthAnnotation *ann; /* in self->annotations */
  guint lane;               /* over all lanes: human ones, then model ones */
} Placed;

struct _FthWaveformView {
  GtkWidget parent_instance;

  /* The load in progress or done; the fields below it are what the main thread has taken
   * from the workers (has_format: rate and file_rate may be read). */
  AudioData *audio;
  gboolean has_format, decoded, spec_complete;
  gboolean decoding, computing; /* the two workers of the load are running */
  gint64 n_shown;               /* decoded samples the drawing reads */
  gint64 expected;              /* samples the file announces, -1 when it does not */
  char *path, *cache_dir, *sha256;
  GCancellable *cancellable;
  char *load_error;
  char *annotation_problem;

  GPtrArray *annotations; /* FthAnnotation */
  GPtrArray *labels;      /* FthLabel */
  GArray *placed;         /* Placed, one per segment */
  guint n_human_lanes, n_model_lanes;
  gint64 selected;

  double view_start, view_seconds;
  gboolean has_selection;
  double sel_t0, sel_t1;

  DragMode drag;
  double drag_x, drag_dx;
  const FthAnnotation *drag_ann;
  double pointer_x;

  GstElement *playbin;
  gboolean prerolled;     /* the playbin reached PAUSED: seeks work from now on */
  guint bus_watch;
  guint tick_id;
  gboolean playing, loop, playing_selection;
  double position, speed;
};

G_DEFINE_FINAL_TYPE(FthWaveformView, fth_waveform_view, GTK_TYPE_WIDGET)

enum {
  SIGNAL_LOADED,
  SIGNAL_ADD_ANNOTATION,
  SIGNAL_UPDATE_ANNOTATION,
  SIGNAL_REMOVE_ANNOTATION,
  SIGNAL_SET_CLASS,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* ---- geometry ------------------------------------------------------------------------------ */

static double
lanes_height(FthWaveformView *self)
{
  return LANE_H * (MAX(1u, self->n_human_lanes) + self->n_model_lanes) + 4.0;
}

/* Waveform and spectrogram share what the strip and the lanes leave. */
static double
band_height(FthWaveformView *self)
{
  double h = gtk_widget_get_height(GTK_WIDGET(self)) - STRIP_H - lanes_height(self);
  return MAX(10.0, h / 2.0);
}

double
fth_waveform_view_time_to_x(FthWaveformView *self, double t)
{
  int width = MAX(1, gtk_widget_get_width(GTK_WIDGET(self)));
  return (t - self->view_start) / self->view_seconds * width;
}

double
fth_waveform_view_x_to_time(FthWaveformView *self, double x)
{
  int width = MAX(1, gtk_widget_get_width(GTK_WIDGET(self)));
  return self->view_start + x / width * self->view_seconds;
}

double
fth_waveform_view_lane_y(FthWaveformView *self, guint lane)
{
  return STRIP_H + 2 * band_height(self) + 2.0 + LANE_H * lane + LANE_H / 2;
}

double
fth_waveform_view_waveform_y(FthWaveformView *self)
{
  return STRIP_H + band_height(self) / 2;
}

/* The timeline: the whole file when it is decoded or says how long it is, else what is
 * decoded so far. */
static double
duration(FthWaveformView *self)
{
  if (!self->has_format)
    return 0.0;
  gint64 n = self->decoded ? self->n_shown : MAX(self->n_shown, self->expected);
  return (double)n / self->audio->rate;
}

static double
decoded_seconds(FthWaveformView *self)
{
  return self->has_format ? (double)self->n_shown / self->audio->rate : 0.0;
}

/* Onto the file's sample grid, inside the decoded audio. */
static double
snap(FthWaveformView *self, double t)
{
  if (!self->has_format)
    return MAX(0.0, t);
  double rate = self->audio->file_rate;
  return CLAMP(round(t * rate) / rate, 0.0, decoded_seconds(self));
}

static const FthLabel *
find_label(FthWaveformView *self, gint64 id)
{
  return fth_labels_find(self->labels, id);
}

static void
label_rgba(FthWaveformView *self, gint64 id, GdkRGBA *rgba)
{
  fth_label_get_rgba(find_label(self, id), rgba);
}

/* ---- lanes --------------------------------------------------------------------------------- */

static int
by_start(gconstpointer a, gconstpointer b)
{
  const Placed *x = a, *y = b;
  if (x->ann->t0 != y->ann->t0)
    return x->ann->t0 < y->ann->t0 ? -1 : 1;
  return x->ann->id < y->ann->id ? -1 : (x->ann->id > y->ann->id);
}

/* Greedy interval colouring: each segment takes the first lane that is free at its start. */
static guint
assign_lanes(GArray *placed, guint first_lane)
{
  g_array_sort(placed, by_start);
  g_autoptr(GArray) lane_end = g_array_new(FALSE, FALSE, sizeof(double));
  for (guint i = 0; i < placed->len; i++) {
    Placed *p = &g_array_index(placed, Placed, i);
    guint lane = 0;
    while (lane < lane_end->len && g_array_index(lane_end, double, lane) > p->ann->t0)
      lane++;
    if (lane == lane_end->len)
      g_array_append_val(lane_end, p->ann->t1);
    else
      g_array_index(lane_end, double, lane) = p->ann->t1;
    p->lane = first_lane + lane;
  }
  return lane_end->len;
}

static void
place_segments(FthWaveformView *self)
{
  g_autoptr(GArray) human = g_array_new(FALSE, FALSE, sizeof(Placed));
  g_autoptr(GArray) model = g_array_new(FALSE, FALSE, sizeof(Placed));
  g_clear_pointer(&self->annotation_problem, g_free);
  double dur = duration(self);
  for (guint i = 0; self->annotations != NULL && i < self->annotations->len; i++) {
    const FthAnnotation *a = g_ptr_array_index(self->annotations, i);
    if (a->geom != FTH_GEOM_SEGMENT)
      continue;
    /* Half a sample of slack: a segment ending exactly at the end is fine. While an audio of
     * unknown length decodes, its end is not known yet. */
    gboolean end_known = self->decoded || (self->has_format && self->expected >= 0);
    if (end_known && a->t1 > dur + 0.5 / self->audio->file_rate &&
        self->annotation_problem == NULL) {
      const FthLabel *l = find_label(self, a->label_id);
      self->annotation_problem = g_strdup_printf(
        _("Segment %s %.3f–%.3f s ends after the audio (%.3f s); it is shown cut at the end"),
        l != NULL ? l->name : "?", a->t0, a->t1, dur);
    }
    Placed p = { a, 0 };
    g_array_append_val(a->author == FTH_AUTHOR_MODEL ? model : human, p);
  }
  self->n_human_lanes = assign_lanes(human, 0);
  self->n_model_lanes = assign_lanes(model, MAX(1u, self->n_human_lanes));
  g_array_set_size(self->placed, 0);
  g_array_append_vals(self->placed, human->data, human->len);
  g_array_append_vals(self->placed, model->data, model->len);
}

/* The segment under (X, Y) in the lanes, or NULL; *EDGE is -1 near its start, 1 near its end. */
static const Placed *
segment_at(FthWaveformView *self, double x, double y, int *edge)
{
  *edge = 0;
  for (guint i = 0; i < self->placed->len; i++) {
    const Placed *p = &g_array_index(self->placed, Placed, i);
    double cy = fth_waveform_view_lane_y(self, p->lane);
    if (fabs(y - cy) > LANE_H / 2)
      continue;
    double x0 = fth_waveform_view_time_to_x(self, p->ann->t0);
    double x1 = fth_waveform_view_time_to_x(self, p->ann->t1);
    if (x < x0 - EDGE_GRAB_PX || x > x1 + EDGE_GRAB_PX)
      continue;
    if (p->ann->author == FTH_AUTHOR_HUMAN) {
      if (fabs(x - x0) <= EDGE_GRAB_PX && fabs(x - x0) <= fabs(x - x1))
        *edge = -1;
      else if (fabs(x - x1) <= EDGE_GRAB_PX)
        *edge = 1;
    }
    if (*edge != 0 || (x >= x0 && x <= x1))
      return p;
  }
  return NULL;
}

/* ---- loading: the decode worker ------------------------------------------------------------ */

static gint64
level_block(int level)
{
  return (gint64)LEVEL0_BLOCK << (2 * level);
}

/* Room for CAPACITY samples in every array, the ones written so far kept (under storage_lock as
 * writer: the drawing and the spectrogram worker may be reading). */
static void
grow_storage(AudioData *d, gint64 capacity)
{
  gint64 frames = fth_mel_frame_count(&d->params, capacity);
  gint64 old_blocks = (d->spec_capacity + SPEC_BLOCK - 1) / SPEC_BLOCK;
  gint64 blocks = (frames + SPEC_BLOCK - 1) / SPEC_BLOCK;
  g_rw_lock_writer_lock(&d->storage_lock);
  d->samples = g_renew(float, d->samples, MAX(1, capacity));
  for (int level = 0; level < N_LEVELS; level++) {
    gint64 len = (capacity + level_block(level) - 1) / level_block(level);
    d->mins[level] = g_renew(float, d->mins[level], MAX(1, len));
    d->maxs[level] = g_renew(float, d->maxs[level], MAX(1, len));
  }
  d->spec.data = g_renew(float, d->spec.data, MAX(1, (gsize)frames * d->params.n_mels));
  d->spec_done = g_renew(gint, d->spec_done, MAX(1, blocks));
  for (gint64 b = old_blocks; b < blocks; b++)
    d->spec_done[b] = 0;
  d->capacity = capacity;
  d->spec_capacity = frames;
  g_rw_lock_writer_unlock(&d->storage_lock);
}

/* The pyramid entries over samples [FROM, TO), the last one of each level only as far as TO
 * (it is redone when the next piece comes). */
static void
extend_pyramid(AudioData *d, gint64 from, gint64 to)
{
  if (to <= from)
    return; /* an empty buffer */
  for (int level = 0; level < N_LEVELS; level++) {
    gint64 block = level_block(level);
    gint64 below_len = level > 0 ? (to + block / 4 - 1) / (block / 4) : to;
    for (gint64 b = from / block; b <= (to - 1) / block; b++) {
      float lo = G_MAXFLOAT, hi = -G_MAXFLOAT;
      if (level == 0) {
        for (gint64 i = b * block; i < MIN(to, (b + 1) * block); i++) {
          lo = MIN(lo, d->samples[i]);
          hi = MAX(hi, d->samples[i]);
        }
      } else {
        for (gint64 i = b * 4; i < MIN(below_len, (b + 1) * 4); i++) {
          lo = MIN(lo, d->mins[level - 1][i]);
          hi = MAX(hi, d->maxs[level - 1][i]);
        }
      }
      d->mins[level][b] = lo;
      d->maxs[level][b] = hi;
    }
  }
}

typedef struct {
  AudioData *audio;
  FthWaveformView *view; /* for the progress updates; the task holds it */
  GCancellable *cancellable;
  char *path, *cache_dir, *sha256;
  gint64 n;              /* decode worker: samples written */
  gint64 last_progress;  /* monotonic time of the last update sent */
} LoadJob;

static void
load_job_free(LoadJob *job)
{
  audio_data_unref(job->audio);
  g_object_unref(job->cancellable);
  g_free(job->path);
  g_free(job->cache_dir);
  g_free(job->sha256);
  g_free(job);
}

typedef struct {
  FthWaveformView *view;
  AudioData *audio;
} Progress;

static void
progress_free(Progress *progress)
{
  g_object_unref(progress->view);
  audio_data_unref(progress->audio);
  g_free(progress);
}

static void take_progress(FthWaveformView *self);

static gboolean
progress_idle(gpointer data)
{
  Progress *progress = data;
  g_atomic_int_set(&progress->audio->redraw_queued, 0);
  /* A later load or the view's dispose made this one stale. */
  if (progress->view->audio == progress->audio && progress->view->cancellable != NULL &&
      !g_cancellable_is_cancelled(progress->view->cancellable))
    take_progress(progress->view);
  return G_SOURCE_REMOVE;
}

/* From a worker: new data for the main loop, at most every PROGRESS_US per worker (FORCE: the
 * first piece, now) and one update on its way at a time. */
static void
post_progress(LoadJob *job, gboolean force)
{
  gint64 now = g_get_monotonic_time();
  if (!force && now - job->last_progress < PROGRESS_US)
    return;
  if (!g_atomic_int_compare_and_exchange(&job->audio->redraw_queued, 0, 1))
    return;
  job->last_progress = now;
  Progress *progress = g_new(Progress, 1);
  progress->view = g_object_ref(job->view);
  progress->audio = g_atomic_rc_box_acquire(job->audio);
  /* Above the frame clock's priority: a view that keeps redrawing (while it is zoomed) would
   * starve an idle one; the update itself is a few assignments and a redraw. */
  g_idle_add_full(G_PRIORITY_DEFAULT, progress_idle, progress, (GDestroyNotify)progress_free);
}

/* On GStreamer's streaming thread: one decoded piece into the samples and the pyramid. */
static gboolean
take_chunk(const FthAudioStreamInfo *info, const float *samples, gint64 frames, gpointer data)
{
  LoadJob *job = data;
  AudioData *d = job->audio;
  gboolean first = d->capacity == 0;
  if (first) {
    /* Written before the first n_decoded is published (see AudioData). */
    d->rate = info->sample_rate;
    d->file_rate = info->file_rate;
    fth_mel_params_init(&d->params, d->rate);
    d->spec.n_mels = d->params.n_mels;
    d->spec.hop_s = (double)d->params.hop / d->params.sample_rate;
    /* A little room over the announced length: resampling may round up. */
    grow_storage(d, info->frames >= 0 ? info->frames + info->frames / 256 + d->rate
                                      : (gint64)UNKNOWN_LENGTH_S * d->rate);
  }
  if (job->n + frames > d->capacity)
    grow_storage(d, MAX(job->n + frames, d->capacity + d->capacity / 2));
  memcpy(d->samples + job->n, samples, sizeof(float) * (gsize)frames);
  extend_pyramid(d, job->n, job->n + frames);
  job->n += frames;
  g_mutex_lock(&d->lock);
  d->n_decoded = job->n;
  d->expected = info->frames;
  g_cond_broadcast(&d->cond);
  g_mutex_unlock(&d->lock);
  post_progress(job, first);
  return !g_cancellable_is_cancelled(job->cancellable);
}

static void
decode_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  LoadJob *job = task_data;
  AudioData *d = job->audio;
  GError *error = NULL;
  gboolean ok = fth_audio_decode_file_chunks(job->path, DISPLAY_RATE, TRUE, take_chunk, job,
                                             cancellable, &error);
  if (ok && job->n == 0) {
    /* Nothing decoded (an empty recording): the header still says the rate. */
    FthAudioInfo info;
    ok = fth_audio_probe_file(job->path, &info, &error);
    if (ok) {
      d->rate = MIN(info.sample_rate, DISPLAY_RATE);
      d->file_rate = info.sample_rate;
      fth_mel_params_init(&d->params, d->rate);
      d->spec.n_mels = d->params.n_mels;
      d->spec.hop_s = (double)d->params.hop / d->params.sample_rate;
      grow_storage(d, 0);
    }
  }
  g_mutex_lock(&d->lock);
  d->state = ok ? DECODE_DONE : DECODE_FAILED;
  d->expected = job->n;
  g_cond_broadcast(&d->cond);
  g_mutex_unlock(&d->lock);
  if (ok)
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

/* ---- loading: the spectrogram worker ------------------------------------------------------- */

/* Frames [F0, F1) into D's spectrogram, exactly as a computation over the whole audio gives
 * them: the samples passed reach half an FFT beyond each end (the zero padding of the whole
 * computation only at the end of the audio: N is all of it, or more than the block needs), and
 * the frames of that margin are dropped. Under storage_lock as reader. */
static gboolean
compute_block(AudioData *d, gint64 n, gint64 f0, gint64 f1, GCancellable *cancellable,
              GError **error)
{
  const FthMelParams *params = &d->params;
  gint64 margin = (params->n_fft / 2 + params->hop - 1) / params->hop; /* frames */
  gint64 lead = MIN(f0, margin);
  gint64 s0 = (f0 - lead) * params->hop;
  gint64 s1 = MIN(n, (f1 - 1) * params->hop + params->n_fft / 2);
  FthMelSpectrogram part = { 0 };
  if (!fth_log_mel_compute(d->samples + s0, MAX(0, s1 - s0), params, &part, cancellable, error))
    return FALSE;
  float lo = G_MAXFLOAT, hi = -G_MAXFLOAT;
  for (gint64 f = f0; f < f1; f++) {
    const float *src = part.data + (gsize)(f - f0 + lead) * params->n_mels;
    memcpy(d->spec.data + (gsize)f * params->n_mels, src, sizeof(float) * params->n_mels);
    for (int m = 0; m < params->n_mels; m++) {
      lo = MIN(lo, src[m]);
      hi = MAX(hi, src[m]);
    }
  }
  fth_mel_spectrogram_clear(&part);
  g_mutex_lock(&d->range_lock);
  d->spec.min_value = MIN(d->spec.min_value, lo);
  d->spec.max_value = MAX(d->spec.max_value, hi);
  g_mutex_unlock(&d->range_lock);
  return TRUE;
}

/* The first of blocks [0, N_BLOCKS) not computed yet, from the one in view on (then from the
 * start); -1 when there is none. */
static gint64
next_block(AudioData *d, gint64 n_blocks)
{
  gint64 from = CLAMP(g_atomic_int_get(&d->wanted_block), 0, MAX(0, n_blocks - 1));
  for (gint64 i = 0; i < n_blocks; i++) {
    gint64 b = (from + i) % n_blocks;
    if (!g_atomic_int_get(&d->spec_done[b]))
      return b;
  }
  return -1;
}

/* The cached spectrogram of the file into D when it fits the length the file announces (to a
 * frame or two: resampling rounds); its frame count, or -1. It is then all there before much
 * is decoded; the count is checked again once all is. */
static gint64
load_cache(AudioData *d, const char *cache, gint64 expected)
{
  FthMelSpectrogram cached = { 0 };
  if (cache == NULL || expected < 0 || !fth_mel_spectrogram_load(cache, &cached, NULL))
    return -1;
  gboolean fits = cached.n_mels == d->params.n_mels &&
                  llabs(cached.n_frames - fth_mel_frame_count(&d->params, expected)) <= 2;
  g_rw_lock_reader_lock(&d->storage_lock);
  fits = fits && cached.n_frames <= d->spec_capacity;
  if (fits) {
    memcpy(d->spec.data, cached.data, sizeof(float) * (gsize)cached.n_frames * cached.n_mels);
    g_mutex_lock(&d->range_lock);
    d->spec.min_value = cached.min_value;
    d->spec.max_value = cached.max_value;
    g_mutex_unlock(&d->range_lock);
    gint64 blocks = (cached.n_frames + SPEC_BLOCK - 1) / SPEC_BLOCK;
    for (gint64 b = 0; b < blocks; b++)
      g_atomic_int_set(&d->spec_done[b], 1);
    g_atomic_int_set(&d->n_spec_done, (gint)blocks);
  }
  g_rw_lock_reader_unlock(&d->storage_lock);
  gint64 frames = fits ? cached.n_frames : -1;
  fth_mel_spectrogram_clear(&cached);
  return frames;
}

/* Forgets a cached spectrogram that turned out not to match the decoded audio. */
static void
drop_blocks(AudioData *d)
{
  g_rw_lock_reader_lock(&d->storage_lock);
  for (gint64 b = 0; b < (d->spec_capacity + SPEC_BLOCK - 1) / SPEC_BLOCK; b++)
    g_atomic_int_set(&d->spec_done[b], 0);
  g_atomic_int_set(&d->n_spec_done, 0);
  g_mutex_lock(&d->range_lock);
  d->spec.min_value = G_MAXFLOAT;
  d->spec.max_value = -G_MAXFLOAT;
  g_mutex_unlock(&d->range_lock);
  g_rw_lock_reader_unlock(&d->storage_lock);
}

/* Waits until a block can be computed: *BLOCK is it, or -1 when every block is computed (the
 * decode is then done); *N the samples decoded, *DONE whether that is all. FALSE when the decode
 * failed or the load was cancelled. */
static gboolean
wait_for_block(AudioData *d, GCancellable *cancellable, gint64 *block, gint64 *n, gboolean *done)
{
  g_mutex_lock(&d->lock);
  for (;;) {
    if (g_cancellable_is_cancelled(cancellable) || d->state == DECODE_FAILED) {
      g_mutex_unlock(&d->lock);
      return FALSE;
    }
    *done = d->state == DECODE_DONE;
    *n = d->n_decoded;
    if (d->rate > 0 && (*n > 0 || *done)) {
      const FthMelParams *p = &d->params;
      gint64 ready;
      if (*done) /* the last block too, with the zero padding at the end */
        ready = (fth_mel_frame_count(p, *n) + SPEC_BLOCK - 1) / SPEC_BLOCK;
      else /* whole blocks whose last frame has all its samples */
        ready = *n >= p->n_fft / 2 ? ((*n - p->n_fft / 2) / p->hop + 1) / SPEC_BLOCK : 0;
      g_rw_lock_reader_lock(&d->storage_lock);
      *block = next_block(d, ready);
      g_rw_lock_reader_unlock(&d->storage_lock);
      if (*block >= 0 || *done) {
        g_mutex_unlock(&d->lock);
        return TRUE;
      }
    }
    g_cond_wait_until(&d->cond, &d->lock, g_get_monotonic_time() + WAIT_US);
  }
}

static void
spectrogram_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  LoadJob *job = task_data;
  AudioData *d = job->audio;
  g_autofree char *cache = NULL;
  gboolean tried_cache = FALSE;
  gint64 cached_frames = -1; /* from the cache, while it is believed */
  for (;;) {
    gint64 b, n;
    gboolean done;
    if (!wait_for_block(d, cancellable, &b, &n, &done)) {
      if (g_cancellable_is_cancelled(cancellable))
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
      else
        g_task_return_boolean(task, FALSE); /* the decode failed; it says why */
      return;
    }
    if (!tried_cache) {
      /* The rate, so the cache's name, is known from the first piece on. */
      tried_cache = TRUE;
      if (job->cache_dir != NULL && job->sha256 != NULL)
        cache = fth_mel_cache_path(job->cache_dir, job->sha256, &d->params);
      g_mutex_lock(&d->lock);
      gint64 expected = d->expected;
      g_mutex_unlock(&d->lock);
      cached_frames = load_cache(d, cache, expected);
      if (cached_frames >= 0)
        post_progress(job, TRUE);
      continue;
    }
    if (done && cached_frames >= 0 && cached_frames != fth_mel_frame_count(&d->params, n)) {
      cached_frames = -1; /* the announced length was off: compute it */
      drop_blocks(d);
      continue;
    }
    if (b < 0) {
      d->spec.n_frames = (int)fth_mel_frame_count(&d->params, n);
      break;
    }
    gint64 f0 = b * SPEC_BLOCK;
    gint64 f1 = MIN(fth_mel_frame_count(&d->params, n), f0 + SPEC_BLOCK);
    GError *error = NULL;
    g_rw_lock_reader_lock(&d->storage_lock);
    gboolean ok = compute_block(d, n, f0, f1, cancellable, &error);
    g_rw_lock_reader_unlock(&d->storage_lock);
    if (!ok) {
      g_task_return_error(task, error);
      return;
    }
    g_atomic_int_set(&d->spec_done[b], 1);
    g_atomic_int_inc(&d->n_spec_done);
    post_progress(job, FALSE);
  }
  /* All decoded and computed: only now may the cache hold it. One that cannot be written costs
   * time next time, nothing else. */
  if (cache != NULL && cached_frames < 0 && d->spec.n_frames > 0) {
    g_rw_lock_reader_lock(&d->storage_lock);
    fth_mel_spectrogram_save(&d->spec, cache, NULL);
    g_rw_lock_reader_unlock(&d->storage_lock);
  }
  post_progress(job, TRUE);
  g_task_return_boolean(task, TRUE);
}

/* ---- loading: the main thread -------------------------------------------------------------- */

/* What the workers published: the decoded length, the timeline, the drawing. */
static void
take_progress(FthWaveformView *self)
{
  AudioData *d = self->audio;
  g_mutex_lock(&d->lock);
  gint64 n = d->n_decoded, expected = d->expected;
  gboolean format = d->rate > 0 && (n > 0 || d->state != DECODE_RUNNING);
  g_mutex_unlock(&d->lock);
  if (!format)
    return;
  double old_duration = duration(self);
  gboolean whole_shown = !self->has_format ||
                         (self->view_start <= 0.0 && self->view_seconds >= old_duration);
  self->has_format = TRUE;
  self->n_shown = MAX(self->n_shown, n);
  if (!self->decoded)
    self->expected = expected;
  /* The whole timeline stays in view while it grows (a file that does not say its length). */
  if (whole_shown) {
    self->view_start = 0.0;
    self->view_seconds = duration(self) > 0 ? duration(self) : 1.0;
  }
  place_segments(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void
spectrogram_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(source);
  LoadJob *job = g_task_get_task_data(G_TASK(result));
  g_autoptr(GError) error = NULL;
  gboolean complete = g_task_propagate_boolean(G_TASK(result), &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->audio != job->audio)
    return; /* a newer load replaced this one, or the view went away */
  self->computing = FALSE;
  self->spec_complete = complete;
  if (error != NULL && self->load_error == NULL) {
    /* The waveform stays; the view says why there is no spectrogram. */
    self->load_error = g_strdup_printf(_("%s: no spectrogram: %s"), self->path, error->message);
  }
  gtk_widget_queue_draw(GTK_WIDGET(self));
  g_signal_emit(self, signals[SIGNAL_LOADED], 0);
}

static void
decode_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(source);
  LoadJob *job = g_task_get_task_data(G_TASK(result));
  g_autoptr(GError) error = NULL;
  gboolean ok = g_task_propagate_boolean(G_TASK(result), &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->audio != job->audio)
    return;
  self->decoding = FALSE;
  /* The timeline ends where the decode did (the announced length was an estimate, or the file
   * broke off); the view stays inside it. */
  take_progress(self);
  self->decoded = TRUE;
  self->expected = self->n_shown;
  if (!ok) {
    g_free(self->load_error);
    self->load_error = g_strdup(error->message);
  }
  fth_waveform_view_set_visible_range(self, self->view_start, self->view_seconds);
  place_segments(self);
  gtk_widget_queue_resize(GTK_WIDGET(self));
  g_signal_emit(self, signals[SIGNAL_LOADED], 0);
}

static void stop_playback(FthWaveformView *self);

/* Stops the workers of the current load: they see the cancellable, and whatever they still
 * post is dropped (progress_idle, the done callbacks compare their audio with self->audio). */
static void
cancel_load(FthWaveformView *self)
{
  if (self->cancellable != NULL)
    g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  g_clear_pointer(&self->audio, audio_data_unref);
  self->has_format = self->decoded = self->spec_complete = FALSE;
  self->decoding = self->computing = FALSE;
  self->n_shown = 0;
  self->expected = -1;
}

static void
start_worker(FthWaveformView *self, GAsyncReadyCallback done, GTaskThreadFunc func)
{
  LoadJob *job = g_new0(LoadJob, 1);
  job->audio = g_atomic_rc_box_acquire(self->audio);
  job->view = self;
  job->cancellable = g_object_ref(self->cancellable);
  job->path = g_strdup(self->path);
  job->cache_dir = g_strdup(self->cache_dir);
  job->sha256 = g_strdup(self->sha256);
  g_autoptr(GTask) task = g_task_new(self, self->cancellable, done, NULL);
  g_task_set_task_data(task, job, (GDestroyNotify)load_job_free);
  fth_background_thread_run(task, func);
}

void
fth_waveform_view_load(FthWaveformView *self, const char *path, const char *cache_dir,
                       const char *sha256)
{
  g_return_if_fail(FTH_IS_WAVEFORM_VIEW(self));
  stop_playback(self);
  cancel_load(self);
  g_clear_pointer(&self->load_error, g_free);
  g_free(self->path);
  g_free(self->cache_dir);
  g_free(self->sha256);
  self->path = g_strdup(path);
  self->cache_dir = g_strdup(cache_dir);
  self->sha256 = g_strdup(sha256);
  self->has_selection = FALSE;
  self->selected = 0;
  self->position = 0.0;
  self->view_start = 0.0;
  self->view_seconds = 1.0;
  self->cancellable = g_cancellable_new();
  self->audio = audio_data_new();
  self->decoding = self->computing = TRUE;
  start_worker(self, decode_done, decode_thread);
  start_worker(self, spectrogram_done, spectrogram_thread);
  place_segments(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

gboolean
fth_waveform_view_is_loading(FthWaveformView *self)
{
  return self->decoding || self->computing;
}

gboolean
fth_waveform_view_is_decoding(FthWaveformView *self)
{
  return self->decoding;
}

double
fth_waveform_view_get_decoded_duration(FthWaveformView *self)
{
  return decoded_seconds(self);
}

gboolean
fth_waveform_view_has_spectrogram(FthWaveformView *self)
{
  return self->spec_complete;
}

/* Blocks of the timeline's spectrogram (as far as it is known). */
static gint64
spectrogram_blocks(FthWaveformView *self)
{
  if (!self->has_format)
    return 0;
  gint64 n = self->decoded ? self->n_shown : MAX(self->n_shown, self->expected);
  return (fth_mel_frame_count(&self->audio->params, n) + SPEC_BLOCK - 1) / SPEC_BLOCK;
}

double
fth_waveform_view_get_spectrogram_progress(FthWaveformView *self)
{
  if (self->spec_complete)
    return 1.0;
  gint64 blocks = spectrogram_blocks(self);
  if (blocks == 0)
    return 0.0;
  return MIN(1.0, (double)g_atomic_int_get(&self->audio->n_spec_done) / blocks);
}

const char *
fth_waveform_view_get_message(FthWaveformView *self)
{
  return self->load_error != NULL ? self->load_error : self->annotation_problem;
}

double
fth_waveform_view_get_duration(FthWaveformView *self)
{
  return duration(self);
}

int
fth_waveform_view_get_sample_rate(FthWaveformView *self)
{
  return self->has_format ? self->audio->file_rate : 0;
}

/* ---- annotations and view state ------------------------------------------------------------ */

static FthAnnotation *
annotation_copy(const FthAnnotation *ann)
{
  FthAnnotation *copy = g_memdup2(ann, sizeof *ann);
  copy->points = ann->n_points > 0 ? g_memdup2(ann->points, sizeof(double) * 2 * ann->n_points)
                                   : NULL;
  return copy;
}

static gpointer
annotation_copy_func(gconstpointer ann, gpointer unused)
{
  return annotation_copy(ann);
}

static gpointer
label_copy_func(gconstpointer data, gpointer unused)
{
  const FthLabel *label = data;
  FthLabel *copy = g_memdup2(label, sizeof *label);
  copy->name = g_strdup(label->name);
  copy->color = g_strdup(label->color);
  copy->hotkey = g_strdup(label->hotkey);
  return copy;
}

void
fth_waveform_view_set_annotations(FthWaveformView *self, GPtrArray *annotations,
                                  GPtrArray *labels)
{
  g_return_if_fail(FTH_IS_WAVEFORM_VIEW(self));
  self->drag = DRAG_NONE;
  self->drag_ann = NULL;
  g_array_set_size(self->placed, 0);
  g_clear_pointer(&self->annotations, g_ptr_array_unref);
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  if (annotations != NULL)
    self->annotations = g_ptr_array_copy(annotations, annotation_copy_func, NULL);
  if (labels != NULL)
    self->labels = g_ptr_array_copy(labels, label_copy_func, NULL);
  if (self->annotations != NULL)
    g_ptr_array_set_free_func(self->annotations, (GDestroyNotify)fth_annotation_free);
  if (self->labels != NULL)
    g_ptr_array_set_free_func(self->labels, (GDestroyNotify)fth_label_free);
  gboolean still_there = FALSE;
  for (guint i = 0; self->annotations != NULL && i < self->annotations->len; i++)
    still_there |= ((FthAnnotation *)self->annotations->pdata[i])->id == self->selected;
  if (!still_there)
    self->selected = 0;
  place_segments(self);
  gtk_widget_queue_resize(GTK_WIDGET(self));
}

void
fth_waveform_view_set_visible_range(FthWaveformView *self, double start, double seconds)
{
  double dur = MAX(duration(self), 1e-3);
  /* Down to 4 samples across the width, out to the whole file. */
  double min_seconds = self->has_format ? 4.0 / self->audio->file_rate : 1e-3;
  self->view_seconds = CLAMP(seconds, min_seconds, dur);
  self->view_start = CLAMP(start, 0.0, MAX(0.0, dur - self->view_seconds));
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
fth_waveform_view_get_visible_range(FthWaveformView *self, double *start, double *seconds)
{
  *start = self->view_start;
  *seconds = self->view_seconds;
}

static void
zoom_at(FthWaveformView *self, double factor, double x)
{
  double t = fth_waveform_view_x_to_time(self, x);
  double seconds = self->view_seconds / factor;
  int width = MAX(1, gtk_widget_get_width(GTK_WIDGET(self)));
  fth_waveform_view_set_visible_range(self, t - x / width * seconds, seconds);
}

gboolean
fth_waveform_view_get_selection(FthWaveformView *self, double *t0, double *t1)
{
  if (!self->has_selection)
    return FALSE;
  *t0 = self->sel_t0;
  *t1 = self->sel_t1;
  return TRUE;
}

gint64
fth_waveform_view_get_selected(FthWaveformView *self)
{
  return self->selected;
}

void
fth_waveform_view_set_selected(FthWaveformView *self, gint64 annotation_id)
{
  self->selected = annotation_id;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

static const FthAnnotation *
selected_annotation(FthWaveformView *self)
{
  for (guint i = 0; self->selected != 0 && self->annotations != NULL && i < self->annotations->len;
       i++) {
    const FthAnnotation *a = g_ptr_array_index(self->annotations, i);
    if (a->id == self->selected)
      return a;
  }
  return NULL;
}

/* ---- playback ------------------------------------------------------------------------------ */

static void
apply_seek(FthWaveformView *self)
{
  /* Before the preroll, the position and speed wait for it (bus_message). */
  if (self->playbin == NULL || !self->prerolled)
    return;
  gint64 start = (gint64)(self->position * GST_SECOND);
  gint64 stop = self->playing_selection ? (gint64)(self->sel_t1 * GST_SECOND) : -1;
  gst_element_seek(self->playbin, self->speed, GST_FORMAT_TIME,
                   GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE, GST_SEEK_TYPE_SET, start,
                   stop >= 0 ? GST_SEEK_TYPE_SET : GST_SEEK_TYPE_NONE, stop);
}

static gboolean
playback_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer user_data)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(widget);
  gint64 pos;
  if (self->playbin != NULL && gst_element_query_position(self->playbin, GST_FORMAT_TIME, &pos))
    self->position = (double)pos / GST_SECOND;
  /* Keep the playhead in view: page along when it leaves the right edge. */
  if (self->position > self->view_start + self->view_seconds)
    fth_waveform_view_set_visible_range(self, self->position, self->view_seconds);
  gtk_widget_queue_draw(widget);
  return G_SOURCE_CONTINUE;
}

static void
set_ticking(FthWaveformView *self, gboolean on)
{
  if (on && self->tick_id == 0)
    self->tick_id = gtk_widget_add_tick_callback(GTK_WIDGET(self), playback_tick, NULL, NULL);
  else if (!on && self->tick_id != 0) {
    gtk_widget_remove_tick_callback(GTK_WIDGET(self), self->tick_id);
    self->tick_id = 0;
  }
}

static gboolean
bus_message(GstBus *bus, GstMessage *message, gpointer user_data)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(user_data);
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ASYNC_DONE && !self->prerolled &&
      GST_MESSAGE_SRC(message) == GST_OBJECT(self->playbin)) {
    /* Prerolled: now the playhead and the speed can be applied, and play can start. */
    self->prerolled = TRUE;
    if (self->playing) {
      apply_seek(self);
      gst_element_set_state(self->playbin, GST_STATE_PLAYING);
    }
  } else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS) {
    if (self->loop) {
      self->position = self->playing_selection ? self->sel_t0 : 0.0;
      apply_seek(self);
    } else {
      self->position = self->playing_selection ? self->sel_t1 : duration(self);
      fth_waveform_view_set_playing(self, FALSE);
    }
  } else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    g_autoptr(GError) error = NULL;
    gst_message_parse_error(message, &error, NULL);
    g_free(self->load_error);
    self->load_error = g_strdup_printf(_("%s: cannot play: %s"), self->path, error->message);
    stop_playback(self);
    gtk_widget_queue_draw(GTK_WIDGET(self));
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
ensure_playbin(FthWaveformView *self)
{
  if (self->playbin != NULL)
    return TRUE;
  if (self->path == NULL || !self->has_format)
    return FALSE;
  self->playbin = gst_element_factory_make("playbin", NULL);
  if (self->playbin == NULL) {
    g_free(self->load_error);
    self->load_error = g_strdup(_("Playback needs GStreamer's playbin (gst-plugins-base)"));
    gtk_widget_queue_draw(GTK_WIDGET(self));
    return FALSE;
  }
  g_autofree char *uri = gst_filename_to_uri(self->path, NULL);
  g_object_set(self->playbin, "uri", uri, NULL);
  /* Keeps the pitch when the speed changes (gst-plugins-good); without it speech sounds off. */
  GstElement *tempo = gst_element_factory_make("scaletempo", NULL);
  if (tempo != NULL)
    g_object_set(self->playbin, "audio-filter", tempo, NULL);
  g_autoptr(GstBus) bus = gst_element_get_bus(self->playbin);
  self->bus_watch = gst_bus_add_watch(bus, bus_message, self);
  /* Paused first: seeks (to the playhead, with the speed) need a prerolled pipeline. The
   * preroll ends on the bus (ASYNC_DONE); the main loop does not wait for it. */
  self->prerolled = FALSE;
  gst_element_set_state(self->playbin, GST_STATE_PAUSED);
  return TRUE;
}

static void
stop_playback(FthWaveformView *self)
{
  set_ticking(self, FALSE);
  self->playing = FALSE;
  self->playing_selection = FALSE;
  self->prerolled = FALSE;
  if (self->playbin != NULL) {
    gst_element_set_state(self->playbin, GST_STATE_NULL);
    g_clear_handle_id(&self->bus_watch, g_source_remove);
    g_clear_object(&self->playbin);
  }
}

double
fth_waveform_view_get_position(FthWaveformView *self)
{
  return self->position;
}

void
fth_waveform_view_seek(FthWaveformView *self, double t)
{
  self->position = CLAMP(t, 0.0, duration(self));
  self->playing_selection = FALSE;
  apply_seek(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

gboolean
fth_waveform_view_is_playing(FthWaveformView *self)
{
  return self->playing;
}

void
fth_waveform_view_set_playing(FthWaveformView *self, gboolean playing)
{
  if (playing == self->playing)
    return;
  if (!playing) {
    if (self->playbin != NULL)
      gst_element_set_state(self->playbin, GST_STATE_PAUSED);
    self->playing = FALSE;
    set_ticking(self, FALSE);
    gtk_widget_queue_draw(GTK_WIDGET(self));
    return;
  }
  if (!ensure_playbin(self))
    return;
  if (self->position >= duration(self))
    self->position = 0.0;
  self->playing = TRUE;
  set_ticking(self, TRUE);
  if (self->prerolled) { /* else it starts when the preroll is done */
    apply_seek(self);
    gst_element_set_state(self->playbin, GST_STATE_PLAYING);
  }
}

void
fth_waveform_view_play_selection(FthWaveformView *self)
{
  const FthAnnotation *a = selected_annotation(self);
  if (a != NULL) {
    self->sel_t0 = a->t0;
    self->sel_t1 = MIN(a->t1, duration(self));
    self->has_selection = TRUE;
  }
  if (!self->has_selection)
    return;
  fth_waveform_view_set_playing(self, FALSE);
  self->position = self->sel_t0;
  self->playing_selection = TRUE;
  fth_waveform_view_set_playing(self, TRUE);
}

void
fth_waveform_view_set_loop(FthWaveformView *self, gboolean loop)
{
  self->loop = loop;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

gboolean
fth_waveform_view_get_loop(FthWaveformView *self)
{
  return self->loop;
}

void
fth_waveform_view_set_speed(FthWaveformView *self, double speed)
{
  self->speed = CLAMP(speed, 0.25, 4.0);
  if (self->playing)
    apply_seek(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

double
fth_waveform_view_get_speed(FthWaveformView *self)
{
  return self->speed;
}

/* ---- drawing ------------------------------------------------------------------------------- */

/* A dark-blue to yellow ramp (close to viridis) for the spectrogram. */
static guint32
ramp(double v)
{
  static const double stops[5][3] = {
    { 0.27, 0.00, 0.33 }, { 0.23, 0.32, 0.55 }, { 0.13, 0.57, 0.55 }, { 0.37, 0.79, 0.38 },
    { 0.99, 0.91, 0.14 },
  };
  v = CLAMP(v, 0.0, 1.0) * 4.0;
  int i = MIN(3, (int)v);
  double f = v - i;
  guint32 rgb = 0xff000000u;
  for (int c = 0; c < 3; c++) {
    double x = stops[i][c] * (1 - f) + stops[i + 1][c] * f;
    rgb |= (guint32)(x * 255.0 + 0.5) << (16 - 8 * c);
  }
  return rgb;
}

/* Min and max of samples [S0, S1) of the N the drawing may read. */
static void
samples_range(const AudioData *d, gint64 s0, gint64 s1, float *lo, float *hi)
{
  for (gint64 i = s0; i < s1; i++) {
    *lo = MIN(*lo, d->samples[i]);
    *hi = MAX(*hi, d->samples[i]);
  }
}

/* Under storage_lock as reader. */
static void
draw_waveform(FthWaveformView *self, cairo_t *cr, int width, double y0, double h)
{
  AudioData *d = self->audio;
  gint64 n = self->n_shown;
  double mid = y0 + h / 2, half = h / 2 - 2;
  double spp = self->view_seconds * d->rate / width; /* samples per column */
  int level = -1;
  for (int l = 0; l < N_LEVELS && (double)level_block(l) <= spp / 2; l++)
    level = l;
  cairo_set_source_rgb(cr, 0.25, 0.55, 0.85);
  for (int x = 0; x < width; x++) {
    gint64 s0 = (gint64)floor((self->view_start + (double)x / width * self->view_seconds) *
                              d->rate);
    gint64 s1 = (gint64)floor((self->view_start + (double)(x + 1) / width * self->view_seconds) *
                              d->rate);
    s0 = CLAMP(s0, 0, n);
    s1 = CLAMP(MAX(s1, s0 + 1), 0, n);
    if (s0 >= s1)
      continue;
    float lo = G_MAXFLOAT, hi = -G_MAXFLOAT;
    if (level < 0) {
      samples_range(d, s0, s1, &lo, &hi);
    } else {
      gint64 block = level_block(level);
      for (gint64 b = s0 / block; b <= (s1 - 1) / block; b++) {
        if ((b + 1) * block <= n || self->decoded) {
          lo = MIN(lo, d->mins[level][b]);
          hi = MAX(hi, d->maxs[level][b]);
        } else { /* the last block is still being decoded: its entry is not final */
          samples_range(d, b * block, n, &lo, &hi);
        }
      }
    }
    double ya = mid - CLAMP(hi, -1.0f, 1.0f) * half, yb = mid - CLAMP(lo, -1.0f, 1.0f) * half;
    cairo_rectangle(cr, x, ya, 1, MAX(1.0, yb - ya));
  }
  cairo_fill(cr);
}

/* The timeline past the decoded audio: dim and hatched, with how far the decode is. */
static void
draw_pending(FthWaveformView *self, cairo_t *cr, int width, double y0, double h)
{
  double done_s = decoded_seconds(self), total_s = duration(self);
  double x0 = MAX(0.0, fth_waveform_view_time_to_x(self, done_s));
  double x1 = MIN((double)width, fth_waveform_view_time_to_x(self, total_s));
  if (x1 > x0) {
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, x1 - x0, h);
    cairo_clip(cr);
    cairo_set_source_rgba(cr, 0.45, 0.45, 0.5, 0.18);
    cairo_paint(cr);
    /* Hatching anchored to the widget, not the time, so it stands still while the edge moves. */
    cairo_set_source_rgba(cr, 1, 1, 1, 0.07);
    cairo_set_line_width(cr, 1);
    for (double x = floor(x0 / 10) * 10 - h; x < x1; x += 10) {
      cairo_move_to(cr, x, y0 + h);
      cairo_line_to(cr, x + h, y0);
    }
    cairo_stroke(cr);
    cairo_restore(cr);
  }
  /* How far: a bar along the top of the waveform and the figure. */
  g_autofree char *text = NULL;
  if (self->expected > 0) {
    double fraction = CLAMP(done_s / MAX(total_s, 1e-9), 0.0, 1.0);
    cairo_set_source_rgb(cr, 0.4, 0.7, 1.0);
    cairo_rectangle(cr, 0, y0, fraction * width, 2);
    cairo_fill(cr);
    text = g_strdup_printf(_("Decoding the audio… %.0f of %.0f s (%d %%)"), done_s, total_s,
                           (int)(100 * fraction));
  } else {
    text = g_strdup_printf(_("Decoding the audio… %.0f s so far"), done_s);
  }
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text, &ext);
  double tx = width - ext.x_advance - 10;
  cairo_set_source_rgba(cr, 0.1, 0.1, 0.11, 0.75);
  cairo_rectangle(cr, tx - 4, y0 + 4, ext.x_advance + 8, 16);
  cairo_fill(cr);
  cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
  cairo_move_to(cr, tx, y0 + 16);
  cairo_show_text(cr, text);
}

/* Under storage_lock as reader. */
static void
draw_spectrogram(FthWaveformView *self, cairo_t *cr, int width, double y0, double h)
{
  AudioData *d = self->audio;
  const FthMelSpectrogram *spec = &d->spec;
  gint64 n = self->decoded ? self->n_shown : MAX(self->n_shown, self->expected);
  gint64 n_frames = MIN(d->spec_capacity, n > 0 ? fth_mel_frame_count(&d->params, n) : 0);
  if (n_frames == 0)
    return; /* no samples */
  /* The worker computes the block at the start of the view next. */
  gint64 first = CLAMP((gint64)floor(self->view_start / spec->hop_s), 0, n_frames - 1);
  g_atomic_int_set(&d->wanted_block, (int)(first / SPEC_BLOCK));
  g_mutex_lock(&d->range_lock);
  float min_value = spec->min_value, max_value = spec->max_value;
  g_mutex_unlock(&d->range_lock);

  /* One column per pixel (the loudest frame it covers), one row per mel band, scaled up;
   * columns whose blocks are not computed yet stay dark gray. */
  cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, spec->n_mels);
  guint8 *pixels = cairo_image_surface_get_data(img);
  int stride = cairo_image_surface_get_stride(img);
  double range = MAX(1e-6, max_value - min_value);
  /* The bottom 20% of the log range is noise floor; start the ramp above it. */
  double lo = min_value + 0.2 * range, span = 0.8 * range;
  float *column = g_new(float, spec->n_mels);
  for (int x = 0; x < width; x++) {
    double t0 = self->view_start + (double)x / width * self->view_seconds;
    double t1 = self->view_start + (double)(x + 1) / width * self->view_seconds;
    gint64 f0 = CLAMP((gint64)floor(t0 / spec->hop_s), 0, n_frames - 1);
    gint64 f1 = CLAMP((gint64)floor(t1 / spec->hop_s), f0, n_frames - 1);
    /* At a far zoom-out, a stride keeps a column to a few dozen frames. */
    gint64 step = MAX(1, (f1 - f0 + 1) / 32);
    gboolean any = FALSE;
    for (int m = 0; m < spec->n_mels; m++)
      column[m] = -G_MAXFLOAT;
    for (gint64 f = f0; f <= f1; f += step) {
      if (!g_atomic_int_get(&d->spec_done[f / SPEC_BLOCK]))
        continue;
      any = TRUE;
      const float *frame = spec->data + (gsize)f * spec->n_mels;
      for (int m = 0; m < spec->n_mels; m++)
        column[m] = MAX(column[m], frame[m]);
    }
    for (int m = 0; m < spec->n_mels; m++) {
      guint32 *row = (guint32 *)(pixels + (gsize)(spec->n_mels - 1 - m) * stride);
      row[x] = any ? ramp((column[m] - lo) / span) : 0x303036;
    }
  }
  g_free(column);
  cairo_surface_mark_dirty(img);
  cairo_save(cr);
  cairo_translate(cr, 0, y0);
  cairo_scale(cr, 1.0, h / spec->n_mels);
  cairo_set_source_surface(cr, img, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_paint(cr);
  cairo_restore(cr);
  cairo_surface_destroy(img);

  if (!self->spec_complete && self->load_error == NULL) {
    g_autofree char *text = g_strdup_printf(
      _("Computing the spectrogram… %d %%"),
      (int)(100 * fth_waveform_view_get_spectrogram_progress(self)));
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_move_to(cr, 8, y0 + 14);
    cairo_show_text(cr, text);
  }
}

static void
draw_chip(cairo_t *cr, double *x, double y, const GdkRGBA *rgba, const char *text, gboolean dashed)
{
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text, &ext);
  double w = ext.x_advance + 12;
  cairo_rectangle(cr, *x, y + 3, w, STRIP_H - 6);
  cairo_set_source_rgba(cr, rgba->red, rgba->green, rgba->blue, dashed ? 0.15 : 0.85);
  cairo_fill_preserve(cr);
  cairo_set_source_rgba(cr, rgba->red, rgba->green, rgba->blue, 1);
  if (dashed)
    cairo_set_dash(cr, (double[]){ 3, 2 }, 2, 0);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
  cairo_set_source_rgb(cr, dashed ? 0.9 : 0.05, dashed ? 0.9 : 0.05, dashed ? 0.9 : 0.05);
  cairo_move_to(cr, *x + 6, y + STRIP_H / 2 + 4);
  cairo_show_text(cr, text);
  *x += w + 6;
}

static void
draw_strip(FthWaveformView *self, cairo_t *cr, int width)
{
  cairo_set_source_rgb(cr, 0.16, 0.16, 0.18);
  cairo_rectangle(cr, 0, 0, width, STRIP_H);
  cairo_fill(cr);
  double x = 6;
  for (guint i = 0; self->annotations != NULL && i < self->annotations->len; i++) {
    const FthAnnotation *a = g_ptr_array_index(self->annotations, i);
    if (a->geom != FTH_GEOM_WHOLE)
      continue;
    const FthLabel *l = find_label(self, a->label_id);
    GdkRGBA rgba;
    label_rgba(self, a->label_id, &rgba);
    g_autofree char *text = a->author == FTH_AUTHOR_MODEL
                              ? g_strdup_printf(_("model: %s %.0f%%"), l ? l->name : "?",
                                                a->score * 100)
                              : g_strdup(l ? l->name : "?");
    draw_chip(cr, &x, 0, &rgba, text, a->author == FTH_AUTHOR_MODEL);
  }
  /* Playing or paused, looping, speed: at the right end, where tick labels stop. */
  char state[64];
  g_snprintf(state, sizeof state, "%s%s ×%.2g", self->playing ? "▶" : "❚❚",
             self->loop ? " ⟲" : "", self->speed);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, state, &ext);
  double state_x = width - ext.x_advance - 6;
  cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
  cairo_move_to(cr, state_x, 16);
  cairo_show_text(cr, state);

  /* Time ticks at a round step of about 100 px. */
  double step = 1e-3;
  const double mult[] = { 2, 2.5, 2 };
  for (int i = 0; self->view_seconds / width * 100 > step; i++)
    step *= mult[i % 3];
  cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
  for (double t = ceil(self->view_start / step) * step; t <= self->view_start + self->view_seconds;
       t += step) {
    double tx = fth_waveform_view_time_to_x(self, t);
    cairo_rectangle(cr, tx, STRIP_H - 5, 1, 5);
    cairo_fill(cr);
    char buf[32];
    if (step >= 60)
      g_snprintf(buf, sizeof buf, "%d:%02d", (int)(t / 60), (int)fmod(t, 60));
    else
      g_snprintf(buf, sizeof buf, "%.*f", step >= 1 ? 0 : (step >= 0.1 ? 1 : 3), t);
    cairo_text_extents_t label;
    cairo_text_extents(cr, buf, &label);
    if (tx > x && tx + 2 + label.x_advance < state_x - 6) {
      cairo_move_to(cr, tx + 2, STRIP_H - 8);
      cairo_show_text(cr, buf);
    }
  }
}

static void
draw_segments(FthWaveformView *self, cairo_t *cr, int width, double band_top, double band_h)
{
  for (guint i = 0; i < self->placed->len; i++) {
    const Placed *p = &g_array_index(self->placed, Placed, i);
    const FthAnnotation *a = p->ann;
    double t0 = a->t0, t1 = a->t1;
    if (self->drag_ann == a && self->drag == DRAG_EDGE_START)
      t0 = MIN(snap(self, a->t0 + self->drag_dx / width * self->view_seconds), a->t1);
    if (self->drag_ann == a && self->drag == DRAG_EDGE_END)
      t1 = MAX(snap(self, a->t1 + self->drag_dx / width * self->view_seconds), a->t0);
    double x0 = fth_waveform_view_time_to_x(self, t0), x1 = fth_waveform_view_time_to_x(self, t1);
    if (x1 < 0 || x0 > width)
      continue;
    double cy = fth_waveform_view_lane_y(self, p->lane);
    gboolean model = a->author == FTH_AUTHOR_MODEL, selected = a->id == self->selected;
    GdkRGBA c;
    label_rgba(self, a->label_id, &c);
    cairo_rectangle(cr, x0, cy - LANE_H / 2 + 2, MAX(1.0, x1 - x0), LANE_H - 4);
    cairo_set_source_rgba(cr, c.red, c.green, c.blue, model ? 0.2 : 0.7);
    cairo_fill_preserve(cr);
    cairo_set_source_rgba(cr, c.red, c.green, c.blue, 1);
    if (model)
      cairo_set_dash(cr, (double[]){ 4, 3 }, 2, 0);
    cairo_set_line_width(cr, selected ? 3 : 1);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    const FthLabel *l = find_label(self, a->label_id);
    g_autofree char *text = model ? g_strdup_printf("%s %.0f%%", l ? l->name : "?", a->score * 100)
                                  : g_strdup(l ? l->name : "?");
    cairo_save(cr);
    cairo_rectangle(cr, x0, cy - LANE_H / 2, MAX(0.0, x1 - x0), LANE_H);
    cairo_clip(cr);
    cairo_set_source_rgb(cr, 0.95, 0.95, 0.95);
    cairo_move_to(cr, MAX(x0, 0) + 4, cy + 4);
    cairo_show_text(cr, text);
    cairo_restore(cr);
    if (selected) {
      /* The selected segment also marks its extent on the waveform and spectrogram. */
      cairo_rectangle(cr, x0, band_top, x1 - x0, band_h);
      cairo_set_source_rgba(cr, c.red, c.green, c.blue, 0.18);
      cairo_fill(cr);
    }
  }
}

static void
fth_waveform_view_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(widget);
  int width = gtk_widget_get_width(widget), height = gtk_widget_get_height(widget);
  if (width <= 0 || height <= 0)
    return;
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, width, height));
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.11);
  cairo_paint(cr);
  cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 11);

  if (!self->has_format) {
    const char *text = self->load_error != NULL
                         ? self->load_error
                         : (fth_waveform_view_is_loading(self) ? _("Decoding the audio…") : "");
    cairo_set_source_rgb(cr, self->load_error != NULL ? 0.95 : 0.7,
                         self->load_error != NULL ? 0.45 : 0.7, 0.45);
    cairo_move_to(cr, 12, height / 2.0);
    cairo_show_text(cr, text);
    cairo_destroy(cr);
    return;
  }
  double bh = band_height(self);
  draw_strip(self, cr, width);
  g_rw_lock_reader_lock(&self->audio->storage_lock);
  draw_waveform(self, cr, width, STRIP_H, bh);
  draw_spectrogram(self, cr, width, STRIP_H + bh, bh);
  g_rw_lock_reader_unlock(&self->audio->storage_lock);
  if (!self->decoded)
    draw_pending(self, cr, width, STRIP_H, 2 * bh);

  double lanes_top = STRIP_H + 2 * bh;
  cairo_set_source_rgb(cr, 0.13, 0.13, 0.15);
  cairo_rectangle(cr, 0, lanes_top, width, lanes_height(self));
  cairo_fill(cr);
  if (self->n_model_lanes > 0) {
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.45);
    cairo_rectangle(cr, 0, lanes_top + 2 + LANE_H * MAX(1u, self->n_human_lanes), width, 1);
    cairo_fill(cr);
  }
  draw_segments(self, cr, width, STRIP_H, 2 * bh);

  /* The time selection, or the range being dragged. */
  double s0 = self->sel_t0, s1 = self->sel_t1;
  gboolean show = self->has_selection;
  if (self->drag == DRAG_SELECT) {
    s0 = fth_waveform_view_x_to_time(self, MIN(self->drag_x, self->drag_x + self->drag_dx));
    s1 = fth_waveform_view_x_to_time(self, MAX(self->drag_x, self->drag_x + self->drag_dx));
    show = TRUE;
  }
  if (show) {
    double x0 = fth_waveform_view_time_to_x(self, s0), x1 = fth_waveform_view_time_to_x(self, s1);
    cairo_rectangle(cr, x0, STRIP_H, x1 - x0, 2 * bh + lanes_height(self));
    cairo_set_source_rgba(cr, 1, 1, 1, 0.15);
    cairo_fill(cr);
  }

  double px = fth_waveform_view_time_to_x(self, self->position);
  cairo_set_source_rgb(cr, 0.95, 0.25, 0.2);
  cairo_rectangle(cr, floor(px), STRIP_H, 2, height - STRIP_H);
  cairo_fill(cr);

  const char *problem = fth_waveform_view_get_message(self);
  if (problem != NULL) {
    cairo_text_extents_t ext;
    cairo_text_extents(cr, problem, &ext);
    cairo_set_source_rgba(cr, 0.5, 0.1, 0.1, 0.85);
    cairo_rectangle(cr, 6, STRIP_H + 4, ext.x_advance + 12, 20);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 1, 0.9, 0.9);
    cairo_move_to(cr, 12, STRIP_H + 18);
    cairo_show_text(cr, problem);
  }
  cairo_destroy(cr);
}

static void
fth_waveform_view_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                          int *minimum, int *natural, int *minimum_baseline,
                          int *natural_baseline)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(widget);
  if (orientation == GTK_ORIENTATION_HORIZONTAL) {
    *minimum = 100;
    *natural = 640;
  } else {
    *minimum = (int)(STRIP_H + 40 + lanes_height(self));
    *natural = (int)(STRIP_H + 300 + lanes_height(self));
  }
}

/* ---- input --------------------------------------------------------------------------------- */

static void
emit_segment_update(FthWaveformView *self, const FthAnnotation *a, double t0, double t1,
                    gint64 label_id)
{
  g_autoptr(FthAnnotation) changed = annotation_copy(a);
  changed->t0 = t0;
  changed->t1 = t1;
  changed->label_id = label_id;
  g_signal_emit(self, signals[SIGNAL_UPDATE_ANNOTATION], 0, changed);
}

static void
edit_drag_begin(GtkGestureDrag *gesture, double x, double y, gpointer user_data)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(user_data);
  gtk_widget_grab_focus(GTK_WIDGET(self));
  self->drag = DRAG_NONE;
  self->drag_ann = NULL;
  self->drag_x = x;
  self->drag_dx = 0;
  if (!self->has_format || y < STRIP_H)
    return;
  int edge;
  const Placed *hit = segment_at(self, x, y, &edge);
  if (hit != NULL) {
    self->drag_ann = hit->ann;
    self->drag = edge < 0 ? DRAG_EDGE_START : (edge > 0 ? DRAG_EDGE_END : DRAG_SEGMENT);
  } else if (y < STRIP_H + 2 * band_height(self)) {
    self->drag = DRAG_SELECT;
  }
}

static void
edit_drag_update(GtkGestureDrag *gesture, double dx, double dy, gpointer user_data)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(user_data);
  self->drag_dx = dx;
  if (self->drag != DRAG_NONE)
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void
edit_drag_end(GtkGestureDrag *gesture, double dx, double dy, gpointer user_data)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(user_data);
  DragMode mode = self->drag;
  const FthAnnotation *a = self->drag_ann;
  self->drag = DRAG_NONE;
  self->drag_ann = NULL;
  self->drag_dx = dx;
  gtk_widget_queue_draw(GTK_WIDGET(self));
  int width = MAX(1, gtk_widget_get_width(GTK_WIDGET(self)));
  double dt = dx / width * self->view_seconds;
  gboolean moved = fabs(dx) >= MIN_DRAG_PX;

  switch (mode) {
  case DRAG_SELECT:
    if (moved) {
      self->sel_t0 = snap(self, fth_waveform_view_x_to_time(self, MIN(self->drag_x,
                                                                    self->drag_x + dx)));
      self->sel_t1 = snap(self, fth_waveform_view_x_to_time(self, MAX(self->drag_x,
                                                                    self->drag_x + dx)));
      self->has_selection = self->sel_t1 > self->sel_t0;
      self->selected = 0;
    } else {
      /* A click: seek there, and drop the selection. */
      self->has_selection = FALSE;
      self->selected = 0;
      fth_waveform_view_seek(self, fth_waveform_view_x_to_time(self, self->drag_x));
    }
    break;
  case DRAG_SEGMENT:
    self->selected = a->id;
    self->has_selection = FALSE;
    break;
  case DRAG_EDGE_START:
  case DRAG_EDGE_END:
    self->selected = a->id;
    self->has_selection = FALSE;
    if (moved) {
      double t0 = a->t0, t1 = a->t1;
      if (mode == DRAG_EDGE_START)
        t0 = snap(self, a->t0 + dt);
      else
        t1 = snap(self, a->t1 + dt);
      /* An edge dragged past the other one swaps them. */
      double lo = MIN(t0, t1), hi = MAX(t0, t1);
      if (hi > lo)
        emit_segment_update(self, a, lo, hi, a->label_id);
    }
    break;
  case DRAG_NONE:
    break;
  }
}

static const FthLabel *
label_for_key(FthWaveformView *self, guint keyval)
{
  gunichar c = gdk_keyval_to_unicode(keyval);
  if (c == 0)
    return NULL;
  char buf[8] = { 0 };
  g_unichar_to_utf8(c, buf);
  for (guint i = 0; self->labels != NULL && i < self->labels->len; i++) {
    const FthLabel *l = g_ptr_array_index(self->labels, i);
    if (l->hotkey != NULL && g_utf8_collate(l->hotkey, buf) == 0)
      return l;
  }
  return NULL;
}

static gboolean
apply_label_key(FthWaveformView *self, const FthLabel *label)
{
  gboolean for_segments = label->kind == FTH_LABEL_SEGMENT || label->kind == FTH_LABEL_ANY;
  const FthAnnotation *sel = selected_annotation(self);
  if (for_segments && sel != NULL && sel->geom == FTH_GEOM_SEGMENT) {
    if (sel->label_id != label->id || sel->author != FTH_AUTHOR_HUMAN) {
      g_autoptr(FthAnnotation) changed = annotation_copy(sel);
      changed->label_id = label->id;
      changed->author = FTH_AUTHOR_HUMAN; /* labeling a model segment accepts it */
      changed->run_id = 0;
      changed->score = 1.0;
      g_signal_emit(self, signals[SIGNAL_UPDATE_ANNOTATION], 0, changed);
    }
    return TRUE;
  }
  if (for_segments && self->has_selection) {
    g_autoptr(FthAnnotation) ann = fth_annotation_new();
    ann->geom = FTH_GEOM_SEGMENT;
    ann->label_id = label->id;
    ann->t0 = self->sel_t0;
    ann->t1 = self->sel_t1;
    ann->author = FTH_AUTHOR_HUMAN;
    self->has_selection = FALSE;
    g_signal_emit(self, signals[SIGNAL_ADD_ANNOTATION], 0, ann);
    return TRUE;
  }
  if (label->kind == FTH_LABEL_CLASS || label->kind == FTH_LABEL_ANY) {
    g_signal_emit(self, signals[SIGNAL_SET_CLASS], 0, label->id);
    return TRUE;
  }
  return FALSE;
}

static gboolean
key_pressed(GtkEventControllerKey *controller, guint keyval, guint keycode,
            GdkModifierType state, gpointer user_data)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(user_data);
  if (state & (GDK_CONTROL_MASK | GDK_ALT_MASK))
    return FALSE;
  const FthLabel *label = label_for_key(self, keyval);
  if (label != NULL && self->has_format)
    return apply_label_key(self, label);
  switch (keyval) {
  case GDK_KEY_space:
    fth_waveform_view_set_playing(self, !self->playing);
    return TRUE;
  case GDK_KEY_p:
    fth_waveform_view_play_selection(self);
    return TRUE;
  case GDK_KEY_l:
    fth_waveform_view_set_loop(self, !self->loop);
    return TRUE;
  case GDK_KEY_bracketleft:
    fth_waveform_view_set_speed(self, self->speed / 1.25);
    return TRUE;
  case GDK_KEY_bracketright:
    fth_waveform_view_set_speed(self, self->speed * 1.25);
    return TRUE;
  case GDK_KEY_plus:
  case GDK_KEY_equal:
  case GDK_KEY_KP_Add:
    zoom_at(self, 2.0, fth_waveform_view_time_to_x(self, self->position));
    return TRUE;
  case GDK_KEY_minus:
  case GDK_KEY_KP_Subtract:
    zoom_at(self, 0.5, fth_waveform_view_time_to_x(self, self->position));
    return TRUE;
  case GDK_KEY_Delete:
  case GDK_KEY_BackSpace: {
    const FthAnnotation *sel = selected_annotation(self);
    if (sel == NULL)
      return FALSE;
    gint64 id = sel->id;
    self->selected = 0;
    g_signal_emit(self, signals[SIGNAL_REMOVE_ANNOTATION], 0, id);
    return TRUE;
  }
  case GDK_KEY_Escape:
    if (!self->has_selection && self->selected == 0)
      return FALSE;
    self->has_selection = FALSE;
    self->selected = 0;
    gtk_widget_queue_draw(GTK_WIDGET(self));
    return TRUE;
  default:
    return FALSE;
  }
}

static gboolean
scrolled(GtkEventControllerScroll *controller, double dx, double dy, gpointer user_data)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(user_data);
  if (!self->has_format)
    return FALSE;
  GdkModifierType mods = gtk_event_controller_get_current_event_state(
    GTK_EVENT_CONTROLLER(controller));
  if (mods & GDK_CONTROL_MASK)
    zoom_at(self, pow(1.25, -dy), self->pointer_x);
  else
    fth_waveform_view_set_visible_range(self,
                                        self->view_start + (dx + dy) * 0.1 * self->view_seconds,
                                        self->view_seconds);
  return TRUE;
}

static void
pointer_moved(GtkEventControllerMotion *controller, double x, double y, gpointer user_data)
{
  FTH_WAVEFORM_VIEW(user_data)->pointer_x = x;
}

/* ---- class --------------------------------------------------------------------------------- */

/* A view nobody sees stops playing (another page, the grid, a closed window). */
static void
fth_waveform_view_unmap(GtkWidget *widget)
{
  fth_waveform_view_set_playing(FTH_WAVEFORM_VIEW(widget), FALSE);
  GTK_WIDGET_CLASS(fth_waveform_view_parent_class)->unmap(widget);
}

static void
fth_waveform_view_dispose(GObject *object)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(object);
  stop_playback(self);
  cancel_load(self);
  G_OBJECT_CLASS(fth_waveform_view_parent_class)->dispose(object);
}

static void
fth_waveform_view_finalize(GObject *object)
{
  FthWaveformView *self = FTH_WAVEFORM_VIEW(object);
  g_clear_pointer(&self->annotations, g_ptr_array_unref);
  g_clear_pointer(&self->labels, g_ptr_array_unref);
  g_array_unref(self->placed);
  g_free(self->path);
  g_free(self->cache_dir);
  g_free(self->sha256);
  g_free(self->load_error);
  g_free(self->annotation_problem);
  G_OBJECT_CLASS(fth_waveform_view_parent_class)->finalize(object);
}

static void
fth_waveform_view_class_init(FthWaveformViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->dispose = fth_waveform_view_dispose;
  object_class->finalize = fth_waveform_view_finalize;
  widget_class->snapshot = fth_waveform_view_snapshot;
  widget_class->measure = fth_waveform_view_measure;
  widget_class->unmap = fth_waveform_view_unmap;
  gtk_widget_class_set_css_name(widget_class, "fth-waveform-view");

  signals[SIGNAL_LOADED] = g_signal_new("loaded", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_ADD_ANNOTATION] =
    g_signal_new("add-annotation", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                 NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_UPDATE_ANNOTATION] =
    g_signal_new("update-annotation", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                 NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_REMOVE_ANNOTATION] =
    g_signal_new("remove-annotation", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                 NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
  signals[SIGNAL_SET_CLASS] = g_signal_new("set-class", G_TYPE_FROM_CLASS(klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                                           G_TYPE_INT64);
}

static void
fth_waveform_view_init(FthWaveformView *self)
{
  GtkWidget *widget = GTK_WIDGET(self);
  self->placed = g_array_new(FALSE, FALSE, sizeof(Placed));
  self->speed = 1.0;
  self->view_seconds = 1.0;
  self->expected = -1;
  gtk_widget_set_focusable(widget, TRUE);
  gtk_widget_set_focus_on_click(widget, TRUE);

  GtkGesture *drag = gtk_gesture_drag_new();
  gtk_event_controller_set_name(GTK_EVENT_CONTROLLER(drag), "fth-waveform-edit");
  gtk_gesture_single_set_button(GTK_GESTURE_SINGLE(drag), GDK_BUTTON_PRIMARY);
  g_signal_connect(drag, "drag-begin", G_CALLBACK(edit_drag_begin), self);
  g_signal_connect(drag, "drag-update", G_CALLBACK(edit_drag_update), self);
  g_signal_connect(drag, "drag-end", G_CALLBACK(edit_drag_end), self);
  gtk_widget_add_controller(widget, GTK_EVENT_CONTROLLER(drag));

  GtkEventController *keys = gtk_event_controller_key_new();
  gtk_event_controller_set_name(keys, "fth-waveform-keys");
  g_signal_connect(keys, "key-pressed", G_CALLBACK(key_pressed), self);
  gtk_widget_add_controller(widget, keys);

  GtkEventController *scroll =
    gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES);
  g_signal_connect(scroll, "scroll", G_CALLBACK(scrolled), self);
  gtk_widget_add_controller(widget, scroll);

  GtkEventController *motion = gtk_event_controller_motion_new();
  g_signal_connect(motion, "motion", G_CALLBACK(pointer_moved), self);
  gtk_widget_add_controller(widget, motion);
}

GtkWidget *
fth_waveform_view_new(void)
{
  return g_object_new(FTH_TYPE_WAVEFORM_VIEW, NULL);
}
