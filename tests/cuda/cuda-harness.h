/* Shared by the CUDA tests: skipping without a device, fresh random inputs, tolerance checks and
 * the per-node replay that runs every scheduled node of a graph on both backends. */
#pragma once

#include <fathom/backend.h>
#include <fathom/graph.h>
#include <fth-cuda.h>
#include <glib.h>

/* The CUDA backend on device 0, or exit(77) with the reason when no device answers. */
const FthBackend *harness_cuda_or_skip(void);
FthCudaContext *harness_cuda_context(void);

/* A seed for this run's random inputs (printed so a failure can be reproduced with
 * FTH_TEST_SEED). */
uint64_t harness_seed(void);

/* Fills n floats from N(0, 1) and n i32 from [0, max). */
void harness_normal(uint64_t seed, uint64_t stream, float *x, size_t n);
void harness_ints(uint64_t seed, uint64_t stream, int32_t *x, size_t n, int32_t max);

/* Largest |got - want| - rtol * |want| - atol * max|want| over the tensor; <= 0 passes.
 * Writes the worst index to *where. */
double harness_excess(const float *got, const float *want, size_t n, double rtol, double atol, size_t *where);

/* Tolerances for one math mode: f32 arithmetic everywhere, and the reduced modes for the nodes
 * whose work is a GEMM or a convolution. */
typedef struct {
  FthCudaMath math;
  double rtol, atol;           /* every node */
  double gemm_rtol, gemm_atol; /* matmul, linear, conv and attention nodes */
} HarnessTolerance;

/* Plans g for training at `batch`, then for every scheduled node: runs the CPU kernel on host
 * buffers, runs the CUDA kernel on device copies of the same inputs (and saved state), and
 * compares the output and aux tensors. i32 inputs are drawn from [0, i32_max). Asserts. */
void harness_replay(FthGraph *g, int64_t batch, int32_t i32_max, const HarnessTolerance *tol);
