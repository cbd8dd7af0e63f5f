/* Private to engine/train: the communicator's table of functions, which each implementation
 * (parallel.c: local sockets, parallel-nccl.c: NCCL) fills, as the backends do. */
#pragma once

#include "fathom/parallel.h"

G_BEGIN_DECLS

typedef struct {
  const char *name;
  gboolean on_device;
  /* buf = sum over the ranks of scale_r * buf_r */
  gboolean (*all_reduce)(FthComm *comm, float *buf, size_t n, float scale, GError **error);
  gboolean (*broadcast)(FthComm *comm, void *buf, size_t bytes, int root, GError **error);
  gboolean (*barrier)(FthComm *comm, GError **error);
  void (*free)(FthComm *comm);
} FthCommOps;

/* Each implementation's struct starts with this. */
struct FthComm {
  const FthCommOps *ops;
  int rank, size;
};

G_END_DECLS
