"""Deep Compression of LeNet-300-100 over several seeds: how many times smaller a file, at what test error.

    COURSE_PROGRESS=0 python benchmarks/deep_compression.py
    python benchmarks/deep_compression.py --seeds 0 1 2 --keep 0.08 0.06 --epochs 2 4 --bits 3 4

Notebook 04 compresses one pruned model (seed 0) and reads one test error; this script repeats the same pipeline
with several seeds and a few pruning recipes, so that a ratio and an error can be stated as a mean with its spread.

For every pruning recipe (``--keep``: share of the weights left; ``--epochs``: retraining epochs per pruning round)
and every seed: notebook 02's iterative magnitude pruning of the cached dense model (Han et al.'s schedule, one
global threshold, 3 rounds of prune-then-retrain; ``cu.baselines.lenet300_100_pruned`` with that recipe, cached
like the notebook's), then for every bit width (``--bits``): k-means weight sharing, ``--centroid-epochs`` of
centroid fine-tuning (Adam, cosine decay, the run's seed), and the file that ``cu.quantization.save_compressed``
writes (Huffman-coded cluster and relative indices, ``--gap-bits``-bit relative indices). The file is read back
with ``load_compressed`` and *that* model is evaluated. The ratio is the bytes of the dense model's ``torch.save``
state_dict over the compressed file's bytes, both measured on disk.

Two questions are answered on the validation split only (means over the seeds): the largest ratio at no more
validation error than the dense model, and the fewest validation errors among the settings at least ``--ratio``
times smaller for every seed. For each chosen setting the test errors (one per seed) are reported. Results go to ``benchmarks/results/deep_compression.json`` (a temporary
file, then renamed).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _report import write_json

import course_utils as cu

ROOT = Path(__file__).resolve().parent
PAPER = {"dense_kb": 1070, "compressed_kb": 27, "ratio": 40, "error_before": 1.64, "error_after": 1.58}


def error_percent(model, split) -> float:
    return 100 * cu.train.count_errors(model, split) / len(split.y)


def compress(pruned, data, bits: int, seed: int, args, folder: Path) -> dict:
    """Weight sharing, centroid fine-tuning and the compressed file of one pruned model; the model read back."""
    shared = cu.weight_sharing.share_weights(copy.deepcopy(pruned), bits)
    cu.weight_sharing.finetune_centroids(shared, data, args.centroid_epochs, lr=args.centroid_lr, schedule="cosine",
                                         seed=seed, validate=False, progress=False)
    path = folder / f"lenet300-{bits}bit.dc"
    size = cu.quantization.save_compressed(shared, path, gap_bits=args.gap_bits, huffman=True)
    restored = cu.quantization.load_compressed(path)
    return {"file_bytes": size, "val_error": error_percent(restored, data.val),
            "test_error": error_percent(restored, data.test)}


def summarise(runs: list[dict], dense_bytes: int) -> list[dict]:
    """One row per (keep, epochs, bits): means and ranges over the seeds."""
    settings: dict[tuple, list[dict]] = {}
    for run in runs:
        settings.setdefault((run["keep"], run["epochs"], run["bits"]), []).append(run)
    rows = []
    for (keep, epochs, bits), group in settings.items():
        tests = [r["test_error"] for r in group]
        rows.append({"keep": keep, "epochs": epochs, "bits": bits, "seeds": [r["seed"] for r in group],
                     "ratio": round(dense_bytes / statistics.mean(r["file_bytes"] for r in group), 2),
                     "ratio_min": round(dense_bytes / max(r["file_bytes"] for r in group), 2),
                     "val_error": round(statistics.mean(r["val_error"] for r in group), 3),
                     "test_error": round(statistics.mean(tests), 3), "test_error_range": [min(tests), max(tests)]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--keep", type=float, nargs="+", default=[0.08, 0.06],
                        help="shares of the weights left after pruning")
    parser.add_argument("--epochs", type=int, nargs="+", default=[2, 4], help="retraining epochs per pruning round")
    parser.add_argument("--bits", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--centroid-epochs", type=int, default=1)
    parser.add_argument("--centroid-lr", type=float, default=1e-4)
    parser.add_argument("--gap-bits", type=int, default=5)
    parser.add_argument("--ratio", type=float, default=50.0, help="the file ratio of the second question")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "deep_compression.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    data = cu.data.load_dataset(args.dataset)
    dense = cu.baselines.lenet300_100(data, verbose=False)
    dense_bytes = cu.metrics.state_dict_size(dense).raw
    dense_row = {"file_bytes": dense_bytes, "val_error": error_percent(dense, data.val),
                 "test_error": error_percent(dense, data.test)}
    print(f"dense: {dense_row}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for keep in args.keep:
            for epochs in args.epochs:
                for seed in args.seeds:
                    began = time.perf_counter()
                    pruned = cu.baselines.lenet300_100_pruned(data, verbose=False, keep=keep, epochs=epochs, seed=seed)
                    for bits in args.bits:
                        run = {"keep": keep, "epochs": epochs, "seed": seed, "bits": bits,
                               **compress(pruned, data, bits, seed, args, Path(tmp))}
                        run["ratio"] = round(dense_bytes / run["file_bytes"], 2)
                        runs.append(run)
                        print(run, flush=True)
                    print(f"keep {keep}, {epochs} epochs per round, seed {seed}: {time.perf_counter() - began:.0f} s "
                          "(pruning from the cache when it was there)", flush=True)

    rows = summarise(runs, dense_bytes)
    # Two questions, each answered on the validation split; the test errors of the chosen setting are then read.
    at_dense = [r for r in rows if r["val_error"] <= dense_row["val_error"]]
    at_ratio = [r for r in rows if r["ratio_min"] >= args.ratio]
    chosen = {"largest ratio at no more validation error than the dense model":
              max(at_dense, key=lambda r: r["ratio"]) if at_dense else None,
              f"fewest validation errors at {args.ratio:g}x or more (every seed)":
              min(at_ratio, key=lambda r: r["val_error"]) if at_ratio else None}
    first, second = chosen.values()
    targets = {"ratio_at_least_40_and_test_error_at_most_dense": bool(
                   first and first["ratio"] >= 40 and first["test_error"] <= dense_row["test_error"]),
               f"ratio_at_least_{args.ratio:g}_and_test_error_within_0.1_point": bool(
                   second and second["test_error"] <= dense_row["test_error"] + 0.1)}
    for question, row in chosen.items():
        print(f"{question}: {row}", flush=True)
    print(f"targets: {targets}", flush=True)
    report = {"dataset": args.dataset, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "settings_cli": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "dense": dense_row, "paper_lenet300_100": PAPER, "runs": runs, "settings": rows,
              "chosen_on_validation": chosen, "targets": targets,
              "seconds": round(time.perf_counter() - start, 1)}
    write_json(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
