/* Running a planned graph on another backend's memory (the CUDA backend): the planner's arena
 * layout is mirrored in one device allocation, parameters and their gradients get device
 * copies, and every scheduled node runs through the backend with its tensors rebased onto the
 * device. Private to the engine (the trainer), its tests and benchmarks.
 *
 * Life: build -> backward -> fth_graph_plan() -> fth_graph_device_new(g, backend) ->
 * per step: fth_graph_set_batch() (optional), fth_graph_device_set_input(), fth_graph_device_run(),
 * then the optimizer on fth_graph_device_param() buffers -> fth_graph_device_download_params()
 * to write the values back to the graph (checkpoints). Replanning the graph invalidates it. */
#pragma once

#include <fathom/backend.h>
#include <fathom/graph.h>

typedef struct FthGraphDevice FthGraphDevice;

/* Allocates the device arena and parameter storage and uploads the parameter values. */
FthStatus fth_graph_device_new(FthGraph *g, const FthBackend *be, FthGraphDevice **out);
void fth_graph_device_free(FthGraphDevice *d);
const FthBackend *fth_graph_device_backend(const FthGraphDevice *d);
FthGraph *fth_graph_device_graph(const FthGraphDevice *d);

/* Copies an input's batch to the device (bytes: its size at the current batch). */
FthStatus fth_graph_device_set_input(FthGraphDevice *d, const FthNode *input, const void *data, size_t bytes);
/* One step on the device (forward, and backward in training mode), then the parameter gradients
 * are complete on the device; waits for the device and reports its errors. */
FthStatus fth_graph_device_run(FthGraphDevice *d);
/* Copies a node's current value (any planned node, a parameter, or a parameter's gradient with
 * grad = true) to host memory; bytes must equal its size. */
FthStatus fth_graph_device_read(FthGraphDevice *d, const FthNode *node, bool grad, void *host, size_t bytes);
/* Device buffers of a parameter (grad NULL for buffers), for the optimizer. */
FthStatus fth_graph_device_param(FthGraphDevice *d, const FthNode *param, float **value, float **grad);
/* After the graph was planned again (another mode or maximum batch): a device arena for the new
 * plan replaces the old one; parameters and gradients keep their device storage and values. */
FthStatus fth_graph_device_replan(FthGraphDevice *d);
/* Uploads the graph's host parameter values again (after loading a checkpoint). */
FthStatus fth_graph_device_upload_params(FthGraphDevice *d);
/* Writes the device parameter values back into the graph's host storage. */
FthStatus fth_graph_device_download_params(FthGraphDevice *d);

/* Auto batch size: plans g for `mode` at the largest batch from max_batch down whose device
 * state fits. First the planner's exact bytes (arena fixed + per sample * batch, parameters,
 * their gradients) must fit `budget_bytes` (0: skip the estimate); then the device allocations
 * must succeed: an out-of-memory failure halves the batch, replans and retries. *batch receives
 * the batch chosen (the graph is left planned for it). FTH_STATUS_NO_MEMORY when even batch 1
 * does not fit. */
FthStatus fth_graph_device_fit(FthGraph *g, const FthBackend *be, FthGraphMode mode, int64_t max_batch,
                               size_t budget_bytes, FthGraphDevice **out, int64_t *batch);
