/* Private to engine/train: BIO decoding shared by the entity metrics and the tagger's
 * prediction. */
#pragma once

#include "fathom/train.h"

typedef struct {
  int type;             /* span label index: tags 2 type + 1 (B) and 2 type + 2 (I) */
  size_t start, end;    /* positions [start, end) among the counted ones */
} FthEntity;

/* The entities of tags (0 = O) at the positions where valid[i] >= 0, as seqeval's default mode
 * reads BIO; positions are numbered among the counted ones. A GArray of FthEntity. */
GArray *fth_bio_entities(const int32_t *tags, const int32_t *valid, size_t n);

/* fth_predict for a tagging checkpoint: each item's entities as model span annotations of the
 * predict run (score: the mean top probability of their tokens), and its embedding, the mean of
 * its tokens' features. */
gboolean fth_predict_spans(FthStore *store, const FthPredictOptions *o,
                           const FthCheckpointMeta *meta, const FthRecipe *recipe,
                           gint64 *run_id, gsize *n_items, GError **error);
