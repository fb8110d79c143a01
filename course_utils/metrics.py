"""What a compressed model costs: parameters, zeros, MACs, bytes on disk, latency.

:func:`summary` measures all of it for one model and returns one row (a dict);
every comparison table of the course is a list of such rows shown with
:func:`table` or :func:`compare`.

Masked models (``torch.nn.utils.prune``) are measured by their *effective*
weights (``weight_orig * weight_mask``), so a pruned-but-masked model reports its
zeros, and its file size is that of the plain model it stands for.
"""

from __future__ import annotations

import html
import io
import zlib
from typing import NamedTuple, Sequence

import torch
from torch import nn

from .models import prunable_layers
from .train import evaluate

__all__ = [
    "Timing",
    "compare",
    "count_nonzero",
    "count_parameters",
    "effective_state_dict",
    "effective_weight",
    "time_call",
    "latency",
    "layer_sparsity",
    "macs",
    "sparsity",
    "state_dict_size",
    "summary",
    "table",
]


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _masked(module: nn.Module, name: str) -> bool:
    return hasattr(module, f"{name}_orig") and hasattr(module, f"{name}_mask")


def effective_weight(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The value a layer computes with: ``<name>_orig * <name>_mask`` for a masked layer, else the parameter.

    Computed from the parameter and the mask rather than read from the
    attribute that ``torch.nn.utils.prune`` refreshes at each forward pass,
    which lags behind after an optimiser step.
    """
    if _masked(module, name):
        return (getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")).detach()
    return getattr(module, name).detach()


def effective_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``state_dict`` with every pruning mask applied and ``*_orig``/``*_mask`` pairs merged."""
    state = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith("_mask"):
            continue
        if key.endswith("_orig"):
            base = key[: -len("_orig")]
            out[base] = (tensor * state[base + "_mask"]).detach().clone()
        else:
            out[key] = tensor
    return out


def count_parameters(model: nn.Module) -> int:
    """All learnable numbers in the model (a masked weight counts once, zeros included)."""
    return sum(p.numel() for p in model.parameters())


def count_nonzero(model: nn.Module) -> int:
    """Learnable numbers that are not exactly zero (after masks)."""
    total = 0
    for module in model.modules():
        for name, _ in module.named_parameters(recurse=False):
            base = name[: -len("_orig")] if name.endswith("_orig") else name
            total += int(torch.count_nonzero(effective_weight(module, base)))
    return total


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero weights in each Linear/Conv2d layer (biases excluded)."""
    out = {}
    for name, m in prunable_layers(model).items():
        w = effective_weight(m)
        out[name] = 1.0 - int(torch.count_nonzero(w)) / w.numel()
    return out


def sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over all Linear/Conv2d layers (biases excluded)."""
    weights = [effective_weight(m) for m in prunable_layers(model).values()]
    total = sum(w.numel() for w in weights)
    if total == 0:
        raise ValueError("the model has no Linear or Conv2d layers")
    return 1.0 - sum(int(torch.count_nonzero(w)) for w in weights) / total


def macs(model: nn.Module, input_shape=(1, 28, 28)) -> int:
    """Multiply-accumulates of one forward pass for one example, counted by ``torch.utils.flop_counter``.

    Dense kernels do every multiplication, zeros included, so a masked model
    has as many MACs as the dense one; only removing neurons lowers this count.
    """
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, *input_shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x.to(_device(model)))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2  # the counter reports 2 FLOPs per multiply-accumulate


class Size(NamedTuple):
    raw: int  # bytes of torch.save(state_dict)
    compressed: int  # the same bytes after zlib (level 9): zeros and repeats shrink


def state_dict_size(model: nn.Module) -> Size:
    """Bytes of the saved (effective) state_dict, as is and compressed with zlib."""
    buffer = io.BytesIO()
    torch.save(effective_state_dict(model), buffer)
    raw = buffer.getvalue()
    return Size(len(raw), len(zlib.compress(raw, 9)))


class Timing(NamedTuple):
    median: float  # seconds per forward pass of one batch
    iqr: float  # interquartile range of the repeats, seconds
    batch_size: int
    threads: int
    repeats: int


def time_call(fn, *, threads: int | None = None, min_run_time: float = 0.3, min_repeats: int = 15,
              min_block: float = 0.01, batch_size: int = 0) -> Timing:
    """Median time of one call of ``fn()``, measured with ``torch.utils.benchmark.Timer``.

    Calls are grouped in blocks of at least ``min_block`` seconds (10 ms: the
    timer's own overhead is negligible, and on a busy machine a block spans
    several scheduler time slices rather than catching one); blocks are repeated
    at least ``min_repeats`` times and for at least ``min_run_time`` seconds, and
    the median over blocks is reported with its interquartile range. ``threads``
    defaults to PyTorch's current thread count. This is the course's one timer:
    :func:`latency` and the sparse-kernel measurements of notebook 02 use it.
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
    return Timing(t.median().item(), iqr, batch_size, threads, len(times))


def latency(model: nn.Module, batch_size: int = 1, input_shape=(1, 28, 28), threads: int | None = None,
            min_run_time: float = 0.3, min_repeats: int = 15, min_block: float = 0.01) -> Timing:
    """Median time of one forward pass of ``model`` on a batch (eval mode, no gradients); see :func:`time_call`."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    x = torch.randn(batch_size, *input_shape, device=_device(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return time_call(lambda: model(x), threads=threads, min_run_time=min_run_time,
                             min_repeats=min_repeats, min_block=min_block, batch_size=batch_size)
    finally:
        model.train(was_training)


def _benchmark():
    """``torch.utils.benchmark``, imported without its warning about a missing CUDA toolkit."""
    import logging

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    return benchmark


def summary(model: nn.Module, data, name: str | None = None, batch_sizes: Sequence[int] = (1, 256),
            threads: int | None = None, min_run_time: float = 0.3) -> dict:
    """One row describing ``model``: test accuracy and errors, size, MACs, latency.

    This is the *final report* of a model, so it reads the test split; use
    :func:`course_utils.train.evaluate` on ``data.val`` for every decision.
    """
    split = data.test
    input_shape = tuple(split.x.shape[1:])
    result = evaluate(model, split)
    size = state_dict_size(model)
    row = {
        "model": name or model.__class__.__name__,
        "test_acc": result.accuracy,
        "test_errors": round((1.0 - result.accuracy) * len(split.y)),
        "params": count_parameters(model),
        "nonzero_params": count_nonzero(model),
        "macs": macs(model, input_shape),
        "size_bytes": size.raw,
        "size_compressed_bytes": size.compressed,
    }
    for b in batch_sizes:
        t = latency(model, b, input_shape, threads, min_run_time)
        row[f"latency_ms_b{b}"] = t.median * 1e3
        threads_used = t.threads
    row["threads"] = threads_used if batch_sizes else None
    return row


# --------------------------------------------------------------------------- tables

_FORMATS = {
    "test_acc": lambda v: f"{100 * v:.2f}%",
    "val_acc": lambda v: f"{100 * v:.2f}%",
    "params": lambda v: f"{v:,}",
    "nonzero_params": lambda v: f"{v:,}",
    "macs": lambda v: f"{v:,}",
    "size_bytes": lambda v: f"{v / 1024:,.1f} KiB",
    "size_compressed_bytes": lambda v: f"{v / 1024:,.1f} KiB",
}


def _fmt(key: str, value) -> str:
    if key in _FORMATS and isinstance(value, (int, float)):
        return _FORMATS[key](value)
    if key.startswith("latency_ms") and isinstance(value, float):
        return f"{value:.3f} ms"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Table:
    """A small table that prints as text and renders as HTML in a notebook."""

    def __init__(self, header: list[str], rows: list[list[str]]):
        self.header, self.rows = header, rows

    def __str__(self) -> str:
        widths = [max(len(str(c)) for c in col) for col in zip(self.header, *self.rows)]
        line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
        return "\n".join([line(self.header), line(["-" * w for w in widths])] + [line(r) for r in self.rows])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> Table:
    """Rows (dicts, e.g. from :func:`summary` or a pruning log) as a formatted table."""
    if not rows:
        raise ValueError("no rows to show")
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    return Table(list(columns), [[_fmt(c, r.get(c, "")) for c in columns] for r in rows])


_LOWER_IS_BETTER = ("params", "nonzero_params", "macs", "size_bytes", "size_compressed_bytes")


def compare(before: dict, after: dict, names=("original", "compressed")) -> Table:
    """Two summary rows side by side with their ratio: how many times smaller or faster, or the accuracy change."""
    rows = []
    for key in before:
        if key in ("model", "threads") or key not in after:
            continue
        b, a = before[key], after[key]
        if key == "test_acc":
            ratio = f"{100 * (a - b):+.2f} points"
        elif key == "test_errors":
            ratio = f"{a - b:+d}"
        elif (key in _LOWER_IS_BETTER or key.startswith("latency")) and a:
            ratio = f"{b / a:.2f}× smaller" if not key.startswith("latency") else f"{b / a:.2f}× faster"
        else:
            ratio = ""
        rows.append([key, _fmt(key, b), _fmt(key, a), ratio])
    threads = before.get("threads")
    header = ["metric", before.get("model", names[0]), after.get("model", names[1]),
              "ratio" + (f" (latency: {threads} threads)" if threads else "")]
    return Table(header, rows)
