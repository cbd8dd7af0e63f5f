/* fth-waveform-view.h: an audio item with its clip classes and time segments.
 *
 * Shows the waveform (a min/max pyramid) over the log-mel spectrogram (fathom/features.h), both
 * computed once on a worker thread; the spectrogram is kept in a cache file per item. Above
 * them the clip's class and the model's; below them the segments in lanes, overlapping ones in
 * separate lanes, model segments in lanes of their own, dashed, with their score.
 *
 * Like FthImageCanvas the view only shows and reports: an edit is emitted as a signal and the
 * owner writes it (through the annotation history) and calls set_annotations() again.
 *   "add-annotation"    (const FthAnnotation *)  a new human segment
 *   "update-annotation" (const FthAnnotation *)  a segment moved or relabeled
 *   "remove-annotation" (gint64 id)
 *   "set-class"         (gint64 label_id)        the clip's human class
 * Times are snapped to the file's own sample rate, so they are sample-accurate.
 *
 * Pointer: primary drag on the waveform or spectrogram selects a time range; a drag near the
 * edge of a segment in its lane moves that edge; a click on a segment selects it; a click on
 * the waveform or spectrogram seeks there. The wheel scrolls in time; Ctrl+wheel zooms about
 * the pointer.
 * Keys: a label's hotkey labels the selected segment (a segment label), makes a segment from
 * the selected range, or sets the clip class (class labels, or any label with nothing
 * selected); Delete removes the selected segment; Space plays or pauses; p plays the selection;
 * l toggles looping; [ and ] change the speed; + and - zoom; Escape clears the selection.
 * Playback stops when the view is hidden. */
#pragma once

#include <fathom/store.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FTH_TYPE_WAVEFORM_VIEW (fth_waveform_view_get_type())
G_DECLARE_FINAL_TYPE(FthWaveformView, fth_waveform_view, FTH, WAVEFORM_VIEW, GtkWidget)

GtkWidget *fth_waveform_view_new(void);

/* Decodes PATH on a worker thread and computes its spectrogram on another, both shown as they
 * come: the timeline has the file's length from the start when the file says it (else it grows
 * with the decode), the part not decoded yet is drawn as pending, and zoom, scroll, seeking,
 * playback and segments in the decoded part work meanwhile. "loaded" is emitted when the whole
 * waveform is there, again when the whole spectrogram is. CACHE_DIR (may be NULL) keeps
 * spectrograms by SHA256, written only once the whole file is decoded and computed. A file that
 * cannot be decoded shows the error as the view's message (with what was decoded before it). A
 * new load, or disposing the view, cancels the workers of the last one. */
void fth_waveform_view_load(FthWaveformView *self, const char *path, const char *cache_dir,
                            const char *sha256);
/* TRUE until both the decode and the spectrogram are done (or failed). */
gboolean fth_waveform_view_is_loading(FthWaveformView *self);
gboolean fth_waveform_view_is_decoding(FthWaveformView *self);
/* Seconds of audio decoded so far (the duration once decoded). */
double fth_waveform_view_get_decoded_duration(FthWaveformView *self);
/* TRUE once the spectrogram is there too. */
gboolean fth_waveform_view_has_spectrogram(FthWaveformView *self);
/* How much of the timeline's spectrogram is computed, 0 to 1 (0 before anything is decoded). */
double fth_waveform_view_get_spectrogram_progress(FthWaveformView *self);
/* The error shown in the view, or a problem with the annotations (a segment past the end of
 * the audio); NULL when there is none. */
const char *fth_waveform_view_get_message(FthWaveformView *self);
/* The timeline: the file's length when known, else what is decoded so far. */
double fth_waveform_view_get_duration(FthWaveformView *self);
int fth_waveform_view_get_sample_rate(FthWaveformView *self); /* the file's */

/* ANNOTATIONS: FthAnnotation records of the item (segments and whole-item classes are shown);
 * LABELS: FthLabel records. Both copied; either may be NULL. */
void fth_waveform_view_set_annotations(FthWaveformView *self, GPtrArray *annotations,
                                       GPtrArray *labels);

/* The time range shown: START seconds at the left edge, SECONDS across the width. */
void fth_waveform_view_set_visible_range(FthWaveformView *self, double start, double seconds);
void fth_waveform_view_get_visible_range(FthWaveformView *self, double *start, double *seconds);
double fth_waveform_view_time_to_x(FthWaveformView *self, double t);
double fth_waveform_view_x_to_time(FthWaveformView *self, double x);
/* Y of the middle of segment lane LANE (human lanes first), and of the waveform. */
double fth_waveform_view_lane_y(FthWaveformView *self, guint lane);
double fth_waveform_view_waveform_y(FthWaveformView *self);

/* The selected time range; FALSE when there is none. */
gboolean fth_waveform_view_get_selection(FthWaveformView *self, double *t0, double *t1);
gint64 fth_waveform_view_get_selected(FthWaveformView *self);
void fth_waveform_view_set_selected(FthWaveformView *self, gint64 annotation_id);

/* Playback. The position is in seconds; speed 0.25 to 4. */
double fth_waveform_view_get_position(FthWaveformView *self);
void fth_waveform_view_seek(FthWaveformView *self, double t);
gboolean fth_waveform_view_is_playing(FthWaveformView *self);
void fth_waveform_view_set_playing(FthWaveformView *self, gboolean playing);
void fth_waveform_view_play_selection(FthWaveformView *self);
void fth_waveform_view_set_loop(FthWaveformView *self, gboolean loop);
gboolean fth_waveform_view_get_loop(FthWaveformView *self);
void fth_waveform_view_set_speed(FthWaveformView *self, double speed);
double fth_waveform_view_get_speed(FthWaveformView *self);

G_END_DECLS
