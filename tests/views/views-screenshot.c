/* views-screenshot: the audio and text views on a project's first audio and text items, saved
 * as PNGs for docs/screenshots (run it through tests/run-with-xvfb.sh):
 *   views-screenshot PROJECT_DIR AUDIO.png TEXT.png
 * The first audio item and the longest of the first hundred texts are shown; the project is
 * only read. So that the pictures show segments, spans and suggestions, a few
 * are added in memory (never stored): a segment over the loudest half second and a model
 * segment before it; spans over the first capitalised words and a suggestion on a later one. */
#include "../workbench/workbench-test-util.h"
#include "fth-text-span-view.h"
#include "fth-waveform-view.h"

#include <string.h>

static gboolean
waveform_ready(gpointer data)
{
  return !fth_waveform_view_is_loading(data) && fth_waveform_view_has_spectrogram(data);
}

/* The first item of KIND; for text the longest of the first hundred (more to show). */
static FthItemRecord *
pick_item(FthStore *store, FthItemKind kind, GError **error)
{
  FthItemFilter filter = FTH_ITEM_FILTER_INIT;
  filter.kind = kind;
  g_autoptr(GPtrArray) items = fth_store_list_items_page(store, &filter, 0, 100, error);
  if (items == NULL || items->len == 0)
    return NULL;
  guint best = 0;
  for (guint i = 1; kind == FTH_ITEM_TEXT && i < items->len; i++)
    if (((FthItemRecord *)items->pdata[i])->length_chars >
        ((FthItemRecord *)items->pdata[best])->length_chars)
      best = i;
  return g_ptr_array_steal_index(items, best);
}

static FthLabel *
demo_label(gint64 id, const char *name, const char *color, FthLabelKind kind)
{
  FthLabel *l = g_new0(FthLabel, 1);
  l->id = id;
  l->name = g_strdup(name);
  l->color = g_strdup(color);
  l->kind = kind;
  return l;
}

static FthAnnotation *
demo_annotation(gint64 id, gint64 label, FthGeomKind geom, FthAuthor author, double score)
{
  FthAnnotation *a = fth_annotation_new();
  a->id = id;
  a->label_id = label;
  a->geom = geom;
  a->author = author;
  a->score = score;
  return a;
}

static gboolean
save(GtkWidget *view, const char *out)
{
  fth_test_spin_for(300);
  g_autoptr(GdkTexture) texture = fth_test_render_widget(gtk_widget_get_parent(view));
  if (texture == NULL || !gdk_texture_save_to_png(texture, out)) {
    g_printerr("views-screenshot: cannot write %s\n", out);
    return FALSE;
  }
  return TRUE;
}

int
main(int argc, char **argv)
{
  if (argc != 4) {
    g_printerr("usage: views-screenshot PROJECT_DIR AUDIO.png TEXT.png\n");
    return 2;
  }
  gtk_init();
  g_autoptr(GError) error = NULL;
  g_autoptr(FthStore) store = fth_store_open(argv[1], &error);
  if (store == NULL) {
    g_printerr("views-screenshot: %s\n", error->message);
    return 1;
  }
  g_autoptr(FthItemRecord) audio = pick_item(store, FTH_ITEM_AUDIO, &error);
  g_autoptr(FthItemRecord) text = pick_item(store, FTH_ITEM_TEXT, &error);
  if (audio == NULL || text == NULL) {
    g_printerr("views-screenshot: %s: need an audio and a text item\n", argv[1]);
    return 1;
  }
  g_autoptr(GPtrArray) labels = fth_store_list_labels(store, &error);
  g_ptr_array_add(labels, demo_label(-1, "speech", "#33d17a", FTH_LABEL_SEGMENT));
  g_ptr_array_add(labels, demo_label(-2, "PERSON", "#f66151", FTH_LABEL_SPAN));
  g_ptr_array_add(labels, demo_label(-3, "THING", "#62a0ea", FTH_LABEL_SPAN));

  /* Audio */
  GtkWidget *window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(window), 900, 420);
  GtkWidget *waveform = fth_waveform_view_new();
  gtk_window_set_child(GTK_WINDOW(window), waveform);
  gtk_window_present(GTK_WINDOW(window));
  g_autofree char *audio_path = fth_store_resolve_path(store, audio->path);
  fth_waveform_view_load(FTH_WAVEFORM_VIEW(waveform), audio_path, NULL, NULL);
  if (!fth_test_spin_until(waveform_ready, waveform, 60000)) {
    g_printerr("views-screenshot: %s: %s\n", audio_path,
               fth_waveform_view_get_message(FTH_WAVEFORM_VIEW(waveform)));
    return 1;
  }
  g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, audio->id, &error);
  double d = fth_waveform_view_get_duration(FTH_WAVEFORM_VIEW(waveform));
  FthAnnotation *seg = demo_annotation(-10, -1, FTH_GEOM_SEGMENT, FTH_AUTHOR_HUMAN, 1.0);
  seg->t0 = d * 0.2;
  seg->t1 = d * 0.75;
  g_ptr_array_add(anns, seg);
  FthAnnotation *inner = demo_annotation(-11, -1, FTH_GEOM_SEGMENT, FTH_AUTHOR_HUMAN, 1.0);
  inner->t0 = d * 0.45;
  inner->t1 = d * 0.9;
  g_ptr_array_add(anns, inner);
  FthAnnotation *pred = demo_annotation(-12, -1, FTH_GEOM_SEGMENT, FTH_AUTHOR_MODEL, 0.83);
  pred->t0 = d * 0.18;
  pred->t1 = d * 0.7;
  g_ptr_array_add(anns, pred);
  fth_waveform_view_set_annotations(FTH_WAVEFORM_VIEW(waveform), anns, labels);
  fth_waveform_view_seek(FTH_WAVEFORM_VIEW(waveform), d * 0.6);
  fth_waveform_view_set_selected(FTH_WAVEFORM_VIEW(waveform), -10);
  if (!save(waveform, argv[2]))
    return 1;
  gtk_window_destroy(GTK_WINDOW(window));

  /* Text */
  window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(window), 900, 420);
  GtkWidget *spans = fth_text_span_view_new();
  gtk_window_set_child(GTK_WINDOW(window), spans);
  gtk_window_present(GTK_WINDOW(window));
  if (text->text != NULL) {
    fth_text_span_view_set_text(FTH_TEXT_SPAN_VIEW(spans), text->text, text->path);
  } else {
    g_autofree char *text_path = fth_store_resolve_path(store, text->path);
    fth_text_span_view_load_file(FTH_TEXT_SPAN_VIEW(spans), text_path);
  }
  g_clear_pointer(&anns, g_ptr_array_unref);
  anns = fth_store_list_annotations(store, text->id, &error);
  /* Capitalised words after the first: spans, the last a suggestion; the first one nests a
   * span over its first half. */
  GtkTextBuffer *buffer = gtk_text_view_get_buffer(
    fth_text_span_view_get_text_view(FTH_TEXT_SPAN_VIEW(spans)));
  GtkTextIter it;
  gtk_text_buffer_get_start_iter(buffer, &it);
  guint found = 0;
  while (found < 4 && gtk_text_iter_forward_word_end(&it)) {
    GtkTextIter start = it;
    gtk_text_iter_backward_word_start(&start);
    gunichar c = gtk_text_iter_get_char(&start);
    gint64 s = gtk_text_iter_get_offset(&start), e = gtk_text_iter_get_offset(&it);
    if (s == 0 || !g_unichar_isupper(c) || e - s < 3)
      continue;
    gboolean suggestion = found == 3;
    FthAnnotation *a = demo_annotation(-20 - found, found % 2 ? -3 : -2, FTH_GEOM_SPAN,
                                       suggestion ? FTH_AUTHOR_MODEL : FTH_AUTHOR_HUMAN,
                                       suggestion ? 0.71 : 1.0);
    a->start = s;
    a->end = e;
    g_ptr_array_add(anns, a);
    if (found == 0 && e - s >= 4) {
      FthAnnotation *n = demo_annotation(-30, -3, FTH_GEOM_SPAN, FTH_AUTHOR_HUMAN, 1.0);
      n->start = s;
      n->end = s + (e - s) / 2;
      g_ptr_array_add(anns, n);
    }
    found++;
  }
  fth_text_span_view_set_annotations(FTH_TEXT_SPAN_VIEW(spans), anns, labels);
  if (!save(spans, argv[3]))
    return 1;
  gtk_window_destroy(GTK_WINDOW(window));
  return 0;
}
