/* fault-sqlite.h: failure injection for SQLite in tests.
 *
 * A VFS shim registered as the default VFS forwards to the real one but, once armed, lets
 * N more writes through and then fails every write with a chosen result code (a full disk
 * or a failing device), until disarmed. A malloc hook installed through
 * SQLITE_CONFIG_MALLOC fails the N-th allocation after arming. */
#pragma once

#include <glib.h>

/* Call once, first thing in main(), before any SQLite use. */
void fault_sqlite_install(void);
/* Writes (xWrite and xTruncate on any file) after N_OK more succeed fail with RC. */
void fault_sqlite_fail_writes(int n_ok, int rc);
/* The allocation after N_OK more succeeds fails (once). */
void fault_sqlite_fail_malloc(int n_ok);
void fault_sqlite_disarm(void);
/* Number of failures injected since install. */
int fault_sqlite_n_injected(void);
