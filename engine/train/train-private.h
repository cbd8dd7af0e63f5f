/* Private to engine/train and its tests. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Failure injection for the atomic writer, used by the tests: after `after_bytes` more bytes
 * have been written, every write fails with errno `errnum` (ENOSPC models a full disk);
 * `fsync_errnum` != 0 makes the fsync of the temporary file fail. Reset with (0, -1, 0). */
void fth_file_inject_fault(int errnum, gint64 after_bytes, int fsync_errnum);

/* Tests: fth_train takes the device path on `be` whenever the CPU is selected (the CPU backend
 * as a device: separate memory, copies through copy_in/copy_out); NULL restores the plain CPU
 * path. Also lets fp16's loss scaling run on the CPU. */
struct FthBackend;
void fth_train_force_device(const struct FthBackend *be);

G_END_DECLS
