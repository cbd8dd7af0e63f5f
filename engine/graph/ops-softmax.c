/* Op family 'softmax'. */
#include "ops-private.h"

void fth_ops_register_softmax(FthOpDef *table) {
  (void)table;
}
