/* Op family 'reduce'. */
#include "ops-private.h"

void fth_ops_register_reduce(FthOpDef *table) {
  (void)table;
}
