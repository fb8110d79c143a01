"""Longer hard-pruning measurements than notebook 01 can afford: latency against MACs, and the plans over more seeds.

    COURSE_DATA_DIR=... COURSE_PROGRESS=0 python benchmarks/hard_pruning.py
    python benchmarks/hard_pruning.py --threads 1 2 --batch-sizes 1 32 256 --seeds 0 1 2 3 4 --epochs 2

1. Latency sweep: LeNet-300-100 with a growing fraction of both hidden layers
   removed, and LeNet-5 with a growing fraction of both convolutions' channels
   removed, timed against the dense model (``cu.latency.speedups``: interleaved
   rounds of ``cu.latency.latency``) at each batch size and thread count. The
   measured speed-up is reported next to the ideal one, the MAC ratio.
2. Plans over seeds: the notebook's procedure (a sensitivity scan on the
   validation split, ``cu.hard_pruning.choose_plan`` removing at least half of the neurons
   or channels), then one fine-tune per seed, and the test accuracy of each
   against the dense model's. Fine-tuned models are cached like the notebook's.

The dense models are the shared baselines (``cu.baselines``). Results go to
``benchmarks/results/hard_pruning.json`` (written to a temporary file, then renamed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from _report import write_json

import course_utils as cu

ROOT = Path(__file__).resolve().parent


def latency_sweep(model, fractions, layers, batch_sizes, threads, rounds):
    out = []
    for n in threads:
        torch.set_num_threads(n)
        for batch in batch_sizes:
            chosen = layers or cu.surgery.hidden_layers(model)
            pruned = {f: cu.hard_pruning.prune_neurons(model, {layer: f for layer in chosen}, "l1") for f in fractions}
            rows = cu.latency.speedups(model, pruned, batch_size=batch, rounds=rounds, min_run_time=0.2)
            for r in rows:
                r["fraction"] = r.pop("model")
                print(f"  threads {n}, batch {batch:>3}, {r['fraction']:.0%} removed: speed-up {r['speedup']:.2f}x, "
                      f"MAC ratio {r['mac_ratio']:.2f}x", flush=True)
            out += rows
    return out


def plan_over_seeds(name, base, data, layers, fractions, criterion, seeds, epochs, lr, batch_size):
    counts = {layer: n for layer, n in cu.surgery.neuron_counts(base).items() if layer in layers}
    reference = cu.train.evaluate(base, data.val).accuracy
    scan = cu.hard_pruning.sensitivity_scan(base, data, fractions, criterion, layers=layers)
    plan = cu.hard_pruning.choose_plan(scan, fractions, counts, remove_at_least=0.5, reference=reference)
    dense_test = cu.train.evaluate(base, data.test).accuracy
    tests = []
    for seed in seeds:
        config = {"base": cu.checkpoints.fingerprint(base), "plan": plan, "criterion": criterion, "epochs": epochs, "lr": lr,
                  "batch_size": batch_size, "seed": seed}
        model = cu.checkpoints.load_or_train(
            name, lambda: cu.hard_pruning.prune_neurons(base, plan, criterion, data),
            lambda m: cu.train.finetune(m, data, epochs, lr=lr, batch_size=batch_size, seed=seed),
            data=data, config=config, verbose=False)
        tests.append(cu.train.evaluate(model, data.test).accuracy)
        print(f"  {name} seed {seed}: test {tests[-1]:.2%} (dense {dense_test:.2%})", flush=True)
    kept = cu.surgery.neuron_counts(cu.hard_pruning.prune_neurons(base, plan, "l1"))
    return {"plan": plan, "criterion": criterion, "kept": {k: kept[k] for k in counts}, "original": counts,
            "dense_test_acc": dense_test, "test_acc": tests, "mean_drop_points": 100 * (dense_test - statistics.mean(tests)),
            "largest_drop_points": 100 * (dense_test - min(tests)), "epochs": epochs, "lr": lr, "seeds": seeds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5, 0.75, 0.9])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--mlp-criterion", default="l1", choices=cu.importance.CRITERIA)
    parser.add_argument("--channel-criterion", default="taylor", choices=cu.importance.CRITERIA)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-plans", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "hard_pruning.json")
    args = parser.parse_args()
    if any(n <= 0 for n in args.threads + args.batch_sizes) or args.rounds <= 0 or args.epochs <= 0:
        raise SystemExit("threads, batch sizes, rounds and epochs must be positive")
    if any(not 0 < f < 1 for f in args.fractions):
        raise SystemExit("fractions must be in (0, 1)")

    start = time.perf_counter()
    data = cu.data.load_dataset(args.dataset)
    mlp, lenet5 = cu.baselines.lenet300_100(data), cu.baselines.lenet5(data)
    report = {"dataset": args.dataset, "threads_default": torch.get_num_threads(), "torch": torch.__version__}
    if not args.skip_latency:
        print("latency, LeNet-300-100 (both hidden layers):", flush=True)
        report["latency_lenet300_100"] = latency_sweep(mlp, args.fractions, None, args.batch_sizes, args.threads,
                                                       args.rounds)
        print("latency, LeNet-5 (both convolutions):", flush=True)
        report["latency_lenet5"] = latency_sweep(lenet5, args.fractions, ["conv1", "conv2"], args.batch_sizes,
                                                 args.threads, args.rounds)
        torch.set_num_threads(report["threads_default"])
    if not args.skip_plans:
        print("plans over seeds:", flush=True)
        report["plan_lenet300_100"] = plan_over_seeds(
            "bench-hard-lenet300", mlp, data, ["fc1", "fc2"], [i / 10 for i in range(10)], args.mlp_criterion, args.seeds,
            args.epochs, 1e-3, 128)
        report["plan_lenet5"] = plan_over_seeds(
            "bench-hard-lenet5", lenet5, data, ["conv1", "conv2"], [i / 8 for i in range(8)], args.channel_criterion,
            args.seeds, args.epochs, 2e-3, 256)
    report["seconds"] = round(time.perf_counter() - start, 1)
    write_json(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
