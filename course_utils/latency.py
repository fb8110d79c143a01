"""How long a model takes: the course's one timer and the latency measurements built on it.

* :func:`time_call` times any call (median over repeated blocks of
  ``torch.utils.benchmark``), :func:`latency` one forward pass of a model on a
  batch; every timing of the course goes through these two.
* :func:`latencies` times several models in interleaved rounds, so that ratios
  between them stay honest on a shared machine; :func:`speedups` turns that into
  measured speed-ups against the ideal one (the MAC ratio).
* :func:`layer_latencies` times each layer of a ``nn.Sequential`` on its own.
* :func:`matmul_latency` times one layer's product with the weight dense and in
  CSR (:class:`course_utils.sparse.SparseLinear`), across sparsities.

Timings are medians, reported with the batch size, the number of threads and
the device.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import torch
from torch import nn

from . import validate
from .masks import mask_smallest
from .metrics import macs
from .sparse import SparseLinear
from .surgery import sequential_children
from .train import device_of

__all__ = ["Timing", "latencies", "latency", "layer_latencies", "matmul_latency", "speedups", "time_call"]


class Timing(NamedTuple):
    median: float  # seconds per forward pass of one batch
    iqr: float  # interquartile range of the repeats, seconds
    batch_size: int
    threads: int
    repeats: int
    device: str = "cpu"  # where it ran: "cpu", or "cuda" on a GPU


def time_call(fn, *, threads: int | None = None, min_run_time: float = 0.3, min_repeats: int = 15,
              min_block: float = 0.01, batch_size: int = 0, device: str = "cpu") -> Timing:
    """Median time of one call of ``fn()``, measured with ``torch.utils.benchmark.Timer``.

    Calls are grouped in blocks of at least ``min_block`` seconds (10 ms: the
    timer's own overhead is negligible, and on a busy machine a block spans
    several scheduler time slices rather than catching one); blocks are repeated
    at least ``min_repeats`` times and for at least ``min_run_time`` seconds, and
    the median over blocks is reported with its interquartile range. ``threads``
    defaults to PyTorch's current thread count. ``device`` only labels the
    result (the timer waits for CUDA kernels to finish). This is the course's
    one timer: every latency of the course goes through it.
    """
    benchmark = _benchmark()
    threads = threads or torch.get_num_threads()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    number = 1
    while number < 100_000 and timer.timeit(number).median * number < min_block:  # also warms up
        number *= 4
    times: list[float] = []
    spent = 0.0
    while len(times) < min_repeats or (spent < min_run_time and len(times) < 500):
        per_call = timer.timeit(number).median
        times.append(per_call)
        spent += per_call * number
    t = torch.tensor(times, dtype=torch.float64)
    iqr = (t.quantile(0.75) - t.quantile(0.25)).item()
    return Timing(t.median().item(), iqr, batch_size, threads, len(times), device)


def latency(model: nn.Module, batch_size: int = 1, input_shape=(1, 28, 28), threads: int | None = None,
            min_run_time: float = 0.3, min_repeats: int = 15, min_block: float = 0.01) -> Timing:
    """Median time of one forward pass of ``model`` on a batch (eval mode, no gradients); see :func:`time_call`."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = device_of(model)
    x = torch.randn(batch_size, *input_shape, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return time_call(lambda: model(x), threads=threads, min_run_time=min_run_time,
                             min_repeats=min_repeats, min_block=min_block, batch_size=batch_size,
                             device=device.type)
    finally:
        model.train(was_training)


def _benchmark():
    """``torch.utils.benchmark``, imported without its warning about a missing CUDA toolkit."""
    import logging

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    return benchmark


def latencies(models: Mapping[str, nn.Module], batch_size: int = 256, input_shape=(1, 28, 28), rounds: int = 3,
              min_run_time: float = 0.1, block_ms: float = 30.0) -> dict[str, Timing]:
    """:func:`latency` of several models, measured in interleaved rounds with long blocks.

    Round after round, every model is timed once (A, B, C, A, B, C, ...); for
    each model the round with the median time is returned. Each timed block
    runs the model for at least ``block_ms`` milliseconds. Both make ratios
    between models robust on a shared machine: a slow period hits every model
    alike, and the other programs' share of the CPU stretches a long block
    proportionally instead of adding a whole scheduler time slice to a short
    one. On a quiet machine the results are the same as plain :func:`latency`.
    """
    if not models:
        raise ValueError("no models to time")
    validate.positive_int(rounds, "rounds")
    validate.positive_number(block_ms, "block_ms")
    results: dict[str, list] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            results[name].append(latency(model, batch_size, input_shape, min_run_time=min_run_time,
                                         min_repeats=7, min_block=block_ms * 1e-3))
    return {name: sorted(ts, key=lambda t: t.median)[(len(ts) - 1) // 2] for name, ts in results.items()}


def speedups(reference: nn.Module, models: Mapping, batch_size: int = 256, input_shape=(1, 28, 28),
             rounds: int = 3, min_run_time: float = 0.1, block_ms: float = 30.0) -> list[dict]:
    """Measured speed-up of each of ``models`` over ``reference``, against the ideal one (the MAC ratio).

    The models are timed together with the reference by :func:`latencies`.
    Returns one row per model, in order: ``model`` (its key in ``models``),
    ``macs``, ``mac_ratio`` (reference / model), ``latency_ms``, ``speedup``
    (reference time / model time), ``batch_size``, ``threads`` and ``device``.
    """
    if not models:
        raise ValueError("no models to compare with the reference")
    keyed = {str(i): m for i, m in enumerate(models.values())}
    timed = latencies({"reference": reference, **keyed}, batch_size, input_shape, rounds, min_run_time, block_ms)
    base_macs = macs(reference, input_shape)
    rows = []
    for (label, model), key in zip(models.items(), keyed):
        mac = macs(model, input_shape)
        rows.append({"model": label, "macs": mac, "mac_ratio": base_macs / mac,
                     "latency_ms": timed[key].median * 1e3, "speedup": timed["reference"].median / timed[key].median,
                     "batch_size": batch_size, "threads": timed[key].threads, "device": timed[key].device})
    return rows


def layer_latencies(model: nn.Module, batch_size: int = 256, input_shape=(1, 28, 28),
                    min_run_time: float = 0.1) -> list[dict]:
    """Time every layer of a ``nn.Sequential`` on its own, with :func:`latency`.

    Each layer gets an input of the shape it sees inside the model (random
    values). Returns one row per layer: ``layer``, ``type``, ``macs`` (per
    image), ``latency_ms`` (batch ``batch_size``) and ``threads``. The rows show
    where the time goes, including layers without any MACs (activations, pooling).
    """
    children = sequential_children(model)
    x = torch.zeros(1, *input_shape, device=device_of(model))
    rows = []
    was_training = model.training
    model.eval()
    try:
        for name, module in children:
            shape = tuple(x.shape[1:])
            timing = latency(module, batch_size, shape, min_run_time=min_run_time)
            rows.append({"layer": name, "type": type(module).__name__, "macs": macs(module, shape),
                         "latency_ms": timing.median * 1e3, "threads": timing.threads})
            with torch.no_grad():
                x = module(x)
    finally:
        model.train(was_training)
    return rows


def matmul_latency(sparsities: Sequence[float], out_features: int = 300, in_features: int = 784,
                   batch_size: int = 256, threads: int | None = None, min_run_time: float = 0.2,
                   seed: int = 0) -> list[dict]:
    """Median time of ``y = x Wᵀ`` with W dense against W in CSR, for a W of each sparsity.

    W is random (``out_features × in_features``, the shape of LeNet-300-100's fc1
    by default) with its smallest-magnitude entries zeroed; x has ``batch_size``
    rows. Each product is timed with :func:`time_call` (at least
    ``min_run_time`` seconds) on ``threads`` threads (default: PyTorch's current
    count); rows report the medians in milliseconds and the speed-up of CSR over
    dense (above 1: sparse is faster).
    """
    values = [validate.fraction(s, "sparsity") for s in sparsities]
    if not values:
        raise ValueError("sparsities is empty: give at least one fraction in [0, 1]")
    for what, v in (("out_features", out_features), ("in_features", in_features), ("batch_size", batch_size)):
        validate.positive_int(v, what)
    threads = threads or torch.get_num_threads()
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out_features, in_features, generator=g)
    x = torch.randn(batch_size, in_features, generator=g)
    rows = []
    for s in values:
        layer = nn.Linear(in_features, out_features, bias=False)
        with torch.no_grad():
            layer.weight.copy_(w * mask_smallest(w.abs(), round(s * w.numel())))
        sparse = SparseLinear(layer)
        weight = layer.weight.detach()
        with torch.no_grad():
            dense_t = time_call(lambda: torch.nn.functional.linear(x, weight), threads=threads,
                                min_run_time=min_run_time, batch_size=batch_size)
            sparse_t = time_call(lambda: sparse(x), threads=threads, min_run_time=min_run_time,
                                 batch_size=batch_size)
        rows.append({"sparsity": s, "dense_ms": dense_t.median * 1e3, "csr_ms": sparse_t.median * 1e3,
                     "csr_speedup": dense_t.median / sparse_t.median, "batch_size": batch_size,
                     "threads": threads, "shape": f"{out_features}x{in_features}"})
    return rows
