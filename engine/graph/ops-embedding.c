/* Op family 'embedding' (owned by the OPS engineer): defines fth_ops_register_embedding and its builders. */
#include "ops-private.h"

void fth_ops_register_embedding(FthOpDef *table) {
  (void)table;
}
