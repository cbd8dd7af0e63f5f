#!/usr/bin/python3
"""Fathom's fANOVA importances side by side with Optuna's, on the very same trials.

  importance_peer.py generate DIR
      writes the synthetic studies (known structure) as Fathom journals DIR/<name>.jsonl
  importance_peer.py optuna-coords JOURNAL OUT
      writes JOURNAL's trials with the space in the coordinates Optuna 3.1's fANOVA uses: log
      parameters declared linear, integers as floats on [low, high] (categoricals stay)
  importance_peer.py compare FATHOM_JSONL FATHOM_OC_JSONL JOURNAL...
      loads each journal into an Optuna study, runs FanovaImportanceEvaluator with seeds 0..4
      and MeanDecreaseImpurityImportanceEvaluator (seed 0), and prints per study both vectors
      and the table against Fathom's runs (FATHOM_JSONL: one `bench-importance --journal`
      line per study, same order as the journals; FATHOM_OC_JSONL: the same on the
      optuna-coords journals).

Run it with /usr/bin/python3 (Debian's python3-optuna and python3-sklearn); bench/tune/
run-importance.sh does the whole thing.
"""
import json
import math
import random
import sys
import time

N_SEEDS = 5

# ---- the synthetic studies -------------------------------------------------------------------


def unit(name):
    return {"name": name, "type": "float", "low": 0.0, "high": 1.0, "log": False}


def five_unit():
    return [unit("x%d" % i) for i in range(5)]


OPTIMIZERS = ["sgd", "adam", "rmsprop"]

# name, space params (Fathom's canonical space JSON, member order as fth_search_space_to_json
# writes it), objective, trials[, a factor on the values, noise included]. The comments give
# the exact importances under the uniform measure of the space (main-effect variances
# normalized to sum to 1) that a perfect forest would find.
STUDIES = [
    ("one-of-5", five_unit(),
     lambda p: math.sin(2 * math.pi * p["x0"]), 200),  # x0 1
    ("two-additive", five_unit(),
     lambda p: 2 * p["x0"] + p["x1"], 200),  # x0 .8, x1 .2
    ("three-additive", five_unit(),
     lambda p: 3 * p["x0"] + 2 * p["x1"] + p["x2"], 200),  # .643 .286 .071
    ("tiny-values", five_unit(),
     lambda p: 3 * p["x0"] + 2 * p["x1"] + p["x2"], 200, 1e-7),  # the same, in units of 1e-7
    ("interacting", five_unit(),
     lambda p: 4 * p["x0"] * p["x1"] + p["x2"], 200),  # x0 .44, x1 .44, x2 .11
    ("pure-interaction", five_unit(),
     # x2 1: x0 and x1 only interact
     lambda p: 8 * (p["x0"] - 0.5) * (p["x1"] - 0.5) + p["x2"], 200),
    ("log-lr", [{"name": "lr", "type": "float", "low": 1e-5, "high": 1e-1, "log": True}]
     + five_unit()[1:],
     # lr .52, x1 .48 in log(lr) (Optuna fits lr on the linear scale)
     lambda p: (math.log10(p["lr"]) + 3) ** 2 / 4 + p["x1"], 200),
    ("categorical", [{"name": "opt", "type": "categorical", "choices": OPTIMIZERS}]
     + five_unit()[1:],
     lambda p: {"sgd": 0.0, "adam": 1.0, "rmsprop": 0.4}[p["opt"]] + p["x1"],
     200),  # uniform over the choices: opt .67, x1 .33
    ("int-layers", [{"name": "layers", "type": "int", "low": 1.0, "high": 8.0, "log": False,
                     "step": 1.0}] + five_unit()[1:],
     lambda p: (p["layers"] - 4) ** 2 / 8 + p["x1"], 200),  # layers .83, x1 .17
    ("conditional", [{"name": "opt", "type": "categorical", "choices": ["sgd", "adam"]},
                     {"name": "momentum", "type": "float", "low": 0.0, "high": 1.0, "log": False,
                      "condition": {"parent": "opt", "values": ["sgd"]}}]
     + five_unit()[1:4],
     lambda p: (2 * p["momentum"] if p["opt"] == "sgd" else 0.8) + p["x1"] + 0.5 * p["x2"],
     200),  # momentum is inactive in half the trials: both leave it out
]


def sample(param, rng):
    if param["type"] == "categorical":
        return rng.choice(param["choices"])
    if param["type"] == "int":
        return rng.randint(int(param["low"]), int(param["high"]))
    if param["log"]:
        return math.exp(rng.uniform(math.log(param["low"]), math.log(param["high"])))
    return rng.uniform(param["low"], param["high"])


def generate(outdir):
    for index, (name, params, f, n, *factor) in enumerate(STUDIES):
        rng = random.Random(1000 + index)
        lines = [{"event": "study", "name": name, "maximize": False, "space": {"params": params}}]
        for number in range(n):
            values = {}
            for p in params:
                cond = p.get("condition")
                if cond is None or values.get(cond["parent"]) in cond["values"]:
                    values[p["name"]] = sample(p, rng)
            full = {p["name"]: values.get(p["name"], 0.0) for p in params}
            value = (f(full) + 0.01 * rng.uniform(-1, 1)) * (factor[0] if factor else 1.0)
            lines.append({"event": "start", "number": number, "params": values, "bracket": 0,
                          "host": ""})
            lines.append({"event": "finish", "number": number, "state": "complete",
                          "value": value, "duration_s": 0.0})
        with open("%s/%s.jsonl" % (outdir, name), "w") as out:
            for line in lines:
                out.write(json.dumps(line) + "\n")


def optuna_coords(path, out_path):
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    for p in lines[0]["space"]["params"]:
        if p["type"] == "int":
            p["type"] = "float"
            p.pop("step", None)
        if p["type"] == "float":
            p["log"] = False
    with open(out_path, "w") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")


# ---- a journal as an Optuna study --------------------------------------------------------------


def load_study(path):
    import optuna
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    header = lines[0]
    dists = {}
    for p in header["space"]["params"]:
        if p["type"] == "categorical":
            dists[p["name"]] = CategoricalDistribution(p["choices"])
        elif p["type"] == "int":
            dists[p["name"]] = IntDistribution(int(p["low"]), int(p["high"]), log=p["log"],
                                               step=int(p.get("step", 1)))
        else:
            dists[p["name"]] = FloatDistribution(p["low"], p["high"], log=p["log"],
                                                 step=p.get("step"))
    params, values = {}, {}
    for line in lines[1:]:
        if line["event"] in ("start", "restart") and "params" in line:
            params[line["number"]] = line["params"]
        elif line["event"] == "finish" and line["state"] == "complete" \
                and isinstance(line["value"], (int, float)):
            values[line["number"]] = line["value"]
    study = optuna.create_study(study_name=header["name"],
                                direction="maximize" if header["maximize"] else "minimize")
    for number in sorted(values):
        ps = params[number]
        study.add_trial(optuna.trial.create_trial(
            params=ps, distributions={k: dists[k] for k in ps}, value=values[number]))
    return study


# ---- the comparison ----------------------------------------------------------------------------


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra))
    vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (va * vb) if va > 0 and vb > 0 else float("nan")


def median(xs):
    s = sorted(xs)
    return 0.5 * (s[(len(s) - 1) // 2] + s[len(s) // 2])


def compare(fathom_jsonl, fathom_oc_jsonl, journals):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from optuna.importance import FanovaImportanceEvaluator, MeanDecreaseImpurityImportanceEvaluator
    with open(fathom_jsonl) as f:
        fathom = [json.loads(line) for line in f if line.strip()]
    with open(fathom_oc_jsonl) as f:
        fathom_oc = [json.loads(line) for line in f if line.strip()]
    rows = []
    for path, fth, fth_oc in zip(journals, fathom, fathom_oc):
        study = load_study(path)
        runs, seconds = [], []
        for seed in range(N_SEEDS):
            t0 = time.perf_counter()
            runs.append(FanovaImportanceEvaluator(seed=seed).evaluate(study))
            seconds.append(time.perf_counter() - t0)
        mdi = MeanDecreaseImpurityImportanceEvaluator(seed=0).evaluate(study)
        names = sorted(runs[0])
        opt = [[r[k] for k in names] for r in runs]
        fvec = [[run["importances"].get(k, float("nan")) for k in names] for run in fth["runs"]]
        o_mean = [sum(col) / N_SEEDS for col in zip(*opt)]
        f_mean = [sum(col) / len(fvec) for col in zip(*fvec)]
        fvec_oc = [[run["importances"].get(k, float("nan")) for k in names]
                   for run in fth_oc["runs"]]
        f_oc_mean = [sum(col) / len(fvec_oc) for col in zip(*fvec_oc)]
        diff_oc = max(abs(a - b) for a, b in zip(f_oc_mean, o_mean))
        o_lo = [min(col) for col in zip(*opt)]
        o_hi = [max(col) for col in zip(*opt)]
        spread = max(h - l for l, h in zip(o_lo, o_hi))
        diff = max(abs(a - b) for a, b in zip(f_mean, o_mean))
        f_ms = median([run["ms"] for run in fth["runs"]])
        o_ms = 1000 * median(seconds)
        top_f = names[max(range(len(names)), key=lambda j: f_mean[j])]
        top_o = names[max(range(len(names)), key=lambda j: o_mean[j])]
        print("%s (%d trials)" % (fth["study"], len(study.trials)))
        print("  %-10s %s" % ("param", " ".join("%8s" % k[:8] for k in names)))
        print("  %-10s %s" % ("fathom", " ".join("%8.3f" % v for v in f_mean)))
        print("  %-10s %s" % ("fathom oc", " ".join("%8.3f" % v for v in f_oc_mean)))
        print("  %-10s %s" % ("optuna", " ".join("%8.3f" % v for v in o_mean)))
        print("  %-10s %s" % ("optuna min", " ".join("%8.3f" % v for v in o_lo)))
        print("  %-10s %s" % ("optuna max", " ".join("%8.3f" % v for v in o_hi)))
        print("  %-10s %s" % ("optuna MDI", " ".join("%8.3f" % mdi[k] for k in names)))
        rows.append((fth["study"], len(study.trials), top_f, top_o, top_f == top_o,
                     spearman(f_mean, o_mean), diff, spread, diff <= spread, diff_oc,
                     diff_oc <= spread, spearman([mdi[k] for k in names], f_mean), f_ms, o_ms))
    print()
    print("fANOVA, 64 trees; means over forest seeds 0-%d each. spread: Optuna's widest "
          "per-parameter range over its seeds; in: max|d| <= spread; oc: Fathom on the space "
          "in Optuna's coordinates (log parameters linear, integers on [low, high])"
          % (N_SEEDS - 1))
    print("%-16s %6s %8s %8s %4s %8s %7s %7s %3s %7s %3s %7s %9s %9s %6s" % (
        "study", "trials", "top fth", "top opt", "top1", "spearman", "max|d|", "spread", "in",
        "oc |d|", "in", "rho MDI", "fathom ms", "optuna ms", "ratio"))
    for r in rows:
        print("%-16s %6d %8s %8s %4s %8.3f %7.3f %7.3f %3s %7.3f %3s %7.3f %9.2f %9.1f %5.0fx"
              % (r[0], r[1], r[2][:8], r[3][:8], "yes" if r[4] else "NO", r[5], r[6], r[7],
                 "yes" if r[8] else "NO", r[9], "yes" if r[10] else "NO", r[11], r[12], r[13],
                 r[13] / r[12]))
    print("rho MDI: Spearman of Optuna's mean-decrease-impurity importances vs Fathom's; "
          "ratio: Optuna ms / Fathom ms (medians over the seeds)")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "generate":
        generate(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "optuna-coords":
        optuna_coords(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
