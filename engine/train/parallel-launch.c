/* The launcher: N copies of one command with the rank variables set, watched until all end;
 * the first to fail stops the rest and is named in the error. */
#include "fathom/parallel.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { GRACE_MS = 5000, POLL_MS = 20, LOG_TAIL = 2000 };

typedef struct {
  pid_t pid;          /* 0 once reaped */
  int status;
  int order;          /* when it ended: 0 first; -1 still running */
  gboolean stopped;   /* sent SIGTERM by us after another rank failed */
  gboolean killed;    /* sent SIGKILL by us after the grace period */
} Worker;

static gboolean
failed(const Worker *w)
{
  return !WIFEXITED(w->status) || WEXITSTATUS(w->status) != 0;
}

/* The workers that fail by themselves come before those that fail because another one went
 * away (FTH_EXIT_PEER_LOST) and those we stopped. A worker killed by a signal we did not send
 * failed by itself, even when we had already tried to stop it (it may have been slow to die). */
static int
blame(const Worker *w, int n)
{
  int best = -1, best_rank = 3;
  for (int r = 0; r < n; r++) {
    if (w[r].order < 0 || !failed(&w[r]))
      continue;
    gboolean ours = w[r].killed || (WIFSIGNALED(w[r].status) && WTERMSIG(w[r].status) == SIGTERM);
    int rank = WIFSIGNALED(w[r].status) && !ours ? 0
               : w[r].stopped ? 2
               : WIFEXITED(w[r].status) && WEXITSTATUS(w[r].status) == FTH_EXIT_PEER_LOST ? 1 : 0;
    if (rank < best_rank || (rank == best_rank && w[r].order < w[best].order)) {
      best = r;
      best_rank = rank;
    }
  }
  return best;
}

static char *
log_tail(const char *dir, int rank)
{
  g_autofree char *path = g_strdup_printf("%s/rank-%d.log", dir, rank);
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &text, &len, NULL) || len == 0)
    return g_strdup("(no output)");
  gsize from = len > LOG_TAIL ? len - LOG_TAIL : 0;
  while (len > from && (text[len - 1] == '\n' || text[len - 1] == ' '))
    len--;
  return g_strdup_printf("%s%.*s", from ? "..." : "", (int)(len - from), text + from);
}

static char *
how_it_ended(int status)
{
  if (WIFSIGNALED(status))
    return g_strdup_printf("killed by signal %d (%s)", WTERMSIG(status),
                           g_strsignal(WTERMSIG(status)));
  return g_strdup_printf("exited with status %d", WEXITSTATUS(status));
}

/* The rank a worker's collective waited for in vain (FTH_COMM_HUNG_FILE), and that worker's
 * error; -1 without a report. */
static int
hung_rank(const char *dir, int nproc, char **report)
{
  g_autofree char *path = g_build_filename(dir, FTH_COMM_HUNG_FILE, NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, NULL))
    return -1;
  char *end = NULL;
  gint64 rank = g_ascii_strtoll(text, &end, 10);
  if (end == text || *end != '\n' || rank < 0 || rank >= nproc)
    return -1;
  *report = g_strchomp(g_strdup(end + 1));
  return (int)rank;
}

static void
remove_dir(const char *dir, int nproc)
{
  for (int r = 0; r < nproc; r++) {
    g_autofree char *path = g_strdup_printf("%s/rank-%d.log", dir, r);
    unlink(path);
  }
  g_autofree char *sock = g_build_filename(dir, "comm.sock", NULL);
  unlink(sock);
  g_autofree char *hung = g_build_filename(dir, FTH_COMM_HUNG_FILE, NULL);
  unlink(hung);
  rmdir(dir);
}

gboolean
fth_launch_workers(const char *const *argv, int nproc, int *failed_rank, GError **error)
{
  if (failed_rank != NULL)
    *failed_rank = -1;
  if (argv == NULL || argv[0] == NULL || nproc < 1) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID,
                "launch: a command and at least one process are needed");
    return FALSE;
  }
  g_autofree char *exe = strchr(argv[0], '/') ? g_strdup(argv[0]) : g_find_program_in_path(argv[0]);
  if (exe == NULL) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_INVALID,
                "launch: %s: no such program in PATH", argv[0]);
    return FALSE;
  }
  g_autofree char *dir = g_dir_make_tmp("fathom-dist-XXXXXX", error);
  if (dir == NULL)
    return FALSE;
  /* Everything the child needs is made before fork: after it only exec-safe calls. */
  char ***envs = g_new0(char **, nproc);
  char **logs = g_new0(char *, nproc);
  g_autofree Worker *w = g_new0(Worker, nproc);
  g_autofree char *size = g_strdup_printf("%d", nproc);
  /* As torchrun's OMP_NUM_THREADS: the workers share the cores rather than each taking all. */
  g_autofree char *threads = g_strdup_printf("%d", MAX(1, (int)g_get_num_processors() / nproc));
  for (int r = 0; r < nproc; r++) {
    g_autofree char *rank = g_strdup_printf("%d", r);
    envs[r] = g_get_environ();
    envs[r] = g_environ_setenv(envs[r], FTH_ENV_RANK, rank, TRUE);
    envs[r] = g_environ_setenv(envs[r], FTH_ENV_WORLD_SIZE, size, TRUE);
    envs[r] = g_environ_setenv(envs[r], FTH_ENV_DIST_DIR, dir, TRUE);
    envs[r] = g_environ_setenv(envs[r], "FTH_NUM_THREADS", threads, FALSE);
    logs[r] = g_strdup_printf("%s/rank-%d.log", dir, r);
    w[r].order = -1;
  }
  int started = 0, spawn_errno = 0;
  pid_t launcher = getpid();
  for (; started < nproc; started++) {
    pid_t pid = fork();
    if (pid == 0) {
      /* A launcher killed (Ctrl-C, SIGTERM, SIGKILL) takes its workers with it. */
      if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != launcher)
        _exit(127);
      if (started > 0) {
        int fd = open(logs[started], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
          _exit(127);
      }
      execve(exe, (char *const *)argv, envs[started]);
      _exit(127);
    }
    if (pid < 0) {
      spawn_errno = errno;
      break;
    }
    w[started].pid = pid;
  }
  for (int r = 0; r < nproc; r++) {
    g_strfreev(envs[r]);
    g_free(logs[r]);
  }
  g_free(envs);
  g_free(logs);

  int ended = 0, running = started;
  gint64 kill_at = spawn_errno ? g_get_monotonic_time() : -1;
  if (spawn_errno)
    for (int r = 0; r < started; r++)
      kill(w[r].pid, SIGTERM);
  while (running > 0) {
    gboolean newly_failed = FALSE;
    for (int r = 0; r < started; r++) {
      if (w[r].pid == 0 || waitpid(w[r].pid, &w[r].status, WNOHANG) != w[r].pid)
        continue;
      w[r].pid = 0;
      w[r].order = ended++;
      running--;
      newly_failed = newly_failed || failed(&w[r]);
    }
    /* After a whole pass: a worker whose death made another fail is reaped by now, so it is
     * not counted among the stopped. */
    if (newly_failed && kill_at < 0) {
      kill_at = g_get_monotonic_time() + GRACE_MS * 1000;
      for (int o = 0; o < started; o++)
        if (w[o].pid != 0) {
          w[o].stopped = TRUE;
          kill(w[o].pid, SIGTERM);
          /* A worker stopped by SIGSTOP would hold SIGTERM until the SIGKILL. */
          kill(w[o].pid, SIGCONT);
        }
    }
    if (running > 0 && kill_at >= 0 && g_get_monotonic_time() > kill_at)
      for (int r = 0; r < started; r++)
        if (w[r].pid != 0) {
          w[r].killed = TRUE;
          kill(w[r].pid, SIGKILL);
        }
    if (running > 0)
      g_usleep(POLL_MS * 1000);
  }

  gboolean ok = TRUE;
  int hung;
  g_autofree char *report = NULL;
  if (spawn_errno) {
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_WORKER,
                "launch: could not start rank %d of %d: %s", started, nproc,
                g_strerror(spawn_errno));
    ok = FALSE;
  } else if (kill_at >= 0 && (hung = hung_rank(dir, nproc, &report)) >= 0) {
    g_autofree char *tail = hung == 0 ? g_strdup("(its output is above)") : log_tail(dir, hung);
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_WORKER,
                "rank %d of %d (%s) hung: %s; the others were stopped. Its last output:\n%s", hung,
                nproc, argv[0], report, tail);
    if (failed_rank != NULL)
      *failed_rank = hung;
    ok = FALSE;
  } else if (kill_at >= 0) {
    int r = blame(w, nproc);
    g_autofree char *how = how_it_ended(w[r].status);
    g_autofree char *tail = r == 0 ? g_strdup("(its output is above)") : log_tail(dir, r);
    g_set_error(error, FTH_PARALLEL_ERROR, FTH_PARALLEL_ERROR_WORKER,
                "rank %d of %d (%s) failed: %s; the others were stopped. Its last output:\n%s",
                r, nproc, argv[0], how, tail);
    if (failed_rank != NULL)
      *failed_rank = r;
    ok = FALSE;
  }
  remove_dir(dir, nproc);
  return ok;
}
