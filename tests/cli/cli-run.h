/* Running the built `fathom` binary as a user would, for the CLI tests. */
#pragma once

#include <fathom/store.h>

/* The binary under test (FATHOM_BIN), set by cli_test_find_binary. */
extern const char *fathom_bin;

typedef struct {
  int status;
  char *out;
  char *err;
} Result;

/* FALSE (the test should exit 77) when FATHOM_BIN does not name an executable. */
gboolean cli_test_find_binary(void);

void result_clear(Result *r);

/* Runs fathom with ARGS (NULL-terminated) and the extra environment ENV ("K=V", ...). */
Result run_env(const char *const *env, const char *first, ...) G_GNUC_NULL_TERMINATED;
#define run(...) run_env(NULL, __VA_ARGS__)

void expect_status(const Result *r, int status);
void assert_contains(const char *haystack, const char *needle);
FthStore *open_store(const char *dir);
