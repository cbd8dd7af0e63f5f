/* fth-store.c: the SQLite project store. See <fathom/store.h> for the contract. */
#include "fth-config.h"

#include <fathom/store.h>

G_DEFINE_QUARK(fth-store-error-quark, fth_store_error)
