/* fth-background-thread.h: long work (training, decoding an hour of audio, its spectrogram)
 * that must not take the cores from the main loop. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Sets the calling thread's niceness STEPS below the process's own (its main thread's), at
 * most 19; Linux only (elsewhere nothing). Threads it starts afterwards inherit it. A thread
 * cannot raise it back without privileges, so call it only on a thread of its own or in a pool
 * of background work. */
void fth_background_thread_lower_priority(int steps);

/* Runs FUNC for TASK (as g_task_run_in_thread() would) on a new thread of its own whose
 * priority is first lowered ten steps, so the main loop's frames come first. */
void fth_background_thread_run(GTask *task, GTaskThreadFunc func);

G_END_DECLS
