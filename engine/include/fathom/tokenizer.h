/* fathom/tokenizer.h: subword tokenizers (WordPiece and BPE) trained on a project's text.
 *
 * Text is normalized per character with its combining marks (and emoji joined by U+200D):
 * NFKC, then optionally lowercased; every normalized character remembers the Unicode character
 * range [start, end) of the original text it came from. Pre-tokenization splits on whitespace
 * and control characters; punctuation and symbols (emoji included) and every Han ideograph are
 * tokens of their own; the rest forms words.
 *
 * Both kinds share one vocabulary layout: the special tokens [PAD] [UNK] [CLS] [SEP] [MASK]
 * (ids 0..4), then the alphabet (each character as a word start "c" and as a continuation
 * "##c"), then one token per merge. Training merges adjacent symbols of the corpus' words
 * until the vocabulary has vocab_size entries or no pair occurs min_frequency times:
 *   BPE        the pair with the highest count;
 *   WordPiece  the pair with the highest count(ab) / (count(a) * count(b)).
 * Ties go to the pair whose merged token sorts first (strcmp). Encoding a word: BPE applies the
 * merges in the order they were learned (an unknown character becomes [UNK]); WordPiece takes
 * the longest vocabulary match from the left, and a word it cannot cover is one [UNK]. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define FTH_TOKENIZER_ERROR (fth_tokenizer_error_quark())
GQuark fth_tokenizer_error_quark(void);

typedef enum {
  FTH_TOKENIZER_ERROR_INVALID, /* bad configuration, text that is not UTF-8 */
  FTH_TOKENIZER_ERROR_PARSE,   /* a saved tokenizer that does not read back */
  FTH_TOKENIZER_ERROR_IO,
} FthTokenizerError;

typedef enum {
  FTH_TOKENIZER_WORDPIECE = 0,
  FTH_TOKENIZER_BPE,
} FthTokenizerKind;

enum {
  FTH_TOKEN_PAD = 0,
  FTH_TOKEN_UNK = 1,
  FTH_TOKEN_CLS = 2,
  FTH_TOKEN_SEP = 3,
  FTH_TOKEN_MASK = 4,
  FTH_TOKEN_N_SPECIAL = 5,
};

typedef struct {
  FthTokenizerKind kind;
  int vocab_size;     /* the target; the alphabet is always kept, even when larger */
  gboolean lowercase;
  int min_frequency;  /* a pair merges only when it occurs at least this often (>= 1) */
} FthTokenizerConfig;

/* WordPiece, 8000 entries, lowercase, min_frequency 2. */
void fth_tokenizer_config_init(FthTokenizerConfig *cfg);

typedef struct FthTokenizer FthTokenizer;

/* Trains on n UTF-8 texts; names[i] (may be NULL) names text i in errors. */
FthTokenizer *fth_tokenizer_train(const char *const *texts, gsize n, const char *const *names,
                                  const FthTokenizerConfig *cfg, GError **error);
void fth_tokenizer_free(FthTokenizer *tok);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthTokenizer, fth_tokenizer_free)

FthTokenizerKind fth_tokenizer_kind(const FthTokenizer *tok);
int fth_tokenizer_vocab_size(const FthTokenizer *tok);
const char *fth_tokenizer_token(const FthTokenizer *tok, int32_t id); /* NULL out of range */
int32_t fth_tokenizer_token_id(const FthTokenizer *tok, const char *token); /* -1: absent */

/* Encodes text into max_len ids: [CLS] tokens [SEP] when add_special, truncated to fit, then
 * [PAD] up to max_len. starts/ends (may be NULL) receive each token's Unicode character range
 * in the original text ([start, end)), -1 for special and padding tokens. *n_tokens (may be
 * NULL) is the count before padding. name (may be NULL) names the text in errors. */
gboolean fth_tokenizer_encode(const FthTokenizer *tok, const char *text, gssize len,
                              const char *name, int max_len, gboolean add_special, int32_t *ids,
                              int32_t *starts, int32_t *ends, int *n_tokens, GError **error);

/* {"type": "wordpiece"|"bpe", "lowercase": bool, "vocab": [...], "merges": [["a", "##b"], ...]}
 * (merges in learned order; WordPiece files carry them too, encoding ignores them). */
char *fth_tokenizer_to_json(const FthTokenizer *tok);
FthTokenizer *fth_tokenizer_from_json(const char *json, gssize len, const char *source,
                                      GError **error);
/* Written atomically. */
gboolean fth_tokenizer_save(const FthTokenizer *tok, const char *path, GError **error);
FthTokenizer *fth_tokenizer_load(const char *path, GError **error);

G_END_DECLS
