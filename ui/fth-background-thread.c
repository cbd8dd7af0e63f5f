/* fth-background-thread.c: see fth-background-thread.h. */
#include "fth-background-thread.h"

#ifdef __linux__
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define BACKGROUND_NICE_STEPS 10

void
fth_background_thread_lower_priority(int steps)
{
#ifdef __linux__
  id_t thread = (id_t)syscall(SYS_gettid);
  errno = 0;
  int process_nice = getpriority(PRIO_PROCESS, (id_t)getpid()); /* the main thread's */
  if (errno != 0)
    return;
  int nice = getpriority(PRIO_PROCESS, thread);
  int target = MIN(19, process_nice + steps);
  if (errno == 0 && nice < target)
    setpriority(PRIO_PROCESS, thread, target);
#endif
}

typedef struct {
  GTask *task;
  GTaskThreadFunc func;
} Run;

static gpointer
run_main(gpointer data)
{
  Run *run = data;
  fth_background_thread_lower_priority(BACKGROUND_NICE_STEPS);
  run->func(run->task, g_task_get_source_object(run->task), g_task_get_task_data(run->task),
            g_task_get_cancellable(run->task));
  g_object_unref(run->task);
  g_free(run);
  return NULL;
}

void
fth_background_thread_run(GTask *task, GTaskThreadFunc func)
{
  g_return_if_fail(G_IS_TASK(task));
  Run *run = g_new(Run, 1);
  run->task = g_object_ref(task);
  run->func = func;
  g_thread_unref(g_thread_new("fth-background", run_main, run));
}
