/* Op family 'conv' (owned by the OPS engineer): defines fth_ops_register_conv and its builders. */
#include "ops-private.h"

void fth_ops_register_conv(FthOpDef *table) {
  (void)table;
}
