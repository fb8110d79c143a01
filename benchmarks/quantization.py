"""Quantisation on this CPU: int8 post-training quantisation with both APIs, and Deep Compression end to end.

    COURSE_PROGRESS=0 python benchmarks/quantization.py
    python benchmarks/quantization.py --threads 2 --rounds 7 --cache-dir benchmarks/.cache --no-compile

1. int8 of a trained LeNet-300-100 (8 epochs, cosine), every variant side by
   side: ``torch.ao`` dynamic (engine x86), torchao dynamic
   (``Int8DynamicActivationInt8WeightConfig``) and weight-only
   (``Int8WeightOnlyConfig``), static int8 (``torch.ao`` with engines x86 and
   onednn, torchao PT2E), and, unless ``--no-compile``, the torch.compile'd
   torchao models next to a compiled fp32 model. For each: test accuracy,
   bytes of ``torch.save(state_dict)``, latency at batch 1 and 256 (interleaved
   rounds of ``torch.utils.benchmark.Timer``, median of the rounds' medians).
2. Static int8 of a trained LeNet-5 (6 epochs), the same way.
3. Deep Compression of LeNet-300-100 (Han et al. 2016): magnitude pruning with
   one global threshold in steps down to ~8% of the weights, retraining after
   each step (``torch.nn.utils.prune.global_unstructured`` and a mask re-applied
   by ``fit(after_step=...)``), then weight sharing (k-means, linear init),
   centroid fine-tuning, and ``save_compressed`` (5-bit relative indices for fc
   layers, Huffman coding). The file is read back with ``load_compressed`` and
   its outputs compared; its size is compared with ``torch.save`` of the dense
   state_dict.
4. Test accuracy against bits (8 down to 2) on the pruned model: linear
   (per-layer affine) quantisation of the weights, k-means weight sharing, and
   weight sharing followed by centroid fine-tuning (with its file size); linear
   and k-means also on the dense model.

Deep Compression runs first (training does not mind a busy machine); before
each latency table the script waits, up to ``--wait-for-quiet`` seconds, for
the 1-minute load average to fall below ``--quiet-load``, and records the load
with the timings. All decisions use the validation split; the test split only
reports. Trained
models can be cached in ``--cache-dir`` (only there). Results go to
``benchmarks/results/quantization.json`` (a temporary file, then renamed).
"""

from __future__ import annotations

import argparse
import copy
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _report import write_json
from torch import nn
from torch.nn.utils import prune

import course_utils as cu
from course_utils import quantization as q

ROOT = Path(__file__).resolve().parent


def log(*args):
    print(*args, flush=True)


def trained(name, make, train, cache_dir):
    """A trained model, from ``cache_dir/<name>.pt`` when it is there (and cache_dir is given).

    The initial weights are seeded (0), like the batches ``fit(seed=0)`` draws, so runs are reproducible."""
    torch.manual_seed(0)
    model = make()
    path = cache_dir / f"{name}.pt" if cache_dir else None
    if path and path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval(), None
    start = time.perf_counter()
    train(model)
    seconds = round(time.perf_counter() - start, 1)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model.eval(), seconds


def state_bytes(model):
    buffer = io.BytesIO()
    torch.save((getattr(model, "_orig_mod", model)).state_dict(), buffer)
    return len(buffer.getvalue())


def latencies(models: dict, batch_sizes, rounds, threads, min_run_time):
    """Per model and batch size, in ms: the median over interleaved rounds of each round's median forward time,
    and the fastest block of all rounds (``min``: what the code does when no other process gets in the way)."""
    from torch.utils import benchmark

    inputs = {b: torch.randn(b, 1, 28, 28) for b in batch_sizes}
    times = {name: {b: [] for b in batch_sizes} for name in models}
    best = {name: {b: float("inf") for b in batch_sizes} for name in models}
    names = list(models)
    with torch.no_grad():
        for r in range(rounds):
            for b in batch_sizes:
                for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order every round
                    timer = benchmark.Timer("m(x)", globals={"m": models[name], "x": inputs[b]}, num_threads=threads)
                    measurement = timer.blocked_autorange(min_run_time=min_run_time)
                    times[name][b].append(measurement.median * 1e3)
                    best[name][b] = min(best[name][b], min(measurement.times) * 1e3)
    return {name: {f"latency_ms_b{b}": statistics.median(t[b]) for b in batch_sizes} |
            {f"latency_ms_b{b}_min": best[name][b] for b in batch_sizes} |
            {f"latency_ms_b{b}_rounds": [round(v, 4) for v in t[b]] for b in batch_sizes}
            for name, t in times.items()}


def int8_variants(model, data, conv: bool, compile_: bool):
    """name -> (build function, API, kind). Builds happen one by one so each build time is measured."""
    def weight_only(m):
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        m = copy.deepcopy(m)
        with q._quiet():
            quantize_(m, Int8WeightOnlyConfig())
        return m

    variants = {"fp32": (lambda: model, "-", "fp32")}
    if not conv:
        variants["torch.ao dynamic (x86)"] = (lambda: q.int8_dynamic(model, api="torch.ao", engine="x86"),
                                              "torch.ao", "dynamic")
        variants["torchao dynamic"] = (lambda: q.int8_dynamic(model, api="torchao"), "torchao", "dynamic")
        variants["torchao weight-only"] = (lambda: weight_only(model), "torchao", "weight-only")
    for engine in ("x86", "onednn"):
        variants[f"torch.ao static ({engine})"] = (
            lambda engine=engine: q.int8_static(model, data, api="torch.ao", engine=engine), "torch.ao", "static")
    variants["torchao static (PT2E)"] = (lambda: q.int8_static(model, data, api="torchao"), "torchao", "static")
    if compile_:
        variants["fp32 + torch.compile"] = (lambda: torch.compile(copy.deepcopy(model)), "-", "fp32")
        if not conv:
            variants["torchao dynamic + torch.compile"] = (
                lambda: torch.compile(q.int8_dynamic(model, api="torchao")), "torchao", "dynamic")
        variants["torchao static (PT2E) + torch.compile"] = (
            lambda: torch.compile(q.int8_static(model, data, api="torchao")), "torchao", "static")
    available = {api for api in q.APIS if q._api_importable(api)} | {"-"}
    return {name: v for name, v in variants.items() if v[1] in available}


def int8_report(name, model, data, args):
    log(f"int8 post-training quantisation of {name}:")
    built, rows = {}, []
    for label, (build, api, kind) in int8_variants(model, data, name == "LeNet-5", args.compile).items():
        start = time.perf_counter()
        with q._quiet(), torch.no_grad():
            m = build()
            for b in args.batch_sizes:  # a compiled model compiles here, once per batch size
                m(torch.randn(b, 1, 28, 28))
        seconds = time.perf_counter() - start
        acc = cu.train.evaluate(m, data.test).accuracy
        built[label] = m
        rows.append({"model": label, "api": api, "kind": kind, "test_acc": acc, "size_bytes": state_bytes(m),
                     "build_seconds": round(seconds, 2)})
        log(f"  {label}: test {acc:.2%}, {rows[-1]['size_bytes']:,} bytes, built in {seconds:.1f} s")
    quiet = wait_for_quiet(args.wait_for_quiet, args.quiet_load)
    log(f"  timing (1-minute load average {quiet['load_1min']:.2f} after waiting {quiet['waited_s']} s)")
    timing = latencies(built, args.batch_sizes, args.rounds, args.threads, args.min_run_time)
    quiet["load_1min_after_timing"] = os.getloadavg()[0]
    fp32 = rows[0]
    for row in rows:
        row |= timing[row["model"]]
        row["acc_change_points"] = round(100 * (row["test_acc"] - fp32["test_acc"]), 3)
        row["size_ratio"] = round(fp32["size_bytes"] / row["size_bytes"], 3)
        for b in args.batch_sizes:
            row[f"speedup_b{b}"] = round(fp32[f"latency_ms_b{b}"] / row[f"latency_ms_b{b}"], 3)
            row[f"speedup_b{b}_min"] = round(fp32[f"latency_ms_b{b}_min"] / row[f"latency_ms_b{b}_min"], 3)
        log(f"  {row['model']}: " + ", ".join(f"b{b} {row[f'latency_ms_b{b}']:.3f} ms ({row[f'speedup_b{b}']:.2f}x)"
                                              for b in args.batch_sizes))
    return {"timing_conditions": quiet, "rows": rows}


def wait_for_quiet(limit_s, threshold):
    """Wait up to ``limit_s`` seconds for the 1-minute load average to drop below ``threshold``.

    Other processes on the machine distort timings (two threads wait for each
    other when one is descheduled), so the timings start once the machine is
    quiet; the load average at that moment is recorded with them.
    """
    start = time.perf_counter()
    while os.getloadavg()[0] > threshold and time.perf_counter() - start < limit_s:
        time.sleep(10)
    return {"waited_s": round(time.perf_counter() - start), "load_1min": os.getloadavg()[0],
            "quiet": os.getloadavg()[0] <= threshold}


def int8_targets(rows, big):
    """The course's int8 targets (≤ 0.1 point lost, ≥ 3.5× fewer bytes, ≥ 2.5× faster at batch ``big``),
    checked for the variant fastest at batch ``big`` and for each variant."""
    quantised = [r for r in rows if r["kind"] != "fp32"]
    fastest = max(quantised, key=lambda r: r[f"speedup_b{big}"])

    def check(r):
        return {"model": r["model"], "acc_lost_points": -r["acc_change_points"],
                "acc_within_0.1_point": r["acc_change_points"] >= -0.1, "size_ratio": r["size_ratio"],
                "size_3.5x_smaller": r["size_ratio"] >= 3.5, f"speedup_b{big}": r[f"speedup_b{big}"],
                f"b{big}_2.5x_faster": r[f"speedup_b{big}"] >= 2.5}

    return {f"fastest_at_b{big}": check(fastest), "per_variant": [check(r) for r in quantised]}


# --------------------------------------------------------------------------- Deep Compression


def prune_globally(dense, data, schedule, epochs, lr, batch_size):
    """Magnitude pruning with one global threshold over fc1-fc3, in steps, retraining after each step."""
    model = copy.deepcopy(dense)
    layers = [(m, "weight") for m in model.modules() if isinstance(m, nn.Linear)]

    def reapply_masks(m):  # keep pruned weights at exactly zero in the parameter itself
        with torch.no_grad():
            for module, _ in layers:
                module.weight_orig.mul_(module.weight_mask)

    remaining, steps = 1.0, []
    for keep in schedule:
        prune.global_unstructured(layers, prune.L1Unstructured, amount=1 - keep / remaining)
        remaining = keep
        before = cu.train.evaluate(model, data.val).accuracy
        cu.train.fit(model, data, epochs, lr=lr, batch_size=batch_size, schedule="cosine", seed=0,
                     after_step=reapply_masks, progress=False)
        steps.append({"weights_left": keep, "val_acc_before_retraining": before,
                      "val_acc_after": cu.train.evaluate(model, data.val).accuracy})
        log(f"  pruned to {keep:.1%} of the weights: val {before:.2%} -> {steps[-1]['val_acc_after']:.2%}")
    for module, name in layers:
        prune.remove(module, name)
    return model.eval(), steps


def linear_quantised(model, bits):
    """Every Linear/Conv2d weight replaced by its per-layer affine b-bit quantisation (zeros stay zero)."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.copy_(q.dequantize(q.quantize_tensor(m.weight, bits)))
    return model


def compress(pruned, data, bits, args, folder, dense_bytes):
    """Weight sharing, centroid fine-tuning and the compressed file for one number of bits."""
    shared = q.share_weights(copy.deepcopy(pruned), bits)
    row = {"bits": bits, "kmeans_test_acc": cu.train.evaluate(shared, data.test).accuracy}
    start = time.perf_counter()
    q.finetune_centroids(shared, data, args.centroid_epochs, lr=args.centroid_lr, batch_size=128,
                         schedule="cosine", seed=0, progress=False)
    row["finetune_seconds"] = round(time.perf_counter() - start, 1)
    row["finetuned_val_acc"] = cu.train.evaluate(shared, data.val).accuracy
    shared.eval()
    for gap_bits in sorted({5, *args.gap_bits}):
        path = folder / f"lenet300_100_{bits}bit_gap{gap_bits}.cdc"
        size = q.save_compressed(shared, path, gap_bits=gap_bits)
        assert size == os.path.getsize(path)
        loaded = q.load_compressed(path)
        with torch.no_grad():
            difference = (loaded(data.test.x) - shared(data.test.x)).abs().max().item()
        key = "" if gap_bits == 5 else f"_gap{gap_bits}"
        row[f"file_bytes{key}"] = size
        row[f"ratio{key}"] = round(dense_bytes / size, 2)
        if gap_bits == 5:
            row["finetuned_test_acc"] = cu.train.evaluate(loaded, data.test).accuracy  # the file's model
            row["max_output_difference_file_vs_model"] = difference
            row["layout"] = q.compressed_layout(path)
    return row, shared


def deep_compression(dense, data, args, folder):
    log("Deep Compression of LeNet-300-100:")
    dense_path = folder / "lenet300_100_dense.pt"
    torch.save(dense.state_dict(), dense_path)
    dense_bytes = os.path.getsize(dense_path)
    dense_acc = cu.train.evaluate(dense, data.test).accuracy
    start = time.perf_counter()
    pruned, steps = prune_globally(dense, data, args.prune_schedule, args.prune_epochs, 1e-3, 128)
    prune_seconds = round(time.perf_counter() - start, 1)
    density = {n: int((m.weight != 0).sum()) / m.weight.numel() for n, m in pruned.named_children()
               if isinstance(m, nn.Linear)}
    nonzero = sum(int((m.weight != 0).sum()) for m in pruned.modules() if isinstance(m, nn.Linear))
    total = sum(m.weight.numel() for m in pruned.modules() if isinstance(m, nn.Linear))
    pruned_acc = cu.train.evaluate(pruned, data.test).accuracy
    log(f"  dense: test error {1 - dense_acc:.2%}, {dense_bytes:,} bytes; pruned ({nonzero / total:.1%} left, "
        f"{density}): test error {1 - pruned_acc:.2%}")

    sweep, main = [], None
    for bits in args.bits:
        row = {"bits": bits, "dense_linear_test_acc": cu.train.evaluate(linear_quantised(dense, bits), data.test).accuracy,
               "dense_kmeans_test_acc": cu.train.evaluate(q.share_weights(copy.deepcopy(dense), bits), data.test).accuracy,
               "linear_test_acc": cu.train.evaluate(linear_quantised(pruned, bits), data.test).accuracy}
        shared_row, _ = compress(pruned, data, bits, args, folder, dense_bytes)
        row |= shared_row
        sweep.append(row)
        log(f"  {bits} bits: linear {row['linear_test_acc']:.2%}, k-means {row['kmeans_test_acc']:.2%}, "
            f"k-means + fine-tuning {row['finetuned_test_acc']:.2%}; file {row['file_bytes']:,} bytes "
            f"({row['ratio']:.1f}x)")
        if bits == args.main_bits:
            main = row
    dense_error, error = 100 * (1 - dense_acc), 100 * (1 - main["finetuned_test_acc"])
    settings = [{"weights_left": args.prune_schedule[-1], "bits": r["bits"], "gap_bits": g,
                 "ratio": r["ratio" if g == 5 else f"ratio_gap{g}"],
                 "test_error": round(100 * (1 - r["finetuned_test_acc"]), 3)}
                for r in sweep for g in sorted({5, *args.gap_bits})]
    sparser = []
    for keep in args.extra_sparsity:  # one more pruning step from the main model, then weight sharing
        more, steps_more = prune_globally(pruned, data, [keep], args.prune_epochs, 1e-3, 128)
        for bits in args.sparser_bits:
            row, _ = compress(more, data, bits, args, folder, dense_bytes)
            row |= {"weights_left": keep, "pruned_test_acc": cu.train.evaluate(more, data.test).accuracy,
                    "val_acc_after_pruning": steps_more[-1]["val_acc_after"]}
            sparser.append(row)
            settings += [{"weights_left": keep, "bits": bits, "gap_bits": g,
                          "ratio": row["ratio" if g == 5 else f"ratio_gap{g}"],
                          "test_error": round(100 * (1 - row["finetuned_test_acc"]), 3)}
                         for g in sorted({5, *args.gap_bits})]
            log(f"  {keep:.0%} of the weights, {bits} bits: test error {1 - row['finetuned_test_acc']:.2%}, "
                f"file {row['file_bytes']:,} bytes ({row['ratio']:.1f}x)")
    return {
        "dense": {"test_acc": dense_acc, "test_error_percent": round(dense_error, 3), "file_bytes": dense_bytes,
                  "val_acc": cu.train.evaluate(dense, data.val).accuracy},
        "pruning": {"schedule": args.prune_schedule, "epochs_per_step": args.prune_epochs, "lr": 1e-3,
                    "steps": steps, "seconds": prune_seconds, "weights_left": nonzero / total,
                    "layer_density": density, "test_acc": pruned_acc,
                    "val_acc": cu.train.evaluate(pruned, data.val).accuracy,
                    "test_error_percent": round(100 * (1 - pruned_acc), 3)},
        "centroid_finetuning": {"epochs": args.centroid_epochs, "lr": args.centroid_lr, "optimizer": "adam",
                                "schedule": "cosine"},
        "main": {"bits": args.main_bits, "gap_bits_fc": 5, "file_bytes": main["file_bytes"], "ratio": main["ratio"],
                 "test_error_percent": round(error, 3), "dense_test_error_percent": round(dense_error, 3),
                 "target_40x_and_error_at_most_dense": main["ratio"] >= 40 and error <= dense_error + 1e-9,
                 "stretch_50x_and_error_within_0.1_point": main["ratio"] >= 50 and error <= dense_error + 0.1 + 1e-9,
                 "paper": {"dense_kb": 1070, "compressed_kb": 27, "ratio": 40, "error_before": 1.64,
                           "error_after": 1.58}},
        "settings": settings,
        "settings_meeting_40x_and_error_at_most_dense": [s for s in settings if s["ratio"] >= 40 and
                                                         s["test_error"] <= dense_error + 1e-9],
        "settings_meeting_50x_and_error_within_0.1_point": [s for s in settings if s["ratio"] >= 50 and
                                                             s["test_error"] <= dense_error + 0.1 + 1e-9],
        "bits_sweep": sweep,
        "sparser": sparser,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-run-time", type=float, default=0.2, help="seconds per Timer measurement")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile rows")
    parser.add_argument("--wait-for-quiet", type=float, default=1800,
                        help="seconds to wait at most, before timing, for the load average to fall below --quiet-load")
    parser.add_argument("--quiet-load", type=float, default=0.7)
    parser.add_argument("--prune-schedule", type=float, nargs="+", default=[0.5, 0.25, 0.125, 0.08],
                        help="fractions of the weights left after each pruning step")
    parser.add_argument("--prune-epochs", type=int, default=3)
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 7, 6, 5, 4, 3, 2])
    parser.add_argument("--main-bits", type=int, default=6)
    parser.add_argument("--gap-bits", type=int, nargs="*", default=[8], help="other relative-index widths to size")
    parser.add_argument("--extra-sparsity", type=float, nargs="*", default=[0.06],
                        help="also prune the main model further to these fractions, then share and compress it")
    parser.add_argument("--sparser-bits", type=int, nargs="+", default=[6, 4],
                        help="bits of weight sharing for the --extra-sparsity models")
    parser.add_argument("--centroid-epochs", type=int, default=2)
    parser.add_argument("--centroid-lr", type=float, default=1e-4)
    parser.add_argument("--skip-int8", action="store_true")
    parser.add_argument("--skip-deep-compression", action="store_true")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache the trained dense models here")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "quantization.json")
    args = parser.parse_args()
    if args.threads <= 0 or args.rounds <= 0 or any(b <= 0 for b in args.batch_sizes):
        raise SystemExit("threads, rounds and batch sizes must be positive")
    if args.main_bits not in args.bits or any(not 1 <= b <= 16 for b in args.bits + args.gap_bits + args.sparser_bits):
        raise SystemExit("bits and gap bits must be in 1..16, and --main-bits among --bits")
    if any(not 0 < f < 1 for f in args.prune_schedule + args.extra_sparsity) or sorted(
            args.prune_schedule, reverse=True) != args.prune_schedule:
        raise SystemExit("the pruning schedule is decreasing fractions in (0, 1)")
    if args.cache_dir is not None and ROOT not in args.cache_dir.resolve().parents:
        raise SystemExit(f"--cache-dir must be inside {ROOT}")

    torch.set_num_threads(args.threads)
    inductor_cache = tempfile.TemporaryDirectory(prefix="quantization-benchmark-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_cache.name  # torch.compile's files: a temporary folder
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime is found"
    torch._dynamo.config.recompile_limit = 64  # one limit for all compiled modules; the default 8 is too few here
    start = time.perf_counter()
    load_before = os.getloadavg()
    data = cu.data.load_dataset(args.dataset)
    report = {"dataset": args.dataset, "threads": args.threads, "torch": torch.__version__,
              "quantized_engines": torch.backends.quantized.supported_engines, "cpu": cpu_name(),
              "apis": {api: q._api_importable(api) for api in q.APIS}}
    try:
        import torchao

        report["torchao"] = torchao.__version__
    except ImportError:
        report["torchao"] = None
    mlp, mlp_seconds = trained("lenet300_100", cu.models.mlp, lambda m: cu.train.fit(
        m, data, 8, lr=1e-3, batch_size=128, schedule="cosine", seed=0, progress=False), args.cache_dir)
    lenet5, lenet5_seconds = trained("lenet5", cu.models.lenet5, lambda m: cu.train.fit(
        m, data, 6, lr=2e-3, batch_size=256, schedule="cosine", seed=0, progress=False), args.cache_dir)
    report["training_seconds"] = {"lenet300_100": mlp_seconds, "lenet5": lenet5_seconds}
    if not args.skip_deep_compression:  # first: training does not mind a busy machine, timings do
        with tempfile.TemporaryDirectory() as folder:
            report["deep_compression_lenet300_100"] = deep_compression(mlp, data, args, Path(folder))
    if not args.skip_int8:
        for key, name, model in (("lenet300_100", "LeNet-300-100", mlp), ("lenet5", "LeNet-5", lenet5)):
            report[f"int8_{key}"] = int8_report(name, model, data, args)
            report[f"int8_targets_{key}"] = int8_targets(report[f"int8_{key}"]["rows"], max(args.batch_sizes))
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["load_average_1_5_15_min"] = {"start": load_before, "end": os.getloadavg()}
    inductor_cache.cleanup()
    write_json(report, args.out)
    log(f"wrote {args.out}")
    return 0


def cpu_name() -> str:
    """The CPU model and the instruction sets that matter for int8 kernels (VNNI, AMX)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile") if f" {f}" in info]
    return f"{name} ({', '.join(isa) or 'no AVX2'})"


if __name__ == "__main__":
    sys.exit(main())
