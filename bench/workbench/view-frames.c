/* view-frames: open times and frame intervals of the annotation widgets on large media (issues 5
 * and 6: an 8k x 8k picture, a 1 MB text without spaces, an hour of audio stay smooth).
 *   tests/run-with-xvfb.sh view-frames --image|--text|--audio [--format wav|flac|ogg]
 *     [--media FILE]
 * Generates the media under $TMPDIR when no --media is given (an 8192x8192 JPEG, 1 MB of
 * Chinese text on one line with emoji, one hour of 16 kHz mono WAV, encoded to FLAC or
 * Ogg/Vorbis with --format), opens it in the widget in a 1100x720 window, then drives the widget
 * one step per frame (zoom, pan or scroll; for text, also span creation through the label key;
 * for audio, zooming in and out of the decoded part while it decodes) and prints the open time
 * (for audio: the first painted waveform, the whole decode, the spectrogram) and each phase's
 * frame intervals (from the frame clock) as mean, p95 and max. For the picture, the time to the
 * first painted frame is measured twice: from a full decode, and from a reduced JPEG decode
 * shown as a preview (with the time until the full image replaces it). Not a test: the figures
 * depend on the machine and its load. */
#include "fth-image-canvas.h"
#include "fth-text-span-view.h"
#include "fth-waveform-view.h"
#include "workbench-test-util.h"

#include <fathom/media.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

typedef gboolean (*StepFunc)(gpointer data, guint frame); /* FALSE: the phase is over */

typedef struct {
  GArray *intervals_us; /* gint64 */
  gint64 last_us;
  guint frame;
  StepFunc step;
  gpointer data;
  gboolean done;
} Phase;

static gboolean
tick(GtkWidget *widget, GdkFrameClock *clock, gpointer user_data)
{
  Phase *phase = user_data;
  gint64 now = gdk_frame_clock_get_frame_time(clock);
  if (phase->last_us != 0) {
    gint64 interval = now - phase->last_us;
    g_array_append_val(phase->intervals_us, interval);
  }
  phase->last_us = now;
  if (phase->done)
    return G_SOURCE_CONTINUE;
  if (!phase->step(phase->data, phase->frame++))
    phase->done = TRUE;
  return G_SOURCE_CONTINUE;
}

static int
compare_int64(gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return x < y ? -1 : x > y;
}

static gboolean
phase_done(gpointer data)
{
  return ((Phase *)data)->done;
}

/* CPU time of the calling thread (the main loop's), in ms: unlike the frame intervals, it does
 * not depend on how many other processes want the cores. */
static double
thread_cpu_ms(void)
{
  struct rusage usage;
  getrusage(RUSAGE_THREAD, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

/* How long the calling thread has waited for a core so far, in ms (Linux schedstat; 0 when
 * unknown): the part of a long frame that is the machine's load. */
static double
thread_wait_ms(void)
{
  g_autofree char *stat = NULL;
  guint64 run_ns = 0, wait_ns = 0;
  if (!g_file_get_contents("/proc/thread-self/schedstat", &stat, NULL, NULL) ||
      sscanf(stat, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &run_ns, &wait_ns) != 2)
    return 0;
  return wait_ns / 1e6;
}

/* Runs STEP once a frame until it returns FALSE, then prints the frame intervals and the main
 * thread's CPU time per frame. */
static void
run_phase(GtkWidget *widget, const char *name, StepFunc step, gpointer data)
{
  Phase phase = { g_array_new(FALSE, FALSE, sizeof(gint64)), 0, 0, step, data, FALSE };
  double cpu0 = thread_cpu_ms(), wait0 = thread_wait_ms();
  guint id = gtk_widget_add_tick_callback(widget, tick, &phase, NULL);
  fth_test_spin_until(phase_done, &phase, 120000);
  fth_test_spin_for(100); /* the last step's frame */
  gtk_widget_remove_tick_callback(widget, id);
  double cpu = thread_cpu_ms() - cpu0, wait = thread_wait_ms() - wait0;

  GArray *v = phase.intervals_us;
  if (v->len == 0) {
    printf("  %-34s no frames\n", name);
    g_array_unref(v);
    return;
  }
  g_array_sort(v, compare_int64);
  double sum = 0;
  guint over_50 = 0;
  for (guint i = 0; i < v->len; i++) {
    sum += g_array_index(v, gint64, i);
    over_50 += g_array_index(v, gint64, i) > 50000;
  }
  printf("  %-34s %4u frames: mean %6.1f ms, p95 %6.1f, max %6.1f; %u over 50 ms; "
         "main thread CPU %.1f ms a frame, waiting for a core %.1f ms\n",
         name, v->len, sum / v->len / 1000.0,
         g_array_index(v, gint64, MIN(v->len - 1, (guint)(0.95 * v->len))) / 1000.0,
         g_array_index(v, gint64, v->len - 1) / 1000.0, over_50, cpu / v->len, wait / v->len);
  fflush(stdout);
  g_array_unref(v);
}

static double
ms_since(gint64 t0)
{
  return (g_get_monotonic_time() - t0) / 1000.0;
}

static GtkWidget *
show_in_window(GtkWidget *child)
{
  GtkWidget *window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(window), 1100, 720);
  gtk_window_set_child(GTK_WINDOW(window), child);
  gtk_window_present(GTK_WINDOW(window));
  fth_test_spin_for(500);
  return window;
}

/* ---- image ---------------------------------------------------------------------------------- */

#define IMAGE_SIDE 8192

static gboolean
make_jpeg(const char *path, GError **error)
{
  g_autoptr(GdkPixbuf) pixbuf =
    gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, IMAGE_SIDE, IMAGE_SIDE);
  guint8 *pixels = gdk_pixbuf_get_pixels(pixbuf);
  int stride = gdk_pixbuf_get_rowstride(pixbuf);
  guint32 noise = 1;
  for (int y = 0; y < IMAGE_SIDE; y++) {
    guint8 *row = pixels + (gsize)y * stride;
    for (int x = 0; x < IMAGE_SIDE; x++) {
      noise = noise * 1664525u + 1013904223u;
      /* Gradients, a grid every 256 px and some noise: detail at every scale. */
      gboolean grid = x % 256 < 3 || y % 256 < 3;
      row[3 * x + 0] = grid ? 255 : (guint8)(x / 32 + (noise >> 28));
      row[3 * x + 1] = grid ? 255 : (guint8)(y / 32 + (noise >> 28));
      row[3 * x + 2] = grid ? 255 : (guint8)((x ^ y) & 0xff);
    }
  }
  return gdk_pixbuf_save(pixbuf, path, "jpeg", error, "quality", "90", NULL);
}

typedef struct {
  FthImageCanvas *canvas;
  double fit_zoom;
} ImageBench;

#define ZOOM_FRAMES 60

static gboolean
zoom_in_step(gpointer data, guint frame)
{
  ImageBench *b = data;
  double factor = pow(1.0 / b->fit_zoom, 1.0 / ZOOM_FRAMES);
  GtkWidget *w = GTK_WIDGET(b->canvas);
  fth_image_canvas_zoom_at(b->canvas, factor, gtk_widget_get_width(w) / 2.0,
                           gtk_widget_get_height(w) / 2.0);
  return frame + 1 < ZOOM_FRAMES;
}

static gboolean
pan_step(gpointer data, guint frame)
{
  ImageBench *b = data;
  fth_image_canvas_pan(b->canvas, frame < 100 ? -24.0 : 24.0, frame < 100 ? -16.0 : 16.0);
  return frame + 1 < 200;
}

static gboolean
zoom_out_step(gpointer data, guint frame)
{
  ImageBench *b = data;
  double factor = pow(b->fit_zoom, 1.0 / ZOOM_FRAMES);
  GtkWidget *w = GTK_WIDGET(b->canvas);
  fth_image_canvas_zoom_at(b->canvas, factor, gtk_widget_get_width(w) / 3.0,
                           gtk_widget_get_height(w) / 3.0);
  return frame + 1 < ZOOM_FRAMES;
}

static gboolean
redraw_step(gpointer data, guint frame)
{
  gtk_widget_queue_draw(data);
  return frame + 1 < 30;
}

/* PATH decoded at 1/REDUCTION and converted to a canvas surface with its halved copies, as the
 * item view does on its worker threads. */
static cairo_surface_t *
decode_to_surface(const char *path, int reduction, int *width, int *height, double *decode_ms,
                  double *convert_ms, GError **error)
{
  gint64 t0 = g_get_monotonic_time();
  FthImage image = { 0 };
  if (!fth_image_decode_reduced_file(path, FTH_IMAGE_DECODE_RGB | FTH_IMAGE_DECODE_FAST,
                                     reduction, &image, error))
    return NULL;
  *decode_ms = ms_since(t0);
  *width = image.width;
  *height = image.height;
  g_autoptr(GBytes) bytes =
    g_bytes_new_with_free_func(image.pixels, (gsize)image.width * image.height * 3, g_free,
                               image.pixels);
  g_autoptr(GdkTexture) texture = gdk_memory_texture_new(image.width, image.height,
                                                         GDK_MEMORY_R8G8B8, bytes,
                                                         (gsize)image.width * 3);
  gint64 t1 = g_get_monotonic_time();
  cairo_surface_t *surface = fth_image_canvas_surface_from_texture(texture);
  *convert_ms = ms_since(t1);
  return surface;
}

static void
on_after_paint(GdkFrameClock *clock, gpointer data)
{
  *(gboolean *)data = TRUE;
}

static gboolean
flag_set(gpointer data)
{
  return *(gboolean *)data;
}

/* Milliseconds from T0 to the end of the next frame that paints CANVAS. */
static double
wait_painted(GtkWidget *canvas, gint64 t0)
{
  gboolean painted = FALSE;
  GdkFrameClock *clock = gtk_widget_get_frame_clock(canvas);
  gulong id = g_signal_connect(clock, "after-paint", G_CALLBACK(on_after_paint), &painted);
  gtk_widget_queue_draw(canvas);
  fth_test_spin_until(flag_set, &painted, 20000);
  g_signal_handler_disconnect(clock, id);
  return ms_since(t0);
}

static int
bench_image(const char *media)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup(media);
  if (path == NULL) {
    path = g_build_filename(g_get_tmp_dir(), "fathom-bench-8k.jpg", NULL);
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
      gint64 t = g_get_monotonic_time();
      if (!make_jpeg(path, &error)) {
        g_printerr("view-frames: %s\n", error->message);
        return 1;
      }
      printf("generated %s in %.0f ms\n", path, ms_since(t));
    }
  }

  GtkWidget *canvas = fth_image_canvas_new();
  GtkWidget *window = show_in_window(canvas);

  /* Time to first paint without a preview: what the item view does for a PNG, on its worker
   * threads (decode, wrap as a texture, convert), then the first frame that shows it. */
  gint64 t0 = g_get_monotonic_time();
  int width = 0, height = 0;
  double decode_ms, convert_ms;
  cairo_surface_t *surface =
    decode_to_surface(path, 1, &width, &height, &decode_ms, &convert_ms, &error);
  if (surface == NULL) {
    g_printerr("view-frames: %s\n", error->message);
    return 1;
  }
  gint64 t2 = g_get_monotonic_time();
  fth_image_canvas_set_surface(FTH_IMAGE_CANVAS(canvas), surface);
  cairo_surface_destroy(surface);
  double set_ms = ms_since(t2);
  double full_paint_ms = wait_painted(canvas, t0);

  /* With the preview, as for a JPEG: a reduced decode sized to the view, shown at once, then
   * the full image in its place (one after the other here; side by side on the item view's
   * worker threads). */
  fth_image_canvas_set_surface(FTH_IMAGE_CANVAS(canvas), NULL);
  fth_test_spin_for(200);
  t0 = g_get_monotonic_time();
  int scale = gtk_widget_get_scale_factor(canvas);
  int reduction = fth_image_reduction_for_view(width, height, gtk_widget_get_width(canvas) * scale,
                                               gtk_widget_get_height(canvas) * scale);
  double preview_decode_ms, preview_convert_ms;
  int preview_width, preview_height;
  surface = decode_to_surface(path, reduction, &preview_width, &preview_height,
                              &preview_decode_ms, &preview_convert_ms, &error);
  if (surface == NULL) {
    g_printerr("view-frames: %s\n", error->message);
    return 1;
  }
  fth_image_canvas_set_preview(FTH_IMAGE_CANVAS(canvas), surface, width, height);
  cairo_surface_destroy(surface);
  double preview_paint_ms = wait_painted(canvas, t0);
  double again_decode_ms, again_convert_ms;
  surface = decode_to_surface(path, 1, &width, &height, &again_decode_ms, &again_convert_ms,
                              &error);
  if (surface == NULL) {
    g_printerr("view-frames: %s\n", error->message);
    return 1;
  }
  fth_image_canvas_set_surface(FTH_IMAGE_CANVAS(canvas), surface);
  cairo_surface_destroy(surface);
  double swap_paint_ms = wait_painted(canvas, t0);

  /* 200 boxes over the picture, of two labels. */
  g_autoptr(GPtrArray) labels = g_ptr_array_new();
  FthLabel label_a = { 1, "a", "#e01b24", "1", FTH_LABEL_CLASS, 0 };
  FthLabel label_b = { 2, "b", "#3584e4", "2", FTH_LABEL_CLASS, 1 };
  g_ptr_array_add(labels, &label_a);
  g_ptr_array_add(labels, &label_b);
  g_autoptr(GPtrArray) anns = g_ptr_array_new_with_free_func(g_free);
  for (int i = 0; i < 200; i++) {
    FthAnnotation *a = g_new0(FthAnnotation, 1);
    a->id = i + 1;
    a->label_id = 1 + i % 2;
    a->geom = FTH_GEOM_BOX;
    a->x = (i % 20) * 400 + 50;
    a->y = (i / 20) * 800 + 100;
    a->w = 300;
    a->h = 500;
    a->author = i % 5 == 0 ? FTH_AUTHOR_MODEL : FTH_AUTHOR_HUMAN;
    a->score = 0.9;
    g_ptr_array_add(anns, a);
  }
  fth_image_canvas_set_annotations(FTH_IMAGE_CANVAS(canvas), anns, labels);
  printf("image %dx%d: decode %.0f ms, convert to a cairo surface %.0f ms, set_surface %.0f ms "
         "(decode and convert run on worker threads in the item view)\n",
         width, height, decode_ms, convert_ms, set_ms);
  printf("  first paint, full decode: %.0f ms\n", full_paint_ms);
  printf("  first paint, 1/%d preview (%dx%d: decode %.0f ms, convert %.0f ms): %.0f ms; "
         "full image swapped in and painted at %.0f ms\n",
         reduction, preview_width, preview_height, preview_decode_ms, preview_convert_ms,
         preview_paint_ms, swap_paint_ms);

  ImageBench b = { FTH_IMAGE_CANVAS(canvas), 0 };
  run_phase(canvas, "redraw at fit (30 frames)", redraw_step, canvas);
  b.fit_zoom = fth_image_canvas_get_zoom(b.canvas);
  run_phase(canvas, "zoom fit -> 1:1 (60 frames)", zoom_in_step, &b);
  fth_image_canvas_zoom_one_to_one(b.canvas);
  run_phase(canvas, "pan at 1:1 (200 frames)", pan_step, &b);
  run_phase(canvas, "zoom 1:1 -> fit (60 frames)", zoom_out_step, &b);
  gtk_window_destroy(GTK_WINDOW(window));
  return 0;
}

/* ---- text ----------------------------------------------------------------------------------- */

/* About 1 MB of Chinese-looking text on one line: no spaces, no newlines, a comma or full stop
 * every 7-30 characters, an emoji (some with a skin tone or a ZWJ sequence) now and then. */
static char *
make_text(void)
{
  static const char *const extras[] = { "😀", "👍🏽", "👩‍💻", "🇨🇳", "é" };
  GString *s = g_string_sized_new(1 << 20);
  guint32 r = 7;
  guint run = 0;
  while (s->len < (1 << 20)) {
    r = r * 1664525u + 1013904223u;
    if (run > 7 && r % 23 == 0) {
      g_string_append(s, r % 2 ? "，" : "。");
      run = 0;
    } else if (r % 97 == 0) {
      g_string_append(s, extras[(r >> 8) % G_N_ELEMENTS(extras)]);
    } else {
      g_string_append_unichar(s, 0x4e00 + (r >> 12) % 0x5000);
      run++;
    }
  }
  return g_string_free(s, FALSE);
}

typedef struct {
  FthTextSpanView *view;
  GtkAdjustment *vadj;
  GPtrArray *anns;
  GPtrArray *labels;
  gint64 next_id;
  double set_ms_total;
} TextBench;

static void
text_add(FthTextSpanView *view, const FthAnnotation *ann, gpointer data)
{
  TextBench *b = data;
  FthAnnotation *copy = g_new0(FthAnnotation, 1);
  *copy = *ann;
  copy->id = b->next_id++;
  g_ptr_array_add(b->anns, copy);
  gint64 t = g_get_monotonic_time();
  fth_text_span_view_set_annotations(view, b->anns, b->labels);
  b->set_ms_total += ms_since(t);
}

static gboolean
text_scroll_step(gpointer data, guint frame)
{
  TextBench *b = data;
  gtk_adjustment_set_value(b->vadj, gtk_adjustment_get_value(b->vadj) + 40.0);
  return frame + 1 < 200;
}

static gboolean
text_jump_step(gpointer data, guint frame)
{
  TextBench *b = data;
  double upper = gtk_adjustment_get_upper(b->vadj) - gtk_adjustment_get_page_size(b->vadj);
  gtk_adjustment_set_value(b->vadj, upper * ((frame * 37) % 30) / 29.0);
  return frame + 1 < 30;
}

static gboolean
text_span_step(gpointer data, guint frame)
{
  TextBench *b = data;
  /* Select 6 characters near the top of what is shown and press the label's key. */
  GtkTextView *tv = fth_text_span_view_get_text_view(b->view);
  GdkRectangle visible;
  gtk_text_view_get_visible_rect(tv, &visible);
  GtkTextIter at;
  gtk_text_view_get_iter_at_location(tv, &at, visible.x + 40, visible.y + 20 + 18 * (int)frame);
  GtkTextIter end = at;
  gtk_text_iter_forward_chars(&end, 6);
  gtk_text_buffer_select_range(gtk_text_view_get_buffer(tv), &at, &end);
  GListModel *list = gtk_widget_observe_controllers(GTK_WIDGET(tv));
  for (guint i = 0; i < g_list_model_get_n_items(list); i++) {
    g_autoptr(GtkEventController) c = g_list_model_get_item(list, i);
    if (g_strcmp0(gtk_event_controller_get_name(c), "fth-text-keys") == 0) {
      gboolean handled = FALSE;
      g_signal_emit_by_name(c, "key-pressed", GDK_KEY_1, 0, 0, &handled);
    }
  }
  g_object_unref(list);
  return frame + 1 < 20;
}

static int
bench_text(const char *media)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;
  if (media != NULL) {
    if (!fth_text_load_file(media, &text, &len, &error)) {
      g_printerr("view-frames: %s\n", error->message);
      return 1;
    }
  } else {
    text = make_text();
  }
  glong n_chars = g_utf8_strlen(text, -1);

  FthLabel label = { 1, "entity", "#e01b24", "1", FTH_LABEL_SPAN, 0 };
  TextBench b = { NULL, NULL, g_ptr_array_new_with_free_func(g_free), g_ptr_array_new(), 1, 0 };
  g_ptr_array_add(b.labels, &label);
  /* 2,000 spans spread over the document. */
  for (int i = 0; i < 2000; i++) {
    FthAnnotation *a = g_new0(FthAnnotation, 1);
    a->id = b.next_id++;
    a->label_id = 1;
    a->geom = FTH_GEOM_SPAN;
    a->start = (gint64)n_chars / 2000 * i + 3;
    a->end = a->start + 5;
    a->author = FTH_AUTHOR_HUMAN;
    a->score = 1.0;
    g_ptr_array_add(b.anns, a);
  }

  GtkWidget *view = fth_text_span_view_new();
  b.view = FTH_TEXT_SPAN_VIEW(view);
  GtkWidget *window = show_in_window(view);
  g_signal_connect(view, "add-annotation", G_CALLBACK(text_add), &b);

  gint64 t0 = g_get_monotonic_time();
  fth_text_span_view_set_text(b.view, text, "bench");
  double set_text_ms = ms_since(t0);
  gint64 t1 = g_get_monotonic_time();
  fth_text_span_view_set_annotations(b.view, b.anns, b.labels);
  double set_ann_ms = ms_since(t1);
  printf("text: %zu bytes, %ld characters on one line, no spaces; set_text %.0f ms, "
         "2,000 spans %.0f ms\n",
         strlen(text), n_chars, set_text_ms, set_ann_ms);
  fflush(stdout);

  b.vadj = gtk_scrollable_get_vadjustment(GTK_SCROLLABLE(fth_text_span_view_get_text_view(b.view)));
  run_phase(view, "first frames (30)", redraw_step, view);
  run_phase(view, "scroll 40 px a frame (200 frames)", text_scroll_step, &b);
  run_phase(view, "jump to 30 places (30 frames)", text_jump_step, &b);
  run_phase(view, "create a span a frame (20 frames)", text_span_step, &b);
  printf("  spans made %u; set_annotations after each: %.1f ms on average\n",
         (guint)b.anns->len - 2000, b.set_ms_total / MAX(1u, b.anns->len - 2000));
  gtk_window_destroy(GTK_WINDOW(window));
  g_ptr_array_unref(b.anns);
  g_ptr_array_unref(b.labels);
  return 0;
}

/* ---- audio ---------------------------------------------------------------------------------- */

#define AUDIO_RATE 16000
#define AUDIO_SECONDS 3600

/* One hour of 16 kHz mono 16-bit PCM: tones that change every few seconds, and noise. */
static gboolean
make_wav(const char *path, GError **error)
{
  gint64 n = (gint64)AUDIO_RATE * AUDIO_SECONDS;
  guint32 data_bytes = (guint32)(n * 2);
  guint8 header[44];
  memcpy(header, "RIFF", 4);
  guint32 v = 36 + data_bytes;
  memcpy(header + 4, &v, 4);
  memcpy(header + 8, "WAVEfmt ", 8);
  v = 16;
  memcpy(header + 16, &v, 4);
  guint16 h = 1;
  memcpy(header + 20, &h, 2); /* PCM */
  memcpy(header + 22, &h, 2); /* mono */
  v = AUDIO_RATE;
  memcpy(header + 24, &v, 4);
  v = AUDIO_RATE * 2;
  memcpy(header + 28, &v, 4);
  h = 2;
  memcpy(header + 32, &h, 2);
  h = 16;
  memcpy(header + 34, &h, 2);
  memcpy(header + 36, "data", 4);
  memcpy(header + 40, &data_bytes, 4);

  FILE *f = fopen(path, "wb");
  if (f == NULL) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot write %s", path);
    return FALSE;
  }
  fwrite(header, 1, sizeof header, f);
  gint16 *block = g_new(gint16, AUDIO_RATE);
  guint32 r = 3;
  double phase = 0;
  for (gint64 s = 0; s < AUDIO_SECONDS; s++) {
    double freq = 200.0 + 150.0 * (double)((s / 3) % 20);
    double amp = 0.1 + 0.4 * (double)((s / 7) % 5) / 4.0;
    for (int i = 0; i < AUDIO_RATE; i++) {
      r = r * 1664525u + 1013904223u;
      phase += 2 * G_PI * freq / AUDIO_RATE;
      double x = amp * sin(phase) + 0.05 * ((double)(r >> 8) / (1 << 24) - 0.5);
      block[i] = (gint16)(CLAMP(x, -1.0, 1.0) * 32000);
    }
    fwrite(block, 2, AUDIO_RATE, f);
  }
  g_free(block);
  if (fclose(f) != 0) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot write %s", path);
    return FALSE;
  }
  return TRUE;
}

/* WAV_PATH encoded as FORMAT ("flac", or "ogg" for Ogg/Vorbis) into PATH through GStreamer. */
static gboolean
encode_audio(const char *wav_path, const char *format, const char *path, GError **error)
{
  const char *encoder = g_str_equal(format, "flac") ? "flacenc" : "vorbisenc ! oggmux";
  g_autofree char *description = g_strdup_printf(
    "filesrc location=\"%s\" ! wavparse ! audioconvert ! %s ! filesink location=\"%s\"", wav_path,
    encoder, path);
  g_autoptr(GstElement) pipeline = gst_parse_launch(description, error);
  if (pipeline == NULL)
    return FALSE;
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  g_autoptr(GstBus) bus = gst_element_get_bus(pipeline);
  g_autoptr(GstMessage) message = gst_bus_timed_pop_filtered(
    bus, GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gboolean ok = GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS;
  if (!ok)
    gst_message_parse_error(message, error, NULL);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  return ok;
}

typedef struct {
  FthWaveformView *view;
  gint64 t0, first_paint_us, decode_us, first_block_us, spectrogram_us;
} AudioBench;

static void
audio_loaded(FthWaveformView *view, gpointer data)
{
  AudioBench *b = data;
  if (b->decode_us == 0 && !fth_waveform_view_is_decoding(view))
    b->decode_us = g_get_monotonic_time() - b->t0;
  if (b->spectrogram_us == 0 && fth_waveform_view_has_spectrogram(view))
    b->spectrogram_us = g_get_monotonic_time() - b->t0;
}

/* A frame's tick comes before its drawing: the first tick that finds decoded audio is the frame
 * that first paints a waveform. */
static void
audio_note_progress(AudioBench *b)
{
  gtk_widget_queue_draw(GTK_WIDGET(b->view));
  if (b->first_paint_us == 0 && fth_waveform_view_get_decoded_duration(b->view) > 0)
    b->first_paint_us = g_get_monotonic_time() - b->t0;
  if (b->first_block_us == 0 && fth_waveform_view_get_spectrogram_progress(b->view) > 0)
    b->first_block_us = g_get_monotonic_time() - b->t0;
}

/* While it decodes, the user works in what is there: 40 frames zooming into the decoded part
 * (to a twentieth of it), 40 frames out to the whole timeline, and again. */
static gboolean
audio_decoding_step(gpointer data, guint frame)
{
  AudioBench *b = data;
  audio_note_progress(b);
  double decoded = fth_waveform_view_get_decoded_duration(b->view);
  double whole = fth_waveform_view_get_duration(b->view);
  if (decoded > 0) {
    double f = (double)(frame % 80) / 40.0;
    double zoom = f <= 1.0 ? f : 2.0 - f; /* 0 -> 1 -> 0 */
    double seconds = whole * pow(decoded / 20 / whole, zoom);
    fth_waveform_view_set_visible_range(b->view, decoded / 2 - seconds / 2, seconds);
  }
  return fth_waveform_view_is_decoding(b->view) && frame < 20000;
}

static gboolean
audio_wait_step(gpointer data, guint frame)
{
  AudioBench *b = data;
  audio_note_progress(b);
  return !fth_waveform_view_has_spectrogram(b->view) && fth_waveform_view_is_loading(b->view) &&
         frame < 20000;
}

static gboolean
audio_zoom_step(gpointer data, guint frame)
{
  AudioBench *b = data;
  double start, seconds;
  fth_waveform_view_get_visible_range(b->view, &start, &seconds);
  /* From the whole hour to 10 s in 60 frames, about the middle. */
  double target = seconds * pow(10.0 / AUDIO_SECONDS, 1.0 / 60);
  fth_waveform_view_set_visible_range(b->view, 1800.0 - target / 2, target);
  return frame + 1 < 60;
}

static gboolean
audio_scroll_step(gpointer data, guint frame)
{
  AudioBench *b = data;
  double start, seconds;
  fth_waveform_view_get_visible_range(b->view, &start, &seconds);
  fth_waveform_view_set_visible_range(b->view, start + seconds / 20, seconds);
  return frame + 1 < 200;
}

static gboolean
audio_zoom_out_step(gpointer data, guint frame)
{
  AudioBench *b = data;
  double start, seconds;
  fth_waveform_view_get_visible_range(b->view, &start, &seconds);
  double target = seconds * pow(AUDIO_SECONDS / 10.0, 1.0 / 60);
  fth_waveform_view_set_visible_range(b->view, MAX(0.0, start + seconds / 2 - target / 2),
                                      target);
  return frame + 1 < 60;
}

static int
bench_audio(const char *media, const char *format)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup(media);
  if (path == NULL) {
    g_autofree char *wav = g_build_filename(g_get_tmp_dir(), "fathom-bench-1h.wav", NULL);
    if (!g_file_test(wav, G_FILE_TEST_EXISTS)) {
      gint64 t = g_get_monotonic_time();
      if (!make_wav(wav, &error)) {
        g_printerr("view-frames: %s\n", error->message);
        return 1;
      }
      printf("generated %s in %.0f ms\n", wav, ms_since(t));
    }
    if (g_str_equal(format, "wav")) {
      path = g_steal_pointer(&wav);
    } else {
      g_autofree char *name = g_strdup_printf("fathom-bench-1h.%s", format);
      path = g_build_filename(g_get_tmp_dir(), name, NULL);
      if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        gint64 t = g_get_monotonic_time();
        if (!encode_audio(wav, format, path, &error)) {
          g_printerr("view-frames: cannot make %s: %s\n", path, error->message);
          g_remove(path);
          return 1;
        }
        printf("encoded %s in %.0f ms\n", path, ms_since(t));
      }
    }
  }
  printf("audio: %s\n", path);
  GtkWidget *view = fth_waveform_view_new();
  AudioBench b = { FTH_WAVEFORM_VIEW(view) };
  GtkWidget *window = show_in_window(view);
  g_signal_connect(view, "loaded", G_CALLBACK(audio_loaded), &b);
  b.t0 = g_get_monotonic_time();
  /* No cache folder: every run computes the spectrogram. */
  fth_waveform_view_load(b.view, path, NULL, NULL);
  run_phase(view, "while decoding (zoom in and out)", audio_decoding_step, &b);
  run_phase(view, "until the whole spectrogram", audio_wait_step, &b);
  if (fth_waveform_view_get_message(b.view) != NULL)
    printf("  message: %s\n", fth_waveform_view_get_message(b.view));
  printf("audio %.0f s: first waveform painted after %.0f ms, decoded after %.0f ms; the first "
         "spectrogram block after %.0f ms, all of it after %.0f ms\n",
         fth_waveform_view_get_duration(b.view), b.first_paint_us / 1000.0, b.decode_us / 1000.0,
         b.first_block_us / 1000.0, b.spectrogram_us / 1000.0);
  fflush(stdout);
  fth_waveform_view_set_visible_range(b.view, 0.0, AUDIO_SECONDS);
  run_phase(view, "zoom 1 h -> 10 s (60 frames)", audio_zoom_step, &b);
  run_phase(view, "scroll at 10 s (200 frames)", audio_scroll_step, &b);
  run_phase(view, "zoom 10 s -> 1 h (60 frames)", audio_zoom_out_step, &b);
  gtk_window_destroy(GTK_WINDOW(window));
  return 0;
}

int
main(int argc, char **argv)
{
  gboolean image = FALSE, text = FALSE, audio = FALSE;
  g_autofree char *media = NULL, *format = NULL;
  GOptionEntry entries[] = {
    { "image", 0, 0, G_OPTION_ARG_NONE, &image, "An 8192x8192 JPEG in FthImageCanvas", NULL },
    { "text", 0, 0, G_OPTION_ARG_NONE, &text, "1 MB of text in FthTextSpanView", NULL },
    { "audio", 0, 0, G_OPTION_ARG_NONE, &audio, "An hour of audio in FthWaveformView", NULL },
    { "media", 0, 0, G_OPTION_ARG_FILENAME, &media, "Use FILE instead of generated media",
      "FILE" },
    { "format", 0, 0, G_OPTION_ARG_STRING, &format,
      "The generated audio as wav (default), flac or ogg (Ogg/Vorbis)", "FORMAT" },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new("");
  g_autoptr(GError) error = NULL;
  g_option_context_add_main_entries(context, entries, NULL);
  if (!g_option_context_parse(context, &argc, &argv, &error) || image + text + audio != 1) {
    g_printerr("view-frames: %s\n",
               error != NULL ? error->message : "need one of --image, --text, --audio");
    return 2;
  }
  if (format != NULL && !g_str_equal(format, "wav") && !g_str_equal(format, "flac") &&
      !g_str_equal(format, "ogg")) {
    g_printerr("view-frames: --format is wav, flac or ogg, not %s\n", format);
    return 2;
  }
  gtk_init();
  gst_init(NULL, NULL);
  g_autofree char *loadavg = NULL;
  if (g_file_get_contents("/proc/loadavg", &loadavg, NULL, NULL)) {
    g_auto(GStrv) fields = g_strsplit(loadavg, " ", 4);
    printf("load average: %s %s %s\n", fields[0], fields[1], fields[2]);
  }
  if (image)
    return bench_image(media);
  if (text)
    return bench_text(media);
  return bench_audio(media, format != NULL ? format : "wav");
}
