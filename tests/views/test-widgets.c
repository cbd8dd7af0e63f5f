/* The audio and text views under Xvfb (tests/run-with-xvfb.sh), wired to a real store through
 * the workbench's annotation history as the window wires them: segments and spans created,
 * adjusted, relabeled and deleted through the views' gestures and keys, undone and redone,
 * checked in the store and in rendered pixels; offsets with CJK, emoji and combining marks;
 * bad input shown in the view. */
#include "../workbench/workbench-test-util.h"
#include "fth-annotation-history.h"
#include "fth-application.h"
#include "fth-image-canvas.h"
#include "fth-text-span-view.h"
#include "fth-waveform-view.h"

#include <fathom/features.h>
#include <fathom/media.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <math.h>
#include <string.h>

typedef struct {
  char *dir;
  FthStore *store;
  FthAnnotationHistory *history;
  gint64 item_id;
  GtkWidget *view;
  GtkWidget *window;
  guint applied;
} Harness;

static void
reload(Harness *h)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(h->store, h->item_id, &error);
  g_autoptr(GPtrArray) labels = fth_store_list_labels(h->store, &error);
  g_assert_no_error(error);
  if (FTH_IS_WAVEFORM_VIEW(h->view))
    fth_waveform_view_set_annotations(FTH_WAVEFORM_VIEW(h->view), anns, labels);
  else
    fth_text_span_view_set_annotations(FTH_TEXT_SPAN_VIEW(h->view), anns, labels);
}

static void
on_applied(FthAnnotationHistory *history, gint64 item_id, gpointer data)
{
  Harness *h = data;
  h->applied++;
  reload(h);
}

static void
on_failed(FthAnnotationHistory *history, const char *message, gpointer data)
{
  g_error("the store refused an edit: %s", message);
}

static void
on_add(GtkWidget *view, const FthAnnotation *ann, gpointer data)
{
  Harness *h = data;
  g_autoptr(FthAnnotation) copy = g_memdup2(ann, sizeof *ann);
  copy->item_id = h->item_id;
  fth_annotation_history_add(h->history, copy);
}

static void
on_update(GtkWidget *view, const FthAnnotation *ann, gpointer data)
{
  fth_annotation_history_update(((Harness *)data)->history, ann);
}

static void
on_remove(GtkWidget *view, gint64 id, gpointer data)
{
  fth_annotation_history_remove(((Harness *)data)->history, id);
}

static void
on_set_class(GtkWidget *view, gint64 label_id, gpointer data)
{
  Harness *h = data;
  fth_annotation_history_set_class(h->history, h->item_id, label_id);
}

static gboolean
history_idle(gpointer data)
{
  Harness *h = data;
  return !fth_annotation_history_is_busy(h->history);
}

/* Waits until every edit asked for is in the store and shown. */
static void
settle(Harness *h)
{
  g_assert_true(fth_test_spin_until(history_idle, h, 10000));
  fth_test_spin_for(20);
}

static gboolean
widget_on_screen(gpointer data)
{
  return gtk_widget_get_mapped(data) && gtk_widget_get_width(data) > 0;
}

static void
harness_init(Harness *h, GtkWidget *view)
{
  memset(h, 0, sizeof *h);
  h->dir = g_dir_make_tmp("fth-views-XXXXXX", NULL);
  g_autofree char *project = g_build_filename(h->dir, "project", NULL);
  g_autoptr(GError) error = NULL;
  h->store = fth_store_create(project, &error);
  g_assert_no_error(error);
  h->history = fth_annotation_history_new(h->store);
  g_signal_connect(h->history, "applied", G_CALLBACK(on_applied), h);
  g_signal_connect(h->history, "failed", G_CALLBACK(on_failed), h);
  h->view = view;
  g_signal_connect(view, "add-annotation", G_CALLBACK(on_add), h);
  g_signal_connect(view, "update-annotation", G_CALLBACK(on_update), h);
  g_signal_connect(view, "remove-annotation", G_CALLBACK(on_remove), h);
  g_signal_connect(view, "set-class", G_CALLBACK(on_set_class), h);
  h->window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(h->window), 800, 420);
  gtk_window_set_child(GTK_WINDOW(h->window), view);
  gtk_window_present(GTK_WINDOW(h->window));
  /* Renders need the window on screen, laid out (a fresh Xvfb can take a moment). */
  g_assert_true(fth_test_spin_until(widget_on_screen, view, 10000));
}

static void
remove_tree(const char *path)
{
  if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;
    while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      remove_tree(child);
    }
    g_rmdir(path);
  } else {
    g_remove(path);
  }
}

static void
harness_clear(Harness *h)
{
  settle(h);
  gtk_window_destroy(GTK_WINDOW(h->window));
  g_clear_object(&h->history);
  g_clear_object(&h->store);
  remove_tree(h->dir);
  g_free(h->dir);
}

static gint64
add_label(Harness *h, const char *name, const char *color, const char *key, FthLabelKind kind)
{
  gint64 id;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_store_add_label(h->store, name, color, key, kind, &id, &error));
  return id;
}

/* Annotations of the item of geometry GEOM (by id). */
static GPtrArray *
stored(Harness *h, FthGeomKind geom)
{
  g_autoptr(GPtrArray) all = fth_store_list_annotations(h->store, h->item_id, NULL);
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)fth_annotation_free);
  for (guint i = 0; i < all->len; i++) {
    FthAnnotation *a = g_ptr_array_index(all, i);
    if (a->geom == geom) {
      all->pdata[i] = NULL;
      g_ptr_array_add(out, a);
    }
  }
  return out;
}

static GtkEventController *
controller(GtkWidget *widget, const char *name)
{
  GListModel *list = gtk_widget_observe_controllers(widget);
  GtkEventController *found = NULL;
  for (guint i = 0; i < g_list_model_get_n_items(list) && found == NULL; i++) {
    g_autoptr(GtkEventController) c = g_list_model_get_item(list, i);
    if (g_strcmp0(gtk_event_controller_get_name(c), name) == 0)
      found = c;
  }
  g_object_unref(list);
  g_assert_nonnull(found);
  return found;
}

static gboolean
press(GtkWidget *widget, const char *name, guint keyval)
{
  gboolean handled = FALSE;
  g_signal_emit_by_name(controller(widget, name), "key-pressed", keyval, 0, 0, &handled);
  return handled;
}

static void
drag(GtkWidget *widget, double x0, double y0, double x1, double y1)
{
  GtkEventController *edit = controller(widget, "fth-waveform-edit");
  g_signal_emit_by_name(edit, "drag-begin", x0, y0);
  g_signal_emit_by_name(edit, "drag-update", (x1 - x0) / 2, (y1 - y0) / 2);
  g_signal_emit_by_name(edit, "drag-end", x1 - x0, y1 - y0);
}

static gboolean
near_color(guint32 got, guint32 want, int tolerance)
{
  for (int shift = 0; shift <= 16; shift += 8)
    if (abs((int)((got >> shift) & 0xff) - (int)((want >> shift) & 0xff)) > tolerance)
      return FALSE;
  return TRUE;
}

/* ---- audio --------------------------------------------------------------------------------- */

/* 16-bit mono PCM at RATE: silence, then a 440 Hz tone from 0.5 s to 1.5 s, silence. */
static void
write_wav(const char *path, int rate, double seconds, gboolean truncate)
{
  gint32 n = (gint32)(rate * seconds);
  gsize data_bytes = (gsize)n * 2;
  g_autofree guint8 *buf = g_malloc0(44 + data_bytes);
  memcpy(buf, "RIFF", 4);
  guint32 v = GUINT32_TO_LE(36 + data_bytes);
  memcpy(buf + 4, &v, 4);
  memcpy(buf + 8, "WAVEfmt ", 8);
  guint32 fmt_len = GUINT32_TO_LE(16), sr = GUINT32_TO_LE(rate), br = GUINT32_TO_LE(rate * 2);
  guint16 pcm = GUINT16_TO_LE(1), ch = GUINT16_TO_LE(1), align = GUINT16_TO_LE(2),
          bits = GUINT16_TO_LE(16);
  memcpy(buf + 16, &fmt_len, 4);
  memcpy(buf + 20, &pcm, 2);
  memcpy(buf + 22, &ch, 2);
  memcpy(buf + 24, &sr, 4);
  memcpy(buf + 28, &br, 4);
  memcpy(buf + 32, &align, 2);
  memcpy(buf + 34, &bits, 2);
  memcpy(buf + 36, "data", 4);
  guint32 dl = GUINT32_TO_LE(data_bytes);
  memcpy(buf + 40, &dl, 4);
  gint16 *samples = (gint16 *)(buf + 44);
  for (gint32 i = 0; i < n; i++) {
    double t = (double)i / rate;
    double s = (t >= 0.5 && t < 1.5) ? 0.8 * sin(2 * G_PI * 440 * t) : 0.0;
    samples[i] = GINT16_TO_LE((gint16)(s * 32767));
  }
  g_assert_true(g_file_set_contents(path, (const char *)buf,
                                    (gssize)(44 + (truncate ? data_bytes / 3 : data_bytes)),
                                    NULL));
}

static gint64
add_audio_item(Harness *h, const char *path, int rate, double seconds)
{
  g_autoptr(FthItemRecord) item = fth_item_record_new();
  item->kind = FTH_ITEM_AUDIO;
  item->path = g_strdup(path);
  item->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, path, -1);
  item->duration_s = seconds;
  item->sample_rate = rate;
  gint64 id;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_store_add_item(h->store, item, &id, NULL, &error));
  return id;
}

static gboolean
waveform_loaded(gpointer data)
{
  FthWaveformView *view = data;
  return !fth_waveform_view_is_loading(view);
}

static gboolean
played_a_bit(gpointer data)
{
  return fth_waveform_view_get_position(data) > 0.2;
}

static void
test_waveform_view(void)
{
  Harness h;
  harness_init(&h, fth_waveform_view_new());
  FthWaveformView *view = FTH_WAVEFORM_VIEW(h.view);
  gint64 dog = add_label(&h, "dog", "#e01b24", "1", FTH_LABEL_CLASS);
  gint64 bark = add_label(&h, "bark", "#33d17a", "b", FTH_LABEL_SEGMENT);
  gint64 howl = add_label(&h, "howl", "#3584e4", "h", FTH_LABEL_SEGMENT);
  const int rate = 16000;
  g_autofree char *wav = g_build_filename(h.dir, "tone.wav", NULL);
  write_wav(wav, rate, 2.0, FALSE);
  h.item_id = add_audio_item(&h, wav, rate, 2.0);
  g_autofree char *cache = g_build_filename(h.dir, "cache", NULL);
  g_autofree char *sha = g_strnfill(64, 'c');
  fth_waveform_view_load(view, wav, cache, sha);
  reload(&h);
  g_assert_true(fth_test_spin_until(waveform_loaded, view, 15000));
  g_assert_null(fth_waveform_view_get_message(view));
  g_assert_true(fth_waveform_view_has_spectrogram(view));
  g_assert_cmpfloat_with_epsilon(fth_waveform_view_get_duration(view), 2.0, 1e-9);
  g_assert_cmpint(fth_waveform_view_get_sample_rate(view), ==, rate);
  /* The spectrogram went to the cache. */
  g_autoptr(GDir) cache_dir = g_dir_open(cache, 0, NULL);
  g_assert_nonnull(cache_dir);
  g_assert_nonnull(g_dir_read_name(cache_dir));
  fth_test_spin_for(50);

  /* Pixels: the waveform is drawn where the tone is and flat where it is silent. */
  double wy = fth_waveform_view_waveform_y(view);
  double x_tone = fth_waveform_view_time_to_x(view, 1.0);
  double x_quiet = fth_waveform_view_time_to_x(view, 0.25);
  g_autoptr(GdkTexture) before = fth_test_render_widget_laid_out(h.view);
  guint32 tone_px = fth_test_texture_pixel(before, (int)x_tone, (int)wy - 40);
  guint32 quiet_px = fth_test_texture_pixel(before, (int)x_quiet, (int)wy - 40);
  g_assert_true(near_color(tone_px, 0x408cd9, 8));
  g_assert_false(near_color(quiet_px, 0x408cd9, 40));

  /* Drag over 0.5 s .. 1.0 s of the waveform, press bark's key: one segment, sample-exact. */
  drag(h.view, fth_waveform_view_time_to_x(view, 0.5), wy, fth_waveform_view_time_to_x(view, 1.0),
       wy);
  double s0, s1;
  g_assert_true(fth_waveform_view_get_selection(view, &s0, &s1));
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_b));
  settle(&h);
  g_autoptr(GPtrArray) segs = stored(&h, FTH_GEOM_SEGMENT);
  g_assert_cmpuint(segs->len, ==, 1);
  FthAnnotation *seg = segs->pdata[0];
  g_assert_cmpint(seg->label_id, ==, bark);
  g_assert_cmpint(seg->author, ==, FTH_AUTHOR_HUMAN);
  g_assert_cmpfloat(seg->t0, ==, 0.5);
  g_assert_cmpfloat(seg->t1, ==, 1.0);
  gint64 seg_id = seg->id;

  /* It is drawn in lane 0 in bark's colour. */
  g_autoptr(GdkTexture) drawn = fth_test_render_widget_laid_out(h.view);
  guint32 lane_px = fth_test_texture_pixel(drawn, (int)fth_waveform_view_time_to_x(view, 0.6),
                             (int)fth_waveform_view_lane_y(view, 0) + 6);
  g_assert_false(near_color(lane_px, 0x222226, 10));
  g_assert_cmpint((lane_px >> 8) & 0xff, >, (lane_px >> 16) & 0xff); /* green above red */

  /* Drag its end edge to 1.25 s (a drag off the 1/16000 grid lands on it). */
  double ly = fth_waveform_view_lane_y(view, 0);
  drag(h.view, fth_waveform_view_time_to_x(view, 1.0), ly,
       fth_waveform_view_time_to_x(view, 1.25) + 0.3, ly);
  settle(&h);
  g_clear_pointer(&segs, g_ptr_array_unref);
  segs = stored(&h, FTH_GEOM_SEGMENT);
  seg = segs->pdata[0];
  g_assert_cmpint(seg->id, ==, seg_id);
  g_assert_cmpfloat(seg->t0, ==, 0.5);
  g_assert_cmpfloat(fabs(seg->t1 - 1.25), <, 0.003);
  g_assert_cmpfloat(seg->t1 * rate, ==, round(seg->t1 * rate));
  g_assert_cmpint(fth_waveform_view_get_selected(view), ==, seg_id);

  /* Relabel the selected segment by key; a class key sets the clip class. */
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_h));
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_1));
  settle(&h);
  g_clear_pointer(&segs, g_ptr_array_unref);
  segs = stored(&h, FTH_GEOM_SEGMENT);
  g_assert_cmpint(((FthAnnotation *)segs->pdata[0])->label_id, ==, howl);
  g_autoptr(GPtrArray) classes = stored(&h, FTH_GEOM_WHOLE);
  g_assert_cmpuint(classes->len, ==, 1);
  g_assert_cmpint(((FthAnnotation *)classes->pdata[0])->label_id, ==, dog);

  /* An overlapping segment goes to a second lane. */
  drag(h.view, fth_waveform_view_time_to_x(view, 0.75), wy,
       fth_waveform_view_time_to_x(view, 1.5), wy);
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_b));
  settle(&h);
  g_autoptr(GdkTexture) lanes = fth_test_render_widget_laid_out(h.view);
  guint32 lane1 = fth_test_texture_pixel(lanes, (int)fth_waveform_view_time_to_x(view, 1.4),
                           (int)fth_waveform_view_lane_y(view, 1) + 6);
  guint32 lane0 = fth_test_texture_pixel(lanes, (int)fth_waveform_view_time_to_x(view, 1.4),
                           (int)fth_waveform_view_lane_y(view, 0) + 6);
  g_assert_cmpint((lane1 >> 8) & 0xff, >, 80); /* bark, green */
  g_assert_true(near_color(lane0, 0x222226, 10)); /* howl ended at 1.25 s */

  /* Click the howl segment, delete it; undo brings it back, redo removes it again. (A second
   * lane took room from the bands: the lanes moved.) */
  ly = fth_waveform_view_lane_y(view, 0);
  drag(h.view, fth_waveform_view_time_to_x(view, 0.6), ly, fth_waveform_view_time_to_x(view, 0.6),
       ly);
  g_assert_cmpint(fth_waveform_view_get_selected(view), ==, seg_id);
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_Delete));
  settle(&h);
  g_clear_pointer(&segs, g_ptr_array_unref);
  segs = stored(&h, FTH_GEOM_SEGMENT);
  g_assert_cmpuint(segs->len, ==, 1);
  g_assert_cmpint(((FthAnnotation *)segs->pdata[0])->label_id, ==, bark);
  fth_annotation_history_undo(h.history);
  settle(&h);
  g_clear_pointer(&segs, g_ptr_array_unref);
  segs = stored(&h, FTH_GEOM_SEGMENT);
  g_assert_cmpuint(segs->len, ==, 2);
  gboolean howl_back = FALSE;
  for (guint i = 0; i < segs->len; i++) {
    FthAnnotation *a = segs->pdata[i];
    howl_back |= a->label_id == howl && a->t0 == 0.5 && fabs(a->t1 - 1.25) < 0.003;
  }
  g_assert_true(howl_back);
  fth_annotation_history_redo(h.history);
  settle(&h);
  g_clear_pointer(&segs, g_ptr_array_unref);
  segs = stored(&h, FTH_GEOM_SEGMENT);
  g_assert_cmpuint(segs->len, ==, 1);

  /* A click on the waveform seeks; zoom keys halve the visible range about the playhead. */
  drag(h.view, fth_waveform_view_time_to_x(view, 1.5), wy, fth_waveform_view_time_to_x(view, 1.5),
       wy);
  g_assert_cmpfloat(fabs(fth_waveform_view_get_position(view) - 1.5), <, 0.003);
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_plus));
  double start, seconds;
  fth_waveform_view_get_visible_range(view, &start, &seconds);
  g_assert_cmpfloat_with_epsilon(seconds, 1.0, 1e-9);
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_l));
  g_assert_true(fth_waveform_view_get_loop(view));
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_bracketright));
  g_assert_cmpfloat_with_epsilon(fth_waveform_view_get_speed(view), 1.25, 1e-9);

  /* Playback: Space plays and the playhead moves; Space pauses. With loop on, p plays the
   * selection over and over: the playhead stays inside it. */
  fth_waveform_view_set_loop(view, FALSE);
  fth_waveform_view_set_speed(view, 1.0);
  fth_waveform_view_seek(view, 0.0);
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_space));
  g_assert_true(fth_waveform_view_is_playing(view));
  g_assert_true(fth_test_spin_until(played_a_bit, view, 5000));
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_space));
  g_assert_false(fth_waveform_view_is_playing(view));
  double paused_at = fth_waveform_view_get_position(view);
  fth_test_spin_for(200);
  g_assert_cmpfloat(fth_waveform_view_get_position(view), ==, paused_at);
  fth_waveform_view_set_visible_range(view, 0.0, 2.0);
  drag(h.view, fth_waveform_view_time_to_x(view, 0.2), wy, fth_waveform_view_time_to_x(view, 0.4),
       wy);
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_l));
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_p));
  for (int i = 0; i < 8; i++) {
    fth_test_spin_for(100);
    double at = fth_waveform_view_get_position(view);
    g_assert_cmpfloat(at, >=, 0.2 - 0.01);
    g_assert_cmpfloat(at, <=, 0.4 + 0.05);
  }
  g_assert_true(fth_waveform_view_is_playing(view));
  fth_waveform_view_set_playing(view, FALSE);

  /* Model segments and a segment past the end: shown apart, and named in the message. */
  gint64 run;
  g_assert_true(fth_store_create_run(h.store, "predict", "p", NULL, &run, NULL));
  g_autoptr(FthAnnotation) model = fth_annotation_new();
  model->item_id = h.item_id;
  model->label_id = bark;
  model->geom = FTH_GEOM_SEGMENT;
  model->t0 = 0.1;
  model->t1 = 0.4;
  model->author = FTH_AUTHOR_MODEL;
  model->run_id = run;
  model->score = 0.75;
  g_assert_true(fth_store_add_annotation(h.store, model, NULL, NULL));
  model->author = FTH_AUTHOR_HUMAN;
  model->run_id = 0;
  model->t0 = 1.8;
  model->t1 = 5.0;
  g_assert_true(fth_store_add_annotation(h.store, model, NULL, NULL));
  reload(&h);
  g_assert_nonnull(strstr(fth_waveform_view_get_message(view), "ends after the audio (2.000 s)"));

  /* An empty recording opens (nothing to draw, nothing to select), and renders. */
  g_autofree char *empty = g_build_filename(h.dir, "empty.wav", NULL);
  write_wav(empty, rate, 0.0, FALSE);
  fth_waveform_view_load(view, empty, NULL, NULL);
  g_assert_true(fth_test_spin_until(waveform_loaded, view, 15000));
  g_assert_cmpfloat(fth_waveform_view_get_duration(view), ==, 0.0);
  drag(h.view, 10, wy, 200, wy);
  g_assert_false(fth_waveform_view_get_selection(view, &s0, &s1));
  g_autoptr(GdkTexture) empty_shot = fth_test_render_widget_laid_out(h.view);

  /* A truncated file: the error in the view, naming the file. */
  g_autofree char *cut = g_build_filename(h.dir, "cut.wav", NULL);
  write_wav(cut, rate, 1.0, TRUE);
  fth_waveform_view_load(view, cut, NULL, NULL);
  g_assert_true(fth_test_spin_until(waveform_loaded, view, 15000));
  const char *message = fth_waveform_view_get_message(view);
  g_assert_nonnull(message);
  g_assert_nonnull(strstr(message, "cut.wav"));
  harness_clear(&h);
}

/* ---- progressive loading ------------------------------------------------------------------- */

#define LONG_SECONDS 300
#define WAVE_BLUE 0x408cd9 /* the waveform's colour */

/* SECONDS of 16 kHz mono PCM, a 440 Hz tone at half scale throughout. */
static void
write_long_wav(const char *path, int seconds)
{
  const int rate = 16000;
  write_wav(path, rate, 0.0, FALSE); /* the header, fixed below */
  gsize n = (gsize)rate * seconds;
  g_autofree guint8 *buf = g_malloc(44 + 2 * n);
  g_autofree char *header = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path, &header, &len, NULL));
  g_assert_cmpuint(len, ==, 44);
  memcpy(buf, header, 44);
  guint32 riff = GUINT32_TO_LE((guint32)(36 + 2 * n)), data = GUINT32_TO_LE((guint32)(2 * n));
  memcpy(buf + 4, &riff, 4);
  memcpy(buf + 40, &data, 4);
  /* One second repeats (440 whole periods). */
  gint16 *samples = (gint16 *)(buf + 44);
  for (int i = 0; i < rate; i++)
    samples[i] = GINT16_TO_LE((gint16)(16000 * sin(2 * G_PI * 440 * (double)i / rate)));
  for (int s = 1; s < seconds; s++)
    memcpy(samples + (gsize)s * rate, samples, sizeof(gint16) * rate);
  g_assert_true(g_file_set_contents(path, (const char *)buf, (gssize)(44 + 2 * n), NULL));
}

/* WIDGET's drawing as it is now: its own snapshot, without the frame (and the main loop, where
 * a worker's update could land) that fth_test_render_widget_laid_out() waits for. */
static GdkTexture *
render_now(GtkWidget *widget)
{
  GtkSnapshot *snapshot = gtk_snapshot_new();
  GTK_WIDGET_GET_CLASS(widget)->snapshot(widget, snapshot);
  g_autoptr(GskRenderNode) node = gtk_snapshot_free_to_node(snapshot);
  g_assert_nonnull(node);
  GskRenderer *renderer = gtk_native_get_renderer(gtk_widget_get_native(widget));
  return gsk_renderer_render_texture(
    renderer, node,
    &GRAPHENE_RECT_INIT(0, 0, gtk_widget_get_width(widget), gtk_widget_get_height(widget)));
}

/* Whether column X of the waveform band has the waveform's colour anywhere near its middle
 * WY (a column may span less than a period of the tone, so not at WY itself). */
static gboolean
waveform_in_column(GdkTexture *texture, int x, double wy)
{
  double reach = 0.6 * (wy - 26.0); /* the strip above the band is 26 px high */
  for (int y = (int)(wy - reach); y <= (int)(wy + reach); y++)
    if (near_color(fth_test_texture_pixel(texture, x, y), WAVE_BLUE, 30))
      return TRUE;
  return FALSE;
}

static gboolean
partly_decoded(gpointer data)
{
  FthWaveformView *view = data;
  return fth_waveform_view_is_decoding(view) && fth_waveform_view_get_decoded_duration(view) > 0;
}

static guint
count_files(const char *dir)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  guint n = 0;
  while (d != NULL && g_dir_read_name(d) != NULL)
    n++;
  return n;
}

static gboolean
keep_ticking(gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static gboolean
is_null(gpointer data)
{
  return *(gpointer *)data == NULL;
}

/* Five minutes of audio: the view shows what is decoded while the rest decodes (the timeline
 * has the whole length from the header, the rest drawn as pending), seeks, zooms, plays and
 * makes a segment in the decoded part meanwhile, shows all of it at the end and only then
 * writes the spectrogram cache, which a second opening reads. Another item loaded mid-decode
 * cancels the first (no cache file for it); a view destroyed mid-decode is finalized once its
 * workers have stopped. */
static void
test_waveform_progressive(void)
{
  Harness h;
  harness_init(&h, fth_waveform_view_new());
  FthWaveformView *view = FTH_WAVEFORM_VIEW(h.view);
  gint64 bark = add_label(&h, "bark", "#33d17a", "b", FTH_LABEL_SEGMENT);
  g_autofree char *wav = g_build_filename(h.dir, "long.wav", NULL);
  write_long_wav(wav, LONG_SECONDS);
  h.item_id = add_audio_item(&h, wav, 16000, LONG_SECONDS);
  g_autofree char *cache = g_build_filename(h.dir, "cache", NULL);
  g_autofree char *sha = g_strnfill(64, 'd');
  reload(&h);
  g_assert_true(fth_test_spin_until(widget_on_screen, h.view, 5000));
  fth_waveform_view_load(view, wav, cache, sha);
  g_assert_true(fth_test_spin_until(partly_decoded, view, 15000));

  /* Mid-decode, without letting the main loop take more: the length is known, part of it is
   * decoded; zoomed to twice that, the left half is waveform and the right half pending. */
  g_assert_cmpfloat_with_epsilon(fth_waveform_view_get_duration(view), LONG_SECONDS, 1e-6);
  double done = fth_waveform_view_get_decoded_duration(view);
  g_assert_cmpfloat(done, <, LONG_SECONDS);
  g_assert_true(fth_waveform_view_is_loading(view));
  g_assert_false(fth_waveform_view_has_spectrogram(view));
  g_assert_cmpuint(count_files(cache), ==, 0);
  fth_waveform_view_set_visible_range(view, 0.0, 2 * done);
  double start, seconds;
  fth_waveform_view_get_visible_range(view, &start, &seconds);
  g_assert_cmpfloat_with_epsilon(seconds, 2 * done, 1e-9);
  int width = gtk_widget_get_width(h.view);
  double wy = fth_waveform_view_waveform_y(view);
  g_autoptr(GdkTexture) partial = render_now(h.view);
  g_assert_true(waveform_in_column(partial, width / 4, wy));
  g_assert_false(waveform_in_column(partial, 3 * width / 4, wy));
  /* A click seeks, + zooms, a selection stays inside the decoded part and becomes a segment. */
  drag(h.view, width / 2.0, wy, width / 2.0, wy);
  g_assert_cmpfloat(fabs(fth_waveform_view_get_position(view) - done), <, done / 50);
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_plus));
  fth_waveform_view_get_visible_range(view, &start, &seconds);
  g_assert_cmpfloat_with_epsilon(seconds, done, 1e-6);
  fth_waveform_view_set_visible_range(view, 0.0, 2 * done);
  drag(h.view, width * 0.1, wy, width * 0.9, wy);
  double s0, s1;
  g_assert_true(fth_waveform_view_get_selection(view, &s0, &s1));
  g_assert_cmpfloat(s0, >, 0.0);
  g_assert_cmpfloat(s1, <=, done + 1e-9);
  g_assert_true(press(h.view, "fth-waveform-keys", GDK_KEY_b));
  /* Playback starts (from the file, not from what is decoded). */
  gst_init(NULL, NULL);
  g_autoptr(GstElementFactory) playbin = gst_element_factory_find("playbin");
  if (playbin != NULL) {
    fth_waveform_view_set_playing(view, TRUE);
    g_assert_true(fth_waveform_view_is_playing(view));
    g_assert_null(fth_waveform_view_get_message(view));
  }
  settle(&h);
  fth_waveform_view_set_playing(view, FALSE);
  g_autoptr(GPtrArray) segments = stored(&h, FTH_GEOM_SEGMENT);
  g_assert_cmpuint(segments->len, ==, 1);
  FthAnnotation *seg = g_ptr_array_index(segments, 0);
  g_assert_cmpint(seg->label_id, ==, bark);
  g_assert_cmpfloat(seg->t1, <=, done + 1e-9);

  /* All of it, then the cache. */
  g_assert_true(fth_test_spin_until(waveform_loaded, view, 60000));
  g_assert_null(fth_waveform_view_get_message(view));
  g_assert_cmpfloat_with_epsilon(fth_waveform_view_get_decoded_duration(view), LONG_SECONDS,
                                 1e-6);
  g_assert_cmpfloat_with_epsilon(fth_waveform_view_get_duration(view), LONG_SECONDS, 1e-6);
  g_assert_true(fth_waveform_view_has_spectrogram(view));
  g_assert_cmpuint(count_files(cache), ==, 1);
  fth_waveform_view_set_visible_range(view, LONG_SECONDS - 2 * done, 2 * done);
  g_autoptr(GdkTexture) full = fth_test_render_widget_laid_out(h.view);
  g_assert_true(waveform_in_column(full, 3 * width / 4, wy));
  g_assert_true(waveform_in_column(full, width - 3, wy));

  /* Opened again, the spectrogram comes from the cache, which is not written again. */
  FthMelParams params;
  fth_mel_params_init(&params, 16000);
  g_autofree char *cached = fth_mel_cache_path(cache, sha, &params);
  GStatBuf before, after;
  g_assert_cmpint(g_stat(cached, &before), ==, 0);
  fth_waveform_view_load(view, wav, cache, sha);
  g_assert_true(fth_test_spin_until(waveform_loaded, view, 60000));
  g_assert_true(fth_waveform_view_has_spectrogram(view));
  g_assert_cmpint(g_stat(cached, &after), ==, 0);
  g_assert_cmpuint(after.st_ino, ==, before.st_ino);

  /* Another item while this one decodes: the first stops and leaves no cache. */
  g_autofree char *cache2 = g_build_filename(h.dir, "cache2", NULL);
  g_autofree char *sha2 = g_strnfill(64, 'e');
  fth_waveform_view_load(view, wav, cache2, sha2);
  g_assert_true(fth_test_spin_until(partly_decoded, view, 15000));
  g_autofree char *tone = g_build_filename(h.dir, "tone.wav", NULL);
  write_wav(tone, 16000, 2.0, FALSE);
  g_autofree char *sha3 = g_strnfill(64, 'f');
  fth_waveform_view_load(view, tone, cache2, sha3);
  g_assert_true(fth_test_spin_until(waveform_loaded, view, 15000));
  g_assert_cmpfloat_with_epsilon(fth_waveform_view_get_duration(view), 2.0, 1e-9);
  fth_test_spin_for(500); /* time for a late write, if there were one */
  g_autofree char *long_cache = fth_mel_cache_path(cache2, sha2, &params);
  g_assert_false(g_file_test(long_cache, G_FILE_TEST_EXISTS));
  g_assert_cmpuint(count_files(cache2), ==, 1); /* the short one's, no temporary file */
  harness_clear(&h);

  /* A view destroyed mid-decode goes away once its workers stop. */
  GtkWidget *window = gtk_window_new();
  GtkWidget *other = fth_waveform_view_new();
  gtk_window_set_child(GTK_WINDOW(window), other);
  gtk_window_present(GTK_WINDOW(window));
  g_autofree char *dir = g_dir_make_tmp("fth-views-long-XXXXXX", NULL);
  g_autofree char *wav2 = g_build_filename(dir, "long.wav", NULL);
  write_long_wav(wav2, LONG_SECONDS);
  fth_waveform_view_load(FTH_WAVEFORM_VIEW(other), wav2, NULL, NULL);
  g_assert_true(fth_test_spin_until(partly_decoded, other, 15000));
  g_object_add_weak_pointer(G_OBJECT(other), (gpointer *)&other);
  gtk_window_destroy(GTK_WINDOW(window));
  /* The finalization itself wakes no main loop: a timer does, to look. */
  guint ticking = g_timeout_add(10, keep_ticking, NULL);
  gint64 destroyed = g_get_monotonic_time();
  /* Generous: the workers run ten nice steps down, which on a loaded machine is slow. */
  g_assert_true(fth_test_spin_until(is_null, &other, 30000));
  g_test_message("finalized %.0f ms after the destroy",
                 (g_get_monotonic_time() - destroyed) / 1000.0);
  g_source_remove(ticking);
  remove_tree(dir);
}

#define UNKNOWN_SECONDS 600

/* The WAV at PATH as FLAC whose header does not say how long it is (STREAMINFO's total samples
 * 0, as a streaming encoder leaves it), or NULL when GStreamer has no FLAC encoder. */
static char *
flac_without_length(const char *wav)
{
  g_autoptr(GstElementFactory) factory = gst_element_factory_find("flacenc");
  if (factory == NULL)
    return NULL;
  char *path = g_strconcat(wav, ".flac", NULL);
  g_autofree char *description = g_strdup_printf(
    "filesrc location=\"%s\" ! wavparse ! audioconvert ! flacenc ! filesink location=\"%s\"", wav,
    path);
  g_autoptr(GError) error = NULL;
  g_autoptr(GstElement) pipeline = gst_parse_launch(description, &error);
  g_assert_no_error(error);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  g_autoptr(GstBus) bus = gst_element_get_bus(pipeline);
  g_autoptr(GstMessage) message =
    gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_nonnull(message);
  g_assert_cmpint(GST_MESSAGE_TYPE(message), ==, GST_MESSAGE_EOS);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  g_autofree char *bytes = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
  /* "fLaC", the block header, then STREAMINFO: total samples are its bits 108-143. */
  g_assert_true(len > 8 + 18 && memcmp(bytes, "fLaC", 4) == 0);
  bytes[8 + 13] &= (char)0xf0;
  memset(bytes + 8 + 14, 0, 4);
  g_assert_true(g_file_set_contents(path, bytes, (gssize)len, NULL));
  return path;
}

/* A file that does not say its length: the timeline is what is decoded so far and grows, the
 * whole of it in view, until the decode ends. */
static void
test_waveform_unknown_length(void)
{
  gst_init(NULL, NULL);
  g_autofree char *dir = g_dir_make_tmp("fth-views-unknown-XXXXXX", NULL);
  g_autofree char *wav = g_build_filename(dir, "long.wav", NULL);
  write_long_wav(wav, UNKNOWN_SECONDS);
  g_autofree char *flac = flac_without_length(wav);
  if (flac == NULL) {
    g_test_skip("GStreamer has no flacenc");
    remove_tree(dir);
    return;
  }
  GtkWidget *window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(window), 600, 300);
  GtkWidget *widget = fth_waveform_view_new();
  gtk_window_set_child(GTK_WINDOW(window), widget);
  gtk_window_present(GTK_WINDOW(window));
  FthWaveformView *view = FTH_WAVEFORM_VIEW(widget);
  fth_waveform_view_load(view, flac, NULL, NULL);
  g_assert_true(fth_test_spin_until(partly_decoded, view, 15000));
  double done = fth_waveform_view_get_decoded_duration(view);
  g_assert_cmpfloat(done, <, UNKNOWN_SECONDS);
  g_assert_cmpfloat(fth_waveform_view_get_duration(view), ==, done);
  double start, seconds;
  fth_waveform_view_get_visible_range(view, &start, &seconds);
  g_assert_cmpfloat(start, ==, 0.0);
  g_assert_cmpfloat(seconds, ==, done);
  g_assert_true(fth_test_spin_until(waveform_loaded, view, 60000));
  g_assert_null(fth_waveform_view_get_message(view));
  g_assert_cmpfloat_with_epsilon(fth_waveform_view_get_duration(view), UNKNOWN_SECONDS, 1e-9);
  fth_waveform_view_get_visible_range(view, &start, &seconds);
  g_assert_cmpfloat(start, ==, 0.0);
  g_assert_cmpfloat_with_epsilon(seconds, UNKNOWN_SECONDS, 1e-9);
  g_assert_true(fth_waveform_view_has_spectrogram(view));
  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(100);
  remove_tree(dir);
}

/* ---- text ---------------------------------------------------------------------------------- */

/* Zoé with e + U+0301 (two characters), 北京 (two), 😀 (one). */
static const char *TEXT = "Alice met Bob in 北京 today 😀 with Zoe\xcc\x81.\nSecond line.";

static gint64
char_offset_of(const char *needle)
{
  const char *at = strstr(TEXT, needle);
  g_assert_nonnull(at);
  return g_utf8_pointer_to_offset(TEXT, at);
}

static gint64
add_text_item(Harness *h, const char *text)
{
  g_autoptr(FthItemRecord) item = fth_item_record_new();
  item->kind = FTH_ITEM_TEXT;
  item->path = g_strdup("inline.csv");
  item->member = 0;
  item->text = g_strdup(text);
  item->length_chars = g_utf8_strlen(text, -1);
  item->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, text, -1);
  gint64 id;
  g_assert_true(fth_store_add_item(h->store, item, &id, NULL, NULL));
  return id;
}

static const FthAnnotation *
find_span(GPtrArray *spans, gint64 start, gint64 end)
{
  for (guint i = 0; i < spans->len; i++) {
    const FthAnnotation *a = spans->pdata[i];
    if (a->start == start && a->end == end)
      return a;
  }
  return NULL;
}

/* The stored span [START, END); fails the test when there is none. */
static const FthAnnotation *
span_at(GPtrArray *spans, gint64 start, gint64 end)
{
  const FthAnnotation *a = find_span(spans, start, end);
  if (a == NULL)
    g_error("no span %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT " in the store", start, end);
  return a;
}

/* Clicks the middle of character OFFSET. */
static void
click_char(FthTextSpanView *view, gint64 offset)
{
  GtkTextView *tv = fth_text_span_view_get_text_view(view);
  GtkTextIter at;
  gtk_text_buffer_get_iter_at_offset(gtk_text_view_get_buffer(tv), &at, (int)offset);
  GdkRectangle loc;
  gtk_text_view_get_iter_location(tv, &at, &loc);
  int x, y;
  gtk_text_view_buffer_to_window_coords(tv, GTK_TEXT_WINDOW_WIDGET, loc.x + loc.width / 2,
                                        loc.y + loc.height / 2, &x, &y);
  g_signal_emit_by_name(controller(GTK_WIDGET(tv), "fth-text-click"), "released", 1, (double)x,
                        (double)y);
}

static void
test_text_span_view(void)
{
  Harness h;
  harness_init(&h, fth_text_span_view_new());
  FthTextSpanView *view = FTH_TEXT_SPAN_VIEW(h.view);
  GtkWidget *tv = GTK_WIDGET(fth_text_span_view_get_text_view(view));
  gint64 per = add_label(&h, "PER", "#f66151", "p", FTH_LABEL_SPAN);
  gint64 loc = add_label(&h, "LOC", "#33d17a", "l", FTH_LABEL_SPAN);
  gint64 news = add_label(&h, "news", "#3584e4", "1", FTH_LABEL_CLASS);
  h.item_id = add_text_item(&h, TEXT);
  fth_text_span_view_set_text(view, TEXT, "inline.csv");
  reload(&h);
  g_assert_cmpint(fth_text_span_view_get_length(view), ==, g_utf8_strlen(TEXT, -1));
  fth_test_spin_for(50);

  /* " 北京 " selected with its spaces: trimmed to the two characters. */
  gint64 bj = char_offset_of("北京");
  g_assert_cmpint(bj, ==, 17);
  fth_text_span_view_select_range(view, bj - 1, bj + 3);
  g_assert_true(press(tv, "fth-text-keys", GDK_KEY_l));
  /* The emoji is one character, Zoé (with a combining accent) four. */
  gint64 emoji = char_offset_of("😀"), zoe = char_offset_of("Zoe");
  fth_text_span_view_select_range(view, emoji, emoji + 1);
  g_assert_true(press(tv, "fth-text-keys", GDK_KEY_p));
  fth_text_span_view_select_range(view, zoe, zoe + 4);
  g_assert_true(press(tv, "fth-text-keys", GDK_KEY_p));
  /* A span around the LOC span: nested. */
  fth_text_span_view_select_range(view, char_offset_of("Bob"), bj + 2);
  g_assert_true(press(tv, "fth-text-keys", GDK_KEY_p));
  settle(&h);
  g_autoptr(GPtrArray) spans = stored(&h, FTH_GEOM_SPAN);
  g_assert_cmpuint(spans->len, ==, 4);
  const FthAnnotation *loc_span = span_at(spans, 17, 19);
  g_assert_cmpint(loc_span->label_id, ==, loc);
  g_assert_nonnull(find_span(spans, emoji, emoji + 1));
  g_assert_cmpint(emoji, ==, 26);
  g_assert_nonnull(find_span(spans, zoe, zoe + 4));
  g_assert_nonnull(find_span(spans, 10, 19));
  gint64 loc_id = loc_span->id;

  /* The nested LOC span is painted stronger than the PER span around it. */
  g_autoptr(GdkTexture) shot = fth_test_render_widget_laid_out(h.view);
  GtkTextIter at;
  GdkRectangle r_loc, r_bob;
  GtkTextBuffer *buffer = gtk_text_view_get_buffer(GTK_TEXT_VIEW(tv));
  gtk_text_buffer_get_iter_at_offset(buffer, &at, (int)bj);
  gtk_text_view_get_iter_location(GTK_TEXT_VIEW(tv), &at, &r_loc);
  gtk_text_buffer_get_iter_at_offset(buffer, &at, 14); /* the space after "Bob" */
  gtk_text_view_get_iter_location(GTK_TEXT_VIEW(tv), &at, &r_bob);
  graphene_point_t p_loc, p_bob;
  int x, y;
  gtk_text_view_buffer_to_window_coords(GTK_TEXT_VIEW(tv), GTK_TEXT_WINDOW_WIDGET, r_loc.x + 1,
                                        r_loc.y + 2, &x, &y);
  g_assert_true(gtk_widget_compute_point(tv, h.view, &GRAPHENE_POINT_INIT(x, y), &p_loc));
  gtk_text_view_buffer_to_window_coords(GTK_TEXT_VIEW(tv), GTK_TEXT_WINDOW_WIDGET,
                                        r_bob.x + r_bob.width / 2, r_bob.y + 2, &x, &y);
  g_assert_true(gtk_widget_compute_point(tv, h.view, &GRAPHENE_POINT_INIT(x, y), &p_bob));
  guint32 loc_px = fth_test_texture_pixel(shot, (int)p_loc.x, (int)p_loc.y);
  guint32 bob_px = fth_test_texture_pixel(shot, (int)p_bob.x, (int)p_bob.y);
  g_assert_cmpint((loc_px >> 8) & 0xff, >, (loc_px >> 16) & 0xff);  /* LOC: green */
  g_assert_cmpint((bob_px >> 16) & 0xff, >, (bob_px >> 8) & 0xff);  /* PER: red */

  /* A click inside 北京 selects the innermost span; p relabels it, Delete removes it. */
  click_char(view, bj);
  g_assert_cmpint(fth_text_span_view_get_selected(view), ==, loc_id);
  g_assert_true(press(tv, "fth-text-keys", GDK_KEY_p));
  settle(&h);
  g_autoptr(FthAnnotation) relabeled = fth_store_get_annotation(h.store, loc_id, NULL);
  g_assert_cmpint(relabeled->label_id, ==, per);
  g_assert_cmpint(fth_text_span_view_get_selected(view), ==, loc_id);
  g_assert_true(press(tv, "fth-text-keys", GDK_KEY_Delete));
  settle(&h);
  g_clear_pointer(&spans, g_ptr_array_unref);
  spans = stored(&h, FTH_GEOM_SPAN);
  g_assert_cmpuint(spans->len, ==, 3);
  g_assert_null(find_span(spans, 17, 19));

  /* Undo the delete, then the relabel; redo both. */
  fth_annotation_history_undo(h.history);
  fth_annotation_history_undo(h.history);
  settle(&h);
  g_clear_pointer(&spans, g_ptr_array_unref);
  spans = stored(&h, FTH_GEOM_SPAN);
  g_assert_cmpuint(spans->len, ==, 4);
  g_assert_cmpint(span_at(spans, 17, 19)->label_id, ==, loc);
  fth_annotation_history_redo(h.history);
  fth_annotation_history_redo(h.history);
  settle(&h);
  g_clear_pointer(&spans, g_ptr_array_unref);
  spans = stored(&h, FTH_GEOM_SPAN);
  g_assert_cmpuint(spans->len, ==, 3);

  /* A right click on the emoji's span selects it for the context menu, which relabels it and
   * deletes it. */
  g_signal_emit_by_name(controller(tv, "fth-text-context"), "pressed", 1, 0.0, 0.0);
  g_assert_cmpint(fth_text_span_view_get_selected(view), ==, 0);
  GtkTextIter e_at;
  GdkRectangle e_loc;
  gtk_text_buffer_get_iter_at_offset(buffer, &e_at, (int)emoji);
  gtk_text_view_get_iter_location(GTK_TEXT_VIEW(tv), &e_at, &e_loc);
  int ex, ey;
  gtk_text_view_buffer_to_window_coords(GTK_TEXT_VIEW(tv), GTK_TEXT_WINDOW_WIDGET,
                                        e_loc.x + 1, e_loc.y + e_loc.height / 2, &ex, &ey);
  g_signal_emit_by_name(controller(tv, "fth-text-context"), "pressed", 1, (double)ex, (double)ey);
  gint64 emoji_id = span_at(spans, emoji, emoji + 1)->id;
  g_assert_cmpint(fth_text_span_view_get_selected(view), ==, emoji_id);
  GMenuModel *menu = gtk_text_view_get_extra_menu(GTK_TEXT_VIEW(tv));
  g_assert_cmpint(g_menu_model_get_n_items(menu), ==, 2); /* the labels' section, Delete */
  g_assert_cmpint(g_menu_model_get_n_items(g_menu_model_get_item_link(menu, 0, "section")), ==, 2);
  g_assert_true(gtk_widget_activate_action(h.view, "span.relabel", "x", loc));
  settle(&h);
  g_autoptr(FthAnnotation) emoji_loc = fth_store_get_annotation(h.store, emoji_id, NULL);
  g_assert_cmpint(emoji_loc->label_id, ==, loc);
  g_assert_true(gtk_widget_activate_action(h.view, "span.delete", NULL));
  settle(&h);
  g_assert_null(fth_store_get_annotation(h.store, emoji_id, NULL));
  fth_annotation_history_undo(h.history);
  settle(&h);

  /* With trimming off (the header's check box), the spaces stay in the span. */
  g_autoptr(GPtrArray) checks = fth_test_find_widgets(h.view, GTK_TYPE_CHECK_BUTTON);
  g_assert_cmpuint(checks->len, ==, 1);
  gtk_check_button_set_active(checks->pdata[0], FALSE);
  g_assert_false(fth_text_span_view_get_trim_whitespace(view));
  gint64 second = char_offset_of("Second");
  fth_text_span_view_select_range(view, second - 1, second + 6);
  g_assert_true(press(tv, "fth-text-keys", GDK_KEY_p));
  settle(&h);
  g_clear_pointer(&spans, g_ptr_array_unref);
  spans = stored(&h, FTH_GEOM_SPAN);
  g_assert_nonnull(find_span(spans, second - 1, second + 6));
  fth_annotation_history_undo(h.history);
  settle(&h);
  fth_text_span_view_set_trim_whitespace(view, TRUE);
  g_assert_true(gtk_check_button_get_active(checks->pdata[0]));

  /* The document class by its key. */
  g_assert_true(press(tv, "fth-text-keys", GDK_KEY_1));
  settle(&h);
  g_autoptr(GPtrArray) classes = stored(&h, FTH_GEOM_WHOLE);
  g_assert_cmpuint(classes->len, ==, 1);
  g_assert_cmpint(((FthAnnotation *)classes->pdata[0])->label_id, ==, news);

  /* A tagger's suggestion on "Alice": Space with the cursor before it accepts it. */
  gint64 run;
  g_assert_true(fth_store_create_run(h.store, "predict", "tagger", NULL, &run, NULL));
  g_autoptr(FthAnnotation) suggestion = fth_annotation_new();
  suggestion->item_id = h.item_id;
  suggestion->label_id = per;
  suggestion->geom = FTH_GEOM_SPAN;
  suggestion->start = 0;
  suggestion->end = 5;
  suggestion->author = FTH_AUTHOR_MODEL;
  suggestion->run_id = run;
  suggestion->score = 0.9;
  gint64 sid;
  g_assert_true(fth_store_add_annotation(h.store, suggestion, &sid, NULL));
  reload(&h);
  fth_text_span_view_select_range(view, 0, 0);
  g_assert_true(press(tv, "fth-text-keys", GDK_KEY_space));
  settle(&h);
  g_autoptr(FthAnnotation) accepted = fth_store_get_annotation(h.store, sid, NULL);
  g_assert_cmpint(accepted->author, ==, FTH_AUTHOR_HUMAN);
  g_assert_cmpint(accepted->run_id, ==, 0);
  g_assert_cmpint(accepted->start, ==, 0);
  g_assert_cmpint(accepted->end, ==, 5);

  /* A span past the end of the text: left out and named; the rest is still shown. */
  suggestion->author = FTH_AUTHOR_HUMAN;
  suggestion->run_id = 0;
  suggestion->start = 50;
  suggestion->end = 90;
  g_assert_true(fth_store_add_annotation(h.store, suggestion, NULL, NULL));
  reload(&h);
  g_assert_nonnull(strstr(fth_text_span_view_get_message(view),
                          "span PER 50–90 does not fit the text (51 characters)"));

  /* A Latin-1 file: the error with the file name, then the text in the chosen encoding. */
  g_autofree char *latin1 = g_build_filename(h.dir, "latin1.txt", NULL);
  g_assert_true(g_file_set_contents(latin1, "caf\xe9 na\xefve", -1, NULL));
  fth_text_span_view_set_annotations(view, NULL, NULL);
  g_assert_false(fth_text_span_view_load_file(view, latin1));
  g_assert_nonnull(strstr(fth_text_span_view_get_message(view), "latin1.txt"));
  g_autoptr(GPtrArray) dropdowns = fth_test_find_widgets(h.view, GTK_TYPE_DROP_DOWN);
  g_assert_cmpuint(dropdowns->len, ==, 1);
  g_assert_true(gtk_widget_is_visible(dropdowns->pdata[0]));
  g_assert_true(g_strv_contains(fth_text_span_view_get_encodings(), "ISO-8859-1"));
  g_assert_true(g_strv_contains(fth_text_span_view_get_encodings(), "GB18030"));
  g_assert_true(fth_text_span_view_use_encoding(view, "ISO-8859-1"));
  g_assert_cmpint(fth_text_span_view_get_length(view), ==, 10);
  g_assert_null(fth_text_span_view_get_message(view));

  /* A 1 MB document with 20 000 spans is shown in well under a second or two: in paragraphs,
   * and on one line (shown broken at spaces, offsets unchanged). */
  g_autoptr(GPtrArray) labels = fth_store_list_labels(h.store, NULL);
  for (int one_line = 0; one_line <= 1; one_line++) {
    GString *big = g_string_new(NULL);
    /* Every sentence is 45 characters; paragraphs of ten. */
    for (int i = 0; big->len < 1000000; i++)
      g_string_append(big, i % 10 == 9 && !one_line
                             ? "Ada Lovelace wrote in 伦敦 about the engine.\n"
                             : "Ada Lovelace wrote in 伦敦 about the engine. ");
    g_autoptr(GPtrArray) many =
      g_ptr_array_new_with_free_func((GDestroyNotify)fth_annotation_free);
    for (gint64 i = 0; i < 20000; i++) {
      FthAnnotation *a = fth_annotation_new();
      a->id = i + 1;
      a->geom = FTH_GEOM_SPAN;
      a->label_id = i % 2 ? per : loc;
      a->start = i * 45;
      a->end = i * 45 + 12;
      g_ptr_array_add(many, a);
    }
    gint64 t0 = g_get_monotonic_time();
    fth_text_span_view_set_text(view, big->str, "big.txt");
    fth_text_span_view_set_annotations(view, many, labels);
    fth_test_spin_for(100);
    double took = (g_get_monotonic_time() - t0) / 1e6;
    g_test_message("1 MB %s with 20000 spans shown in %.2f s", one_line ? "on one line" : "",
                   took);
    g_assert_cmpfloat(took, <, 8.0);
    g_assert_cmpint(fth_text_span_view_get_length(view), ==, g_utf8_strlen(big->str, -1));

    /* 伦敦 of sentence 15 000, selected and labeled: the store gets its true offsets. */
    gint64 city = 15000 * 45 + 22;
    fth_text_span_view_select_range(view, city, city + 2);
    g_assert_true(press(tv, "fth-text-keys", GDK_KEY_l));
    settle(&h);
    g_clear_pointer(&spans, g_ptr_array_unref);
    spans = stored(&h, FTH_GEOM_SPAN);
    g_assert_nonnull(find_span(spans, city, city + 2));
    fth_annotation_history_undo(h.history);
    settle(&h);
    g_string_free(big, TRUE);
  }
  harness_clear(&h);
}

/* ---- in the window ------------------------------------------------------------------------- */

static FthApplication *app;

static gboolean
waveform_mapped_and_loaded(gpointer data)
{
  return gtk_widget_get_mapped(data) && gtk_widget_get_width(data) > 100 &&
         !fth_waveform_view_is_loading(data);
}

/* The window shows an audio item in the waveform view and a text item in the span view; edits
 * there go through the window's history (win.undo takes them back). */
static void
test_in_window(void)
{
  g_autofree char *dir = g_dir_make_tmp("fth-views-window-XXXXXX", NULL);
  g_autoptr(GError) error = NULL;
  {
    g_autoptr(FthStore) store = fth_store_create(dir, &error);
    g_assert_no_error(error);
    g_assert_true(fth_store_add_label(store, "bark", "#33d17a", "b", FTH_LABEL_ANY, NULL, &error));
    g_autofree char *wav = g_build_filename(dir, "tone.wav", NULL);
    write_wav(wav, 16000, 2.0, FALSE);
    Harness fake = { .store = store };
    add_audio_item(&fake, wav, 16000, 2.0);
    add_text_item(&fake, TEXT);
  }
  FthWindow *window = fth_window_new(app);
  gtk_window_set_default_size(GTK_WINDOW(window), 900, 640);
  gtk_window_present(GTK_WINDOW(window));
  g_assert_true(fth_test_open_project(window, dir, 10000, NULL));
  FthStore *store = fth_window_get_store(window);

  g_autoptr(GPtrArray) grids = fth_test_find_widgets(GTK_WIDGET(window), GTK_TYPE_GRID_VIEW);
  g_signal_emit_by_name(g_ptr_array_index(grids, 0), "activate", 0u);
  g_autoptr(GPtrArray) waves = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_WAVEFORM_VIEW);
  g_assert_cmpuint(waves->len, ==, 1);
  GtkWidget *wave = g_ptr_array_index(waves, 0);
  g_assert_true(fth_test_spin_until(waveform_mapped_and_loaded, wave, 15000));
  FthWaveformView *view = FTH_WAVEFORM_VIEW(wave);
  g_assert_cmpfloat_with_epsilon(fth_waveform_view_get_duration(view), 2.0, 1e-9);
  double wy = fth_waveform_view_waveform_y(view);
  drag(wave, fth_waveform_view_time_to_x(view, 0.5), wy, fth_waveform_view_time_to_x(view, 1.0),
       wy);
  double s0, s1;
  g_assert_true(fth_waveform_view_get_selection(view, &s0, &s1));
  g_assert_true(press(wave, "fth-waveform-keys", GDK_KEY_b));
  fth_test_spin_for(300);
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, 1, &error);
  g_assert_cmpuint(anns->len, ==, 1);
  g_assert_cmpint(((FthAnnotation *)anns->pdata[0])->geom, ==, FTH_GEOM_SEGMENT);
  g_assert_cmpfloat(((FthAnnotation *)anns->pdata[0])->t1, ==, 1.0);
  g_action_group_activate_action(G_ACTION_GROUP(window), "undo", NULL);
  fth_test_spin_for(300);
  fth_waveform_view_set_playing(view, TRUE);
  g_assert_true(fth_waveform_view_is_playing(view));
  g_clear_pointer(&anns, g_ptr_array_unref);
  anns = fth_store_list_annotations(store, 1, &error);
  g_assert_cmpuint(anns->len, ==, 0);

  /* The next item is the text: the span view shows it. */
  g_action_group_activate_action(G_ACTION_GROUP(window), "next-item", NULL);
  fth_test_spin_for(200);
  g_autoptr(GPtrArray) texts = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_TEXT_SPAN_VIEW);
  g_assert_cmpuint(texts->len, ==, 1);
  FthTextSpanView *text_view = g_ptr_array_index(texts, 0);
  g_assert_true(gtk_widget_get_mapped(GTK_WIDGET(text_view)));
  g_assert_false(fth_waveform_view_is_playing(view)); /* hidden: it stopped */
  g_assert_cmpint(fth_text_span_view_get_length(text_view), ==, g_utf8_strlen(TEXT, -1));
  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(200);
  remove_tree(dir);
}

/* ---- the spectrogram in blocks ------------------------------------------------------------- */

/* The view computes the spectrogram block by block (the one in view first): 25 s is three
 * blocks, and the result it caches equals one computation over the whole audio, frame for
 * frame, across the block borders. */
static void
test_spectrogram_blocks(void)
{
  g_autofree char *dir = g_dir_make_tmp("fth-views-spec-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "tone.wav", NULL);
  g_autofree char *cache = g_build_filename(dir, "cache", NULL);
  g_assert_cmpint(g_mkdir(cache, 0700), ==, 0);
  write_wav(path, 16000, 25.0, FALSE);
  /* Noise throughout, so that every frame at a block border sees samples on both sides. */
  g_autofree char *bytes = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
  guint32 r = 1;
  for (gsize i = 44; i < len; i++) {
    r = r * 1664525u + 1013904223u;
    bytes[i] = (char)(r >> 24);
  }
  g_assert_true(g_file_set_contents(path, bytes, (gssize)len, NULL));
  GtkWidget *view = fth_waveform_view_new();
  GtkWidget *window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(window), 600, 300);
  gtk_window_set_child(GTK_WINDOW(window), view);
  gtk_window_present(GTK_WINDOW(window));
  FthWaveformView *wv = FTH_WAVEFORM_VIEW(view);
  fth_waveform_view_load(wv, path, cache, "0123abcd");
  /* The view starts in the middle: that block comes first, the others after it. */
  fth_waveform_view_set_visible_range(wv, 12.0, 2.0);
  g_assert_true(fth_test_spin_until(waveform_loaded, wv, 20000));
  g_assert_true(fth_waveform_view_has_spectrogram(wv));
  g_assert_null(fth_waveform_view_get_message(wv));

  g_autoptr(GError) error = NULL;
  FthAudio audio = { 0 };
  g_assert_true(fth_audio_decode_file(path, 16000, TRUE, &audio, &error));
  FthMelParams params;
  fth_mel_params_init(&params, 16000);
  FthMelSpectrogram whole = { 0 }, cached = { 0 };
  g_assert_true(fth_log_mel_compute(audio.samples, audio.frames, &params, &whole, NULL, &error));
  g_autofree char *file = fth_mel_cache_path(cache, "0123abcd", &params);
  g_assert_true(fth_mel_spectrogram_load(file, &cached, &error));
  g_assert_cmpint(cached.n_frames, ==, whole.n_frames);
  g_assert_cmpint(cached.n_frames, >, 2000);
  g_assert_cmpint(cached.n_mels, ==, whole.n_mels);
  for (gsize i = 0; i < (gsize)whole.n_frames * whole.n_mels; i++)
    if (cached.data[i] != whole.data[i])
      g_error("frame %zu, mel %zu: %g in blocks, %g whole", i / whole.n_mels, i % whole.n_mels,
              cached.data[i], whole.data[i]);
  g_assert_cmpfloat(cached.min_value, ==, whole.min_value);
  g_assert_cmpfloat(cached.max_value, ==, whole.max_value);
  fth_mel_spectrogram_clear(&whole);
  fth_mel_spectrogram_clear(&cached);
  fth_audio_clear(&audio);
  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(100);
  remove_tree(dir);
}

/* ---- playback speed ------------------------------------------------------------------------ */

static gboolean
started_playing(gpointer data)
{
  return fth_waveform_view_get_position(data) > 0.05;
}

/* At speed 0.5, 1 and 2 the playhead advances 0.5, 1 and 2 seconds of audio per second of wall
 * time (through the rate of playbin's seek, with scaletempo keeping the pitch). With no sound
 * card GStreamer's automatic sink falls back to a fake one that still keeps time. */
static void
test_playback_speed(void)
{
  gst_init(NULL, NULL);
  const char *needed[] = { "playbin", "scaletempo", "wavparse", "autoaudiosink" };
  for (guint i = 0; i < G_N_ELEMENTS(needed); i++) {
    g_autoptr(GstElementFactory) factory = gst_element_factory_find(needed[i]);
    if (factory == NULL) {
      g_test_skip_printf("GStreamer has no %s", needed[i]);
      return;
    }
  }
  g_autofree char *dir = g_dir_make_tmp("fth-views-speed-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "tone.wav", NULL);
  write_wav(path, 16000, 8.0, FALSE);
  GtkWidget *view = fth_waveform_view_new();
  GtkWidget *window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(window), 600, 300);
  gtk_window_set_child(GTK_WINDOW(window), view);
  gtk_window_present(GTK_WINDOW(window));
  FthWaveformView *wv = FTH_WAVEFORM_VIEW(view);
  fth_waveform_view_load(wv, path, NULL, NULL);
  g_assert_true(fth_test_spin_until(waveform_loaded, wv, 10000));

  const double speeds[] = { 0.5, 1.0, 2.0 };
  for (guint i = 0; i < G_N_ELEMENTS(speeds); i++) {
    fth_waveform_view_set_speed(wv, speeds[i]);
    fth_waveform_view_seek(wv, 0.0);
    fth_waveform_view_set_playing(wv, TRUE);
    g_assert_true(fth_waveform_view_is_playing(wv));
    g_assert_true(fth_test_spin_until(started_playing, wv, 5000));
    double p0 = fth_waveform_view_get_position(wv);
    gint64 t0 = g_get_monotonic_time();
    fth_test_spin_for(1500);
    double p1 = fth_waveform_view_get_position(wv);
    double wall = (g_get_monotonic_time() - t0) / 1e6;
    fth_waveform_view_set_playing(wv, FALSE);
    double rate = (p1 - p0) / wall;
    g_test_message("speed %.2f: %.3f s of audio in %.3f s", speeds[i], p1 - p0, wall);
    g_assert_cmpfloat(rate, >, speeds[i] * 0.75);
    g_assert_cmpfloat(rate, <, speeds[i] * 1.25);
  }
  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(100);
  remove_tree(dir);
}

/* ---- text without spaces, shown in chunks -------------------------------------------------- */

static void
on_chunk_add(FthTextSpanView *view, const FthAnnotation *ann, gpointer data)
{
  FthAnnotation *got = data;
  got->start = ann->start;
  got->end = ann->end;
}

/* Whether a line break shown between PREV and NEXT splits what is drawn as one character. */
static gboolean
splits_cluster(gunichar prev, gunichar next)
{
  return prev == 0x200d || next == 0x200d || g_unichar_ismark(next) ||
         (next >= 0x1f3fb && next <= 0x1f3ff);
}

/* A long line without spaces (CJK and emoji) is shown in chunks, but every offset in and out of
 * the view is the document's: a span that ends at a chunk border, one that starts there (an emoji
 * ZWJ sequence), one across it and one in a chunk broken at no punctuation, each selected and
 * labeled through the key, comes back with the offsets it was selected with; no chunk border
 * splits an emoji sequence or a letter from its accent. */
static void
test_text_chunks(void)
{
  GString *text = g_string_new(NULL);
  for (int i = 0; i < 1999; i++)
    g_string_append(text, "中");
  g_string_append(text, "，");           /* offset 1999: a break may follow */
  g_string_append(text, "👩‍💻文字");     /* 2000-2002: one emoji of three code points */
  for (int i = 0; i < 1500; i++)        /* no punctuation for 6000 characters */
    g_string_append(text, i % 3 == 0 ? "👍🏽" : i % 3 == 1 ? "👩‍💻" : "e\xcc\x81");
  g_string_append(text, "。结束");
  glong n = g_utf8_strlen(text->str, -1);

  FthTextSpanView *view = FTH_TEXT_SPAN_VIEW(fth_text_span_view_new());
  GtkWidget *window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(window), 500, 300);
  gtk_window_set_child(GTK_WINDOW(window), GTK_WIDGET(view));
  gtk_window_present(GTK_WINDOW(window));
  fth_text_span_view_set_text(view, text->str, "long.txt");
  g_assert_cmpint(fth_text_span_view_get_length(view), ==, n);

  GtkTextView *tv = fth_text_span_view_get_text_view(view);
  GtkTextBuffer *buffer = gtk_text_view_get_buffer(tv);
  int n_lines = gtk_text_buffer_get_line_count(buffer);
  g_assert_cmpint(n_lines, >=, 3); /* after the comma, and at least once in the 6000 */
  g_assert_cmpint(gtk_text_buffer_get_char_count(buffer), ==, n + n_lines - 1);
  /* The first chunk ends right after the comma. */
  GtkTextIter line_end;
  gtk_text_buffer_get_iter_at_line(buffer, &line_end, 0);
  gtk_text_iter_forward_to_line_end(&line_end);
  g_assert_cmpint(gtk_text_iter_get_offset(&line_end), ==, 2000);
  for (int line = 1; line < n_lines; line++) {
    GtkTextIter at;
    gtk_text_buffer_get_iter_at_line(buffer, &at, line);
    GtkTextIter before = at;
    gtk_text_iter_backward_chars(&before, 2);
    g_assert_false(splits_cluster(gtk_text_iter_get_char(&before), gtk_text_iter_get_char(&at)));
  }

  FthLabel label = { 1, "X", "#f66151", "x", FTH_LABEL_SPAN, 0 };
  g_autoptr(GPtrArray) labels = g_ptr_array_new();
  g_ptr_array_add(labels, &label);
  fth_text_span_view_set_annotations(view, NULL, labels);
  FthAnnotation got = { 0 };
  g_signal_connect(view, "add-annotation", G_CALLBACK(on_chunk_add), &got);

  /* The second border is wherever the view put it: find its document offset. */
  GtkTextIter second;
  gtk_text_buffer_get_iter_at_line(buffer, &second, 2);
  gint64 border2 = gtk_text_iter_get_offset(&second) - 2;
  gint64 cases[][2] = { { 1995, 2000 }, { 2000, 2003 }, { 1998, 2002 },
                        { border2 - 3, border2 + 4 }, { n - 2, n } };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    got.start = got.end = -1;
    fth_text_span_view_select_range(view, cases[i][0], cases[i][1]);
    GtkTextIter s, e;
    g_assert_true(gtk_text_buffer_get_selection_bounds(buffer, &s, &e));
    /* What is selected is the document's text, with at most a shown break inside. */
    g_autofree char *shown = gtk_text_buffer_get_text(buffer, &s, &e, FALSE);
    g_auto(GStrv) parts = g_strsplit(shown, "\n", -1);
    g_autofree char *joined = g_strjoinv("", parts);
    g_autofree char *want = g_utf8_substring(text->str, cases[i][0], cases[i][1]);
    g_assert_cmpstr(joined, ==, want);
    g_assert_true(press(GTK_WIDGET(tv), "fth-text-keys", GDK_KEY_x));
    g_assert_cmpint(got.start, ==, cases[i][0]);
    g_assert_cmpint(got.end, ==, cases[i][1]);
  }

  /* The shown break alone is no text: selecting only it labels nothing, trimmed or not. */
  for (int trim = 0; trim < 2; trim++) {
    fth_text_span_view_set_trim_whitespace(view, trim);
    GtkTextIter s, e;
    gtk_text_buffer_get_iter_at_offset(buffer, &s, 2000);
    gtk_text_buffer_get_iter_at_offset(buffer, &e, 2001);
    g_assert_cmpint(gtk_text_iter_get_char(&s), ==, '\n');
    gtk_text_buffer_select_range(buffer, &s, &e);
    got.start = got.end = -1;
    g_assert_true(press(GTK_WIDGET(tv), "fth-text-keys", GDK_KEY_x));
    g_assert_cmpint(got.start, ==, -1);
  }

  /* Spans given in document offsets are drawn over those characters. */
  g_autoptr(GPtrArray) anns = g_ptr_array_new_with_free_func(g_free);
  FthAnnotation *span = g_new0(FthAnnotation, 1);
  *span = (FthAnnotation){ .id = 7, .label_id = 1, .geom = FTH_GEOM_SPAN, .start = 2000,
                           .end = 2003, .author = FTH_AUTHOR_HUMAN, .score = 1.0 };
  g_ptr_array_add(anns, span);
  fth_text_span_view_set_annotations(view, anns, labels);
  fth_text_span_view_set_selected(view, 7);
  GtkTextIter at;
  gtk_text_buffer_get_iter_at_offset(buffer, &at, 2001); /* past the shown break */
  GSList *tags = gtk_text_iter_get_tags(&at);
  g_assert_cmpuint(g_slist_length(tags), >=, 1);
  g_slist_free(tags);
  gtk_text_buffer_get_iter_at_offset(buffer, &at, 2000); /* the shown break itself */
  tags = gtk_text_iter_get_tags(&at);
  g_assert_null(tags);
  gtk_window_destroy(GTK_WINDOW(window));
  g_string_free(text, TRUE);
}

/* ---- large pictures ------------------------------------------------------------------------ */

/* A 3001x1999 picture of one-pixel black and white stripes, zoomed out to fit 300x200: drawn
 * from the halved copies it is mid-gray everywhere; resampled from the full picture with a
 * narrow filter it would alias to stripes of black and white. Panning moves it. */
static void
test_image_pyramid(void)
{
  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 3001, 1999);
  guint8 *data = cairo_image_surface_get_data(surface);
  int stride = cairo_image_surface_get_stride(surface);
  for (int y = 0; y < 1999; y++)
    for (int x = 0; x < 3001; x++)
      ((guint32 *)(data + (gsize)y * stride))[x] = x % 2 ? 0xffffffff : 0xff000000;
  cairo_surface_mark_dirty(surface);

  GtkWidget *canvas = fth_image_canvas_new();
  GtkWidget *window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(window), 300, 200);
  gtk_window_set_child(GTK_WINDOW(window), canvas);
  gtk_window_present(GTK_WINDOW(window));
  fth_image_canvas_set_surface(FTH_IMAGE_CANVAS(canvas), surface);
  cairo_surface_destroy(surface);
  for (int i = 0; i < 100 && gtk_widget_get_width(canvas) == 0; i++)
    fth_test_spin_for(20);
  g_autoptr(GdkTexture) fitted = fth_test_render_widget_laid_out(canvas);
  double zoom = fth_image_canvas_get_zoom(FTH_IMAGE_CANVAS(canvas));
  g_assert_cmpfloat(zoom, <, 0.11);
  int w = gtk_widget_get_width(canvas), h = gtk_widget_get_height(canvas);
  for (int x = w / 2 - 10; x < w / 2 + 10; x++)
    g_assert_true(near_color(fth_test_texture_pixel(fitted, x, h / 2), 0x808080, 12));

  /* 1:1: the stripes themselves, pixel for pixel (the zoom keeps the centre, so round the
   * picture onto whole pixels first). */
  fth_image_canvas_zoom_one_to_one(FTH_IMAGE_CANVAS(canvas));
  double wx, wy;
  fth_image_canvas_image_to_widget(FTH_IMAGE_CANVAS(canvas), 0, 0, &wx, &wy);
  fth_image_canvas_pan(FTH_IMAGE_CANVAS(canvas), round(wx) - wx, round(wy) - wy);
  fth_image_canvas_image_to_widget(FTH_IMAGE_CANVAS(canvas), 0, 0, &wx, &wy);
  g_assert_cmpfloat(wx, ==, round(wx));
  g_autoptr(GdkTexture) actual = fth_test_render_widget_laid_out(canvas);
  double ix, iy;
  fth_image_canvas_widget_to_image(FTH_IMAGE_CANVAS(canvas), w / 2.0 + 0.5, h / 2.0, &ix, &iy);
  guint32 want = (int)floor(ix) % 2 ? 0xffffff : 0x000000;
  g_assert_true(near_color(fth_test_texture_pixel(actual, w / 2, h / 2), want, 8));
  g_assert_true(near_color(fth_test_texture_pixel(actual, w / 2 + 1, h / 2), want ^ 0xffffff, 8));

  /* Panning by 7 px moves the picture by 7 px. */
  fth_image_canvas_pan(FTH_IMAGE_CANVAS(canvas), 7, -3);
  double px, py;
  fth_image_canvas_image_to_widget(FTH_IMAGE_CANVAS(canvas), 0, 0, &px, &py);
  g_assert_cmpfloat_with_epsilon(px - wx, 7.0, 1e-9);
  g_assert_cmpfloat_with_epsilon(py - wy, -3.0, 1e-9);
  gtk_window_destroy(GTK_WINDOW(window));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  if (!gtk_init_check()) {
    g_printerr("no display: skipping\n");
    return 77;
  }
  app = fth_application_new(G_APPLICATION_NON_UNIQUE);
  g_autoptr(GError) error = NULL;
  if (!g_application_register(G_APPLICATION(app), NULL, &error))
    g_error("cannot register the application: %s", error->message);
  g_test_add_func("/views/waveform", test_waveform_view);
  g_test_add_func("/views/waveform-progressive", test_waveform_progressive);
  g_test_add_func("/views/waveform-unknown-length", test_waveform_unknown_length);
  g_test_add_func("/views/text-spans", test_text_span_view);
  g_test_add_func("/views/in-window", test_in_window);
  g_test_add_func("/views/image-pyramid", test_image_pyramid);
  g_test_add_func("/views/text-chunks", test_text_chunks);
  g_test_add_func("/views/playback-speed", test_playback_speed);
  g_test_add_func("/views/spectrogram-blocks", test_spectrogram_blocks);
  int status = g_test_run();
  g_clear_object(&app);
  return status;
}
