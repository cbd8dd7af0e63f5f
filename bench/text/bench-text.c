/* Text models in Fathom against their PyTorch peer (bench/text/text_peer.py) on one synthetic
 * corpus whose token ids both read from one file.
 *
 *   bench-text prepare --out FILE [--docs N] [--seed N]
 *   bench-text train --data FILE --recipe NAME [--epochs N] [--threads N] [--seed N]
 *
 * prepare: N documents (default 6000) of 4 classes over invented words. Each document is Zipf
 * filler (400 words, 2 to 10 on each side) around one clause "A [f] [not] VERB [f] B" (f: an
 * optional filler word) where A and B are an agent and a target word (in either order) and
 * VERB a positive or a negative verb; the class is the pair (verb polarity XOR negation, agent
 * first or target first). Every agent, target, verb and negator
 * occurs in every class, and decoy verbs and negators sit in the filler, so no keyword decides a
 * class: the combination and the order do. A stratified 80/20 split; a WordPiece tokenizer
 * (8000 entries, lowercase) trained on the training texts alone; every document encoded into 64
 * ids. FILE: "FTHTXT01", then int32 n_train, n_test, seq_len, vocab, n_classes, then the training
 * ids [n_train, seq_len] and labels, then the test ids and labels (little-endian int32).
 *
 * train: the recipe (its variables "tokens" and "vocab" set from FILE) trained by FthTrainer with
 * its optimizer, schedule, batch and epochs, without augmentation (the peer has none); training
 * sequences/s over the epochs' wall time; test accuracy after the last epoch; then an inference
 * model with the trained weights: batch-1 latency (median over 500 test sequences after 50
 * warm-up) and batch-256 throughput (median of 5 passes over the test set); peak RSS. Prints one
 * RESULT_JSON line. */
#include <fathom/train.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAGIC "FTHTXT01"
#define N_CLASSES 4
#define SEQ_LEN 64
#define VOCAB 8000

static double
now_s(void)
{
  return (double)g_get_monotonic_time() / 1e6;
}

static double
maxrss_mib(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* ---- The corpus ------------------------------------------------------------------------------ */

typedef struct {
  GPtrArray *filler, *agents, *targets, *verbs[2], *negators;
  double *filler_cdf; /* Zipf(1) over the filler words */
} Lexicon;

/* n distinct invented words of 2 or 3 syllables, none already in seen. */
static GPtrArray *
invent_words(GRand *r, GHashTable *seen, int n)
{
  static const char consonants[] = "bdfgklmnprstvz";
  static const char vowels[] = "aeiou";
  GPtrArray *words = g_ptr_array_new_with_free_func(g_free);
  while ((int)words->len < n) {
    int syllables = g_rand_int_range(r, 2, 4);
    char w[8];
    for (int s = 0; s < syllables; s++) {
      w[2 * s] = consonants[g_rand_int_range(r, 0, sizeof consonants - 1)];
      w[2 * s + 1] = vowels[g_rand_int_range(r, 0, sizeof vowels - 1)];
    }
    w[2 * syllables] = '\0';
    if (g_hash_table_contains(seen, w))
      continue;
    char *word = g_strdup(w);
    g_hash_table_add(seen, word);
    g_ptr_array_add(words, g_strdup(word));
  }
  return words;
}

static void
lexicon_init(Lexicon *lx, GRand *r)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  lx->negators = g_ptr_array_new_with_free_func(g_free);
  for (const char *const *n = (const char *const[]){"not", "never", "hardly", NULL}; *n; n++) {
    g_hash_table_add(seen, g_strdup(*n));
    g_ptr_array_add(lx->negators, g_strdup(*n));
  }
  lx->agents = invent_words(r, seen, 40);
  lx->targets = invent_words(r, seen, 40);
  lx->verbs[0] = invent_words(r, seen, 20);
  lx->verbs[1] = invent_words(r, seen, 20);
  lx->filler = invent_words(r, seen, 400);
  lx->filler_cdf = g_new(double, lx->filler->len);
  double sum = 0;
  for (guint i = 0; i < lx->filler->len; i++)
    lx->filler_cdf[i] = sum += 1.0 / (i + 1);
  for (guint i = 0; i < lx->filler->len; i++)
    lx->filler_cdf[i] /= sum;
}

static void
lexicon_clear(Lexicon *lx)
{
  g_ptr_array_unref(lx->filler);
  g_ptr_array_unref(lx->agents);
  g_ptr_array_unref(lx->targets);
  g_ptr_array_unref(lx->verbs[0]);
  g_ptr_array_unref(lx->verbs[1]);
  g_ptr_array_unref(lx->negators);
  g_free(lx->filler_cdf);
}

static const char *
pick(GRand *r, GPtrArray *words)
{
  return g_ptr_array_index(words, g_rand_int_range(r, 0, (gint32)words->len));
}

static const char *
pick_filler(GRand *r, const Lexicon *lx)
{
  double u = g_rand_double(r);
  guint lo = 0, hi = lx->filler->len - 1;
  while (lo < hi) {
    guint mid = (lo + hi) / 2;
    if (lx->filler_cdf[mid] < u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return g_ptr_array_index(lx->filler, lo);
}

static void
append(GString *s, const char *word)
{
  if (s->len)
    g_string_append_c(s, ' ');
  g_string_append(s, word);
}

/* n filler positions: mostly Zipf words, some decoy verbs, some decoy negators (always followed
 * by a filler word, so the clause's negator is the only one before a verb). */
static void
append_filler(GString *s, GRand *r, const Lexicon *lx, int n)
{
  for (int i = 0; i < n; i++) {
    double u = g_rand_double(r);
    if (u < 0.06) {
      append(s, pick(r, lx->verbs[g_rand_int_range(r, 0, 2)]));
    } else if (u < 0.10) {
      append(s, pick(r, lx->negators));
      append(s, pick_filler(r, lx));
    } else {
      append(s, pick_filler(r, lx));
    }
  }
}

static char *
make_document(GRand *r, const Lexicon *lx, int cls)
{
  int polarity = cls & 1, target_first = cls >> 1;
  gboolean negated = g_rand_boolean(r);
  GString *s = g_string_new("");
  append_filler(s, r, lx, g_rand_int_range(r, 2, 11));
  append(s, pick(r, target_first ? lx->targets : lx->agents));
  for (int g = g_rand_int_range(r, 0, 2); g > 0; g--)
    append(s, pick_filler(r, lx));
  if (negated)
    append(s, pick(r, lx->negators));
  append(s, pick(r, lx->verbs[polarity ^ negated]));
  for (int g = g_rand_int_range(r, 0, 2); g > 0; g--)
    append(s, pick_filler(r, lx));
  append(s, pick(r, target_first ? lx->agents : lx->targets));
  append_filler(s, r, lx, g_rand_int_range(r, 2, 11));
  return g_string_free(s, FALSE);
}

static gboolean
write_ids(FILE *f, const int32_t *ids, const int32_t *labels, const FthSplit *split,
          FthSplit which, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (split[i] == which && fwrite(ids + i * SEQ_LEN, sizeof(int32_t), SEQ_LEN, f) != SEQ_LEN)
      return FALSE;
  for (size_t i = 0; i < n; i++)
    if (split[i] == which && fwrite(labels + i, sizeof(int32_t), 1, f) != 1)
      return FALSE;
  return TRUE;
}

static int
prepare(const char *out, int n_docs, guint32 seed)
{
  GRand *r = g_rand_new_with_seed(seed);
  Lexicon lx;
  lexicon_init(&lx, r);
  size_t n = (size_t)n_docs;
  g_auto(GStrv) texts = g_new0(char *, n + 1);
  g_autofree int32_t *labels = g_new(int32_t, n);
  for (size_t i = 0; i < n; i++) {
    labels[i] = (int32_t)(i % N_CLASSES);
    texts[i] = make_document(r, &lx, labels[i]);
  }
  lexicon_clear(&lx);
  g_rand_free(r);

  GError *error = NULL;
  g_autofree FthSplit *split = g_new(FthSplit, n);
  if (!fth_stratified_split(labels, n, N_CLASSES, 0.0, 0.2, seed, split, &error)) {
    fprintf(stderr, "bench-text: %s\n", error->message);
    return 1;
  }
  g_autofree const char **train_texts = g_new(const char *, n);
  size_t n_train = 0;
  for (size_t i = 0; i < n; i++)
    if (split[i] == FTH_SPLIT_TRAIN)
      train_texts[n_train++] = texts[i];
  FthTokenizerConfig cfg;
  fth_tokenizer_config_init(&cfg);
  cfg.vocab_size = VOCAB;
  double t0 = now_s();
  g_autoptr(FthTokenizer) tok = fth_tokenizer_train(train_texts, n_train, NULL, &cfg, &error);
  if (tok == NULL) {
    fprintf(stderr, "bench-text: %s\n", error->message);
    return 1;
  }
  double t_tok = now_s() - t0;
  g_autofree int32_t *ids = g_new(int32_t, n * SEQ_LEN);
  size_t tokens = 0, truncated = 0;
  for (size_t i = 0; i < n; i++) {
    int used;
    if (!fth_tokenizer_encode(tok, texts[i], -1, NULL, SEQ_LEN, TRUE, ids + i * SEQ_LEN, NULL,
                              NULL, &used, &error)) {
      fprintf(stderr, "bench-text: %s\n", error->message);
      return 1;
    }
    tokens += (size_t)used;
    truncated += used == SEQ_LEN;
  }
  FILE *f = fopen(out, "wb");
  int32_t header[5] = {(int32_t)n_train, (int32_t)(n - n_train), SEQ_LEN, VOCAB, N_CLASSES};
  gboolean ok = f != NULL && fwrite(MAGIC, 1, 8, f) == 8 && fwrite(header, sizeof header, 1, f) == 1 &&
                write_ids(f, ids, labels, split, FTH_SPLIT_TRAIN, n) &&
                write_ids(f, ids, labels, split, FTH_SPLIT_TEST, n);
  if (f != NULL && fclose(f) != 0)
    ok = FALSE;
  if (!ok) {
    fprintf(stderr, "bench-text: %s: cannot write\n", out);
    return 1;
  }
  printf("corpus: %zu documents (%zu train, %zu test), %d classes; tokenizer %d entries from the "
         "training texts in %.2f s; %.1f tokens per document, %zu filling all %d positions\n",
         n, n_train, n - n_train, N_CLASSES, fth_tokenizer_vocab_size(tok), t_tok,
         (double)tokens / (double)n, truncated, SEQ_LEN);
  return 0;
}

/* ---- Training and inference ------------------------------------------------------------------ */

typedef struct {
  int32_t n_train, n_test, seq_len, vocab, n_classes;
  int32_t *train_ids, *train_labels, *test_ids, *test_labels;
} TextData;

static gboolean
read_ints(FILE *f, int32_t **dst, size_t n)
{
  *dst = g_new(int32_t, n ? n : 1);
  return fread(*dst, sizeof(int32_t), n, f) == n;
}

static gboolean
load_data(const char *path, TextData *d)
{
  FILE *f = fopen(path, "rb");
  char magic[8];
  int32_t h[5];
  gboolean ok = f != NULL && fread(magic, 1, 8, f) == 8 && memcmp(magic, MAGIC, 8) == 0 &&
                fread(h, sizeof h, 1, f) == 1 && h[0] > 0 && h[1] > 0 && h[2] > 0 && h[3] > 0 &&
                h[4] > 1;
  if (ok) {
    *d = (TextData){h[0], h[1], h[2], h[3], h[4], NULL, NULL, NULL, NULL};
    ok = read_ints(f, &d->train_ids, (size_t)d->n_train * (size_t)d->seq_len) &&
         read_ints(f, &d->train_labels, (size_t)d->n_train) &&
         read_ints(f, &d->test_ids, (size_t)d->n_test * (size_t)d->seq_len) &&
         read_ints(f, &d->test_labels, (size_t)d->n_test);
  }
  if (f != NULL)
    fclose(f);
  if (!ok)
    fprintf(stderr, "bench-text: %s: not a complete %s file (run bench-text prepare)\n", path,
            MAGIC);
  return ok;
}

/* Per-sequence batch-1 latencies (median, ms) or batch-bs throughput (median of 5, seq/s). */
static gboolean
bench_infer(FthModel *m, const TextData *d, int bs, double *result, GError **error)
{
  FthGraph *g = m->graph;
  size_t t = (size_t)d->seq_len, n = bs == 1 ? MIN(550, (size_t)d->n_test) : (size_t)d->n_test;
  int reps = bs == 1 ? 1 : 6;
  g_autofree double *lat = g_new(double, n);
  double rates[6];
  for (int rep = 0; rep < reps; rep++) {
    double t0 = now_s();
    for (size_t start = 0; start < n; start += (size_t)bs) {
      size_t count = MIN((size_t)bs, n - start);
      double s0 = now_s();
      if ((fth_graph_batch(g) != (int64_t)count &&
           fth_graph_set_batch(g, (int64_t)count) != FTH_STATUS_OK) ||
          fth_graph_set_input(g, m->input, d->test_ids + start * t,
                              count * t * sizeof(int32_t)) != FTH_STATUS_OK ||
          fth_graph_run(g) != FTH_STATUS_OK) {
        g_set_error(error, FTH_TRAIN_ERROR, FTH_TRAIN_ERROR_ENGINE, "inference: %s",
                    fth_last_error());
        return FALSE;
      }
      lat[start] = now_s() - s0;
    }
    rates[rep] = (double)n / (now_s() - t0);
  }
  if (bs == 1) {
    /* The first 50 warm the caches up. */
    qsort(lat + 50, n - 50, sizeof *lat, cmp_double);
    *result = lat[50 + (n - 50) / 2] * 1e3;
  } else {
    qsort(rates + 1, 5, sizeof *rates, cmp_double); /* the first pass warms up */
    *result = rates[3];
  }
  return TRUE;
}

static int
train(const char *data_path, const char *recipe_name, int epochs, int threads, guint32 seed)
{
  if (threads > 0 && fth_set_thread_count(threads) != FTH_STATUS_OK) {
    fprintf(stderr, "bench-text: %s\n", fth_last_error());
    return 1;
  }
  TextData d;
  if (!load_data(data_path, &d))
    return 1;
  GError *error = NULL;
  g_autofree char *rpath = fth_recipe_find(recipe_name);
  if (rpath == NULL) {
    fprintf(stderr, "bench-text: %s: no such recipe\n", recipe_name);
    return 1;
  }
  g_autofree char *tokens_var = g_strdup_printf("tokens=%d", d.seq_len);
  g_autofree char *vocab_var = g_strdup_printf("vocab=%d", d.vocab);
  const char *const vars[] = {tokens_var, vocab_var, NULL};
  g_autoptr(FthRecipe) recipe = fth_recipe_load(rpath, vars, &error);
  if (recipe == NULL) {
    fprintf(stderr, "bench-text: %s\n", error->message);
    return 1;
  }
  size_t ntr = (size_t)d.n_train, nte = (size_t)d.n_test;
  FthSamples train = {.labels = d.train_labels, .n = ntr, .tokens = d.train_ids,
                      .seq_len = d.seq_len};
  FthSamples test = {.labels = d.test_labels, .n = nte, .tokens = d.test_ids,
                     .seq_len = d.seq_len};
  FthTrainerConfig cfg = {.seed = seed, .batch = recipe->train.batch,
                          .epochs = epochs > 0 ? epochs : recipe->train.epochs, .n_train = ntr,
                          .optim = recipe->train.optim, .schedule = recipe->train.schedule};
  cfg.schedule.total_steps = (((int64_t)ntr + cfg.batch - 1) / cfg.batch) * cfg.epochs;
  g_autoptr(FthTrainer) t = fth_trainer_new(recipe, d.n_classes, &cfg, &error);
  if (t == NULL) {
    fprintf(stderr, "bench-text: %s\n", error->message);
    return 1;
  }
  printf("recipe %s: %zu train / %zu test sequences of %d tokens, vocab %d, batch %d, epochs %d, "
         "lr %g, threads %d\n", recipe->name, ntr, nte, d.seq_len, d.vocab, cfg.batch, cfg.epochs,
         cfg.optim.lr, fth_thread_count());
  g_autofree uint32_t *tr_idx = g_new(uint32_t, ntr), *te_idx = g_new(uint32_t, nte);
  for (size_t i = 0; i < ntr; i++)
    tr_idx[i] = (uint32_t)i;
  for (size_t i = 0; i < nte; i++)
    te_idx[i] = (uint32_t)i;
  double train_wall = 0;
  FthTrainProgress p = {.epochs = cfg.epochs};
  for (int e = 0; e < cfg.epochs; e++) {
    double t0 = now_s();
    gboolean interrupted;
    if (!fth_trainer_run_epoch(t, &train, tr_idx, ntr, e, 0, 0, &p, NULL, NULL, NULL,
                               &interrupted, &error)) {
      fprintf(stderr, "bench-text: %s\n", error->message);
      return 1;
    }
    train_wall += now_s() - t0;
    printf("epoch %d: %.2f s, train loss %.4f, train acc %.4f\n", e + 1, now_s() - t0,
           p.train_loss, p.train_acc);
    fflush(stdout);
  }
  g_autoptr(FthConfusion) cm = fth_confusion_new(d.n_classes);
  double test_loss;
  if (!fth_trainer_evaluate(t, &test, te_idx, nte, cm, &test_loss, &error)) {
    fprintf(stderr, "bench-text: %s\n", error->message);
    return 1;
  }
  double acc = fth_confusion_accuracy(cm);

  g_autoptr(FthModel) im = fth_model_build(recipe, d.n_classes, 1, FTH_MODEL_INFERENCE, &error);
  if (im == NULL || !fth_model_copy_params(im, fth_trainer_model(t), &error)) {
    fprintf(stderr, "bench-text: %s\n", error->message);
    return 1;
  }
  if (fth_graph_plan(im->graph, FTH_MODE_INFERENCE, 256) != FTH_STATUS_OK) {
    fprintf(stderr, "bench-text: %s\n", fth_last_error());
    return 1;
  }
  double b1_ms, b256_sps;
  if (!bench_infer(im, &d, 1, &b1_ms, &error) || !bench_infer(im, &d, 256, &b256_sps, &error)) {
    fprintf(stderr, "bench-text: %s\n", error->message);
    return 1;
  }
  double train_sps = (double)ntr * cfg.epochs / train_wall;
  printf("train %.0f seq/s | test acc %.2f%% (loss %.4f) | batch-1 latency %.3f ms | batch-256 "
         "%.0f seq/s | peak RSS %.0f MiB\n", train_sps, acc * 100, test_loss, b1_ms, b256_sps,
         maxrss_mib());
  printf("RESULT_JSON {\"engine\": \"fathom\", \"recipe\": \"%s\", \"threads\": %d, \"batch\": %d, "
         "\"epochs\": %d, \"train_sps\": %.1f, \"train_wall_s\": %.2f, \"test_acc\": %.5f, "
         "\"b1_latency_ms\": %.4f, \"b256_sps\": %.1f, \"peak_rss_mib\": %.1f}\n", recipe->name,
         fth_thread_count(), cfg.batch, cfg.epochs, train_sps, train_wall, acc, b1_ms, b256_sps,
         maxrss_mib());
  g_free(d.train_ids);
  g_free(d.train_labels);
  g_free(d.test_ids);
  g_free(d.test_labels);
  return 0;
}

static int
usage(const char *argv0)
{
  fprintf(stderr, "usage: %s prepare --out FILE [--docs N] [--seed N]\n"
                  "       %s train --data FILE --recipe NAME [--epochs N] [--threads N] "
                  "[--seed N]\n", argv0, argv0);
  return 2;
}

int
main(int argc, char **argv)
{
  if (argc < 2)
    return usage(argv[0]);
  const char *out = NULL, *data = NULL, *recipe = NULL;
  int docs = 6000, epochs = 0, threads = 0;
  guint32 seed = 1;
  for (int i = 2; i < argc; i++) {
    if (i + 1 >= argc)
      return usage(argv[0]);
    const char *a = argv[i], *v = argv[++i];
    if (strcmp(a, "--out") == 0)
      out = v;
    else if (strcmp(a, "--data") == 0)
      data = v;
    else if (strcmp(a, "--recipe") == 0)
      recipe = v;
    else if (strcmp(a, "--docs") == 0)
      docs = atoi(v);
    else if (strcmp(a, "--epochs") == 0)
      epochs = atoi(v);
    else if (strcmp(a, "--threads") == 0)
      threads = atoi(v);
    else if (strcmp(a, "--seed") == 0)
      seed = (guint32)strtoul(v, NULL, 10);
    else
      return usage(argv[0]);
  }
  if (strcmp(argv[1], "prepare") == 0 && out != NULL && docs >= 100)
    return prepare(out, docs, seed);
  if (strcmp(argv[1], "train") == 0 && data != NULL && recipe != NULL)
    return train(data, recipe, epochs, threads, seed);
  return usage(argv[0]);
}
