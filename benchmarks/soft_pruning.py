"""Longer soft-pruning experiments than notebook 02 can afford; writes benchmarks/results/soft_pruning.json.

1. Han et al. (2015) on LeNet-300-100, with more retraining than the notebook: a few recipes (global threshold or
   Han's own per-layer rates, more or fewer prune-retrain iterations) at 8% of the weights left and at the stretch
   target of 5%, each chosen on the *validation* split; the chosen recipe of each target is then run with several
   seeds and reported on the test split once.
2. Dense against CSR matrix multiply across sparsities, for several layer shapes, batch sizes and thread counts
   (medians of ``torch.utils.benchmark``).

    COURSE_DATA_DIR=... COURSE_CACHE_DIR=... python benchmarks/soft_pruning.py            # everything
    python benchmarks/soft_pruning.py --part kernels                                     # only the kernel sweep
    python benchmarks/soft_pruning.py --quick             # a smoke test (writes results/soft_pruning_quick.json)
    python benchmarks/soft_pruning.py --part han --left 0.05                             # one target again

Quiet-machine cost (2 cores): about 2.3 s per LeNet-300-100 epoch; the full run is about 340 epochs plus the kernel
sweep, roughly 15 minutes. Candidates already measured with the same recipe are read back from the JSON file.
Run the kernel sweep on an otherwise idle machine: timings taken while other processes compete for the cores
(especially with 2 threads) are meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from _report import write_json

import course_utils as cu

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "soft_pruning.json"

HAN_RATES = {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74}  # Han et al. 2015, Table 2: 8%, 9%, 26% left


def scaled_han_rates(left: float) -> dict[str, float]:
    """Han's per-layer proportions scaled so that a fraction ``left`` of LeNet-300-100's weights remains."""
    sizes = {"fc1": 784 * 300, "fc2": 300 * 100, "fc3": 100 * 10}
    kept = {n: 1 - r for n, r in HAN_RATES.items()}
    total = sum(sizes.values())
    scale = left * total / sum(kept[n] * sizes[n] for n in sizes)
    return {n: 1 - min(1.0, kept[n] * scale) for n in sizes}


def kept(sparsity):
    """A recipe's ``target`` is the sparsity (as the results recorded so far); ``iterative_prune`` takes the part kept."""
    return {n: 1 - r for n, r in sparsity.items()} if isinstance(sparsity, dict) else 1 - sparsity


def recipes(left: float, quick: bool) -> dict[str, dict]:
    target = 1 - left
    if quick:
        return {"global 2x1": dict(target=target, scope="global", steps=2, finetune_epochs=1)}
    out = {
        "global 3x2": dict(target=target, scope="global", steps=3, finetune_epochs=2),
        "global 4x3": dict(target=target, scope="global", steps=4, finetune_epochs=3),
        "global 6x3": dict(target=target, scope="global", steps=6, finetune_epochs=3),
        "Han's per-layer rates 4x3": dict(target=scaled_han_rates(left), scope="layer", steps=4, finetune_epochs=3),
    }
    if left < 0.08:  # the stretch target needs more retraining
        out["global 5x6"] = dict(target=target, scope="global", steps=5, finetune_epochs=6)
        out["global 8x5"] = dict(target=target, scope="global", steps=8, finetune_epochs=5)
        out["global 10x6"] = dict(target=target, scope="global", steps=10, finetune_epochs=6)
    return out


def han_part(data, quick: bool, lefts=(0.08, 0.05), previous: dict | None = None) -> dict:
    dense = cu.baselines.lenet300_100(data)
    dense_val = cu.train.evaluate(dense, data.val).accuracy
    dense_test = cu.train.evaluate(dense, data.test).accuracy
    out = {"dense": {"val_acc": dense_val, "test_acc": dense_test, "test_error": 1 - dense_test},
           "targets": dict((previous or {}).get("targets", {}))}
    if (previous or {}).get("dense", {}).get("test_acc") != dense_test:
        out["targets"] = {}  # measured from another dense model: nothing of it can be reused
    seeds = (0,) if quick else (0, 1, 2)
    for left in lefts:
        candidates = {}
        known = out["targets"].get(f"{left:.0%} left", {}).get("candidates (validation)", {})
        for name, recipe in recipes(left, quick).items():
            if name in known and known[name]["recipe"] == json.loads(json.dumps(recipe)):
                candidates[name] = known[name]  # measured by an earlier run with the same recipe
                print(f"[{left:.0%} left] {name}: val {known[name]['val_acc']:.4f} (earlier run)", flush=True)
                continue
            start = time.perf_counter()
            model, log = cu.soft_pruning.iterative_prune(dense, data, kept(recipe["target"]), steps=recipe["steps"],
                                                         finetune_epochs=recipe["finetune_epochs"], schedule="han",
                                                         scope=recipe["scope"], lr=1e-3, lr_schedule="cosine", seed=0)
            candidates[name] = {"recipe": recipe, "val_acc": log[-1]["val_acc"], "left": 1 - cu.metrics.sparsity(model),
                                "layer_left": {n: 1 - s for n, s in cu.metrics.layer_sparsity(model).items()},
                                "seconds": time.perf_counter() - start}
            print(f"[{left:.0%} left] {name}: val {log[-1]['val_acc']:.4f}, left {1 - cu.metrics.sparsity(model):.4f}, "
                  f"{candidates[name]['seconds']:.0f} s", flush=True)
        chosen = max(candidates, key=lambda n: candidates[n]["val_acc"])  # the decision: validation only
        recipe = candidates[chosen]["recipe"]
        runs = []
        for seed in seeds:
            model, _ = cu.soft_pruning.iterative_prune(dense, data, kept(recipe["target"]), steps=recipe["steps"],
                                                       finetune_epochs=recipe["finetune_epochs"], schedule="han",
                                                       scope=recipe["scope"], lr=1e-3, lr_schedule="cosine", seed=seed)
            row = cu.metrics.summary(model, data, f"{chosen}, seed {seed}", batch_sizes=())
            runs.append({"seed": seed, "test_acc": row["test_acc"], "test_errors": row["test_errors"],
                         "test_error": 1 - row["test_acc"], "left": 1 - cu.metrics.sparsity(model),
                         "nonzero_params": row["nonzero_params"], "params": row["params"],
                         "layer_left": {n: 1 - s for n, s in cu.metrics.layer_sparsity(model).items()},
                         "size_compressed_bytes": row["size_compressed_bytes"]})
            print(f"[{left:.0%} left] chosen {chosen}, seed {seed}: test error {1 - row['test_acc']:.4f} "
                  f"(dense {1 - dense_test:.4f})", flush=True)
        errors = [r["test_error"] for r in runs]
        out["targets"][f"{left:.0%} left"] = {
            "candidates (validation)": candidates, "chosen": chosen, "runs (test)": runs,
            "mean_test_error": sum(errors) / len(errors), "max_test_error": max(errors),
            "target": f"<= {left:.0%} of the weights with test error <= dense + 0.1 point",
            "met_by_mean": sum(errors) / len(errors) <= 1 - dense_test + 0.001 and all(r["left"] <= left + 1e-9
                                                                                      for r in runs),
        }
    return out


def kernel_part(quick: bool) -> list[dict]:
    shapes = [(300, 784)] if quick else [(300, 784), (100, 300), (1024, 1024), (2048, 2048)]
    sparsities = (0.0, 0.9, 0.99) if quick else (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
    batches = (1, 256) if quick else (1, 32, 256)
    threads = sorted({1, min(2, os.cpu_count() or 1)})
    rows = []
    for out_f, in_f in shapes:
        for b in batches:
            for t in threads:
                rows += cu.latency.matmul_latency(sparsities, out_features=out_f, in_features=in_f, batch_size=b, threads=t,
                                          min_run_time=0.05 if quick else 0.2)
                best = max(rows[-len(sparsities):], key=lambda r: r["csr_speedup"])
                print(f"{out_f}x{in_f}, batch {b}, {t} threads: best CSR speed-up {best['csr_speedup']:.2f} "
                      f"at {best['sparsity']:.0%}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "han", "kernels"), default="all")
    parser.add_argument("--quick", action="store_true", help="tiny settings, to check that the script runs")
    parser.add_argument("--left", type=float, action="append",
                        help="fraction of weights left to reproduce (repeatable; default 0.08 and 0.05)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.quick and args.out == OUT:  # never mix a smoke test into the real results
        args.out = OUT.with_name("soft_pruning_quick.json")
    os.environ.setdefault("COURSE_PROGRESS", "0")
    result = {"torch": torch.__version__, "python": sys.version.split()[0], "machine": platform.machine(),
              "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "quick": args.quick,
              "date": time.strftime("%Y-%m-%d")}
    if args.out.is_file():  # keep the other part's results when only one part is re-run
        try:
            previous = json.loads(args.out.read_text())
            result.update({k: previous[k] for k in ("han", "kernels") if k in previous})
        except (OSError, ValueError):
            pass
    start = time.perf_counter()
    if args.part in ("all", "han"):
        data = cu.data.load_dataset("mnist")
        result["han"] = han_part(data, args.quick, tuple(args.left or (0.08, 0.05)), result.get("han"))
    if args.part in ("all", "kernels"):
        result["kernels"] = kernel_part(args.quick)
    result["seconds"] = round(time.perf_counter() - start, 1)
    write_json(result, args.out)
    print(f"wrote {args.out} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
