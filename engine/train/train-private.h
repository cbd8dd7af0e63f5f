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

/* --device for training and prediction: *be is the backend to run the graph on through
 * graph-device, or NULL for the plain CPU path (unless a test forces the device path); *name is
 * the device as recorded in the run's config ("cpu", "cuda:N"). */
gboolean fth_train_select_device(const char *spec, const struct FthBackend **be, char **name,
                                 GError **error);

G_END_DECLS
