/* Op family 'elementwise'. */
#include "ops-private.h"

void fth_ops_register_elementwise(FthOpDef *table) {
  (void)table;
}
