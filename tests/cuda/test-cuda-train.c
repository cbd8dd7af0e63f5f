/* A short training run on the GPU against the same run on the CPU: a small CNN (conv + ReLU,
 * max pool, separate or fused into the conv, dropout, linear, cross-entropy) on a fixed
 * synthetic data set, SGD with momentum.
 * Two graphs built from the same seed start from the same weights; the CPU one runs
 * fth_graph_run + engine/nn's optimizer, the other runs on the CUDA backend through the
 * graph-device executor with the fused device update. The loss curves must agree step by step
 * (f32: 1e-3 relative; bf16 and f16 math: 3e-2, with f16 behind a static loss scale that the
 * device scaler unscales and checks), training must lower the loss, and the final weights must
 * agree (f32: 1e-3, reduced: 5e-2 of the largest weight). The trainer of engine/train on its device
 * path (fth_trainer_use_device on CUDA, each precision) against the CPU trainer: per-epoch
 * losses within 1e-3 (f32) and 3e-2 (bf16, f16 with dynamic loss scaling). */
#include "cuda-harness.h"

#include "backend-cuda.h"
#include "graph-device.h"

#include <fathom/optim.h>
#include <fathom/train.h>

#include <math.h>
#include <string.h>

enum { BATCH = 32, SAMPLES = 96, STEPS = 12, H = 12, CLASSES = 5 };

typedef struct {
  FthGraph *g;
  FthNode *x, *t, *loss;
} Net;

/* fused: the conv carries the ReLU and the 2x2 max pool itself (max_pool2, as the recipe builder
 * makes conv -> relu -> max_pool2d chains), instead of a separate max_pool2d node. */
static Net build(uint64_t seed, float loss_scale, float dropout, int64_t batch, bool fused) {
  Net n = {.g = fth_graph_new(seed)};
  FthGraph *g = n.g;
  n.x = fth_input(g, "x", FTH_F32, 4, (int64_t[]){FTH_BATCH, 1, H, H});
  n.t = fth_input(g, "t", FTH_I32, 1, (int64_t[]){FTH_BATCH});
  FthInit k = {FTH_INIT_KAIMING_UNIFORM, 0, 0};
  FthNode *w1 = fth_param(g, "conv.w", 4, (int64_t[]){8, 1, 3, 3}, k);
  FthNode *b1 = fth_param(g, "conv.b", 1, (int64_t[]){8}, (FthInit){FTH_INIT_ZEROS, 0, 0});
  FthNode *w2 = fth_param(g, "fc.w", 2, (int64_t[]){CLASSES, 8 * (H / 2) * (H / 2)}, k);
  FthNode *b2 = fth_param(g, "fc.b", 1, (int64_t[]){CLASSES}, (FthInit){FTH_INIT_ZEROS, 0, 0});
  FthConv2dParams cp = {.stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1}, .groups = 1, .act = FTH_ACT_RELU,
                        .max_pool2 = fused};
  FthPool2dParams pp = {.kernel = {2, 2}, .stride = {2, 2}};
  FthNode *h = fth_conv2d(g, n.x, w1, b1, &cp);
  if (!fused)
    h = fth_max_pool2d(g, h, &pp);
  h = fth_reshape(g, h, 2, (int64_t[]){-1, 8 * (H / 2) * (H / 2)});
  if (dropout > 0.0f)
    h = fth_dropout(g, h, dropout);
  n.loss = fth_cross_entropy(g, fth_linear(g, h, w2, b2), n.t, NULL, NULL);
  g_assert_cmpint(fth_graph_mark_output(g, n.loss), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_backward(g, n.loss, loss_scale), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_plan(g, FTH_MODE_TRAIN, batch), ==, FTH_STATUS_OK);
  return n;
}

/* Labels are the argmax of a fixed random projection of the image: learnable, not trivial. */
static void make_data(uint64_t seed, float *x, int32_t *t) {
  harness_normal(seed, 1000, x, (size_t)SAMPLES * H * H);
  float *proj = g_new(float, CLASSES * H * H);
  harness_normal(seed, 1001, proj, CLASSES * H * H);
  for (int s = 0; s < SAMPLES; s++) {
    int best = 0;
    double best_v = -INFINITY;
    for (int c = 0; c < CLASSES; c++) {
      double v = 0;
      for (int i = 0; i < H * H; i++)
        v += proj[c * H * H + i] * x[(size_t)s * H * H + i];
      if (v > best_v)
        best_v = v, best = c;
    }
    t[s] = best;
  }
  g_free(proj);
}

static void run(FthCudaMath math, double rel_tol, double param_tol, float loss_scale, bool fused) {
  const FthBackend *cuda = harness_cuda_or_skip();
  FthCudaContext *ctx = harness_cuda_context();
  uint64_t seed = harness_seed();
  float *x = g_new(float, SAMPLES * H * H);
  int32_t *t = g_new(int32_t, SAMPLES);
  make_data(seed, x, t);
  Net cpu = build(seed, 1.0f, 0.1f, BATCH, fused), gpu = build(seed, loss_scale, 0.1f, BATCH, fused);

  FthOptimConfig cfg = fth_optim_config_default(FTH_OPTIM_SGD);
  cfg.lr = 0.01f; /* gentle: a chaotic curve would amplify rounding differences */
  cfg.momentum = 0.9f;
  int np = fth_graph_n_params(cpu.g);
  FthParam *params = g_new0(FthParam, np);
  for (int k = 0; k < np; k++) {
    FthNode *p = fth_graph_param(cpu.g, k);
    FthTensor v, gr;
    g_assert_cmpint(fth_graph_tensor(cpu.g, p, &v), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_param_grad_tensor(p, &gr), ==, FTH_STATUS_OK);
    params[k] = (FthParam){.name = fth_node_name(p), .value = v.data, .grad = gr.data,
                           .n = (size_t)fth_tensor_numel(&v), .decay = true};
  }
  FthOptimizer *opt = fth_optimizer_new(&cfg, params, (size_t)np);
  g_assert_nonnull(opt);

  fth_cuda_set_math(ctx, math);
  FthGraphDevice *dev = NULL;
  g_assert_cmpint(fth_graph_device_new(gpu.g, cuda, &dev), ==, FTH_STATUS_OK);
  float **dv = g_new0(float *, np), **dg = g_new0(float *, np), **dm = g_new0(float *, np);
  size_t *counts = g_new0(size_t, np);
  for (int k = 0; k < np; k++) {
    g_assert_cmpint(fth_graph_device_param(dev, fth_graph_param(gpu.g, k), &dv[k], &dg[k]), ==, FTH_STATUS_OK);
    counts[k] = params[k].n;
    dm[k] = fth_cuda_alloc(ctx, counts[k] * sizeof(float));
    g_assert_cmpint(fth_cuda_memset_zero(ctx, dm[k], counts[k] * sizeof(float)), ==, FTH_CUDA_OK);
  }
  FthCudaLossScaler scaler;
  g_assert_cmpint(fth_cuda_loss_scaler_init(ctx, &scaler, loss_scale), ==, FTH_CUDA_OK);
  scaler.growth_interval = 1 << 30; /* the graph's loss scale is fixed at build time */

  double first_cpu = 0, last_cpu = 0;
  for (int step = 0; step < STEPS; step++) {
    int off = (step * BATCH) % SAMPLES;
    const float *xb = x + (size_t)off * H * H;
    const int32_t *tb = t + off;
    g_assert_cmpint(fth_graph_set_input(cpu.g, cpu.x, xb, sizeof(float) * BATCH * H * H), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_set_input(cpu.g, cpu.t, tb, sizeof(int32_t) * BATCH), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_run(cpu.g), ==, FTH_STATUS_OK);
    FthTensor lt;
    g_assert_cmpint(fth_graph_tensor(cpu.g, cpu.loss, &lt), ==, FTH_STATUS_OK);
    double l_cpu = *(const float *)lt.data;
    fth_optimizer_step(opt, cfg.lr);

    g_assert_cmpint(fth_graph_device_set_input(dev, gpu.x, xb, sizeof(float) * BATCH * H * H), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_device_set_input(dev, gpu.t, tb, sizeof(int32_t) * BATCH), ==, FTH_STATUS_OK);
    FthStatus st = fth_graph_device_run(dev);
    if (st != FTH_STATUS_OK)
      g_error("device step %d: %s", step, fth_last_error());
    float l_gpu;
    g_assert_cmpint(fth_graph_device_read(dev, gpu.loss, false, &l_gpu, sizeof l_gpu), ==, FTH_STATUS_OK);
    int ok = 1;
    if (loss_scale != 1.0f) {
      g_assert_cmpint(fth_cuda_loss_scaler_unscale(ctx, &scaler, dg, counts, np), ==, FTH_CUDA_OK);
      g_assert_cmpint(fth_cuda_loss_scaler_update(ctx, &scaler, &ok), ==, FTH_CUDA_OK);
    }
    g_assert_cmpint(ok, ==, 1); /* this small net never overflows at this scale */
    for (int k = 0; k < np; k++)
      g_assert_cmpint(fth_cuda_sgd_step(ctx, dv[k], dg[k], dm[k], counts[k], cfg.lr, cfg.weight_decay, cfg.momentum,
                                        cfg.nesterov),
                      ==, FTH_CUDA_OK);
    g_test_message("step %d: loss %.6f on the CPU, %.6f on CUDA", step, l_cpu, (double)l_gpu);
    if (fabs(l_gpu - l_cpu) > rel_tol * (1.0 + fabs(l_cpu)))
      g_error("step %d: loss %.7f on CUDA, %.7f on the CPU (tolerance %g)", step, (double)l_gpu, l_cpu, rel_tol);
    if (step == 0)
      first_cpu = l_cpu;
    last_cpu = l_cpu;
  }
  g_assert_cmpfloat(last_cpu, <, 0.9 * first_cpu);

  /* the device weights come back to the graph and match the CPU's after the same updates */
  g_assert_cmpint(fth_graph_device_download_params(dev), ==, FTH_STATUS_OK);
  for (int k = 0; k < np; k++) {
    FthTensor v;
    g_assert_cmpint(fth_graph_tensor(gpu.g, fth_graph_param(gpu.g, k), &v), ==, FTH_STATUS_OK);
    size_t at;
    if (harness_excess(v.data, params[k].value, params[k].n, 0.0, param_tol, &at) > 0)
      g_error("parameter %s[%zu]: %g on CUDA, %g on the CPU", params[k].name, at, (double)((float *)v.data)[at],
              (double)params[k].value[at]);
  }

  fth_cuda_loss_scaler_release(ctx, &scaler);
  for (int k = 0; k < np; k++)
    fth_cuda_free(ctx, dm[k]);
  fth_graph_device_free(dev);
  fth_cuda_set_math(ctx, FTH_CUDA_MATH_F32);
  fth_optimizer_free(opt);
  fth_graph_free(cpu.g);
  fth_graph_free(gpu.g);
  g_free(params), g_free(dv), g_free(dg), g_free(dm), g_free(counts), g_free(x), g_free(t);
}

static void test_f32(void) {
  run(FTH_CUDA_MATH_F32, 1e-3, 1e-3, 1.0f, false);
}

static void test_bf16(void) {
  run(FTH_CUDA_MATH_BF16, 3e-2, 5e-2, 1.0f, false);
}

static void test_f32_fused_pool(void) {
  run(FTH_CUDA_MATH_F32, 1e-3, 1e-3, 1.0f, true);
}

static void test_f16_scaled(void) {
  run(FTH_CUDA_MATH_F16, 3e-2, 5e-2, 256.0f, false);
}

/* Data parallel on every GPU of the machine (up to 4) in one process: rank r trains on its
 * B / n samples of a batch of B, the gradients are averaged by the bucketed NCCL all-reduce, and
 * they must equal one GPU's gradients over the whole batch (the net has no dropout and no batch
 * norm, so the split changes nothing but the summation order). */
static void test_data_parallel(void) {
  harness_cuda_or_skip();
  int n = fth_cuda_device_count(NULL);
  if (n > 4)
    n = 4;
  if (n < 2) {
    g_test_skip("needs two GPUs");
    return;
  }
  enum { B = 32 };
  uint64_t seed = harness_seed();
  float *x = g_new(float, SAMPLES * H * H);
  int32_t *t = g_new(int32_t, SAMPLES);
  make_data(seed, x, t);
  Net one = build(seed, 1.0f, 0.0f, B, false);
  FthGraphDevice *ref = NULL;
  g_assert_cmpint(fth_graph_device_new(one.g, fth_backend_cuda(0), &ref), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_device_set_input(ref, one.x, x, sizeof(float) * B * H * H), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_device_set_input(ref, one.t, t, sizeof(int32_t) * B), ==, FTH_STATUS_OK);
  g_assert_cmpint(fth_graph_device_run(ref), ==, FTH_STATUS_OK);

  Net nets[4];
  FthGraphDevice *devs[4];
  FthCudaContext *ctxs[4];
  FthCudaComm *comms[4];
  const int64_t shard = B / n;
  for (int r = 0; r < n; r++) {
    const FthBackend *be = fth_backend_cuda(r);
    g_assert_nonnull(be);
    ctxs[r] = fth_backend_cuda_context(be);
    nets[r] = build(seed, 1.0f, 0.0f, shard, false);
    g_assert_cmpint(fth_graph_device_new(nets[r].g, be, &devs[r]), ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_device_set_input(devs[r], nets[r].x, x + (size_t)r * shard * H * H,
                                               sizeof(float) * (size_t)shard * H * H),
                    ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_device_set_input(devs[r], nets[r].t, t + (size_t)r * shard,
                                               sizeof(int32_t) * (size_t)shard),
                    ==, FTH_STATUS_OK);
    g_assert_cmpint(fth_graph_device_run(devs[r]), ==, FTH_STATUS_OK);
  }
  FthCudaStatus cs = fth_cuda_comm_new_all(ctxs, n, comms);
  if (cs == FTH_CUDA_UNSUPPORTED) {
    g_test_skip("built without NCCL");
  } else {
    g_assert_cmpint(cs, ==, FTH_CUDA_OK);
    /* small buckets: several buckets and an in-place reduction of the large weight */
    g_assert_cmpint(fth_graph_device_all_reduce_grads(devs, comms, n, 4096), ==, FTH_STATUS_OK);
    for (int r = 0; r < n; r++)
      g_assert_cmpint(fth_cuda_synchronize(ctxs[r]), ==, FTH_CUDA_OK);
    for (int k = 0; k < fth_graph_n_params(one.g); k++) {
      FthNode *p = fth_graph_param(one.g, k);
      int64_t shape[FTH_MAX_DIMS];
      size_t count = (size_t)fth_shape_numel(fth_node_shape(p, 1, shape), shape);
      float *want = g_new(float, count), *got = g_new(float, count);
      g_assert_cmpint(fth_graph_device_read(ref, p, true, want, count * 4), ==, FTH_STATUS_OK);
      for (int r = 0; r < n; r++) {
        g_assert_cmpint(fth_graph_device_read(devs[r], fth_graph_param(nets[r].g, k), true, got, count * 4), ==,
                        FTH_STATUS_OK);
        size_t at;
        if (harness_excess(got, want, count, 1e-4, 1e-5, &at) > 0)
          g_error("rank %d of %d: gradient of %s[%zu] is %g, one GPU gives %g", r, n, fth_node_name(p), at,
                  (double)got[at], (double)want[at]);
      }
      g_free(want), g_free(got);
    }
    for (int r = 0; r < n; r++)
      fth_cuda_comm_free(comms[r]);
  }
  for (int r = 0; r < n; r++) {
    fth_graph_device_free(devs[r]);
    fth_graph_free(nets[r].g);
  }
  fth_graph_device_free(ref);
  fth_graph_free(one.g);
  g_free(x), g_free(t);
}

/* ---- the trainer (engine/train) on the GPU against the CPU trainer ---------------------------- */

#define TRAINER_RECIPE \
  "{\"name\": \"gpu-trainer\", \"input\": {\"shape\": [1, 12, 12]}," \
  " \"layers\": [{\"type\": \"conv2d\", \"out_channels\": 8, \"kernel\": 3, \"padding\": 1}," \
  "  {\"type\": \"batch_norm\"}, {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2}," \
  "  {\"type\": \"flatten\"}, {\"type\": \"dropout\", \"p\": 0.1}," \
  "  {\"type\": \"linear\", \"out_features\": \"classes\"}]," \
  " \"train\": {\"optimizer\": \"adamw\", \"lr\": 0.003, \"batch\": 32, \"epochs\": 4}}"

enum { TR_N = 256, TR_EPOCHS = 4 };

static FthTrainer *trainer_for(const FthRecipe *r) {
  FthTrainerConfig cfg = {.seed = 3, .batch = 32, .epochs = TR_EPOCHS, .n_train = TR_N, .optim = r->train.optim,
                          .schedule = r->train.schedule};
  GError *error = NULL;
  FthTrainer *t = fth_trainer_new(r, CLASSES, &cfg, &error);
  g_assert_no_error(error);
  return t;
}

/* Per-epoch training losses of fth_trainer_run_epoch on the CPU and on CUDA (the device path of
 * fth_train: graph-device, the fused AdamW update, loss scaling for fp16) over the same data. */
static void trainer_run(FthPrecision precision, double tol) {
  static uint8_t pixels[TR_N * H * H];
  static int32_t labels[TR_N];
  static uint32_t idx[TR_N];
  uint64_t seed = harness_seed();
  for (int i = 0; i < TR_N; i++) {
    labels[i] = i % CLASSES;
    idx[i] = (uint32_t)i;
    for (int p = 0; p < H * H; p++) {
      int row = p / H;
      uint64_t h = (seed + (uint64_t)i * 7919u + (uint64_t)p * 104729u) * 0x9E3779B97F4A7C15ull;
      pixels[i * H * H + p] = (uint8_t)((row / 2 == labels[i] ? 160 : 20) + (h >> 58));
    }
  }
  FthSamples s = {pixels, labels, NULL, TR_N, 1, H, H};
  GError *error = NULL;
  FthRecipe *r = fth_recipe_parse(TRAINER_RECIPE, -1, "gpu-trainer", NULL, &error);
  g_assert_no_error(error);
  FthTrainer *cpu = trainer_for(r), *gpu = trainer_for(r);
  g_assert_true(fth_trainer_use_device(gpu, harness_cuda_or_skip(), 0, &error));
  g_assert_true(fth_trainer_set_precision(gpu, precision, &error));
  g_assert_no_error(error);
  double first = 0, last = 0;
  for (int e = 0; e < TR_EPOCHS; e++) {
    FthTrainProgress pc = {0}, pg = {0};
    gboolean stopped;
    g_assert_true(fth_trainer_run_epoch(cpu, &s, idx, TR_N, e, 0, 0, &pc, NULL, NULL, NULL, &stopped, &error));
    g_assert_true(fth_trainer_run_epoch(gpu, &s, idx, TR_N, e, 0, 0, &pg, NULL, NULL, NULL, &stopped, &error));
    g_assert_no_error(error);
    g_test_message("%s epoch %d: cpu %.6f gpu %.6f", fth_precision_name(precision), e + 1, pc.train_loss,
                   pg.train_loss);
    g_assert_cmpfloat(fabs(pc.train_loss - pg.train_loss), <=, tol * pc.train_loss);
    if (e == 0)
      first = pg.train_loss;
    last = pg.train_loss;
  }
  g_assert_cmpfloat(last, <, 0.8 * first);
  g_assert_cmpint(fth_trainer_skipped_steps(gpu), <=, 2);
  fth_trainer_free(cpu);
  fth_trainer_free(gpu);
  fth_recipe_free(r);
}

static void test_trainer_f32(void) {
  trainer_run(FTH_PRECISION_FP32, 1e-3);
}

static void test_trainer_bf16(void) {
  trainer_run(FTH_PRECISION_BF16, 3e-2);
}

static void test_trainer_f16(void) {
  trainer_run(FTH_PRECISION_FP16, 3e-2);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  harness_cuda_or_skip();
  g_test_add_func("/cuda/train/f32", test_f32);
  g_test_add_func("/cuda/train/f32-fused-pool", test_f32_fused_pool);
  g_test_add_func("/cuda/train/bf16", test_bf16);
  g_test_add_func("/cuda/train/f16-loss-scaled", test_f16_scaled);
  g_test_add_func("/cuda/train/data-parallel", test_data_parallel);
  g_test_add_func("/cuda/train/trainer-f32", test_trainer_f32);
  g_test_add_func("/cuda/train/trainer-bf16", test_trainer_bf16);
  g_test_add_func("/cuda/train/trainer-f16", test_trainer_f16);
  return g_test_run();
}
