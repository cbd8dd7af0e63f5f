/* GPU benchmarks of the CUDA backend, printed as "key value" lines that bench/gpu/check.sh sets
 * beside PyTorch's numbers from the same GPU:
 *   gemm_bf16_tflops    8192^3 bf16 GEMM (f32 accumulation) on random data, median of 5 x 10
 *   train_<model>_<math>_sps  training samples per second at batch 256 (forward, backward and the
 *                       fused SGD update, the whole step timed), models from the zoo:
 *                       fmnist-cnn on 1x28x28 and ResNet-20 (resnet, 3x32x32), random data
 *   train_<model>_<math>_mib  device memory the training state holds (arena, parameters,
 *                       gradients, momenta), against train_<model>_f32_plan_mib, the plan's
 *                       f32 bytes: storage stays f32 in every math mode, so the two agree
 *   trainer_<model>_<precision>_sps  the same models through the product's path, the trainer on
 *                       the device (fth_trainer_use_device, fth_trainer_run_epoch): uint8 samples
 *                       converted and uploaded each step, the loss and logits read back, the
 *                       fused device optimizer; fp16 with dynamic loss scaling
 *   trainer_<model>_<precision>_bytes_per_sample  the planner's activation bytes per sample
 * Usage: bench-gpu [--quick]
 *        bench-gpu --trainer-cpu   the trainer benchmark's logic on the CPU backend used as a
 *                                  device, a few small steps (runs without a GPU) */
#include "backend-cuda.h"
#include "graph-device.h"

#include <fathom/graph.h>
#include <fathom/recipe.h>
#include <fathom/train.h>
#include <fth-cuda.h>

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#define CHECK_CUDA(expr)                                                                           \
  do {                                                                                             \
    if ((expr) != FTH_CUDA_OK) {                                                                   \
      fprintf(stderr, "bench-gpu: %s: %s\n", #expr, fth_cuda_last_error());                        \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

#define CHECK(expr)                                                                                \
  do {                                                                                             \
    if ((expr) != FTH_STATUS_OK) {                                                                 \
      fprintf(stderr, "bench-gpu: %s: %s\n", #expr, fth_last_error());                             \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

/* Random normal values on the device (f32, then converted), never zeros: zeros run faster. */
static void *device_random(FthCudaContext *ctx, FthCudaDType dt, size_t n, uint64_t stream) {
  float *host = g_new(float, n);
  FthRng rng;
  fth_rng_init(&rng, 1234, stream);
  fth_rng_normal(&rng, host, n, 0.0f, 1.0f);
  float *d32 = fth_cuda_alloc(ctx, n * sizeof(float));
  void *d = dt == FTH_CUDA_DT_F32 ? d32 : fth_cuda_alloc(ctx, n * 2);
  if (!d32 || !d) {
    fprintf(stderr, "bench-gpu: %s\n", fth_cuda_last_error());
    exit(1);
  }
  CHECK_CUDA(fth_cuda_copy_to_device(ctx, d32, host, n * sizeof(float)));
  if (dt != FTH_CUDA_DT_F32) {
    CHECK_CUDA(fth_cuda_convert(ctx, dt, d, FTH_CUDA_DT_F32, d32, n));
    CHECK_CUDA(fth_cuda_synchronize(ctx));
    fth_cuda_free(ctx, d32);
  }
  g_free(host);
  return d;
}

static void bench_gemm(FthCudaContext *ctx, int quick) {
  const int n = quick ? 4096 : 8192, reps = 10, rounds = 5;
  void *a = device_random(ctx, FTH_CUDA_DT_BF16, (size_t)n * n, 1);
  void *b = device_random(ctx, FTH_CUDA_DT_BF16, (size_t)n * n, 2);
  void *c = fth_cuda_alloc(ctx, (size_t)n * n * 2);
  if (!c)
    exit(1);
  for (int w = 0; w < 3; w++)
    CHECK_CUDA(fth_cuda_gemm(ctx, FTH_CUDA_DT_BF16, 0, 0, n, n, n, 1.0f, a, n, 0, b, n, 0, 0.0f, c, n, 0, 1));
  CHECK_CUDA(fth_cuda_synchronize(ctx));
  double t[5];
  for (int r = 0; r < rounds; r++) {
    double t0 = now_s();
    for (int i = 0; i < reps; i++)
      CHECK_CUDA(fth_cuda_gemm(ctx, FTH_CUDA_DT_BF16, 0, 0, n, n, n, 1.0f, a, n, 0, b, n, 0, 0.0f, c, n, 0, 1));
    CHECK_CUDA(fth_cuda_synchronize(ctx));
    t[r] = (now_s() - t0) / reps;
  }
  qsort(t, rounds, sizeof t[0], cmp_double);
  printf("gemm_bf16_n %d\n", n);
  printf("gemm_bf16_tflops %.1f\n", 2.0 * n * (double)n * n / t[rounds / 2] * 1e-12);
  fth_cuda_free(ctx, a), fth_cuda_free(ctx, b), fth_cuda_free(ctx, c);
}

static void bench_train(const FthBackend *be, const char *label, const char *recipe_name,
                        const char *const *vars, int64_t batch, FthCudaMath math, const char *math_name, int steps) {
  FthCudaContext *ctx = fth_backend_cuda_context(be);
  GError *error = NULL;
  char *path = fth_recipe_find(recipe_name);
  FthRecipe *recipe = path ? fth_recipe_load(path, vars, &error) : NULL;
  FthModel *m = recipe ? fth_model_build(recipe, 10, 7, FTH_MODEL_TRAINING, &error) : NULL;
  if (!m) { /* reported in the table; the other benchmarks still run */
    printf("train_%s_%s_error %s\n", label, math_name, error ? error->message : "recipe not found");
    fprintf(stderr, "bench-gpu: %s: %s\n", recipe_name, error ? error->message : "recipe not found");
    g_clear_error(&error);
    if (recipe)
      fth_recipe_free(recipe);
    g_free(path);
    return;
  }
  CHECK(fth_graph_plan(m->graph, FTH_MODE_TRAIN, batch));
  FthPlanStats ps;
  CHECK(fth_graph_plan_stats(m->graph, &ps));
  fth_cuda_set_math(ctx, math);
  FthCudaAllocStats before, after;
  fth_cuda_alloc_stats(ctx, &before);
  FthGraphDevice *dev = NULL;
  CHECK(fth_graph_device_new(m->graph, be, &dev));

  size_t per = 1;
  for (int d = 0; d < recipe->in_ndim; d++)
    per *= (size_t)recipe->in_shape[d];
  float *x = g_new(float, per * (size_t)batch);
  int32_t *t = g_new(int32_t, batch);
  FthRng rng;
  fth_rng_init(&rng, 99, 0);
  fth_rng_normal(&rng, x, per * (size_t)batch, 0.0f, 1.0f);
  for (int64_t i = 0; i < batch; i++)
    t[i] = (int32_t)(fth_rng_u32(&rng) % 10);
  CHECK(fth_graph_device_set_input(dev, m->input, x, per * (size_t)batch * sizeof(float)));
  CHECK(fth_graph_device_set_input(dev, m->targets, t, (size_t)batch * sizeof(int32_t)));

  int np = fth_graph_n_params(m->graph);
  float **val = g_new0(float *, np), **grad = g_new0(float *, np), **mom = g_new0(float *, np);
  size_t *count = g_new0(size_t, np);
  for (int k = 0; k < np; k++) {
    FthNode *p = fth_graph_param(m->graph, k);
    if (!fth_param_is_trainable(p))
      continue;
    CHECK(fth_graph_device_param(dev, p, &val[k], &grad[k]));
    int64_t shape[FTH_MAX_DIMS];
    int nd = fth_node_shape(p, 1, shape);
    count[k] = (size_t)fth_shape_numel(nd, shape);
    mom[k] = fth_cuda_alloc(ctx, count[k] * sizeof(float));
    CHECK_CUDA(fth_cuda_memset_zero(ctx, mom[k], count[k] * sizeof(float)));
  }
  float loss0 = 0, loss1 = 0;
  double t0 = 0;
  const int warm = 5;
  for (int s = 0; s < warm + steps; s++) {
    if (s == warm)
      t0 = now_s();
    CHECK(fth_graph_device_run(dev));
    for (int k = 0; k < np; k++)
      if (grad[k])
        CHECK_CUDA(fth_cuda_sgd_step(ctx, val[k], grad[k], mom[k], count[k], 0.01f, 5e-4f, 0.9f, 0));
    if (s == 0)
      CHECK(fth_graph_device_read(dev, m->loss, false, &loss0, sizeof loss0));
  }
  CHECK_CUDA(fth_cuda_synchronize(ctx));
  double dt = now_s() - t0;
  CHECK(fth_graph_device_read(dev, m->loss, false, &loss1, sizeof loss1));
  fth_cuda_alloc_stats(ctx, &after);
  printf("train_%s_%s_sps %.0f\n", label, math_name, (double)steps * (double)batch / dt);
  printf("train_%s_%s_loss %.4f %.4f\n", label, math_name, loss0, loss1);
  printf("train_%s_%s_mib %.1f\n", label, math_name,
         (double)(after.in_use_bytes - before.in_use_bytes) / 1048576.0);
  printf("train_%s_f32_plan_mib %.1f\n", label,
         (double)(ps.fixed_bytes + ps.per_sample_bytes * (size_t)batch + ps.param_bytes + ps.param_grad_bytes) /
             1048576.0);
  for (int k = 0; k < np; k++)
    fth_cuda_free(ctx, mom[k]);
  fth_graph_device_free(dev);
  fth_cuda_set_math(ctx, FTH_CUDA_MATH_F32);
  g_free(val), g_free(grad), g_free(mom), g_free(count), g_free(x), g_free(t);
  fth_model_free(m);
  fth_recipe_free(recipe);
  g_free(path);
}

static void bench_trainer(const FthBackend *be, const char *label, const char *recipe_name,
                          const char *const *vars, int batch, FthPrecision precision, int steps) {
  const char *pname = fth_precision_name(precision);
  GError *error = NULL;
  char *path = fth_recipe_find(recipe_name);
  FthRecipe *recipe = path ? fth_recipe_load(path, vars, &error) : NULL;
  g_free(path);
  if (!recipe) {
    printf("trainer_%s_%s_error %s\n", label, pname, error ? error->message : "recipe not found");
    g_clear_error(&error);
    return;
  }
  const int warm = 3, classes = 10;
  size_t n = (size_t)batch * (size_t)(warm + steps);
  int c = recipe->in_ndim == 3 ? (int)recipe->in_shape[0] : 1;
  int h = recipe->in_ndim == 3 ? (int)recipe->in_shape[1] : 1;
  int w = recipe->in_ndim == 3 ? (int)recipe->in_shape[2] : (int)recipe->in_shape[0];
  uint8_t *pixels = g_malloc(n * (size_t)(c * h * w));
  int32_t *labels = g_new(int32_t, n);
  uint32_t *idx = g_new(uint32_t, n);
  FthRng rng;
  fth_rng_init(&rng, 5, 0);
  for (size_t i = 0; i < n * (size_t)(c * h * w); i++)
    pixels[i] = (uint8_t)(fth_rng_u32(&rng) >> 24);
  for (size_t i = 0; i < n; i++) {
    labels[i] = (int32_t)(fth_rng_u32(&rng) % classes);
    idx[i] = (uint32_t)i;
  }
  FthSamples samples = {pixels, labels, NULL, n, c, h, w};
  FthTrainerConfig cfg = {.seed = 7, .batch = batch, .epochs = 1, .n_train = n, .optim = recipe->train.optim,
                          .schedule = recipe->train.schedule};
  cfg.schedule.total_steps = warm + steps;
  FthTrainer *t = fth_trainer_new(recipe, classes, &cfg, &error);
  FthPlanStats ps = {0};
  FthTrainProgress p = {0};
  gboolean stopped = FALSE;
  double t0 = 0, dt = 0;
  if (t && fth_trainer_use_device(t, be, 0, &error) && fth_trainer_set_precision(t, precision, &error) &&
      fth_graph_plan_stats(fth_trainer_model(t)->graph, &ps) == FTH_STATUS_OK &&
      fth_trainer_run_epoch(t, &samples, idx, n, 0, 0, warm, &p, NULL, NULL, NULL, &stopped, &error)) {
    /* each step reads its loss back, so the device is idle when the clock starts and stops */
    t0 = now_s();
    if (fth_trainer_run_epoch(t, &samples, idx, n, 0, warm, 0, &p, NULL, NULL, NULL, &stopped, &error))
      dt = now_s() - t0;
  }
  if (dt > 0) {
    printf("trainer_%s_%s_sps %.0f\n", label, pname, (double)steps * (double)fth_trainer_config(t)->batch / dt);
    printf("trainer_%s_%s_loss %.4f\n", label, pname, p.loss);
    printf("trainer_%s_%s_bytes_per_sample %zu\n", label, pname, ps.per_sample_bytes);
    if (precision == FTH_PRECISION_FP16)
      printf("trainer_%s_%s_loss_scale %g skipped %lld\n", label, pname, (double)fth_trainer_loss_scale(t),
             (long long)fth_trainer_skipped_steps(t));
  } else {
    printf("trainer_%s_%s_error %s\n", label, pname, error ? error->message : "?");
    fprintf(stderr, "bench-gpu: trainer %s %s: %s\n", label, pname, error ? error->message : "?");
  }
  g_clear_error(&error);
  fth_trainer_free(t);
  fth_recipe_free(recipe);
  g_free(pixels), g_free(labels), g_free(idx);
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  const char *resnet_vars[] = {"channels=3", "size=32", NULL};
  if (argc > 1 && strcmp(argv[1], "--trainer-cpu") == 0) {
    bench_trainer(fth_backend_cpu(), "fmnist_cnn", "fmnist-cnn", NULL, 16, FTH_PRECISION_FP32, 2);
    bench_trainer(fth_backend_cpu(), "resnet20", "resnet", resnet_vars, 4, FTH_PRECISION_FP16, 2);
    return 0;
  }
  const FthBackend *be = NULL;
  if (fth_backend_select("cuda", &be) != FTH_STATUS_OK) {
    fprintf(stderr, "bench-gpu: no CUDA device: %s\n", fth_last_error());
    return 77;
  }
  FthCudaContext *ctx = fth_backend_cuda_context(be);
  char name[256];
  unsigned long long mem = 0;
  fth_cuda_device_info(0, name, sizeof name, &mem);
  printf("device %s\n", name);
  bench_gemm(ctx, quick);
  const int steps = quick ? 10 : 50;
  static const struct {
    FthCudaMath math;
    const char *name;
  } modes[] = {{FTH_CUDA_MATH_BF16, "bf16"}, {FTH_CUDA_MATH_TF32, "tf32"}};
  for (int i = 0; i < 2; i++) {
    bench_train(be, "fmnist_cnn", "fmnist-cnn", NULL, 256, modes[i].math, modes[i].name, steps);
    bench_train(be, "resnet20", "resnet", resnet_vars, 256, modes[i].math, modes[i].name, steps);
  }
  const FthPrecision precisions[] = {FTH_PRECISION_BF16, FTH_PRECISION_FP16};
  for (int i = 0; i < 2; i++) {
    bench_trainer(be, "fmnist_cnn", "fmnist-cnn", NULL, 256, precisions[i], steps);
    bench_trainer(be, "resnet20", "resnet", resnet_vars, 256, precisions[i], steps);
  }
  return 0;
}
