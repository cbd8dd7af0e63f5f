/* Status names and the thread-local last-error message. */
#include <fathom/core.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

const char *fth_status_name(FthStatus status) {
  switch (status) {
  case FTH_STATUS_OK: return "ok";
  case FTH_STATUS_INVALID_ARGUMENT: return "invalid argument";
  case FTH_STATUS_SHAPE_MISMATCH: return "shape mismatch";
  case FTH_STATUS_NO_MEMORY: return "out of memory";
  case FTH_STATUS_UNSUPPORTED: return "unsupported";
  case FTH_STATUS_BAD_STATE: return "bad state";
  case FTH_STATUS_IO_ERROR: return "I/O error";
  case FTH_STATUS_NUMERIC: return "non-finite value";
  case FTH_STATUS_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char *fth_last_error(void) {
  return last_error;
}

FthStatus fth_error(FthStatus status, const char *fmt, ...) {
  /* formatted aside first: callers pass fth_last_error() to wrap the previous message */
  char message[sizeof last_error];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  memcpy(last_error, message, sizeof last_error);
  return status;
}

void fth_clear_error(void) {
  last_error[0] = '\0';
}
