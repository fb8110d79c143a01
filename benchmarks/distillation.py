"""Long distillation runs, too slow for notebook 03: the 2×800 student (and smaller ones) trained for many epochs.

    COURSE_DATA_DIR=... COURSE_PROGRESS=0 python benchmarks/distillation.py            # default: 20 epochs, 3 seeds
    python benchmarks/distillation.py --epochs 30 --sizes 800 30 --seeds 0 1 2 3 4

For each student size: T and alpha are chosen on the validation split with short
runs (``--sweep-epochs`` on the full training split, seed 0), then the student is
trained on labels alone and by distillation with each seed for ``--epochs``
epochs, and its test errors are reported with the share of the gap to the teacher
that distillation closes (the paper: 146 -> 74 errors against a teacher's 67,
about 91%). The teacher is notebook 03's (``cu.distill.teacher``, cached). Every
student is cached, so an interrupted run resumes. Results go to
``benchmarks/results/distillation.json`` (written to a temporary file, then renamed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import course_utils as cu

ROOT = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--sizes", type=int, nargs="+", default=[800, 30])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sweep-epochs", type=int, default=3)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[2, 4, 8, 20])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.5, 0.9, 1.0])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "distillation.json")
    args = parser.parse_args()
    for name, values in (("epochs", [args.epochs, args.sweep_epochs]), ("sizes", args.sizes)):
        if any(v <= 0 for v in values):
            raise SystemExit(f"{name} must be positive")
    for t in args.temperatures:
        cu.distill.check_temperature(t)
    for a in args.alphas:
        cu.distill.check_alpha(a)

    start = time.perf_counter()
    data = cu.data.load_dataset(args.dataset)
    teacher = cu.distill.teacher(data)
    logits = cu.distill.teacher_outputs(teacher, data)
    teacher_errors = cu.distill.count_errors(logits["test"], data.test)
    print(f"teacher: {teacher_errors} test errors, {cu.metrics.count_parameters(teacher):,} parameters", flush=True)
    common = dict(lr=args.lr, batch_size=args.batch_size, schedule="cosine")

    def run(h, seed, epochs, temperature=None, alpha=None):
        kd = dict(teacher_logits=logits["train"], temperature=temperature, alpha=alpha) if alpha is not None else {}
        return cu.distill.student((h, h), data, epochs=epochs, seed=seed, **kd, **common)

    report = {"dataset": args.dataset, "threads": torch.get_num_threads(), "epochs": args.epochs,
              "sweep_epochs": args.sweep_epochs, "seeds": args.seeds, "teacher_errors": teacher_errors,
              "teacher_recipe": cu.distill.TEACHER_RECIPE, "paper": {"teacher": 67, "labels": 146, "distilled": 74},
              "students": {}}
    for h in args.sizes:
        t0 = time.perf_counter()
        by_t = {t: cu.distill.count_errors(run(h, 0, args.sweep_epochs, t, 0.9), data.val) for t in args.temperatures}
        best_t = min(by_t, key=by_t.get)
        by_a = {a: (by_t[best_t] if a == 0.9 else
                    cu.distill.count_errors(run(h, 0, args.sweep_epochs, best_t, a), data.val)) for a in args.alphas}
        best_a = min(by_a, key=by_a.get)
        print(f"2×{h}: validation errors by T {by_t}, by alpha {by_a} -> T = {best_t}, alpha = {best_a}", flush=True)
        labels, distilled = [], []
        for seed in args.seeds:
            labels.append(cu.distill.count_errors(run(h, seed, args.epochs), data.test))
            distilled.append(cu.distill.count_errors(run(h, seed, args.epochs, best_t, best_a), data.test))
            print(f"  seed {seed}: labels alone {labels[-1]}, distilled {distilled[-1]} test errors", flush=True)
        lab, dis = statistics.mean(labels), statistics.mean(distilled)
        try:
            closed = cu.distill.gap_closed(lab, dis, teacher_errors)
        except ValueError:
            closed = None
        report["students"][f"2x{h}"] = {
            "hidden": [h, h], "params": cu.metrics.count_parameters(cu.models.mlp((h, h))),
            "temperature": best_t, "alpha": best_a, "val_errors_by_temperature": by_t, "val_errors_by_alpha": by_a,
            "labels_test_errors": labels, "distilled_test_errors": distilled,
            "labels_mean": lab, "distilled_mean": dis, "gap_closed": closed,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(f"2×{h}: labels alone {lab:.1f}, distilled {dis:.1f}, teacher {teacher_errors} -> gap closed "
              f"{'n/a' if closed is None else f'{closed:.0%}'}", flush=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
