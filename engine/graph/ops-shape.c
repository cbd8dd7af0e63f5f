/* Op family 'shape'. */
#include "ops-private.h"

void fth_ops_register_shape(FthOpDef *table) {
  (void)table;
}
