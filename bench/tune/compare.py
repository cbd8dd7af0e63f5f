#!/usr/bin/python3
"""Prints Fathom's tune benchmark next to Optuna's (markdown tables).

compare.py FATHOM.jsonl OPTUNA_FUNCTIONS.json OPTUNA_PRUNING.json SOURCE
Medians and [q25, q75] over seeds use numpy's default 'linear' percentiles, as the peer does.
"""
import json
import sys

import numpy as np


def q(values):
    a = np.asarray(values, dtype=float)
    return np.percentile(a, [50, 25, 75])


def main():
    fathom_path, ofun_path, oprune_path, source = sys.argv[1:5]
    runs = [json.loads(line) for line in open(fathom_path) if line.strip()]
    ofun = json.load(open(ofun_path))
    oprune = json.load(open(oprune_path))
    seeds = sorted({r["seed"] for r in runs})
    print(f"Peer: {source}. Seeds 1..{len(seeds)}.\n")

    # ---- test functions
    print("### Final simple regret on the test functions (median [q25, q75]) and overhead")
    print()
    print("| function | trials | sampler | median regret | IQR | vs Optuna tpe | ms/trial | "
          "ms/trial last10 |")
    print("|---|---|---|---|---|---|---|---|")
    ores = {}
    for r in ofun["runs"]:
        ores.setdefault((r["function"], r["sampler"]), []).append(r)
    functions = ["branin", "hartmann6", "rosenbrock4", "ackley5"]
    verdict = {}
    for f in functions:
        budgets = [100, 50] if f == "hartmann6" else [50]
        for n in budgets:
            o_tpe = ores.get((f, "tpe"), [])
            if n == 100 or f != "hartmann6":
                o_reg = [r["regret"] for r in o_tpe]
            else:
                o_reg = [r["best_so_far"][49] - r["f_star"] for r in o_tpe]
            o_med = q(o_reg)[0] if o_reg else float("nan")
            rows = []
            for s in ["tpe", "tpe_mv", "random"]:
                rs = ores.get((f, s), [])
                if not rs:
                    continue
                reg = ([r["regret"] for r in rs] if n == 100 or f != "hartmann6"
                       else [r["best_so_far"][49] - r["f_star"] for r in rs])
                ov = np.median([r["overhead_ms_per_trial"] for r in rs])
                ov10 = np.median([np.mean(r["overhead_ms_each_trial"][n - 10:n]) for r in rs])
                rows.append((f"optuna {s}", reg, ov, ov10))
            for s in ["tpe", "tpe_mv", "gp", "random"]:
                rs = [r for r in runs if r.get("part") == "functions" and r["function"] == f
                      and r["sampler"] == s]
                if not rs:
                    continue
                reg = [r["regret"] if n == r["n_trials"] else r["regret_at"][str(n)] for r in rs]
                ov = np.median([r["overhead_ms"] for r in rs])
                ov10 = np.median([r["overhead_last10_ms"] for r in rs])
                rows.append((f"fathom {s}", reg, ov, ov10))
                if s in ("tpe", "tpe_mv", "gp"):
                    verdict.setdefault((s, n), {})[f] = q(reg)[0] / o_med
            for name, reg, ov, ov10 in rows:
                m, lo, hi = q(reg)
                ratio = m / o_med if o_med == o_med and o_med > 0 else float("nan")
                print(f"| {f} | {n} | {name} | {m:.4g} | [{lo:.4g}, {hi:.4g}] | {ratio:.2f}x | "
                      f"{ov:.3f} | {ov10:.3f} |")
    print()
    print("Ratio = Fathom median regret / Optuna TPE median regret at the same trials "
          "(< 1: Fathom better).")
    for s in ["tpe", "tpe_mv", "gp"]:
        d = {}
        for f in functions:
            n = 100 if f == "hartmann6" else 50
            if (s, n) in verdict and f in verdict[(s, n)]:
                d[f] = verdict[(s, n)][f]
        if d:
            ok = all(v <= 1.0 for v in d.values())
            better = sum(v < 1.0 for v in d.values())
            print(f"* fathom {s}: at least as good as Optuna TPE on every function: "
                  f"{'yes' if ok else 'no'}; better on {better} of {len(d)}.")
    print()

    # ---- overhead at 100 trials
    o_h = ores.get(("hartmann6", "tpe"), [])
    f_h = [r for r in runs if r.get("part") == "functions" and r["function"] == "hartmann6"
           and r["sampler"] == "tpe"]
    if o_h and f_h:
        o_ov = np.median([np.mean(r["overhead_ms_each_trial"][90:100]) for r in o_h])
        f_ov = np.median([r["overhead_last10_ms"] for r in f_h])
        o_all = np.median([r["overhead_ms_per_trial"] for r in o_h])
        f_all = np.median([r["overhead_ms"] for r in f_h])
        print("### Sampler overhead per trial, TPE on hartmann6 (100 trials, 6 parameters)")
        print()
        print("| | Optuna (Python) | Fathom (C) | ratio |")
        print("|---|---|---|---|")
        print(f"| mean over trials 1..100, ms | {o_all:.3f} | {f_all:.3f} | {o_all / f_all:.1f}x |")
        print(f"| trials 91..100, ms | {o_ov:.3f} | {f_ov:.3f} | {o_ov / f_ov:.1f}x |")
        print()

    # ---- LC2
    print("### LC2 learning curve, 100 trials x at most 27 epochs (median [q25, q75])")
    print()
    print("| who | config | true regret m27-m27* | best final y(27) | epochs used | complete |")
    print("|---|---|---|---|---|---|")
    by = {}
    for r in oprune["runs"]:
        by.setdefault(("optuna", r["config"]), []).append(r)
    for r in runs:
        if r.get("part") == "lc2":
            by.setdefault(("fathom", r["config"]), []).append(r)
    summary = {}
    for (who, cfg), rs in by.items():
        tr = q([r["true_regret"] for r in rs])
        bf = q([r["best_final"] for r in rs])
        ep = q([r["epochs"] for r in rs])
        nc = np.median([r["n_complete"] for r in rs])
        summary[(who, cfg)] = (tr[0], ep[0])
        print(f"| {who} | {cfg} | {tr[0]:.5f} [{tr[1]:.5f}, {tr[2]:.5f}] | "
              f"{bf[0]:.4f} [{bf[1]:.4f}, {bf[2]:.4f}] | {ep[0]:.0f} [{ep[1]:.0f}, {ep[2]:.0f}] "
              f"| {nc:.0f} |")
    print()
    pruned_o = {c: v for (w, c), v in summary.items() if w == "optuna" and not c.endswith("/none")}
    pruned_f = {c: v for (w, c), v in summary.items() if w == "fathom" and not c.endswith("/none")}
    if pruned_o and pruned_f:
        bo = min(pruned_o.items(), key=lambda kv: kv[1][0])
        bf = min(pruned_f.items(), key=lambda kv: kv[1][0])
        print(f"Best pruned configuration: Optuna {bo[0]} (regret {bo[1][0]:.5f}, "
              f"{bo[1][1]:.0f} epochs); Fathom {bf[0]} (regret {bf[1][0]:.5f}, "
              f"{bf[1][1]:.0f} epochs): regret {'no worse' if bf[1][0] <= bo[1][0] else 'WORSE'}, "
              f"epochs {'no more' if bf[1][1] <= bo[1][1] else 'MORE'}.")


if __name__ == "__main__":
    main()
