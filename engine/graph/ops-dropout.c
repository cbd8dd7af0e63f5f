/* Op family 'dropout' (owned by the OPS engineer): defines fth_ops_register_dropout and its builders. */
#include "ops-private.h"

void fth_ops_register_dropout(FthOpDef *table) {
  (void)table;
}
