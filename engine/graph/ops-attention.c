/* Op family 'attention' (owned by the OPS engineer): defines fth_ops_register_attention and its builders. */
#include "ops-private.h"

void fth_ops_register_attention(FthOpDef *table) {
  (void)table;
}
