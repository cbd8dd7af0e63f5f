/* WordPiece and BPE tokenizers: normalization with offsets, pre-tokenization, training by
 * merges, encoding, JSON. See fathom/tokenizer.h. */
#include "fathom/tokenizer.h"

#include <json-glib/json-glib.h>
#include <string.h>

G_DEFINE_QUARK(fth-tokenizer-error-quark, fth_tokenizer_error)

/* A word longer than this (in characters) is one [UNK], as in BERT. */
#define MAX_WORD_CHARS 100

static const char *const special_tokens[FTH_TOKEN_N_SPECIAL] = {"[PAD]", "[UNK]", "[CLS]",
                                                                "[SEP]", "[MASK]"};

typedef struct {
  int32_t a, b, merged;
} Merge;

struct FthTokenizer {
  FthTokenizerKind kind;
  gboolean lowercase;
  GPtrArray *vocab;     /* char *, by id */
  GHashTable *ids;      /* token -> id + 1 */
  GArray *merges;       /* Merge, in learned order */
  GHashTable *rank;     /* (a << 32 | b) -> rank + 1 */
};

void
fth_tokenizer_config_init(FthTokenizerConfig *cfg)
{
  *cfg = (FthTokenizerConfig){FTH_TOKENIZER_WORDPIECE, 8000, TRUE, 2};
}

void
fth_tokenizer_free(FthTokenizer *tok)
{
  if (tok == NULL)
    return;
  g_ptr_array_unref(tok->vocab);
  g_hash_table_unref(tok->ids);
  g_array_unref(tok->merges);
  g_hash_table_unref(tok->rank);
  g_free(tok);
}

/* GLib's int64 hash folds the halves together (a ^ b for a pair): every (b, a) and many other
 * pairs would collide. */
static guint
pair_hash(gconstpointer v)
{
  guint64 x = (guint64)*(const gint64 *)v * 0x9E3779B97F4A7C15u;
  return (guint)(x >> 32);
}

static FthTokenizer *
tokenizer_new(FthTokenizerKind kind, gboolean lowercase)
{
  FthTokenizer *tok = g_new0(FthTokenizer, 1);
  tok->kind = kind;
  tok->lowercase = lowercase;
  tok->vocab = g_ptr_array_new_with_free_func(g_free);
  tok->ids = g_hash_table_new(g_str_hash, g_str_equal);
  tok->merges = g_array_new(FALSE, FALSE, sizeof(Merge));
  tok->rank = g_hash_table_new_full(pair_hash, g_int64_equal, g_free, NULL);
  return tok;
}

/* The id of token, added when new. */
static int32_t
vocab_add(FthTokenizer *tok, const char *token)
{
  gpointer v = g_hash_table_lookup(tok->ids, token);
  if (v != NULL)
    return GPOINTER_TO_INT(v) - 1;
  char *copy = g_strdup(token);
  g_ptr_array_add(tok->vocab, copy);
  int32_t id = (int32_t)tok->vocab->len - 1;
  g_hash_table_insert(tok->ids, copy, GINT_TO_POINTER(id + 1));
  return id;
}

static gint64 *
pair_key(int32_t a, int32_t b)
{
  gint64 *k = g_new(gint64, 1);
  *k = ((gint64)a << 32) | (guint32)b;
  return k;
}

static void
merge_add(FthTokenizer *tok, int32_t a, int32_t b, int32_t merged)
{
  Merge m = {a, b, merged};
  g_array_append_val(tok->merges, m);
  g_hash_table_insert(tok->rank, pair_key(a, b), GINT_TO_POINTER((int)tok->merges->len));
}

FthTokenizerKind
fth_tokenizer_kind(const FthTokenizer *tok)
{
  return tok->kind;
}

int
fth_tokenizer_vocab_size(const FthTokenizer *tok)
{
  return (int)tok->vocab->len;
}

const char *
fth_tokenizer_token(const FthTokenizer *tok, int32_t id)
{
  return id >= 0 && (guint)id < tok->vocab->len ? g_ptr_array_index(tok->vocab, (guint)id) : NULL;
}

int32_t
fth_tokenizer_token_id(const FthTokenizer *tok, const char *token)
{
  return GPOINTER_TO_INT(g_hash_table_lookup(tok->ids, token)) - 1;
}

/* ---- Normalization and pre-tokenization --------------------------------------------------------
 * The text becomes normalized characters, each with the original character range it came from,
 * grouped into units (a character with its marks); a word is a run of units. */

typedef struct {
  GArray *chars;        /* gunichar, normalized */
  GArray *start, *end;  /* int32 per normalized character: original [start, end) */
  GArray *words;        /* Word */
} Normalized;

typedef struct {
  guint first, n;       /* normalized characters [first, first + n) */
} Word;

static void
normalized_init(Normalized *nt)
{
  nt->chars = g_array_new(FALSE, FALSE, sizeof(gunichar));
  nt->start = g_array_new(FALSE, FALSE, sizeof(int32_t));
  nt->end = g_array_new(FALSE, FALSE, sizeof(int32_t));
  nt->words = g_array_new(FALSE, FALSE, sizeof(Word));
}

static void
normalized_clear(Normalized *nt)
{
  g_array_unref(nt->chars);
  g_array_unref(nt->start);
  g_array_unref(nt->end);
  g_array_unref(nt->words);
}

static gboolean
is_joined(gunichar c)
{
  /* Marks, variation selectors (marks too) and emoji modifiers stay with their base. */
  return g_unichar_ismark(c) || (c >= 0x1F3FB && c <= 0x1F3FF);
}

typedef enum { UNIT_SPACE, UNIT_ALONE, UNIT_WORD } UnitClass;

static UnitClass
unit_class(gunichar c)
{
  if (g_unichar_isspace(c) || g_unichar_iscntrl(c) || g_unichar_type(c) == G_UNICODE_FORMAT)
    return UNIT_SPACE;
  if (g_unichar_ispunct(c) || g_unichar_get_script(c) == G_UNICODE_SCRIPT_HAN)
    return UNIT_ALONE;
  return UNIT_WORD;
}

/* text must be valid UTF-8. */
static void
normalize(const char *text, gsize len, gboolean lowercase, Normalized *nt)
{
  const char *p = text, *end = text + len;
  int32_t ci = 0;
  gboolean in_word = FALSE;
  while (p < end) {
    /* One unit: a base character, its marks, and characters joined to it by U+200D. */
    const char *u0 = p;
    int32_t s = ci;
    gunichar base = g_utf8_get_char(p);
    p = g_utf8_next_char(p);
    ci++;
    while (p < end) {
      gunichar c = g_utf8_get_char(p);
      if (is_joined(c)) {
        p = g_utf8_next_char(p);
        ci++;
      } else if (c == 0x200D && g_utf8_next_char(p) < end) {
        p = g_utf8_next_char(g_utf8_next_char(p));
        ci += 2;
      } else {
        break;
      }
    }
    UnitClass cls = unit_class(base);
    if (cls == UNIT_SPACE) {
      in_word = FALSE;
      continue;
    }
    guint first = nt->chars->len;
    if (base < 0x80 && p - u0 == 1) {
      /* ASCII alone: NFKC leaves it, lowercasing is ASCII's (most text; no allocation). */
      gunichar c = lowercase ? (gunichar)g_ascii_tolower((gchar)base) : base;
      g_array_append_val(nt->chars, c);
      g_array_append_val(nt->start, s);
      g_array_append_val(nt->end, ci);
    } else {
      g_autofree char *nfkc = g_utf8_normalize(u0, p - u0, G_NORMALIZE_NFKC);
      g_autofree char *low = lowercase && nfkc ? g_utf8_strdown(nfkc, -1) : NULL;
      const char *norm = low ? low : nfkc;
      if (norm == NULL || norm[0] == '\0')
        continue;
      for (const char *q = norm; *q; q = g_utf8_next_char(q)) {
        gunichar c = g_utf8_get_char(q);
        g_array_append_val(nt->chars, c);
        g_array_append_val(nt->start, s);
        g_array_append_val(nt->end, ci);
      }
    }
    guint n = nt->chars->len - first;
    if (cls == UNIT_ALONE || !in_word) {
      Word w = {first, n};
      g_array_append_val(nt->words, w);
    } else {
      g_array_index(nt->words, Word, nt->words->len - 1).n += n;
    }
    in_word = cls == UNIT_WORD;
  }
}

/* The symbol string of normalized characters [a, b): "##" before a continuation. */
static char *
symbol_string(const Normalized *nt, guint a, guint b, gboolean continuation)
{
  GString *s = g_string_new(continuation ? "##" : "");
  for (guint i = a; i < b; i++)
    g_string_append_unichar(s, g_array_index(nt->chars, gunichar, i));
  return g_string_free(s, FALSE);
}

static gboolean
check_utf8(const char *text, gsize len, const char *name, GError **error)
{
  const char *bad;
  if (g_utf8_validate_len(text, len, &bad))
    return TRUE;
  g_set_error(error, FTH_TOKENIZER_ERROR, FTH_TOKENIZER_ERROR_INVALID,
              "%s: not valid UTF-8 at byte %" G_GSIZE_FORMAT, name ? name : "text",
              (gsize)(bad - text));
  return FALSE;
}

/* ---- Training ---------------------------------------------------------------------------------- */

typedef struct {
  GArray *syms;   /* int32 symbol ids */
  gint64 count;
} TrainWord;

static void
train_word_clear(gpointer p)
{
  g_array_unref(((TrainWord *)p)->syms);
}

/* The merged token of symbols a and b: a followed by b without b's "##". */
static char *
merged_string(const FthTokenizer *tok, int32_t a, int32_t b)
{
  const char *sb = g_ptr_array_index(tok->vocab, (guint)b);
  return g_strconcat(g_ptr_array_index(tok->vocab, (guint)a),
                     g_str_has_prefix(sb, "##") ? sb + 2 : sb, NULL);
}

typedef struct {
  gint64 key;     /* a << 32 | b */
  int32_t a, b;
  gint64 count;   /* occurrences weighted by word frequency */
  GArray *words;  /* guint word indices where the pair was seen */
} PairStat;

static void
pair_stat_free(gpointer p)
{
  PairStat *ps = p;
  g_array_unref(ps->words);
  g_free(ps);
}

/* Adds (sign +1) or removes (-1) the adjacent pairs of word w to the counts; an added pair
 * records the word. */
static void
word_pairs(GHashTable *pairs, GPtrArray *list, const TrainWord *tw, guint w, int sign)
{
  const int32_t *sy = (const int32_t *)(void *)tw->syms->data;
  for (guint i = 0; i + 1 < tw->syms->len; i++) {
    gint64 key = ((gint64)sy[i] << 32) | (guint32)sy[i + 1];
    PairStat *ps = g_hash_table_lookup(pairs, &key);
    if (ps == NULL) {
      ps = g_new0(PairStat, 1);
      *ps = (PairStat){key, sy[i], sy[i + 1], 0, g_array_new(FALSE, FALSE, sizeof(guint))};
      g_hash_table_insert(pairs, &ps->key, ps);
      g_ptr_array_add(list, ps);
    }
    ps->count += sign * tw->count;
    if (sign > 0)
      g_array_append_val(ps->words, w);
  }
}

/* strcmp of the merged tokens of (a1, b1) and (a2, b2), without building them. */
static int
merged_cmp(const FthTokenizer *tok, int32_t a1, int32_t b1, int32_t a2, int32_t b2)
{
  const char *s[2][2] = {{g_ptr_array_index(tok->vocab, (guint)a1),
                          g_ptr_array_index(tok->vocab, (guint)b1)},
                         {g_ptr_array_index(tok->vocab, (guint)a2),
                          g_ptr_array_index(tok->vocab, (guint)b2)}};
  for (int k = 0; k < 2; k++)
    if (g_str_has_prefix(s[k][1], "##"))
      s[k][1] += 2;
  /* Walk both concatenations byte by byte. */
  const char *p = s[0][0], *q = s[1][0];
  int ip = 0, iq = 0;
  for (;;) {
    if (*p == '\0' && ip == 0) {
      p = s[0][1];
      ip = 1;
      continue;
    }
    if (*q == '\0' && iq == 0) {
      q = s[1][1];
      iq = 1;
      continue;
    }
    if (*p != *q || *p == '\0')
      return (unsigned char)*p - (unsigned char)*q;
    p++;
    q++;
  }
}

FthTokenizer *
fth_tokenizer_train(const char *const *texts, gsize n, const char *const *names,
                    const FthTokenizerConfig *cfg, GError **error)
{
  if (cfg->vocab_size < FTH_TOKEN_N_SPECIAL + 1 || cfg->min_frequency < 1 ||
      (cfg->kind != FTH_TOKENIZER_WORDPIECE && cfg->kind != FTH_TOKENIZER_BPE)) {
    g_set_error(error, FTH_TOKENIZER_ERROR, FTH_TOKENIZER_ERROR_INVALID,
                "tokenizer: vocab_size must exceed %d and min_frequency be at least 1",
                FTH_TOKEN_N_SPECIAL);
    return NULL;
  }
  g_autoptr(FthTokenizer) tok = tokenizer_new(cfg->kind, cfg->lowercase);
  for (int i = 0; i < FTH_TOKEN_N_SPECIAL; i++)
    vocab_add(tok, special_tokens[i]);

  /* Word frequencies; then the alphabet in order of first appearance (deterministic). */
  g_autoptr(GHashTable) freq = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) order = g_ptr_array_new();
  for (gsize t = 0; t < n; t++) {
    gsize len = strlen(texts[t]);
    if (!check_utf8(texts[t], len, names ? names[t] : NULL, error))
      return NULL;
    Normalized nt;
    normalized_init(&nt);
    normalize(texts[t], len, cfg->lowercase, &nt);
    for (guint w = 0; w < nt.words->len; w++) {
      Word *wd = &g_array_index(nt.words, Word, w);
      if (wd->n > MAX_WORD_CHARS)
        continue;
      char *s = symbol_string(&nt, wd->first, wd->first + wd->n, FALSE);
      gpointer old;
      if (g_hash_table_lookup_extended(freq, s, NULL, &old)) {
        g_hash_table_insert(freq, s, GINT_TO_POINTER(GPOINTER_TO_INT(old) + 1));
      } else {
        g_hash_table_insert(freq, s, GINT_TO_POINTER(1));
        g_ptr_array_add(order, s);
      }
    }
    normalized_clear(&nt);
  }
  g_autoptr(GArray) words = g_array_new(FALSE, FALSE, sizeof(TrainWord));
  g_array_set_clear_func(words, train_word_clear);
  for (guint w = 0; w < order->len; w++) {
    const char *s = g_ptr_array_index(order, w);
    TrainWord tw = {g_array_new(FALSE, FALSE, sizeof(int32_t)),
                    GPOINTER_TO_INT(g_hash_table_lookup(freq, s))};
    gboolean first = TRUE;
    for (const char *q = s; *q; q = g_utf8_next_char(q), first = FALSE) {
      char buf[16] = "##";
      int k = g_unichar_to_utf8(g_utf8_get_char(q), buf + 2);
      buf[2 + k] = '\0';
      int32_t id = vocab_add(tok, first ? buf + 2 : buf);
      g_array_append_val(tw.syms, id);
    }
    g_array_append_val(words, tw);
  }

  /* Pair counts are kept up to date as merges change the words: a merge revisits only the words
   * that hold its pair (found through the pair's word list), so training costs about the
   * corpus' size plus a scan of the pairs per merge. */
  g_autoptr(GHashTable) pairs = g_hash_table_new(pair_hash, g_int64_equal);
  g_autoptr(GPtrArray) pair_list = g_ptr_array_new_with_free_func(pair_stat_free);
  g_autoptr(GArray) sym_count = g_array_new(FALSE, TRUE, sizeof(gint64));
  g_array_set_size(sym_count, tok->vocab->len);
  for (guint w = 0; w < words->len; w++) {
    TrainWord *tw = &g_array_index(words, TrainWord, w);
    for (guint i = 0; i < tw->syms->len; i++)
      g_array_index(sym_count, gint64, (guint)g_array_index(tw->syms, int32_t, i)) += tw->count;
    word_pairs(pairs, pair_list, tw, w, +1);
  }
  g_autofree guint *visited = g_new0(guint, words->len + 1);
  guint merge_no = 0;
  while ((int)tok->vocab->len < cfg->vocab_size) {
    double best_score = -1;
    const PairStat *best = NULL;
    for (guint i = 0; i < pair_list->len; i++) {
      PairStat *ps = g_ptr_array_index(pair_list, i);
      if (ps->count == 0) {
        /* In no word any more: dropped (ties do not depend on the list's order). */
        g_hash_table_remove(pairs, &ps->key);
        g_ptr_array_remove_index_fast(pair_list, i--);
        continue;
      }
      if (ps->count < cfg->min_frequency)
        continue;
      double score = (double)ps->count;
      if (cfg->kind == FTH_TOKENIZER_WORDPIECE)
        score /= (double)g_array_index(sym_count, gint64, (guint)ps->a) *
                 (double)g_array_index(sym_count, gint64, (guint)ps->b);
      if (score > best_score ||
          (score == best_score && merged_cmp(tok, ps->a, ps->b, best->a, best->b) < 0)) {
        best_score = score;
        best = ps;
      }
    }
    if (best == NULL)
      break;
    int32_t ba = best->a, bb = best->b;
    g_autofree char *merged_str = merged_string(tok, ba, bb);
    /* The merged string may already be a token (from another pair): then no new entry. */
    int32_t merged = vocab_add(tok, merged_str);
    if ((guint)merged >= sym_count->len)
      g_array_set_size(sym_count, (guint)merged + 1);
    merge_add(tok, ba, bb, merged);
    merge_no++;
    /* The word list may hold a word twice, or words the pair has since left. */
    g_autoptr(GArray) in_words = g_array_copy(best->words);
    for (guint k = 0; k < in_words->len; k++) {
      guint w = g_array_index(in_words, guint, k);
      if (visited[w] == merge_no)
        continue;
      visited[w] = merge_no;
      TrainWord *tw = &g_array_index(words, TrainWord, w);
      GArray *sy = tw->syms;
      word_pairs(pairs, pair_list, tw, w, -1);
      for (guint i = 0; i + 1 < sy->len; i++)
        if (g_array_index(sy, int32_t, i) == ba && g_array_index(sy, int32_t, i + 1) == bb) {
          g_array_index(sy, int32_t, i) = merged;
          g_array_remove_index(sy, i + 1);
          g_array_index(sym_count, gint64, (guint)ba) -= tw->count;
          g_array_index(sym_count, gint64, (guint)bb) -= tw->count;
          g_array_index(sym_count, gint64, (guint)merged) += tw->count;
        }
      word_pairs(pairs, pair_list, tw, w, +1);
    }
  }
  return g_steal_pointer(&tok);
}

/* ---- Encoding ---------------------------------------------------------------------------------- */

typedef struct {
  int32_t id;
  guint a, b;      /* normalized characters [a, b) */
} Piece;

static int32_t
char_symbol(const FthTokenizer *tok, gunichar c, gboolean continuation)
{
  char buf[16] = "##";
  int k = g_unichar_to_utf8(c, buf + 2);
  buf[2 + k] = '\0';
  int32_t id = fth_tokenizer_token_id(tok, continuation ? buf : buf + 2);
  return id >= 0 ? id : FTH_TOKEN_UNK;
}

static void
encode_bpe(const FthTokenizer *tok, const Normalized *nt, const Word *w, GArray *out)
{
  g_autoptr(GArray) ps = g_array_new(FALSE, FALSE, sizeof(Piece));
  for (guint i = 0; i < w->n; i++) {
    guint c = w->first + i;
    Piece p = {char_symbol(tok, g_array_index(nt->chars, gunichar, c), i > 0), c, c + 1};
    g_array_append_val(ps, p);
  }
  for (;;) {
    int best = -1, best_rank = G_MAXINT;
    for (guint i = 0; i + 1 < ps->len; i++) {
      gint64 key = ((gint64)g_array_index(ps, Piece, i).id << 32) |
                   (guint32)g_array_index(ps, Piece, i + 1).id;
      int r = GPOINTER_TO_INT(g_hash_table_lookup(tok->rank, &key));
      if (r > 0 && r < best_rank) {
        best_rank = r;
        best = (int)i;
      }
    }
    if (best < 0)
      break;
    Piece *p = &g_array_index(ps, Piece, (guint)best);
    p->id = g_array_index(tok->merges, Merge, (guint)best_rank - 1).merged;
    p->b = g_array_index(ps, Piece, (guint)best + 1).b;
    g_array_remove_index(ps, (guint)best + 1);
  }
  g_array_append_vals(out, ps->data, ps->len);
}

static void
encode_wordpiece(const FthTokenizer *tok, const Normalized *nt, const Word *w, GArray *out)
{
  /* The word in UTF-8 with each character's byte offset: every candidate is a slice copied
   * into one reused buffer. */
  g_autoptr(GString) word = g_string_new("");
  guint off[MAX_WORD_CHARS + 1];
  for (guint i = 0; i < w->n; i++) {
    off[i] = (guint)word->len;
    g_string_append_unichar(word, g_array_index(nt->chars, gunichar, w->first + i));
  }
  off[w->n] = (guint)word->len;
  g_autoptr(GString) cand = g_string_sized_new(word->len + 2);
  guint mark = out->len;
  guint pos = 0;
  while (pos < w->n) {
    int32_t id = -1;
    guint end = w->n;
    for (; end > pos; end--) {
      g_string_assign(cand, pos > 0 ? "##" : "");
      g_string_append_len(cand, word->str + off[pos], (gssize)(off[end] - off[pos]));
      id = fth_tokenizer_token_id(tok, cand->str);
      if (id >= 0)
        break;
    }
    if (id < 0) {
      g_array_set_size(out, mark);
      Piece unk = {FTH_TOKEN_UNK, w->first, w->first + w->n};
      g_array_append_val(out, unk);
      return;
    }
    Piece p = {id, w->first + pos, w->first + end};
    g_array_append_val(out, p);
    pos = end;
  }
}

gboolean
fth_tokenizer_encode(const FthTokenizer *tok, const char *text, gssize len, const char *name,
                     int max_len, gboolean add_special, int32_t *ids, int32_t *starts,
                     int32_t *ends, int *n_tokens, GError **error)
{
  gsize n = len < 0 ? strlen(text) : (gsize)len;
  if (max_len < (add_special ? 2 : 1)) {
    g_set_error(error, FTH_TOKENIZER_ERROR, FTH_TOKENIZER_ERROR_INVALID,
                "tokenizer: max_len %d is too short", max_len);
    return FALSE;
  }
  if (!check_utf8(text, n, name, error))
    return FALSE;
  Normalized nt;
  normalized_init(&nt);
  normalize(text, n, tok->lowercase, &nt);
  g_autoptr(GArray) pieces = g_array_new(FALSE, FALSE, sizeof(Piece));
  guint room = (guint)max_len - (add_special ? 2 : 0);
  for (guint w = 0; w < nt.words->len && pieces->len < room; w++) {
    const Word *wd = &g_array_index(nt.words, Word, w);
    if (wd->n > MAX_WORD_CHARS) {
      Piece unk = {FTH_TOKEN_UNK, wd->first, wd->first + wd->n};
      g_array_append_val(pieces, unk);
    } else if (tok->kind == FTH_TOKENIZER_BPE) {
      encode_bpe(tok, &nt, wd, pieces);
    } else {
      encode_wordpiece(tok, &nt, wd, pieces);
    }
  }
  if (pieces->len > room)
    g_array_set_size(pieces, room);
  int k = 0;
#define PUT(id_, s_, e_)        \
  do {                          \
    ids[k] = (id_);             \
    if (starts)                 \
      starts[k] = (s_);         \
    if (ends)                   \
      ends[k] = (e_);           \
    k++;                        \
  } while (0)
  if (add_special)
    PUT(FTH_TOKEN_CLS, -1, -1);
  for (guint i = 0; i < pieces->len; i++) {
    const Piece *p = &g_array_index(pieces, Piece, i);
    PUT(p->id, g_array_index(nt.start, int32_t, p->a), g_array_index(nt.end, int32_t, p->b - 1));
  }
  if (add_special)
    PUT(FTH_TOKEN_SEP, -1, -1);
  if (n_tokens)
    *n_tokens = k;
  while (k < max_len)
    PUT(FTH_TOKEN_PAD, -1, -1);
#undef PUT
  normalized_clear(&nt);
  return TRUE;
}

/* ---- JSON -------------------------------------------------------------------------------------- */

char *
fth_tokenizer_to_json(const FthTokenizer *tok)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, tok->kind == FTH_TOKENIZER_BPE ? "bpe" : "wordpiece");
  json_builder_set_member_name(b, "lowercase");
  json_builder_add_boolean_value(b, tok->lowercase);
  json_builder_set_member_name(b, "vocab");
  json_builder_begin_array(b);
  for (guint i = 0; i < tok->vocab->len; i++)
    json_builder_add_string_value(b, g_ptr_array_index(tok->vocab, i));
  json_builder_end_array(b);
  json_builder_set_member_name(b, "merges");
  json_builder_begin_array(b);
  for (guint i = 0; i < tok->merges->len; i++) {
    const Merge *m = &g_array_index(tok->merges, Merge, i);
    json_builder_begin_array(b);
    json_builder_add_string_value(b, g_ptr_array_index(tok->vocab, (guint)m->a));
    json_builder_add_string_value(b, g_ptr_array_index(tok->vocab, (guint)m->b));
    json_builder_end_array(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return json_to_string(root, TRUE);
}

/* Members of the wrong JSON type read as absent (json-glib's getters would warn). */
static JsonArray *
array_member(JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member(o, name);
  return n != NULL && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static const char *
string_node(JsonNode *n)
{
  return n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
           ? json_node_get_string(n) : NULL;
}

static FthTokenizer *
parse_fail(const char *source, const char *what, GError **error)
{
  g_set_error(error, FTH_TOKENIZER_ERROR, FTH_TOKENIZER_ERROR_PARSE, "%s: %s", source, what);
  return NULL;
}

FthTokenizer *
fth_tokenizer_from_json(const char *json, gssize len, const char *source, GError **error)
{
  source = source ? source : "tokenizer";
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(GError) jerr = NULL;
  if (!json_parser_load_from_data(parser, json, len, &jerr)) {
    g_set_error(error, FTH_TOKENIZER_ERROR, FTH_TOKENIZER_ERROR_PARSE, "%s: not valid JSON: %s",
                source, jerr->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
    return parse_fail(source, "a tokenizer must be a JSON object", error);
  JsonObject *o = json_node_get_object(root);
  const char *type = string_node(json_object_get_member(o, "type"));
  type = type ? type : "";
  FthTokenizerKind kind;
  if (strcmp(type, "wordpiece") == 0)
    kind = FTH_TOKENIZER_WORDPIECE;
  else if (strcmp(type, "bpe") == 0)
    kind = FTH_TOKENIZER_BPE;
  else
    return parse_fail(source, "'type' must be \"wordpiece\" or \"bpe\"", error);
  g_autoptr(FthTokenizer) tok =
    tokenizer_new(kind, json_object_get_boolean_member_with_default(o, "lowercase", FALSE));
  JsonArray *vocab = array_member(o, "vocab");
  guint nv = vocab ? json_array_get_length(vocab) : 0;
  if (nv < FTH_TOKEN_N_SPECIAL)
    return parse_fail(source, "'vocab' is missing or shorter than the special tokens", error);
  for (guint i = 0; i < nv; i++) {
    JsonNode *e = json_array_get_element(vocab, i);
    const char *s = string_node(e);
    if (s == NULL || (i < FTH_TOKEN_N_SPECIAL && strcmp(s, special_tokens[i]) != 0) ||
        fth_tokenizer_token_id(tok, s) >= 0)
      return parse_fail(source, "'vocab' must hold distinct strings, starting with [PAD] [UNK] "
                        "[CLS] [SEP] [MASK]", error);
    vocab_add(tok, s);
  }
  JsonArray *merges = array_member(o, "merges");
  for (guint i = 0; merges && i < json_array_get_length(merges); i++) {
    JsonNode *e = json_array_get_element(merges, i);
    JsonArray *pair = JSON_NODE_HOLDS_ARRAY(e) ? json_node_get_array(e) : NULL;
    gboolean two = pair != NULL && json_array_get_length(pair) == 2;
    const char *a = two ? string_node(json_array_get_element(pair, 0)) : NULL;
    const char *b = two ? string_node(json_array_get_element(pair, 1)) : NULL;
    int32_t ia = a ? fth_tokenizer_token_id(tok, a) : -1;
    int32_t ib = b ? fth_tokenizer_token_id(tok, b) : -1;
    g_autofree char *m = ia >= 0 && ib >= 0 ? merged_string(tok, ia, ib) : NULL;
    int32_t im = m ? fth_tokenizer_token_id(tok, m) : -1;
    if (im < 0)
      return parse_fail(source, "'merges' must be pairs of tokens whose merge is in 'vocab'",
                        error);
    merge_add(tok, ia, ib, im);
  }
  return g_steal_pointer(&tok);
}

gboolean
fth_tokenizer_save(const FthTokenizer *tok, const char *path, GError **error)
{
  g_autofree char *json = fth_tokenizer_to_json(tok);
  GError *ferr = NULL;
  if (!g_file_set_contents_full(path, json, -1,
                                G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                0644, &ferr)) {
    g_set_error(error, FTH_TOKENIZER_ERROR, FTH_TOKENIZER_ERROR_IO, "%s", ferr->message);
    g_error_free(ferr);
    return FALSE;
  }
  return TRUE;
}

FthTokenizer *
fth_tokenizer_load(const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len;
  GError *ferr = NULL;
  if (!g_file_get_contents(path, &text, &len, &ferr)) {
    g_set_error(error, FTH_TOKENIZER_ERROR, FTH_TOKENIZER_ERROR_IO, "%s", ferr->message);
    g_error_free(ferr);
    return NULL;
  }
  return fth_tokenizer_from_json(text, (gssize)len, path, error);
}
