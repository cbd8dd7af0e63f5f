/* Tokenizers: merges worked out by hand, encoding, offsets into the original text (NFKC,
 * combining marks, emoji, Chinese), truncation and padding, JSON round trips. */
#include <fathom/tokenizer.h>

#include <glib/gstdio.h>

#include <string.h>

/* The corpus of the Hugging Face course's tokenizer chapter: hug x10, pug x5, pun x12, bun x4,
 * hugs x5. Alphabet in order of first appearance: h ##u ##g p ##n b ##s (ids 5..11). */
static char **
hug_corpus(void)
{
  static const struct {
    const char *w;
    int n;
  } words[] = {{"hug", 10}, {"pug", 5}, {"pun", 12}, {"bun", 4}, {"hugs", 5}};
  GPtrArray *texts = g_ptr_array_new();
  for (int round = 0; round < 12; round++) {
    GString *s = g_string_new("");
    for (unsigned w = 0; w < G_N_ELEMENTS(words); w++)
      if (round < words[w].n)
        g_string_append_printf(s, "%s ", words[w].w);
    g_ptr_array_add(texts, g_string_free(s, FALSE));
  }
  g_ptr_array_add(texts, NULL);
  return (char **)g_ptr_array_free(texts, FALSE);
}

static FthTokenizer *
train(FthTokenizerKind kind, int vocab_size, char **texts)
{
  FthTokenizerConfig cfg;
  fth_tokenizer_config_init(&cfg);
  cfg.kind = kind;
  cfg.vocab_size = vocab_size;
  g_autoptr(GError) error = NULL;
  FthTokenizer *tok = fth_tokenizer_train((const char *const *)texts, g_strv_length(texts), NULL,
                                          &cfg, &error);
  g_assert_no_error(error);
  return tok;
}

static void
assert_vocab_tail(const FthTokenizer *tok, int from, const char *const *expected)
{
  int n = (int)g_strv_length((char **)expected);
  g_assert_cmpint(fth_tokenizer_vocab_size(tok), ==, from + n);
  for (int i = 0; i < n; i++)
    g_assert_cmpstr(fth_tokenizer_token(tok, from + i), ==, expected[i]);
}

/* Tokens of text as strings joined by spaces, with offsets "tok[s,e)". */
static char *
encode_str(const FthTokenizer *tok, const char *text, gboolean offsets)
{
  int32_t ids[64], st[64], en[64];
  int n;
  g_autoptr(GError) error = NULL;
  g_assert_true(fth_tokenizer_encode(tok, text, -1, "t", 64, FALSE, ids, st, en, &n, &error));
  g_assert_no_error(error);
  GString *s = g_string_new("");
  for (int i = 0; i < n; i++) {
    g_string_append_printf(s, "%s%s", i ? " " : "", fth_tokenizer_token(tok, ids[i]));
    if (offsets)
      g_string_append_printf(s, "[%d,%d)", st[i], en[i]);
  }
  for (int i = n; i < 64; i++)
    g_assert_cmpint(ids[i], ==, FTH_TOKEN_PAD);
  return g_string_free(s, FALSE);
}

static void
test_bpe_merges(void)
{
  g_auto(GStrv) texts = hug_corpus();
  g_autoptr(FthTokenizer) tok = train(FTH_TOKENIZER_BPE, 1000, texts);
  /* Pair counts: (##u ##g) 20, (##u ##n) 16, then (h ##ug) 15, (p ##un) 12, then a tie at 5
   * between hugs and pug (hugs sorts first), then bun 4; nothing is left to merge. */
  static const char *const want[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "h", "##u",
                                     "##g", "p", "##n", "b", "##s", "##ug", "##un", "hug", "pun",
                                     "hugs", "pug", "bun", NULL};
  assert_vocab_tail(tok, 0, want);
  g_autofree char *a = encode_str(tok, "hugs bun pug mug", TRUE);
  g_assert_cmpstr(a, ==, "hugs[0,4) bun[5,8) pug[9,12) [UNK][13,14) ##ug[14,16)");
  /* A smaller vocabulary stops after the first merges. */
  g_autoptr(FthTokenizer) small = train(FTH_TOKENIZER_BPE, 14, texts);
  static const char *const want_small[] = {"##ug", "##un", NULL};
  assert_vocab_tail(small, 12, want_small);
  g_autofree char *b = encode_str(small, "hugs", FALSE);
  g_assert_cmpstr(b, ==, "h ##ug ##s");
}

static void
test_wordpiece_merges(void)
{
  g_auto(GStrv) texts = hug_corpus();
  /* Scores count(ab) / (count(a) count(b)): (##g ##s) 5 / (20 * 5) = 0.05 is best; then every
   * pair scores exactly 1/36 and "##ug" sorts first. */
  g_autoptr(FthTokenizer) tok = train(FTH_TOKENIZER_WORDPIECE, 14, texts);
  static const char *const want[] = {"##gs", "##ug", NULL};
  assert_vocab_tail(tok, 12, want);
  /* Longest match from the left; a word with an uncovered piece is one [UNK]. */
  g_autofree char *a = encode_str(tok, "hugs bum pug", TRUE);
  g_assert_cmpstr(a, ==, "h[0,1) ##ug[1,3) ##s[3,4) [UNK][5,8) p[9,10) ##ug[10,12)");
  /* Third merge: words h ##ug (10), p ##ug (5), p ##u ##n (12), b ##u ##n (4), h ##u ##gs (5);
   * counts h 15, ##ug 15, p 17, ##u 21, ##n 16, b 4, ##gs 5. (##u ##n) 16/336, (b ##u) 4/84 and
   * (##u ##gs) 5/105 tie at 1/21, above (h ##ug) 10/225; "##ugs" sorts before "##un", "bu". */
  g_autoptr(FthTokenizer) tok3 = train(FTH_TOKENIZER_WORDPIECE, 15, texts);
  static const char *const want3[] = {"##gs", "##ug", "##ugs", NULL};
  assert_vocab_tail(tok3, 12, want3);
}

static void
test_offsets_unicode(void)
{
  /* Each text twice: every word occurs often enough to be merged into one token. */
  static const char *const corpus[] = {
    "我爱自然语言处理。我爱学习！", "Ｆｕｌｌ width ﬁne café cafe\xcc\x81 thumbs 👍🏽 family 👨‍👩‍👧",
    "naïve NAÏVE fine", "我爱自然语言处理。我爱学习！",
    "Ｆｕｌｌ width ﬁne café cafe\xcc\x81 thumbs 👍🏽 family 👨‍👩‍👧", "naïve NAÏVE fine", NULL};
  g_autoptr(FthTokenizer) tok = train(FTH_TOKENIZER_WORDPIECE, 1000, (char **)corpus);
  /* Every Han character is a token; punctuation too. */
  g_autofree char *zh = encode_str(tok, "我爱学习。", TRUE);
  g_assert_cmpstr(zh, ==, "我[0,1) 爱[1,2) 学[2,3) 习[3,4) 。[4,5)");
  /* NFKC: full-width letters and the fi ligature; the ligature's two letters share its range. */
  g_autofree char *fw = encode_str(tok, "Ｆｕｌｌ ﬁne", TRUE);
  g_assert_cmpstr(fw, ==, "full[0,4) fine[5,8)");
  /* A decomposed e + U+0301 composes to é and keeps its two-character range. */
  g_autofree char *c1 = encode_str(tok, "café", TRUE);
  g_autofree char *c2 = encode_str(tok, "cafe\xcc\x81", TRUE);
  g_assert_cmpstr(c1, ==, "café[0,4)");
  g_assert_cmpstr(c2, ==, "café[0,5)");
  /* An emoji with its skin-tone modifier, and a ZWJ family, are one token each; "!" is known
   * from the corpus' full-width "！". */
  g_autofree char *em = encode_str(tok, "thumbs 👍🏽 family 👨‍👩‍👧!", TRUE);
  g_assert_cmpstr(em, ==, "thumbs[0,6) 👍🏽[7,9) family[10,16) 👨‍👩‍👧[17,22) ![22,23)");
}

/* Every token that is not [UNK] reads back from the original text: normalizing the characters
 * [start, end) gives the token without its "##". */
static void
test_offsets_round_trip(void)
{
  static const char *const corpus[] = {
    "The quick brown fox jumps over the lazy dog; the dog sleeps.",
    "Überall Straßen, Cafés und Bäume: naïve Fragen?", "东京是日本的首都，人口很多。",
    "Numbers 12,345 and 3.14 and e-mail: a@b.c", NULL};
  for (int kind = 0; kind < 2; kind++) {
    g_autoptr(FthTokenizer) tok = train(kind, 120, (char **)corpus);
    for (int t = 0; corpus[t]; t++) {
      int32_t ids[128], st[128], en[128];
      int n;
      g_assert_true(fth_tokenizer_encode(tok, corpus[t], -1, NULL, 128, TRUE, ids, st, en, &n,
                                         NULL));
      g_assert_cmpint(ids[0], ==, FTH_TOKEN_CLS);
      g_assert_cmpint(ids[n - 1], ==, FTH_TOKEN_SEP);
      g_assert_cmpint(st[0], ==, -1);
      glong chars = g_utf8_strlen(corpus[t], -1);
      int32_t prev_end = 0;
      for (int i = 1; i < n - 1; i++) {
        g_assert_cmpint(st[i], >=, prev_end);
        g_assert_cmpint(st[i], <, en[i]);
        g_assert_cmpint(en[i], <=, chars);
        prev_end = en[i];
        if (ids[i] == FTH_TOKEN_UNK)
          continue;
        const char *a = g_utf8_offset_to_pointer(corpus[t], st[i]);
        const char *b = g_utf8_offset_to_pointer(corpus[t], en[i]);
        g_autofree char *nf = g_utf8_normalize(a, b - a, G_NORMALIZE_NFKC);
        g_autofree char *low = g_utf8_strdown(nf, -1);
        const char *piece = fth_tokenizer_token(tok, ids[i]);
        if (g_str_has_prefix(piece, "##"))
          piece += 2;
        g_assert_cmpstr(low, ==, piece);
      }
    }
  }
}

static void
test_truncate_pad_json(void)
{
  g_auto(GStrv) texts = hug_corpus();
  for (int kind = 0; kind < 2; kind++) {
    g_autoptr(FthTokenizer) tok = train(kind, 1000, texts);
    int32_t ids[4], st[4], en[4];
    int n;
    g_assert_true(fth_tokenizer_encode(tok, "hug pug pun bun", -1, NULL, 4, TRUE, ids, st, en,
                                       &n, NULL));
    g_assert_cmpint(n, ==, 4);
    g_assert_cmpint(ids[0], ==, FTH_TOKEN_CLS);
    g_assert_cmpstr(fth_tokenizer_token(tok, ids[1]), ==, "hug");
    g_assert_cmpstr(fth_tokenizer_token(tok, ids[2]), ==, "pug");
    g_assert_cmpint(ids[3], ==, FTH_TOKEN_SEP);
    g_assert_cmpint(st[2], ==, 4);
    g_assert_cmpint(en[2], ==, 7);
    g_assert_true(fth_tokenizer_encode(tok, "", 0, NULL, 4, TRUE, ids, st, en, &n, NULL));
    g_assert_cmpint(n, ==, 2);
    g_assert_cmpint(ids[2], ==, FTH_TOKEN_PAD);
    g_assert_cmpint(st[3], ==, -1);

    g_autofree char *json = fth_tokenizer_to_json(tok);
    g_autoptr(GError) error = NULL;
    g_autoptr(FthTokenizer) back = fth_tokenizer_from_json(json, -1, "t.json", &error);
    g_assert_no_error(error);
    g_assert_cmpint(fth_tokenizer_vocab_size(back), ==, fth_tokenizer_vocab_size(tok));
    g_assert_cmpint(fth_tokenizer_kind(back), ==, kind);
    g_autofree char *x = encode_str(tok, "hugs bun pugs mug", TRUE);
    g_autofree char *y = encode_str(back, "hugs bun pugs mug", TRUE);
    g_assert_cmpstr(x, ==, y);

    g_autofree char *dir = g_dir_make_tmp("fth-tok-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "tokenizer.json", NULL);
    g_assert_true(fth_tokenizer_save(tok, path, &error));
    g_autoptr(FthTokenizer) loaded = fth_tokenizer_load(path, &error);
    g_assert_no_error(error);
    g_assert_cmpint(fth_tokenizer_vocab_size(loaded), ==, fth_tokenizer_vocab_size(tok));
    g_remove(path);
    g_rmdir(dir);
  }
}

static void
test_errors(void)
{
  g_auto(GStrv) texts = hug_corpus();
  g_autoptr(FthTokenizer) tok = train(FTH_TOKENIZER_WORDPIECE, 100, texts);
  int32_t ids[8];
  g_autoptr(GError) error = NULL;
  g_assert_false(fth_tokenizer_encode(tok, "ok \xff\xfe", -1, "item 42", 8, TRUE, ids, NULL,
                                      NULL, NULL, &error));
  g_assert_error(error, FTH_TOKENIZER_ERROR, FTH_TOKENIZER_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "item 42"));
  g_assert_nonnull(strstr(error->message, "byte 3"));
  g_clear_error(&error);

  const char *bad_texts[] = {"fine", "caf\xe9", NULL};
  const char *names[] = {"a.txt", "b.txt", NULL};
  FthTokenizerConfig cfg;
  fth_tokenizer_config_init(&cfg);
  g_assert_null(fth_tokenizer_train(bad_texts, 2, names, &cfg, &error));
  g_assert_nonnull(strstr(error->message, "b.txt"));
  g_clear_error(&error);

  static const char *const bad_json[] = {
    "[]", "{\"type\": \"sentencepiece\", \"vocab\": []}",
    "{\"type\": \"bpe\", \"vocab\": [\"[UNK]\", \"[PAD]\", \"[CLS]\", \"[SEP]\", \"[MASK]\"]}",
    "{\"type\": \"bpe\", \"vocab\": [\"[PAD]\", \"[UNK]\", \"[CLS]\", \"[SEP]\", \"[MASK]\", \"a\","
    " \"##b\"], \"merges\": [[\"a\", \"##b\"]]}",
    "{\"type\": 7, \"vocab\": []}", "{\"type\": \"bpe\", \"vocab\": {\"a\": 1}}",
    "{\"type\": \"bpe\", \"vocab\": [\"[PAD]\", \"[UNK]\", \"[CLS]\", \"[SEP]\", \"[MASK]\", 5]}",
    "{\"type\": \"bpe\", \"vocab\": [\"[PAD]\", \"[UNK]\", \"[CLS]\", \"[SEP]\", \"[MASK]\", \"a\","
    " \"##b\", \"ab\"], \"merges\": [[\"a\", [1]], {\"a\": 1}]}", NULL};
  for (int i = 0; bad_json[i]; i++) {
    g_assert_null(fth_tokenizer_from_json(bad_json[i], -1, "bad.json", &error));
    g_assert_error(error, FTH_TOKENIZER_ERROR, FTH_TOKENIZER_ERROR_PARSE);
    g_assert_nonnull(strstr(error->message, "bad.json"));
    g_clear_error(&error);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/tokenizer/bpe-merges", test_bpe_merges);
  g_test_add_func("/tokenizer/wordpiece-merges", test_wordpiece_merges);
  g_test_add_func("/tokenizer/offsets-unicode", test_offsets_unicode);
  g_test_add_func("/tokenizer/offsets-round-trip", test_offsets_round_trip);
  g_test_add_func("/tokenizer/truncate-pad-json", test_truncate_pad_json);
  g_test_add_func("/tokenizer/errors", test_errors);
  return g_test_run();
}
