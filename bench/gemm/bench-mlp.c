/* One training step of the MLP 784-256-10 (linear+ReLU, linear, cross-entropy, SGD with
 * momentum 0.9) at batch 64, the shape of issue 3's MLP target, through the whole graph run
 * loop and the optimizer. Prints images/s (best of several 0.3 s windows, since the cores are
 * shared) and the time per step split into graph run and optimizer step.
 * Usage: bench-mlp [steps-per-window] */
#include <fathom/fathom.h>
#include <fathom/optim.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { BATCH = 64, IN = 784, HIDDEN = 256, CLASSES = 10, WINDOWS = 7 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check(FthStatus st, const char *what) {
  if (st != FTH_STATUS_OK) {
    fprintf(stderr, "%s: %s\n", what, fth_last_error());
    exit(1);
  }
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 200;
  FthGraph *g = fth_graph_new(7);
  FthNode *x = fth_input(g, "x", FTH_F32, 2, (int64_t[]){FTH_BATCH, IN});
  FthNode *t = fth_input(g, "t", FTH_I32, 1, (int64_t[]){FTH_BATCH});
  FthInit ku = {FTH_INIT_KAIMING_UNIFORM, 0, 0}, zero = {FTH_INIT_ZEROS, 0, 0};
  FthNode *w1 = fth_param(g, "w1", 2, (int64_t[]){HIDDEN, IN}, ku);
  FthNode *b1 = fth_param(g, "b1", 1, (int64_t[]){HIDDEN}, zero);
  FthNode *w2 = fth_param(g, "w2", 2, (int64_t[]){CLASSES, HIDDEN}, ku);
  FthNode *b2 = fth_param(g, "b2", 1, (int64_t[]){CLASSES}, zero);
  FthNode *h = fth_linear_act(g, x, w1, b1, FTH_ACT_RELU);
  FthNode *logits = fth_linear(g, h, w2, b2);
  FthNode *loss = fth_cross_entropy(g, logits, t, NULL, NULL);
  check(fth_graph_status(g), "build");
  check(fth_graph_backward(g, loss, 1.0f), "backward");
  check(fth_graph_plan(g, FTH_MODE_TRAIN, BATCH), "plan");

  FthParam params[4];
  FthNode *pn[4] = {w1, b1, w2, b2};
  for (int i = 0; i < 4; i++) {
    FthTensor v, gr;
    check(fth_graph_tensor(g, pn[i], &v), "param");
    check(fth_param_grad_tensor(pn[i], &gr), "grad");
    params[i] = (FthParam){fth_node_name(pn[i]), v.data, gr.data, (size_t)fth_tensor_numel(&v), i % 2 == 0};
  }
  FthOptimConfig oc = fth_optim_config_default(FTH_OPTIM_SGD);
  oc.lr = 0.05f;
  oc.momentum = 0.9f;
  FthOptimizer *opt = fth_optimizer_new(&oc, params, 4);

  /* the inputs' memory is reused once they are read, so every step copies a batch in */
  static float xs[BATCH * IN];
  static int32_t ts[BATCH];
  FthRng rng;
  fth_rng_init(&rng, 1, 0);
  fth_rng_uniform(&rng, xs, (size_t)BATCH * IN, 0.0f, 1.0f);
  for (int i = 0; i < BATCH; i++)
    ts[i] = (int32_t)(fth_rng_u32(&rng) % CLASSES);

  double best_step = 1e9, best_run = 1e9;
  for (int w = 0; w < WINDOWS; w++) {
    double run_s = 0, t0 = now();
    for (int s = 0; s < steps; s++) {
      check(fth_graph_set_input(g, x, xs, sizeof xs), "x");
      check(fth_graph_set_input(g, t, ts, sizeof ts), "t");
      double r0 = now();
      check(fth_graph_run(g), "run");
      run_s += now() - r0;
      fth_optimizer_step(opt, oc.lr);
    }
    double step = (now() - t0) / steps;
    if (step < best_step) {
      best_step = step;
      best_run = run_s / steps;
    }
  }
  FthTensor lt;
  check(fth_graph_tensor(g, loss, &lt), "loss");
  printf("MLP 784-256-10 train, batch %d, %d threads: %.0f img/s  (step %.1f us: graph run %.1f us, "
         "optimizer %.1f us; loss %.4f)\n",
         BATCH, fth_thread_count(), BATCH / best_step, best_step * 1e6, best_run * 1e6,
         (best_step - best_run) * 1e6, *(float *)lt.data);
  fth_optimizer_free(opt);
  fth_graph_free(g);
  return 0;
}
