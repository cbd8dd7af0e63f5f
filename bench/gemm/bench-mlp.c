/* The MLP 784-256-10 of issue 3 (linear+ReLU, linear, cross-entropy, SGD lr 0.05 momentum 0.9,
 * batch 64) through the whole graph run loop and the optimizer, in fp32 and with bf16 GEMMs.
 *
 *   bench-mlp [steps]      images/s of a training step (best of 7 windows of `steps` steps,
 *                          because the cores are shared), split into graph run and optimizer
 *   bench-mlp --accuracy [DIR] [EPOCHS]
 *                          trains on Fashion-MNIST (DIR, default /usr/share/datasets/fashion-mnist)
 *                          in fp32 and in bf16 from the same initialization and batch order and
 *                          prints the test accuracy and final loss of both */
#include <fathom/fathom.h>
#include <fathom/optim.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

enum { BATCH = 64, IN = 784, HIDDEN = 256, CLASSES = 10, WINDOWS = 7 };

typedef struct {
  FthGraph *g;
  FthNode *x, *t, *logits, *loss;
  FthOptimizer *opt;
} Mlp;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process: on shared cores it counts only the cycles this process got, so
 * at one thread it is the step's cost without the waits for a core. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check(FthStatus st, const char *what) {
  if (st != FTH_STATUS_OK) {
    fprintf(stderr, "%s: %s\n", what, fth_last_error());
    exit(1);
  }
}

static Mlp mlp_new(bool bf16) {
  Mlp m;
  m.g = fth_graph_new(7);
  if (bf16)
    check(fth_graph_set_bf16_matmul(m.g, true), "bf16");
  m.x = fth_input(m.g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, IN});
  m.t = fth_input(m.g, "t", FTH_I32, 1, (int64_t[]){FTH_BATCH});
  FthInit ku = {FTH_INIT_KAIMING_UNIFORM, 0, 0}, zero = {FTH_INIT_ZEROS, 0, 0};
  FthNode *w1 = fth_param(m.g, "w1", 2, (int64_t[]){HIDDEN, IN}, ku);
  FthNode *b1 = fth_param(m.g, "b1", 1, (int64_t[]){HIDDEN}, zero);
  FthNode *w2 = fth_param(m.g, "w2", 2, (int64_t[]){CLASSES, HIDDEN}, ku);
  FthNode *b2 = fth_param(m.g, "b2", 1, (int64_t[]){CLASSES}, zero);
  FthNode *h = fth_linear_act(m.g, m.x, w1, b1, FTH_ACT_RELU);
  m.logits = fth_linear(m.g, h, w2, b2);
  m.loss = fth_cross_entropy(m.g, m.logits, m.t, NULL, NULL);
  check(fth_graph_status(m.g), "build");
  check(fth_graph_mark_output(m.g, m.logits), "mark");
  check(fth_graph_backward(m.g, m.loss, 1.0f), "backward");
  check(fth_graph_plan(m.g, FTH_MODE_TRAIN, BATCH), "plan");
  FthParam params[4];
  FthNode *pn[4] = {w1, b1, w2, b2};
  for (int i = 0; i < 4; i++) {
    FthTensor v, gr;
    check(fth_graph_tensor(m.g, pn[i], &v), "param");
    check(fth_param_grad_tensor(pn[i], &gr), "grad");
    params[i] = (FthParam){fth_node_name(pn[i]), v.data, gr.data, (size_t)fth_tensor_numel(&v), i % 2 == 0};
  }
  FthOptimConfig oc = fth_optim_config_default(FTH_OPTIM_SGD);
  oc.lr = 0.05f;
  oc.momentum = 0.9f;
  m.opt = fth_optimizer_new(&oc, params, 4);
  if (!m.opt)
    check(FTH_STATUS_NO_MEMORY, "optimizer");
  return m;
}

static void mlp_free(Mlp *m) {
  fth_optimizer_free(m->opt);
  fth_graph_free(m->g);
}

/* One step on a batch; the inputs' memory is reused once they are read, so every step copies. */
static double mlp_step(Mlp *m, const float *x, const int32_t *t, int64_t batch, bool update) {
  check(fth_graph_set_batch(m->g, batch), "batch");
  check(fth_graph_set_input(m->g, m->x, x, sizeof(float) * (size_t)batch * IN), "x");
  check(fth_graph_set_input(m->g, m->t, t, sizeof(int32_t) * (size_t)batch), "t");
  double t0 = now();
  check(fth_graph_run(m->g), "run");
  double run_s = now() - t0;
  if (update)
    fth_optimizer_step(m->opt, 0.05f);
  return run_s;
}

static void speed(int steps, bool bf16) {
  Mlp m = mlp_new(bf16);
  static float xs[BATCH * IN];
  static int32_t ts[BATCH];
  FthRng rng;
  fth_rng_init(&rng, 1, 0);
  fth_rng_uniform(&rng, xs, (size_t)BATCH * IN, 0.0f, 1.0f);
  for (int i = 0; i < BATCH; i++)
    ts[i] = (int32_t)(fth_rng_u32(&rng) % CLASSES);
  double best_step = 1e9, best_run = 1e9, best_cpu = 1e9;
  for (int w = 0; w < WINDOWS; w++) {
    double run_s = 0, t0 = now(), c0 = cpu_now();
    for (int s = 0; s < steps; s++)
      run_s += mlp_step(&m, xs, ts, BATCH, true);
    double step = (now() - t0) / steps, cpu = (cpu_now() - c0) / steps;
    if (step < best_step) {
      best_step = step;
      best_run = run_s / steps;
    }
    best_cpu = cpu < best_cpu ? cpu : best_cpu;
  }
  printf("MLP 784-256-10 train %-5s batch %d, %d threads: %7.0f img/s  (step %6.1f us: graph run %6.1f us "
         "= %7.0f img/s, optimizer and input copy %6.1f us; CPU time %6.1f us/step)\n",
         bf16 ? "bf16" : "fp32", BATCH, fth_thread_count(), BATCH / best_step, best_step * 1e6, best_run * 1e6,
         BATCH / best_run, (best_step - best_run) * 1e6, best_cpu * 1e6);
  mlp_free(&m);
}

/* ---- Fashion-MNIST ------------------------------------------------------------------------------ */

static unsigned char *read_idx(const char *dir, const char *name, size_t header, size_t bytes) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  gzFile f = gzopen(path, "rb");
  unsigned char *buf = malloc(header + bytes);
  if (!f || !buf || gzread(f, buf, (unsigned)(header + bytes)) != (int)(header + bytes)) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  gzclose(f);
  memmove(buf, buf + header, bytes);
  return buf;
}

typedef struct {
  float *x;
  int32_t *t;
  size_t n;
} Set;

static Set load_set(const char *dir, const char *images, const char *labels, size_t n) {
  unsigned char *img = read_idx(dir, images, 16, n * IN), *lab = read_idx(dir, labels, 8, n);
  Set s = {malloc(sizeof(float) * n * IN), malloc(sizeof(int32_t) * n), n};
  for (size_t i = 0; i < n * IN; i++)
    s.x[i] = img[i] / 255.0f;
  for (size_t i = 0; i < n; i++)
    s.t[i] = lab[i];
  free(img);
  free(lab);
  return s;
}

static void accuracy(const char *dir, int epochs) {
  Set train = load_set(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000);
  Set test = load_set(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000);
  size_t *order = malloc(sizeof *order * train.n);
  static float xb[BATCH * IN];
  static int32_t tb[BATCH];
  for (int bf16 = 0; bf16 < 2; bf16++) {
    Mlp m = mlp_new(bf16);
    FthRng rng;
    fth_rng_init(&rng, 1234, 0);
    double t0 = now(), last_loss = 0;
    for (int e = 0; e < epochs; e++) {
      for (size_t i = 0; i < train.n; i++)
        order[i] = i;
      for (size_t i = train.n - 1; i > 0; i--) { /* the same shuffle for both precisions */
        size_t j = fth_rng_u32(&rng) % (i + 1), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
      }
      double loss_sum = 0;
      size_t steps = 0;
      for (size_t b = 0; b + BATCH <= train.n; b += BATCH, steps++) {
        for (int i = 0; i < BATCH; i++) {
          memcpy(xb + (size_t)i * IN, train.x + order[b + (size_t)i] * IN, sizeof(float) * IN);
          tb[i] = train.t[order[b + (size_t)i]];
        }
        mlp_step(&m, xb, tb, BATCH, true);
        FthTensor lt;
        check(fth_graph_tensor(m.g, m.loss, &lt), "loss");
        loss_sum += *(float *)lt.data;
      }
      last_loss = loss_sum / (double)steps;
    }
    double train_s = now() - t0;
    size_t correct = 0;
    for (size_t b = 0; b < test.n; b += BATCH) {
      int64_t nb = test.n - b < BATCH ? (int64_t)(test.n - b) : BATCH;
      mlp_step(&m, test.x + b * IN, test.t + b, nb, false);
      FthTensor lg;
      check(fth_graph_tensor(m.g, m.logits, &lg), "logits");
      for (int64_t i = 0; i < nb; i++) {
        const float *row = (const float *)lg.data + i * CLASSES;
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
          best = row[c] > row[best] ? c : best;
        correct += best == test.t[b + (size_t)i];
      }
    }
    printf("Fashion-MNIST MLP %s, %d epochs: test accuracy %.2f%%, last-epoch mean loss %.4f, %.1f s training\n",
           bf16 ? "bf16" : "fp32", epochs, 100.0 * (double)correct / (double)test.n, last_loss, train_s);
    mlp_free(&m);
  }
  free(order);
  free(train.x);
  free(train.t);
  free(test.x);
  free(test.t);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--accuracy") == 0) {
    accuracy(argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist", argc > 3 ? atoi(argv[3]) : 2);
    return 0;
  }
  int steps = argc > 1 ? atoi(argv[1]) : 200;
  speed(steps, false);
  FthGraph *probe = fth_graph_new(1);
  bool bf16 = fth_graph_set_bf16_matmul(probe, true) == FTH_STATUS_OK;
  fth_graph_free(probe);
  if (bf16)
    speed(steps, true);
  else
    printf("bf16: this CPU has no AVX512_BF16\n");
  return 0;
}
