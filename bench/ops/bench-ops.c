/* Per-layer timing of the convolution and pooling kernels on the Fashion-MNIST CNN's shapes
 * (conv3x3 1->32 pad 1, ReLU, maxpool 2, conv3x3 32->64 pad 1, ReLU, maxpool 2, fc 3136->128,
 * fc 128->10), batch 1 and 64, forward and backward, split over the engine's thread pool the
 * way the ops split them (images, or output rows when there are fewer images than threads).
 *
 *   bench-ops [--threads N] [--min-ms MS] [--graph-only]
 *
 * Prints one row per kernel: milliseconds per batch (best of several timed runs), GFLOP/s
 * where the kernel does arithmetic, and the forward totals unfused (conv+ReLU, then pool) and
 * fused (conv+ReLU+pool in one pass) as images per second. Then the whole CNN through the
 * engine's graph (the ops, the planner's arena, linear and cross-entropy from the core):
 * inference at batch 1 and 256, and one training step's forward + backward at batch 64 (no
 * optimizer update), each with the convs unfused (conv+ReLU, max_pool2d) and fused
 * (max_pool2 in the conv). */
#include <fathom/core.h>
#include <fathom/graph.h>

#include "conv.h"
#include "fth-kernels-cpu.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of all the process's threads: on a shared machine this, unlike the wall clock,
 * does not count the time other processes held our cores. */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double last_cpu_ms; /* CPU ms per call of the last time_best, averaged over its rounds */

static float *alloc_floats(size_t n) {
  float *p = fth_aligned_alloc(FTH_ALIGNMENT, ((n * sizeof(float)) + 63) & ~(size_t)63);
  if (!p) {
    fprintf(stderr, "bench-ops: out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < n; i++)
    p[i] = (float)((i * 2654435761u) % 1000u) / 500.0f - 1.0f;
  return p;
}

/* ---- the work, split like the ops split it ------------------------------------------------- */

typedef struct {
  FthConvShape s;
  FthConvEpilogue ep;
  const float *x, *w, *b, *y, *dy;
  float *out, *dx, *scratch;
  size_t per_worker, partial_len;
  int chunks, rows_per_chunk, mode; /* mode: 0 forward, 1 dx, 2 dw + db */
} ConvJob;

static void conv_chunk(void *vctx, size_t begin, size_t end, int worker) {
  ConvJob *j = vctx;
  float *scratch = j->scratch + (size_t)worker * j->per_worker;
  if (j->mode == 0) {
    for (size_t item = begin; item < end; item++) {
      const int n = (int)(item / (size_t)j->chunks), c = (int)(item % (size_t)j->chunks);
      int r0 = c * j->rows_per_chunk, r1 = r0 + j->rows_per_chunk;
      if (r1 > j->s.out_h)
        r1 = j->s.out_h;
      if (r0 < r1)
        fth_conv2d_forward_rows(&j->s, &j->ep, j->x, j->w, j->b, j->out, scratch, n, r0, r1);
    }
  } else if (j->mode == 1) {
    fth_conv2d_backward(&j->s, &j->ep, NULL, j->w, j->y, j->dy, j->dx, NULL, NULL, scratch,
                        (int)begin, (int)end);
  } else {
    float *dw = scratch + j->per_worker - j->partial_len;
    float *db = dw + (size_t)j->s.out_c * (j->s.in_c / j->s.groups) * j->s.k_h * j->s.k_w;
    fth_conv2d_backward(&j->s, &j->ep, j->x, NULL, j->y, j->dy, NULL, dw, db, scratch, (int)begin,
                        (int)end);
  }
}

static void conv_run(ConvJob *j) {
  const int threads = fth_thread_count();
  if (j->mode == 0) {
    j->chunks = j->s.batch >= threads ? 1 : (threads + j->s.batch - 1) / j->s.batch;
    j->rows_per_chunk = (j->s.out_h + j->chunks - 1) / j->chunks;
    /* fused pooling needs even row bounds */
    if (j->ep.pool2 && (j->rows_per_chunk & 1))
      j->rows_per_chunk++;
    fth_parallel_for((size_t)j->s.batch * j->chunks, 1, conv_chunk, j);
    return;
  }
  if (j->mode == 2)
    for (int t = 0; t < threads; t++)
      memset(j->scratch + (size_t)t * j->per_worker + j->per_worker - j->partial_len, 0,
             j->partial_len * sizeof(float));
  fth_parallel_for((size_t)j->s.batch, 1, conv_chunk, j);
  if (j->mode == 2) {
    /* the reduction of the partials is part of the op's cost */
    float *dst = j->scratch + j->per_worker - j->partial_len;
    for (int t = 1; t < threads; t++) {
      const float *src = j->scratch + (size_t)t * j->per_worker + j->per_worker - j->partial_len;
      for (size_t i = 0; i < j->partial_len; i++)
        dst[i] += src[i];
    }
  }
}

typedef struct {
  FthPoolShape s;
  const float *x, *dy;
  float *y, *dx;
  int32_t *argmax;
  int backward;
} PoolJob;

static void pool_chunk(void *vctx, size_t begin, size_t end, int worker) {
  PoolJob *j = vctx;
  if (j->backward)
    fth_maxpool2d_backward(&j->s, j->dy, j->argmax, j->dx, begin, end);
  else
    fth_maxpool2d_forward(&j->s, j->x, j->y, j->argmax, begin, end);
}

/* ---- timing -------------------------------------------------------------------------------- */

static double min_ms = 300.0;

typedef void (*RunFn)(void *ctx);

/* Best time per call in ms: calls repeated in rounds until min_ms total, best round counts. */
static double time_best(RunFn fn, void *ctx) {
  fn(ctx); /* warm-up: page faults, caches */
  int per_round = 1;
  double t0 = now_s();
  fn(ctx);
  double one = now_s() - t0;
  if (one < 0.005)
    per_round = (int)(0.005 / (one > 1e-7 ? one : 1e-7)) + 1;
  double best = 1e30, total = 0.0;
  long calls = 0;
  const double c0 = cpu_s();
  while (total * 1e3 < min_ms) {
    t0 = now_s();
    for (int i = 0; i < per_round; i++)
      fn(ctx);
    double dt = now_s() - t0;
    total += dt;
    calls += per_round;
    if (dt / per_round < best)
      best = dt / per_round;
  }
  last_cpu_ms = (cpu_s() - c0) * 1e3 / (double)calls;
  return best * 1e3;
}

static void run_conv(void *ctx) {
  conv_run(ctx);
}

typedef struct {
  PoolJob job;
  size_t planes;
} PoolRun;

static void run_pool_planes(void *ctx) {
  PoolRun *p = ctx;
  const size_t plane = (size_t)p->job.s.in_h * p->job.s.in_w;
  fth_parallel_for(p->planes, plane >= 4096 ? 1 : 4096 / plane, pool_chunk, &p->job);
}

typedef struct {
  int m, n, k;
  const float *a, *b;
  float *c;
} GemmRun;

static void run_fc(void *ctx) {
  GemmRun *g = ctx;
  /* y [B, out] = x [B, in] W^T, W [out, in] */
  fth_sgemm(false, true, g->m, g->n, g->k, 1.0f, g->a, g->k, g->b, g->k, 0.0f, g->c, g->n);
}

static void row(const char *layer, int batch, const char *what, double ms, double flops) {
  if (flops > 0)
    printf("| %-26s | %5d | %-22s | %9.3f | %7.1f |\n", layer, batch, what, ms,
           flops / (ms * 1e-3) * 1e-9);
  else
    printf("| %-26s | %5d | %-22s | %9.3f |       - |\n", layer, batch, what, ms);
}

static ConvJob conv_job(int batch, int cin, int hw, int cout, int relu, int pool2) {
  ConvJob j = {0};
  j.s = (FthConvShape){.batch = batch, .in_c = cin, .in_h = hw, .in_w = hw, .out_c = cout,
                       .k_h = 3, .k_w = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                       .dil_h = 1, .dil_w = 1, .groups = 1};
  const char *why;
  if (fth_conv2d_shape_check(&j.s, &why) != 0) {
    fprintf(stderr, "bench-ops: %s\n", why);
    exit(1);
  }
  j.ep.relu = relu;
  j.ep.pool2 = pool2;
  return j;
}

static void bench_batch(int B) {
  const int threads = fth_thread_count();
  const double conv1_flops = 2.0 * B * 32 * 28 * 28 * 9;
  const double conv2_flops = 2.0 * B * 64 * 14 * 14 * 288;
  float *x = alloc_floats((size_t)B * 784);
  float *w1 = alloc_floats(32 * 9), *b1 = alloc_floats(32);
  float *y1 = alloc_floats((size_t)B * 32 * 784), *p1 = alloc_floats((size_t)B * 32 * 196);
  float *w2 = alloc_floats(64 * 288), *b2 = alloc_floats(64);
  float *y2 = alloc_floats((size_t)B * 64 * 196), *p2 = alloc_floats((size_t)B * 64 * 49);
  float *dy1 = alloc_floats((size_t)B * 32 * 784), *dp1 = alloc_floats((size_t)B * 32 * 196);
  float *dy2 = alloc_floats((size_t)B * 64 * 196), *dp2 = alloc_floats((size_t)B * 64 * 49);
  float *dx2 = alloc_floats((size_t)B * 32 * 196);
  int32_t *a1 = fth_aligned_alloc(64, (size_t)B * 32 * 196 * 4 + 64);
  int32_t *a2 = fth_aligned_alloc(64, (size_t)B * 64 * 49 * 4 + 64);
  uint8_t *fa1 = fth_aligned_alloc(64, (size_t)B * 32 * 196 + 64);
  uint8_t *fa2 = fth_aligned_alloc(64, (size_t)B * 64 * 49 + 64);
  float *wf1 = alloc_floats(128 * 3136), *f1 = alloc_floats((size_t)B * 128);

  /* scratch: the largest per-worker need of any job below, for every worker */
  ConvJob c1 = conv_job(B, 1, 28, 32, 1, 0), c2 = conv_job(B, 32, 14, 64, 1, 0);
  size_t per_worker = 0;
  const FthConvEpilogue pool_ep = {.relu = 1, .pool2 = 1};
  const size_t cands[] = {
      fth_conv2d_forward_scratch_floats(&c1.s, &pool_ep, 28),
      fth_conv2d_forward_scratch_floats(&c2.s, &pool_ep, 14),
      fth_conv2d_backward_scratch_floats(&c1.s, &pool_ep) + 32 * 9 + 32,
      fth_conv2d_backward_scratch_floats(&c2.s, &pool_ep) + 64 * 288 + 64,
  };
  for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
    per_worker = cands[i] > per_worker ? cands[i] : per_worker;
  per_worker = (per_worker + 15) & ~(size_t)15;
  float *scratch = alloc_floats(per_worker * (size_t)threads);

  double fwd_unfused = 0, fwd_fused = 0, bwd = 0, ms;

  /* conv1 + ReLU */
  c1.x = x, c1.w = w1, c1.b = b1, c1.out = y1, c1.scratch = scratch, c1.per_worker = per_worker;
  ms = time_best(run_conv, &c1);
  fwd_unfused += ms;
  row("conv1 3x3 1->32 +ReLU", B, "forward", ms, conv1_flops);
  PoolRun pr1 = {.job = {.s = {.in_h = 28, .in_w = 28, .out_h = 14, .out_w = 14, .k_h = 2, .k_w = 2,
                               .stride_h = 2, .stride_w = 2},
                         .x = y1, .y = p1, .argmax = a1},
                 .planes = (size_t)B * 32};
  ms = time_best(run_pool_planes, &pr1);
  fwd_unfused += ms;
  row("maxpool1 2x2 (argmax)", B, "forward", ms, 0);
  ConvJob c1f = c1;
  c1f.ep = (FthConvEpilogue){.relu = 1, .pool2 = 1, .pool_argmax = fa1};
  c1f.out = p1;
  ms = time_best(run_conv, &c1f);
  fwd_fused += ms;
  row("conv1+ReLU+maxpool fused", B, "forward", ms, conv1_flops);

  /* conv2 + ReLU */
  c2.x = p1, c2.w = w2, c2.b = b2, c2.out = y2, c2.scratch = scratch, c2.per_worker = per_worker;
  ms = time_best(run_conv, &c2);
  fwd_unfused += ms;
  row("conv2 3x3 32->64 +ReLU", B, "forward", ms, conv2_flops);
  PoolRun pr2 = {.job = {.s = {.in_h = 14, .in_w = 14, .out_h = 7, .out_w = 7, .k_h = 2, .k_w = 2,
                               .stride_h = 2, .stride_w = 2},
                         .x = y2, .y = p2, .argmax = a2},
                 .planes = (size_t)B * 64};
  ms = time_best(run_pool_planes, &pr2);
  fwd_unfused += ms;
  row("maxpool2 2x2 (argmax)", B, "forward", ms, 0);
  ConvJob c2f = c2;
  c2f.ep = (FthConvEpilogue){.relu = 1, .pool2 = 1, .pool_argmax = fa2};
  c2f.out = p2;
  ms = time_best(run_conv, &c2f);
  fwd_fused += ms;
  row("conv2+ReLU+maxpool fused", B, "forward", ms, conv2_flops);

  GemmRun fc1 = {.m = B, .n = 128, .k = 3136, .a = p2, .b = wf1, .c = f1};
  fth_sgemm_set_threads(threads);
  ms = time_best(run_fc, &fc1);
  fth_sgemm_set_threads(1);
  fwd_unfused += ms;
  fwd_fused += ms;
  row("fc1 3136->128 (sgemm)", B, "forward", ms, 2.0 * B * 3136 * 128);

  /* backward, in the order the graph runs it */
  PoolRun pb2 = pr2;
  pb2.job.backward = 1, pb2.job.dy = dp2, pb2.job.dx = dy2;
  ms = time_best(run_pool_planes, &pb2);
  bwd += ms;
  row("maxpool2 2x2", B, "backward", ms, 0);
  ConvJob c2dx = c2;
  c2dx.mode = 1, c2dx.y = y2, c2dx.dy = dy2, c2dx.dx = dx2;
  ms = time_best(run_conv, &c2dx);
  bwd += ms;
  row("conv2 (ReLU mask)", B, "backward dx", ms, conv2_flops);
  ConvJob c2dw = c2dx;
  c2dw.mode = 2, c2dw.partial_len = 64 * 288 + 64;
  ms = time_best(run_conv, &c2dw);
  bwd += ms;
  row("conv2 (ReLU mask)", B, "backward dw+db", ms, conv2_flops);
  ConvJob c2fdw = c2f;
  c2fdw.mode = 2, c2fdw.partial_len = 64 * 288 + 64, c2fdw.y = p2, c2fdw.dy = dp2;
  ms = time_best(run_conv, &c2fdw);
  row("conv2+ReLU+pool fused", B, "backward dw+db", ms, conv2_flops);
  PoolRun pb1 = pr1;
  pb1.job.backward = 1, pb1.job.dy = dp1, pb1.job.dx = dy1;
  ms = time_best(run_pool_planes, &pb1);
  bwd += ms;
  row("maxpool1 2x2", B, "backward", ms, 0);
  ConvJob c1dw = c1;
  c1dw.mode = 2, c1dw.partial_len = 32 * 9 + 32, c1dw.y = y1, c1dw.dy = dy1;
  ms = time_best(run_conv, &c1dw);
  bwd += ms;
  row("conv1 (ReLU mask)", B, "backward dw+db", ms, conv1_flops);

  printf("| %-26s | %5d | %-22s | %9.3f | %7.0f img/s |\n", "conv/pool/fc1 unfused", B,
         "forward total", fwd_unfused, B / (fwd_unfused * 1e-3));
  printf("| %-26s | %5d | %-22s | %9.3f | %7.0f img/s |\n", "conv/pool/fc1 fused", B,
         "forward total", fwd_fused, B / (fwd_fused * 1e-3));
  printf("| %-26s | %5d | %-22s | %9.3f | %7.0f img/s |\n", "conv/pool layers", B,
         "fwd (unfused) + bwd", fwd_unfused + bwd, B / ((fwd_unfused + bwd) * 1e-3));

  fth_free(x), fth_free(w1), fth_free(b1), fth_free(y1), fth_free(p1), fth_free(w2);
  fth_free(b2), fth_free(y2), fth_free(p2), fth_free(dy1), fth_free(dp1), fth_free(dy2);
  fth_free(dp2), fth_free(dx2), fth_free(a1), fth_free(a2), fth_free(fa1), fth_free(fa2);
  fth_free(wf1), fth_free(f1), fth_free(scratch);
}

/* ---- the whole CNN through the graph --------------------------------------------------------- */

typedef struct {
  FthGraph *g;
  FthNode *x, *labels;
  float *x_data;
  int32_t *label_data;
  int64_t batch;
} CnnGraph;

static void check(FthStatus st, const char *what) {
  if (st != FTH_STATUS_OK) {
    fprintf(stderr, "bench-ops: %s: %s\n", what, fth_last_error());
    exit(1);
  }
}

static CnnGraph cnn_build(bool fused, bool train, int64_t max_batch) {
  CnnGraph c = {.g = fth_graph_new(1234)};
  FthGraph *g = c.g;
  const FthInit init = {FTH_INIT_KAIMING_UNIFORM, 0, 0};
  c.x = fth_input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 1, 28, 28});
  FthNode *h = c.x;
  const int64_t chans[3] = {1, 32, 64};
  for (int l = 0; l < 2; l++) {
    char wn[16], bn[16];
    snprintf(wn, sizeof wn, "conv%d.w", l + 1);
    snprintf(bn, sizeof bn, "conv%d.b", l + 1);
    FthNode *w = fth_param(g, wn, 4, (int64_t[]){chans[l + 1], chans[l], 3, 3}, init);
    FthNode *b = fth_param(g, bn, 1, (int64_t[]){chans[l + 1]}, (FthInit){FTH_INIT_ZEROS, 0, 0});
    FthConv2dParams p = {.stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1}, .groups = 1,
                         .act = FTH_ACT_RELU, .max_pool2 = fused};
    h = fth_conv2d(g, h, w, b, &p);
    if (!fused) {
      FthPool2dParams pp = {.kernel = {2, 2}, .stride = {2, 2}};
      h = fth_max_pool2d(g, h, &pp);
    }
  }
  h = fth_reshape(g, h, 2, (int64_t[]){-1, 3136});
  FthNode *w1 = fth_param(g, "fc1.w", 2, (int64_t[]){128, 3136}, init);
  FthNode *b1 = fth_param(g, "fc1.b", 1, (int64_t[]){128}, (FthInit){FTH_INIT_ZEROS, 0, 0});
  h = fth_linear_act(g, h, w1, b1, FTH_ACT_RELU);
  FthNode *w2 = fth_param(g, "fc2.w", 2, (int64_t[]){10, 128}, init);
  FthNode *b2 = fth_param(g, "fc2.b", 1, (int64_t[]){10}, (FthInit){FTH_INIT_ZEROS, 0, 0});
  FthNode *logits = fth_linear(g, h, w2, b2);
  if (train) {
    c.labels = fth_input(g, "labels", FTH_I32, 1, (int64_t[]){FTH_BATCH});
    FthCrossEntropyParams cp = {.label_smoothing = 0.0f, .ignore_index = FTH_NO_IGNORE_INDEX};
    FthNode *loss = fth_cross_entropy(g, logits, c.labels, NULL, &cp);
    check(fth_graph_status(g), "build");
    check(fth_graph_backward(g, loss, 1.0f), "backward");
  } else {
    check(fth_graph_status(g), "build");
    check(fth_graph_mark_output(g, logits), "output");
  }
  check(fth_graph_plan(g, train ? FTH_MODE_TRAIN : FTH_MODE_INFERENCE, max_batch), "plan");
  check(fth_graph_set_batch(g, max_batch), "batch");
  c.batch = max_batch;
  c.x_data = alloc_floats((size_t)max_batch * 784);
  c.label_data = fth_malloc(sizeof(int32_t) * (size_t)max_batch);
  for (int64_t i = 0; i < max_batch; i++)
    c.label_data[i] = (int32_t)(i % 10);
  return c;
}

/* A step copies its batch in, as a trainer or server does (the planner may reuse input memory
 * once the inputs are dead). */
static void run_graph(void *ctx) {
  CnnGraph *c = ctx;
  check(fth_graph_set_input(c->g, c->x, c->x_data, sizeof(float) * (size_t)c->batch * 784), "x");
  if (c->labels)
    check(fth_graph_set_input(c->g, c->labels, c->label_data, sizeof(int32_t) * (size_t)c->batch),
          "labels");
  check(fth_graph_run(c->g), "run");
}

static void bench_graph(void) {
  static const struct {
    const char *what;
    bool train;
    int64_t batch;
  } runs[] = {{"inference", false, 1}, {"inference", false, 256}, {"train fwd+bwd", true, 64}};
  for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++)
    for (int fused = 0; fused < 2; fused++) {
      CnnGraph c = cnn_build(fused, runs[r].train, runs[r].batch);
      FthPlanStats st;
      check(fth_graph_plan_stats(c.g, &st), "stats");
      double ms = time_best(run_graph, &c);
      printf("| CNN graph, %-7s convs  | %5lld | %-22s | %9.3f | %7.0f img/s | %9.3f | arena %.1f MiB |\n",
             fused ? "fused" : "unfused", (long long)runs[r].batch, runs[r].what, ms,
             (double)runs[r].batch / (ms * 1e-3), last_cpu_ms,
             (double)(st.fixed_bytes + st.per_sample_bytes * (size_t)runs[r].batch) / 1048576.0);
      fth_graph_free(c.g);
      fth_free(c.x_data);
      fth_free(c.label_data);
    }
}

int main(int argc, char **argv) {
  bool graph_only = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      if (fth_set_thread_count(atoi(argv[++i])) != FTH_STATUS_OK) {
        fprintf(stderr, "bench-ops: %s\n", fth_last_error());
        return 1;
      }
    } else if (!strcmp(argv[i], "--min-ms") && i + 1 < argc) {
      min_ms = atof(argv[++i]);
    } else if (!strcmp(argv[i], "--graph-only")) {
      graph_only = true;
    } else {
      fprintf(stderr, "usage: bench-ops [--threads N] [--min-ms MS] [--graph-only]\n");
      return 2;
    }
  }
  fth_sgemm_set_threads(1); /* the pool parallelizes; OpenBLAS runs inside each chunk */
  printf("# bench-ops: %d threads, best of rounds over >= %.0f ms per kernel\n",
         fth_thread_count(), min_ms);
  if (!graph_only) {
    printf("| kernel | batch | pass | ms/batch | GFLOP/s |\n|---|---|---|---|---|\n");
    bench_batch(1);
    bench_batch(64);
    bench_batch(256);
  }
  printf("\n| graph | batch | pass | ms/batch (best) | throughput | CPU ms/batch (all threads, mean) | memory |\n|---|---|---|---|---|---|---|\n");
  bench_graph();
  return 0;
}
