/* Op family 'leaf'. */
#include "ops-private.h"

void fth_ops_register_leaf(FthOpDef *table) {
  (void)table;
}
