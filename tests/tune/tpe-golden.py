#!/usr/bin/python3
"""Prints the history and the expected scores of test-tune-tpe.c, computed by Optuna 3.1's
_ParzenEstimator (python3-optuna): /usr/bin/python3 tests/tune/tpe-golden.py"""
import math, numpy as np
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.sampler import default_weights, default_gamma
from optuna.distributions import FloatDistribution, IntDistribution
P=_ParzenEstimatorParameters(True,1.0,True,False,default_weights,False)
N=40
xs=[-5+15*((i*0.6180339887)%1) for i in range(N)]
lrs=[10**(-4+4*((i*0.41421356)%1)) for i in range(N)]
# Distinct ints: with ties, which tied kernel gets which bandwidth follows numpy's unstable
# argsort, which the C port does not imitate.
ks=[1+(i*37)%199 for i in range(N)]
vals=[(x-1)**2+(math.log10(l)+2)**2+1e-3*(k-60)**2 for x,l,k in zip(xs,lrs,ks)]
order=sorted(range(N), key=lambda i: vals[i])
nb=default_gamma(N); below=sorted(order[:nb]); above=sorted(order[nb:])
dists=[FloatDistribution(-5,10),FloatDistribution(1e-4,1,log=True),IntDistribution(1,200)]
obs=[xs,lrs,ks]
pts=[[-4,0,1.3,7],[2e-4,0.01,0.3],[1,60,200]]
print("static const double HIST[%d][4] = {" % N)
for i in range(N): print("  { %.17g, %.17g, %d, %.17g }," % (xs[i],lrs[i],ks[i],vals[i]))
print("};")
print("static const double POINTS[][3] = { /* dim, x, Optuna 3.1's log l(x) - log g(x) */")
for d in range(3):
    dist={'p':dists[d]}
    L=_ParzenEstimator({'p':np.array([obs[d][i] for i in below],dtype=float)},dist,P)
    G=_ParzenEstimator({'p':np.array([obs[d][i] for i in above],dtype=float)},dist,P)
    for x in pts[d]:
        a=np.array([x],dtype=float)
        print("  { %d, %.17g, %.17g }," % (d, x, (L.log_pdf({'p':a})-G.log_pdf({'p':a}))[0]))
print("};")
