/* Text models end to end through fth_train: a synthetic classification project (the class is
 * decided by a keyword; a quarter of the items Chinese) that each text recipe of the zoo learns,
 * the tokenizer saved with the checkpoint, fth_predict on it; a synthetic NER project (names and
 * cities from lists, some of two words) that the tagger learns to a high entity F1; entity
 * counting as seqeval does; token augmentation; the errors for bad data; a tokenizer that
 * learns the training split's words only. */
#include <fathom/train.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "fixtures.h"

static char *tmp_root;

static const char *const filler[] = {"the", "a", "very", "today", "we", "saw", "some", "people",
                                     "and", "then", "it", "was", "quite", "nice", "really", "old"};
static const char *const filler_zh[] = {"我", "们", "今", "天", "看", "到", "一", "些", "人", "很",
                                        "好"};
static const char *const keywords[2][4] = {{"goal", "match", "team", "score"},
                                           {"code", "chip", "data", "robot"}};
static const char *const keywords_zh[2][2] = {{"球", "赛"}, {"码", "芯"}};

static void
add_text_item(FthStore *store, const char *text, int row, gint64 *id)
{
  GError *error = NULL;
  g_autoptr(FthItemRecord) it = fth_item_record_new();
  it->kind = FTH_ITEM_TEXT;
  it->path = g_strdup("texts.jsonl");
  it->member = row;
  it->text = g_strdup(text);
  it->length_chars = g_utf8_strlen(text, -1);
  it->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, text, -1);
  g_assert_true(fth_store_add_item(store, it, id, NULL, &error));
  g_assert_no_error(error);
}

/* n items, classes "sport" and "tech"; every fourth is Chinese. */
static char *
make_classification_project(const char *name, int n)
{
  g_autofree char *dir = g_build_filename(tmp_root, name, NULL);
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  gint64 labels[2];
  g_assert_true(fth_store_add_label(store, "sport", NULL, NULL, FTH_LABEL_CLASS, &labels[0], &error));
  g_assert_true(fth_store_add_label(store, "tech", NULL, NULL, FTH_LABEL_CLASS, &labels[1], &error));
  GRand *r = g_rand_new_with_seed(11);
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < n; i++) {
    int cls = i % 2, len = g_rand_int_range(r, 6, 11), at = g_rand_int_range(r, 0, len);
    gboolean zh = i % 4 >= 2;
    GString *s = g_string_new("");
    for (int w = 0; w < len; w++) {
      const char *word = w == at ? (zh ? keywords_zh[cls][g_rand_int_range(r, 0, 2)]
                                       : keywords[cls][g_rand_int_range(r, 0, 4)])
                         : zh ? filler_zh[g_rand_int_range(r, 0, G_N_ELEMENTS(filler_zh))]
                              : filler[g_rand_int_range(r, 0, G_N_ELEMENTS(filler))];
      g_string_append_printf(s, "%s%s", w && !zh ? " " : "", word);
    }
    /* No item number: a tokenizer that never saw the held-out items splits their numbers into
     * digit pieces, noise a bag of embeddings overfits on. The texts are distinct all the same. */
    g_string_append(s, zh ? "。" : ".");
    gint64 id;
    add_text_item(store, s->str, i, &id);
    g_string_free(s, TRUE);
    g_assert_true(fth_store_set_class(store, id, labels[cls], FTH_AUTHOR_HUMAN, 0, 1.0, NULL,
                                      &error));
  }
  g_assert_true(fth_store_commit(store, &error));
  g_rand_free(r);
  return g_steal_pointer(&dir);
}

static const char *const people[] = {"Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace"};
static const char *const places[] = {"Paris", "Berlin", "Tokyo", "Madrid", "Oslo", "New York",
                                     "Buenos Aires"};

/* 200 sentences of filler words with one or two entities (labels PER and LOC, spans in
 * characters). */
static char *
make_ner_project(const char *project_name)
{
  g_autofree char *dir = g_build_filename(tmp_root, project_name, NULL);
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_create(dir, &error);
  g_assert_no_error(error);
  gint64 labels[2];
  g_assert_true(fth_store_add_label(store, "PER", NULL, NULL, FTH_LABEL_SPAN, &labels[0], &error));
  g_assert_true(fth_store_add_label(store, "LOC", NULL, NULL, FTH_LABEL_SPAN, &labels[1], &error));
  GRand *r = g_rand_new_with_seed(23);
  g_assert_true(fth_store_begin(store, &error));
  for (int i = 0; i < 200; i++) {
    int len = g_rand_int_range(r, 5, 10), n_ent = 1 + (i % 2);
    int at[2] = {g_rand_int_range(r, 0, len), g_rand_int_range(r, 0, len)};
    GString *s = g_string_new("");
    FthAnnotation spans[2];
    int n_spans = 0;
    for (int w = 0; w < len; w++) {
      if (w)
        g_string_append_c(s, ' ');
      int type = w == at[0] ? 0 : (n_ent == 2 && w == at[1]) ? 1 : -1;
      if (type < 0) {
        g_string_append(s, filler[g_rand_int_range(r, 0, G_N_ELEMENTS(filler))]);
        continue;
      }
      const char *name = type == 0 ? people[g_rand_int_range(r, 0, G_N_ELEMENTS(people))]
                                   : places[g_rand_int_range(r, 0, G_N_ELEMENTS(places))];
      FthAnnotation *a = &spans[n_spans++];
      memset(a, 0, sizeof *a);
      a->label_id = labels[type];
      a->geom = FTH_GEOM_SPAN;
      a->start = g_utf8_strlen(s->str, -1);
      a->end = a->start + g_utf8_strlen(name, -1);
      a->author = FTH_AUTHOR_HUMAN;
      a->score = 1.0;
      g_string_append(s, name);
    }
    g_string_append_printf(s, " %d", i);
    gint64 id;
    add_text_item(store, s->str, i, &id);
    for (int k = 0; k < n_spans; k++) {
      spans[k].item_id = id;
      g_assert_true(fth_store_add_annotation(store, &spans[k], NULL, &error));
    }
    g_string_free(s, TRUE);
  }
  g_assert_true(fth_store_commit(store, &error));
  g_rand_free(r);
  return g_steal_pointer(&dir);
}

static double
last_metric(FthStore *store, gint64 run_id, const char *name)
{
  g_autoptr(GPtrArray) m = fth_store_list_metrics(store, run_id, name, NULL);
  g_assert_nonnull(m);
  g_assert_cmpuint(m->len, >, 0);
  return ((FthMetric *)g_ptr_array_index(m, m->len - 1))->value;
}

static void
test_classifiers(void)
{
  g_autofree char *project = make_classification_project("cls", 240);
  static const struct {
    const char *recipe;
    int epochs;
  } runs[] = {{"text-bow", 10}, {"text-cnn", 6}, {"text-transformer", 8}};
  for (unsigned k = 0; k < G_N_ELEMENTS(runs); k++) {
    GError *error = NULL;
    g_autoptr(FthStore) store = fth_store_open(project, &error);
    g_assert_no_error(error);
    g_autofree char *ckpt = g_build_filename(project, runs[k].recipe, NULL);
    static const char *const vars[] = {"tokens=24", "vocab=400", NULL};
    FthTrainOptions o;
    fth_train_options_init(&o);
    o.recipe = runs[k].recipe;
    o.vars = vars;
    o.epochs = runs[k].epochs;
    o.seed = 3;
    o.checkpoint_dir = ckpt;
    FthTrainResult res;
    gint64 t0 = g_get_monotonic_time();
    gboolean ok = fth_train(store, &o, &res, &error);
    g_assert_no_error(error);
    g_assert_true(ok);
    g_test_message("%s: test accuracy %.3f in %.1f s", runs[k].recipe, res.test_acc,
                   (double)(g_get_monotonic_time() - t0) / 1e6);
    g_assert_cmpfloat(res.test_acc, >, 0.9);
    g_autofree char *tok_path = g_build_filename(ckpt, "tokenizer.json", NULL);
    g_autoptr(FthTokenizer) tok = fth_tokenizer_load(tok_path, &error);
    g_assert_no_error(error);
    g_assert_cmpint(fth_tokenizer_token_id(tok, "goal"), >=, FTH_TOKEN_N_SPECIAL);
    g_assert_cmpint(fth_tokenizer_token_id(tok, "球"), >=, FTH_TOKEN_N_SPECIAL);

    /* Prediction with the checkpoint's tokenizer: probabilities for every item. */
    FthPredictOptions po = {.checkpoint_dir = ckpt};
    gint64 run_id;
    gsize n_items = 0;
    g_assert_true(fth_predict(store, &po, &run_id, &n_items, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(n_items, ==, 240);
    g_autoptr(FthLabel) sport = fth_store_find_label(store, "sport", &error);
    int right = 0;
    for (gint64 id = 1; id <= 240; id++) {
      g_autoptr(FthPrediction) pred = fth_store_get_prediction(store, run_id, id, &error);
      g_assert_nonnull(pred);
      g_assert_cmpuint(pred->n_classes, ==, 2);
      g_assert_cmpfloat(fabs(pred->probs[0] + pred->probs[1] - 1.0), <, 1e-5);
      right += (pred->top_label_id == sport->id) == ((id - 1) % 2 == 0);
    }
    g_assert_cmpint(right, >, 216);
    fth_train_result_clear(&res);
  }
}

/* A BPE recipe with token dropout, swaps and dropout. */
static const char *bpe_recipe =
  "{\"name\": \"bpe-cnn\", \"input\": {\"tokens\": 24, \"vocab\": 300, \"tokenizer\": \"bpe\"},"
  " \"layers\": [{\"type\": \"embedding\", \"dim\": 16, \"positions\": false},"
  "  {\"type\": \"text_cnn\", \"kernels\": [2, 3], \"channels\": 8}, {\"type\": \"dropout\", \"p\": 0.3},"
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}],"
  " \"train\": {\"optimizer\": \"adamw\", \"lr\": 0.003, \"batch\": 32, \"epochs\": 3,"
  "  \"augment\": {\"token_dropout\": 0.1, \"token_swap\": 0.1}}}";

static gboolean
train_bpe(const char *project, const char *recipe, const char *ckpt, int64_t stop,
          gboolean resume, GError **error)
{
  g_autoptr(FthStore) store = fth_store_open(project, error);
  g_assert_nonnull(store);
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe;
  o.seed = 9;
  o.checkpoint_dir = ckpt;
  o.stop_after_steps = stop;
  o.resume = resume;
  FthTrainResult res;
  gboolean ok = fth_train(store, &o, &res, error);
  fth_train_result_clear(&res);
  return ok;
}

static GBytes *
file_bytes(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  char *data;
  gsize len;
  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  return g_bytes_new_take(data, len);
}

/* A text run stopped mid-epoch and resumed (with the tokenizer saved by its first part) ends
 * with the weights of one that never stopped: augmentation and dropout depend only on the seed,
 * the item and the epoch or step. */
static void
test_resume(void)
{
  g_autofree char *project = make_classification_project("resume", 240);
  g_autofree char *recipe = g_build_filename(tmp_root, "bpe-cnn.json", NULL);
  g_assert_true(g_file_set_contents(recipe, bpe_recipe, -1, NULL));
  g_autofree char *a = g_build_filename(project, "a", NULL);
  g_autofree char *b = g_build_filename(project, "b", NULL);
  GError *error = NULL;
  g_assert_true(train_bpe(project, recipe, a, 0, FALSE, &error));
  g_assert_true(train_bpe(project, recipe, b, 8, FALSE, &error));
  g_assert_no_error(error);
  g_autoptr(FthCheckpointMeta) mid = fth_checkpoint_load_meta(b, &error);
  g_assert_no_error(error);
  g_assert_cmpint(mid->step, ==, 8);
  g_assert_true(train_bpe(project, recipe, b, 0, TRUE, &error));
  g_assert_no_error(error);
  g_autoptr(FthCheckpointMeta) ma = fth_checkpoint_load_meta(a, &error);
  g_autoptr(FthCheckpointMeta) mb = fth_checkpoint_load_meta(b, &error);
  g_assert_no_error(error);
  g_assert_cmpint(ma->step, ==, mb->step);
  g_autoptr(GBytes) wa = file_bytes(a, ma->weights_file);
  g_autoptr(GBytes) wb = file_bytes(b, mb->weights_file);
  g_assert_true(g_bytes_equal(wa, wb));
  g_autoptr(GBytes) ta = file_bytes(a, "tokenizer.json");
  g_autoptr(GBytes) tb = file_bytes(b, "tokenizer.json");
  g_assert_true(g_bytes_equal(ta, tb));
  g_assert_true(strstr(g_bytes_get_data(ta, NULL), "\"bpe\"") != NULL);
}

static gboolean
train_bow(const char *project, const char *ckpt, const char *init, GError **error)
{
  g_autoptr(FthStore) store = fth_store_open(project, error);
  g_assert_nonnull(store);
  static const char *const vars[] = {"tokens=24", "vocab=400", NULL};
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = "text-bow";
  o.vars = vars;
  o.epochs = 1;
  o.checkpoint_dir = ckpt;
  o.init_weights = init;
  FthTrainResult res;
  gboolean ok = fth_train(store, &o, &res, error);
  fth_train_result_clear(&res);
  return ok;
}

/* Fine-tuning from another run's weights keeps that run's tokenizer: the embedding rows belong
 * to its tokens. A run on the smaller project alone trains a different one. */
static void
test_init_weights_tokenizer(void)
{
  g_autofree char *big = make_classification_project("fine-a", 240);
  g_autofree char *small = make_classification_project("fine-b", 60);
  g_autofree char *a = g_build_filename(big, "a", NULL);
  g_autofree char *b = g_build_filename(small, "b", NULL);
  g_autofree char *c = g_build_filename(small, "c", NULL);
  GError *error = NULL;
  g_assert_true(train_bow(big, a, NULL, &error));
  g_autoptr(FthCheckpointMeta) ma = fth_checkpoint_load_meta(a, &error);
  g_assert_no_error(error);
  g_autofree char *wa = g_build_filename(a, ma->weights_file, NULL);
  g_assert_true(train_bow(small, b, wa, &error));
  g_assert_true(train_bow(small, c, NULL, &error));
  g_assert_no_error(error);
  g_autoptr(GBytes) ta = file_bytes(a, "tokenizer.json");
  g_autoptr(GBytes) tb = file_bytes(b, "tokenizer.json");
  g_autoptr(GBytes) tc = file_bytes(c, "tokenizer.json");
  g_assert_true(g_bytes_equal(ta, tb));
  g_assert_false(g_bytes_equal(ta, tc));
}

static void
test_ner(void)
{
  g_autofree char *project = make_ner_project("ner");
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_assert_no_error(error);
  static const char *const vars[] = {"tokens=24", "vocab=400", NULL};
  g_autofree char *ckpt = g_build_filename(project, "ner-ckpt", NULL);
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = "ner-transformer";
  o.vars = vars;
  o.epochs = 8;
  o.seed = 5;
  o.checkpoint_dir = ckpt;
  FthTrainResult res;
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(fth_train(store, &o, &res, &error));
  g_assert_no_error(error);
  double f1 = last_metric(store, res.run_id, "val_entity_f1");
  g_test_message("ner-transformer: validation entity F1 %.3f, token accuracy %.3f in %.1f s", f1,
                 last_metric(store, res.run_id, "val_acc"),
                 (double)(g_get_monotonic_time() - t0) / 1e6);
  g_assert_cmpfloat(f1, >, 0.9);
  g_assert_cmpfloat(last_metric(store, res.run_id, "test_entity_f1"), >, 0.9);
  /* The classes are O and the BIO tags of each span label. */
  g_autoptr(FthCheckpointMeta) meta = fth_checkpoint_load_meta(ckpt, &error);
  g_assert_no_error(error);
  g_assert_cmpint(meta->n_labels, ==, 5);
  g_assert_cmpstr(meta->labels[0], ==, "O");
  g_assert_cmpstr(meta->labels[1], ==, "B-PER");
  g_assert_cmpstr(meta->labels[4], ==, "I-LOC");
  fth_train_result_clear(&res);

  /* Prediction: the model's spans match the human ones on nearly every item. */
  FthPredictOptions po = {.checkpoint_dir = ckpt};
  gint64 run_id;
  gsize n_items = 0;
  g_assert_true(fth_predict(store, &po, &run_id, &n_items, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n_items, ==, 200);
  int items_right = 0;
  for (gint64 id = 1; id <= 200; id++) {
    g_autoptr(GPtrArray) anns = fth_store_list_annotations(store, id, &error);
    g_assert_nonnull(anns);
    int human = 0, model = 0, matched = 0;
    for (guint i = 0; i < anns->len; i++) {
      FthAnnotation *a = g_ptr_array_index(anns, i);
      g_assert_cmpint(a->geom, ==, FTH_GEOM_SPAN);
      if (a->author == FTH_AUTHOR_HUMAN) {
        human++;
        continue;
      }
      g_assert_cmpint(a->run_id, ==, run_id);
      g_assert_cmpfloat(a->score, >, 0.0);
      g_assert_cmpfloat(a->score, <=, 1.0);
      model++;
      for (guint k = 0; k < anns->len; k++) {
        FthAnnotation *h = g_ptr_array_index(anns, k);
        matched += h->author == FTH_AUTHOR_HUMAN && h->start == a->start && h->end == a->end &&
                   h->label_id == a->label_id;
      }
    }
    items_right += human == model && matched == human;
    g_autoptr(FthEmbedding) emb = fth_store_get_embedding(store, run_id, id, &error);
    g_assert_nonnull(emb);
    g_assert_cmpuint(emb->dim, ==, 64);
  }
  g_test_message("ner-transformer: predicted spans exact on %d of 200 items", items_right);
  g_assert_cmpint(items_right, >=, 190);
}

/* One epoch of recipe; the checkpoint's tokenizer. */
static FthTokenizer *
train_one_epoch(const char *project, const char *recipe, const char *ckpt)
{
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_assert_no_error(error);
  static const char *const vars[] = {"tokens=24", "vocab=400", NULL};
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe;
  o.vars = vars;
  o.epochs = 1;
  o.checkpoint_dir = ckpt;
  FthTrainResult res;
  g_assert_true(fth_train(store, &o, &res, &error));
  g_assert_no_error(error);
  fth_train_result_clear(&res);
  g_autofree char *path = g_build_filename(ckpt, "tokenizer.json", NULL);
  FthTokenizer *tok = fth_tokenizer_load(path, &error);
  g_assert_no_error(error);
  return tok;
}

/* The tokenizer learns the training split's texts alone. Items of the test split whose frequent
 * word "zanzibarian" no training item has: it gets no entry of its own (it encodes to several
 * sub-words or [UNK]); once those items are training items, it does. Classification and
 * tagging alike. */
static void
test_held_out_vocabulary(void)
{
  static const struct {
    const char *recipe;
    gboolean tagging;
  } cases[] = {{"text-bow", FALSE}, {"ner-transformer", TRUE}};
  for (unsigned k = 0; k < G_N_ELEMENTS(cases); k++) {
    g_autofree char *name = g_strdup_printf("held-out-%s", cases[k].recipe);
    g_autofree char *project = cases[k].tagging ? make_ner_project(name)
                                                : make_classification_project(name, 120);
    GError *error = NULL;
    g_autoptr(GArray) held_out = g_array_new(FALSE, FALSE, sizeof(gint64));
    {
      g_autoptr(FthStore) store = fth_store_open(project, &error);
      g_assert_no_error(error);
      g_autoptr(FthLabel) label =
        fth_store_find_label(store, cases[k].tagging ? "PER" : "sport", &error);
      g_assert_nonnull(label);
      g_assert_true(fth_store_begin(store, &error));
      for (int i = 0; i < 12; i++) {
        g_autofree char *text = g_strdup_printf("Alice zanzibarian met a zanzibarian %d", i);
        gint64 id;
        add_text_item(store, text, 1000 + i, &id);
        g_array_append_val(held_out, id);
        if (cases[k].tagging) {
          g_autoptr(FthAnnotation) a = fth_annotation_new();
          a->item_id = id;
          a->label_id = label->id;
          a->geom = FTH_GEOM_SPAN;
          a->start = 0;
          a->end = 5;
          a->author = FTH_AUTHOR_HUMAN;
          a->score = 1.0;
          g_assert_true(fth_store_add_annotation(store, a, NULL, &error));
        } else {
          g_assert_true(fth_store_set_class(store, id, label->id, FTH_AUTHOR_HUMAN, 0, 1.0, NULL,
                                            &error));
        }
      }
      /* Every other item has no split and trains. */
      g_assert_true(fth_store_set_split(store, (const gint64 *)(void *)held_out->data,
                                        held_out->len, FTH_SPLIT_TEST, &error));
      g_assert_true(fth_store_commit(store, &error));
      g_assert_no_error(error);
    }
    g_autofree char *a = g_build_filename(project, "a", NULL);
    g_autoptr(FthTokenizer) tok = train_one_epoch(project, cases[k].recipe, a);
    g_assert_cmpint(fth_tokenizer_token_id(tok, "zanzibarian"), ==, -1);
    int32_t ids[8];
    int n = 0;
    g_assert_true(fth_tokenizer_encode(tok, "zanzibarian", -1, NULL, 8, FALSE, ids, NULL, NULL,
                                       &n, &error));
    g_assert_no_error(error);
    g_assert_true(n > 1 || ids[0] == FTH_TOKEN_UNK);
    /* The training items' words are known. */
    g_assert_cmpint(fth_tokenizer_token_id(tok, cases[k].tagging ? "Paris" : "goal"), >=,
                    FTH_TOKEN_N_SPECIAL);

    {
      g_autoptr(FthStore) store = fth_store_open(project, &error);
      g_assert_no_error(error);
      g_assert_true(fth_store_set_split(store, (const gint64 *)(void *)held_out->data,
                                        held_out->len, FTH_SPLIT_TRAIN, &error));
      g_assert_no_error(error);
    }
    g_autofree char *b = g_build_filename(project, "b", NULL);
    g_autoptr(FthTokenizer) all = train_one_epoch(project, cases[k].recipe, b);
    g_assert_cmpint(fth_tokenizer_token_id(all, "zanzibarian"), >=, FTH_TOKEN_N_SPECIAL);
  }
}

/* Entities counted as seqeval's default mode counts them. */
static void
test_entity_counts(void)
{
  const int32_t truth[] = {FTH_IGNORE_TARGET, 0, 1, 2, 0, 3, FTH_IGNORE_TARGET};
  const int32_t pred[] = {3, 0, 1, 2, 4, 3, 1};
  FthEntityCounts c = {0};
  fth_entity_counts_add(&c, truth, pred, G_N_ELEMENTS(truth));
  /* Truth O B-PER I-PER O B-LOC between two padding positions: PER [1,3), LOC [4,5) (among
   * the counted positions).
   * Prediction: PER [1,3) right; an I-LOC after I-PER starts LOC [3,4); B-LOC starts [4,5)
   * right. The padding positions' tags do not count. */
  g_assert_cmpint(c.n_true, ==, 2);
  g_assert_cmpint(c.n_pred, ==, 3);
  g_assert_cmpint(c.n_correct, ==, 2);
  g_assert_cmpfloat(fabs(fth_entity_f1(&c) - 2 * (2.0 / 3) * 1.0 / (2.0 / 3 + 1.0)), <, 1e-12);
  /* An I after O starts an entity; a wrong end is wrong. */
  const int32_t t2[] = {2, 2, 0, 1, 2};
  const int32_t p2[] = {2, 0, 0, 1, 0};
  FthEntityCounts c2 = {0};
  fth_entity_counts_add(&c2, t2, p2, 5);
  g_assert_cmpint(c2.n_true, ==, 2);
  g_assert_cmpint(c2.n_pred, ==, 2);
  g_assert_cmpint(c2.n_correct, ==, 0);
  g_assert_cmpfloat(fth_entity_f1(&c2), ==, 0.0);
}

static void
test_token_augment(void)
{
  int32_t ids[40], tags[40], a[40], at[40], b[40], bt[40];
  for (int i = 0; i < 40; i++) {
    ids[i] = i == 0 ? FTH_TOKEN_CLS : i == 30 ? FTH_TOKEN_SEP : i > 30 ? FTH_TOKEN_PAD : 100 + i;
    tags[i] = i;
  }
  FthAugment aug = {.token_dropout = 0.2f, .token_swap = 0.2f};
  fth_augment_tokens(&aug, ids, tags, 40, 7, 99, 3, a, at);
  fth_augment_tokens(&aug, ids, tags, 40, 7, 99, 3, b, bt);
  g_assert_cmpmem(a, sizeof a, b, sizeof b);
  int dropped = 0, moved = 0;
  for (int i = 0; i < 40; i++) {
    if (ids[i] < FTH_TOKEN_N_SPECIAL) {
      g_assert_cmpint(a[i], ==, ids[i]);
      continue;
    }
    dropped += a[i] == FTH_TOKEN_UNK;
    moved += at[i] != i;
    /* A token and its tag move together. */
    if (a[i] != FTH_TOKEN_UNK)
      g_assert_cmpint(a[i], ==, 100 + at[i]);
  }
  g_assert_cmpint(dropped, >, 0);
  g_assert_cmpint(moved, >, 0);
  /* Another epoch draws differently; a zero setting changes nothing. */
  fth_augment_tokens(&aug, ids, tags, 40, 7, 99, 4, b, bt);
  g_assert_true(memcmp(a, b, sizeof a) != 0);
  FthAugment none = {0};
  fth_augment_tokens(&none, ids, tags, 40, 7, 99, 3, b, bt);
  g_assert_cmpmem(b, sizeof b, ids, sizeof ids);
}

static void
expect_train_error(const char *project, const char *recipe, const char *needle)
{
  GError *error = NULL;
  g_autoptr(FthStore) store = fth_store_open(project, &error);
  g_assert_no_error(error);
  FthTrainOptions o;
  fth_train_options_init(&o);
  o.recipe = recipe;
  o.epochs = 1;
  FthTrainResult res;
  g_assert_false(fth_train(store, &o, &res, &error));
  g_assert_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_DATA);
  if (strstr(error->message, needle) == NULL)
    g_error("'%s' does not mention '%s'", error->message, needle);
  g_error_free(error);
  fth_train_result_clear(&res);
}

static void
test_bad_data(void)
{
  GError *error = NULL;
  g_autofree char *dir = g_build_filename(tmp_root, "bad", NULL);
  {
    g_autoptr(FthStore) store = fth_store_create(dir, &error);
    g_assert_no_error(error);
  }
  expect_train_error(dir, "text-bow", "no labeled text items");
  gint64 cls, span, id_file, id_span;
  {
    g_autoptr(FthStore) store = fth_store_open(dir, &error);
    g_assert_true(fth_store_add_label(store, "a", NULL, NULL, FTH_LABEL_CLASS, &cls, &error));
    g_assert_true(fth_store_add_label(store, "NAME", NULL, NULL, FTH_LABEL_SPAN, &span, &error));
    g_autofree char *path = g_build_filename(dir, "latin1.txt", NULL);
    g_assert_true(g_file_set_contents(path, "caf\xe9 au lait", -1, &error));
    g_autoptr(FthItemRecord) it = fth_item_record_new();
    it->kind = FTH_ITEM_TEXT;
    it->path = g_strdup(path);
    it->sha256 = g_strdup_printf("%064x", 7);
    g_assert_true(fth_store_add_item(store, it, &id_file, NULL, &error));
    g_assert_true(fth_store_set_class(store, id_file, cls, FTH_AUTHOR_HUMAN, 0, 1.0, NULL, &error));
    add_text_item(store, "short text", 1, &id_span);
    g_autoptr(FthAnnotation) a = fth_annotation_new();
    a->item_id = id_span;
    a->label_id = span;
    a->geom = FTH_GEOM_SPAN;
    a->start = 6;
    a->end = 40;
    a->author = FTH_AUTHOR_HUMAN;
    g_assert_true(fth_store_add_annotation(store, a, NULL, &error));
    g_assert_no_error(error);
  }
  g_autofree char *file_item = g_strdup_printf("item %" G_GINT64_FORMAT " (latin1.txt)", id_file);
  expect_train_error(dir, "text-bow", file_item);
  expect_train_error(dir, "text-bow", "not valid UTF-8");
  g_autofree char *span_item = g_strdup_printf("item %" G_GINT64_FORMAT, id_span);
  expect_train_error(dir, "ner-transformer", span_item);
  expect_train_error(dir, "ner-transformer", "the span [6, 40) of label 'NAME' does not fit the "
                                             "text's 10 characters");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp("fth-text-XXXXXX", NULL);
  g_test_add_func("/text/entity-counts", test_entity_counts);
  g_test_add_func("/text/token-augment", test_token_augment);
  g_test_add_func("/text/bad-data", test_bad_data);
  g_test_add_func("/text/classifiers", test_classifiers);
  g_test_add_func("/text/resume", test_resume);
  g_test_add_func("/text/init-weights-tokenizer", test_init_weights_tokenizer);
  g_test_add_func("/text/held-out-vocabulary", test_held_out_vocabulary);
  g_test_add_func("/text/ner", test_ner);
  int rc = g_test_run();
  train_test_rmtree(tmp_root);
  g_free(tmp_root);
  return rc;
}
