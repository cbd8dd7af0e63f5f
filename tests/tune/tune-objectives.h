/* The benchmark objectives of shared/peers/optuna (bench_functions.py, lc_objective.py) in C,
 * in the same floating-point evaluation order; build with -ffp-contract=off. */
#pragma once

#include <stdint.h>

double fth_obj_branin(const double *x);
double fth_obj_hartmann6(const double *x);
double fth_obj_rosenbrock(const double *x, int d);
double fth_obj_ackley(const double *x, int d);

#define FTH_LC_T_MAX 27
#define FTH_LC_M27_STAR 0.10043052572667904
double fth_lc_curve_noise_free(double lr, double wd, int t);
double fth_lc_loss(double lr, double wd, int t, uint64_t seed);
