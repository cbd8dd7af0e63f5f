/* Crash safety: a writer process is SIGKILLed at random moments, many times. After every kill
 * the project opens, passes integrity_check and holds every annotation whose write returned. */
#include "fth-config.h"

#include "store-test-util.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 30

/* The child: writes annotations one committed call at a time and reports each id through FD
 * only after the call returned. Never returns. */
static void G_GNUC_NORETURN
writer(const char *dir, gint64 item_id, gint64 label_id, int fd)
{
  FthStore *store = fth_store_open(dir, NULL);
  if (store == NULL)
    _exit(2);
  for (int i = 0;; i++) {
    FthAnnotation ann = { .item_id = item_id, .label_id = label_id, .geom = FTH_GEOM_BOX,
                          .x = i, .y = i, .w = 1 + i % 7, .h = 2, .score = 1 };
    gint64 id = 0;
    if (!fth_store_add_annotation(store, &ann, &id, NULL))
      _exit(3);
    /* 8 bytes is below PIPE_BUF: the parent reads whole ids or nothing. */
    if (write(fd, &id, sizeof id) != (ssize_t) sizeof id)
      _exit(4);
  }
}

static void
test_kill_writer(void)
{
  g_autofree char *tmp = store_test_make_dir();
  g_autoptr(GError) error = NULL;
  gint64 item_id = 0, label_id = 0;
  {
    g_autoptr(FthStore) store = fth_store_create(tmp, &error);
    g_assert_no_error(error);
    g_autoptr(FthItemRecord) item = store_test_image("x.png", 100, 100);
    item_id = store_test_add(store, item);
    g_assert_true(fth_store_add_label(store, "box", NULL, NULL, FTH_LABEL_REGION, &label_id, &error));
  }

  g_autoptr(GArray) reported = g_array_new(FALSE, FALSE, sizeof(gint64));
  GRand *rand = g_rand_new_with_seed(g_test_rand_int());
  for (int round = 0; round < ROUNDS; round++) {
    int fds[2];
    g_assert_cmpint(pipe(fds), ==, 0);
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
      close(fds[0]);
      writer(tmp, item_id, label_id, fds[1]);
    }
    close(fds[1]);
    /* Opening takes a few milliseconds; kill anywhere from before the first write to some
     * hundreds of writes in. */
    g_usleep((gulong) g_rand_int_range(rand, 1000, 40000));
    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    int status = 0;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status)); /* not an early exit from a failed write */
    gint64 id;
    ssize_t n;
    while ((n = read(fds[0], &id, sizeof id)) == (ssize_t) sizeof id)
      g_array_append_val(reported, id);
    g_assert_cmpint(n, ==, 0);
    close(fds[0]);

    g_autoptr(FthStore) store = fth_store_open_full(tmp, FTH_STORE_OPEN_FULL_CHECK, &error);
    g_assert_no_error(error);
    g_assert_true(fth_store_check_integrity(store, &error));
    g_assert_no_error(error);
    for (guint k = 0; k < reported->len; k++) {
      g_autoptr(FthAnnotation) ann =
          fth_store_get_annotation(store, g_array_index(reported, gint64, k), &error);
      g_assert_no_error(error);
      g_assert_cmpint(ann->item_id, ==, item_id);
    }
  }
  g_rand_free(rand);
  g_test_message("%u annotations reported over %d kills", reported->len, ROUNDS);
  g_assert_cmpuint(reported->len, >, ROUNDS);
  store_test_remove_dir(tmp);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/store/crash/kill-writer", test_kill_writer);
  return g_test_run();
}
