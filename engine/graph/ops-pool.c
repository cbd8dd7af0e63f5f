/* Op family 'pool' (owned by the OPS engineer): defines fth_ops_register_pool and its builders. */
#include "ops-private.h"

void fth_ops_register_pool(FthOpDef *table) {
  (void)table;
}
