/* Op family 'norm' (owned by the OPS engineer): defines fth_ops_register_norm and its builders. */
#include "ops-private.h"

void fth_ops_register_norm(FthOpDef *table) {
  (void)table;
}
