/* Op family 'activation'. */
#include "ops-private.h"

void fth_ops_register_activation(FthOpDef *table) {
  (void)table;
}
