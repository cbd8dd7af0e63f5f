#!/usr/bin/python3
"""Side-by-side table of bench/engine/run.sh's results: Fathom against PyTorch "as a user runs
it" and "best configured", with ratios and the targets of issue 3 (against the best row).

  compare.py DIR    (DIR holds torch_{cnn,mlp}_{user,best}.json and fathom_{cnn,mlp}[,_best].json)
"""
import json
import os
import sys


def load(d, name):
    p = os.path.join(d, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None


def torch_row(r):
    inf = r["inference_fp32"]
    return {"train": r["train_ips_steady_all_epochs"], "b1": inf["b1_ips_median"],
            "b256": inf["b256_ips_median"], "rss": r["peak_rss_mib"],
            "acc": r["epochs"][-1]["test_acc"] * 100,
            "cfg": f"torch {r['threads']} / OpenBLAS {r.get('blas_threads', r['threads'])}"}


def ours_row(r):
    return {"train": r["train_ips_steady_all_epochs"], "b1": r["b1_ips_median"],
            "b256": r["b256_ips_median"], "rss": r["peak_rss_mib"],
            "acc": r["final_test_acc"] * 100, "cfg": f"fathom {r['threads']} threads"}


def main(d):
    lines = ["| model | measure | PyTorch as a user runs it | PyTorch best configured | Fathom "
             "| Fathom / user | Fathom / best | target vs best |",
             "|---|---|---|---|---|---|---|---|"]
    targets = {("cnn", "train"): (">=", 1.5), ("mlp", "train"): (">=", 2.0),
               ("cnn", "b1"): (">=", 1 / 0.7), ("cnn", "b256"): (">=", 1.5),
               ("cnn", "rss"): ("<=", 0.5), ("mlp", "b1"): (">=", 1 / 0.7),
               ("mlp", "b256"): (">=", 1.5), ("mlp", "rss"): ("<=", 0.5)}
    names = {"train": "training img/s (steady)", "b1": "inference batch 1, img/s",
             "b256": "inference batch 256, img/s", "rss": "peak RSS MiB",
             "acc": f"test accuracy % after the last epoch"}
    for model in ("cnn", "mlp"):
        tu, tb, ours = load(d, f"torch_{model}_user"), load(d, f"torch_{model}_best"), load(d, f"fathom_{model}")
        if not (tb and ours):
            continue
        b, o = torch_row(tb), ours_row(ours)
        u = torch_row(tu) if tu else None
        lines.append(f"| {model} | configuration | {u['cfg'] if u else 'not run'} | {b['cfg']} | "
                     f"{o['cfg']} | | | |")
        for key in ("train", "b1", "b256", "rss", "acc"):
            rb = o[key] / b[key]
            tgt = ""
            if (model, key) in targets:
                op, v = targets[(model, key)]
                ok = rb >= v if op == ">=" else rb <= v
                shown = f"latency <= 0.70x" if key == "b1" else f"{op} {v:.2f}x"
                tgt = f"{shown}: {'met' if ok else 'NOT met'}"
            elif model == "cnn" and key == "acc":
                ok = o[key] >= b[key] - 0.3
                tgt = f">= {b[key] - 0.3:.2f}: {'met' if ok else 'NOT met'}"
            fmt = "{:.2f}" if key == "acc" else "{:.0f}"
            uval = fmt.format(u[key]) if u else "–"
            ru = f"{o[key] / u[key]:.2f}x" if u else "–"
            lines.append(f"| {model} | {names[key]} | {uval} | {fmt.format(b[key])} | "
                         f"{fmt.format(o[key])} | {ru} | {rb:.2f}x | {tgt} |")
    t1 = load(d, "fathom_mlp_t1")
    if t1:
        o = ours_row(t1)
        lines.append("")
        lines.append(f"Fathom MLP at 1 thread: training {o['train']:.0f} img/s, batch 1 {o['b1']:.0f} "
                     f"img/s, batch 256 {o['b256']:.0f} img/s, peak RSS {o['rss']:.0f} MiB, "
                     f"accuracy {o['acc']:.2f}%.")
    best = load(d, "fathom_best")
    if best:
        accs = ", ".join(f"{e['test_acc'] * 100:.2f}" for e in best["epochs"])
        lines.append("")
        lines.append(f"Best recipe `{best['recipe']}`: {len(best['epochs'])} epochs, batch "
                     f"{best['batch']}, {best['train_wall_s']:.0f} s of training "
                     f"({best['train_wall_s'] / 60:.1f} min), test accuracy per epoch {accs}; "
                     f"final {best['final_test_acc'] * 100:.2f}% (target 92.5% in under 10 min: "
                     f"{'met' if best['final_test_acc'] >= 0.925 and best['train_wall_s'] < 600 else 'NOT met'}).")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
