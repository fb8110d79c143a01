"""What a compressed model costs: parameters, zeros, MACs, bytes on disk, and one row that has it all.

:func:`summary` measures a model (test accuracy, parameters, nonzeros, MACs,
file size, latency) and returns one row, a dict; every comparison of the course
is a list of such rows shown with :func:`table` or :func:`compare`.
:func:`seed_comparison` says whether a difference between two methods, each
run with several seeds, is larger than the seed-to-seed spread: the one rule
the course uses before it words a comparison.

Masked models (``torch.nn.utils.prune``) are measured by their *effective*
weights (``weight_orig * weight_mask``, :mod:`course_utils.masks`), so a
pruned-but-masked model reports its zeros, and its file size is that of the
plain model it stands for. Sparse weights (:mod:`course_utils.sparse`) count
their stored values. Latency is :mod:`course_utils.latency`.
"""

from __future__ import annotations

import html
import io
import zlib
from typing import Mapping, NamedTuple, Sequence

import torch
from torch import nn

from .masks import effective_state_dict, effective_weight
from .models import prunable_layers
from .train import device_of, evaluate

__all__ = [
    "Size",
    "Table",
    "compare",
    "count_nonzero",
    "count_parameters",
    "layer_sparsity",
    "macs",
    "seed_comparison",
    "sparsity",
    "state_dict_size",
    "summaries",
    "summary",
    "table",
]


def _subclass(t) -> bool:
    """A tensor subclass such as torchao's int8 weights (not a plain tensor or parameter)."""
    return isinstance(t, torch.Tensor) and type(t) not in (torch.Tensor, nn.Parameter) and not t.is_quantized


def _quantized(module: nn.Module) -> bool:
    """A quantised layer: ``torch.ao``'s (its weight packed, read through ``module.weight()``) or torchao's
    (its weight a tensor subclass)."""
    weight = getattr(module, "weight", None)
    return (callable(weight) and not isinstance(weight, (nn.Module, torch.Tensor))) or _subclass(weight)


def _stored(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The learnable numbers a module holds itself: its parameters, weights kept as sparse buffers, and the
    packed weight and bias of a quantised layer."""
    if _quantized(module) and callable(module.weight):
        bias = module.bias() if callable(getattr(module, "bias", None)) else None
        return [("weight", module.weight())] + ([("bias", bias)] if bias is not None else [])
    items = list(module.named_parameters(recurse=False))
    items += [(n, b) for n, b in module.named_buffers(recurse=False)  # sparse weights, int8 weights of a graph
              if b.layout != torch.strided or b.dtype in (torch.int8, torch.uint8)]
    return items


def _values(t: torch.Tensor) -> torch.Tensor:
    """The numbers a tensor stores, as a plain tensor: the nonzero values of a sparse tensor, the integers of a
    quantised one (int8 weights of ``torch.ao`` or ``torchao``), all entries of a dense one."""
    if t.layout == torch.sparse_csr:
        return t.values()
    if t.layout == torch.sparse_coo:
        return t.coalesce().values()
    if t.is_quantized:
        return t.int_repr()
    if _subclass(t) and hasattr(t, "dequantize"):  # a torchao tensor subclass
        return t.dequantize()
    return t


def count_parameters(model: nn.Module) -> int:
    """All learnable numbers stored in the model: a masked weight counts once, zeros included; a sparse
    weight counts the values it stores."""
    return sum(_values(t).numel() for m in model.modules() for _, t in _stored(m))


def count_nonzero(model: nn.Module) -> int:
    """Learnable numbers that are not exactly zero (after masks)."""
    total = 0
    for module in model.modules():
        for name, tensor in _stored(module):
            base = name[: -len("_orig")] if name.endswith("_orig") else name
            plain = tensor.layout == torch.strided and not tensor.is_quantized and not _subclass(tensor)
            value = effective_weight(module, base) if plain and not _quantized(module) else _values(tensor)
            total += int(torch.count_nonzero(value))
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


def _quantized_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of a quantised Linear or Conv2d, from the output it produced (one per input feature,
    or per input channel and kernel position, for every output number)."""
    if hasattr(module, "in_features"):
        return output.numel() * module.in_features
    kernel = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,) * 2
    return output.numel() * module.in_channels // module.groups * kernel[0] * kernel[1]


def macs(model: nn.Module, input_shape=(1, 28, 28)) -> int:
    """Multiply-accumulates of one forward pass for one example, counted by ``torch.utils.flop_counter``.

    Dense kernels do every multiplication, zeros included, so a masked model
    has as many MACs as the dense one; only removing neurons lowers this count.
    The counter does not see the kernels of quantised layers (``torch.ao``'s or
    torchao's int8 Linear and Conv2d): those are counted from the shape of
    their output instead, so an int8 model has the MACs of its float original
    (in 8-bit integers).
    """
    from torch.utils.flop_counter import FlopCounterMode

    counted = []
    hooks = [m.register_forward_hook(lambda module, inputs, output: counted.append(_quantized_macs(module, output)))
             for m in model.modules() if _quantized(m) and (hasattr(m, "in_features") or hasattr(m, "in_channels"))]
    x = torch.zeros(1, *input_shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x.to(device_of(model)))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return counter.get_total_flops() // 2 + sum(counted)  # the counter reports 2 FLOPs per multiply-accumulate


class Size(NamedTuple):
    raw: int  # bytes of torch.save(state_dict)
    compressed: int  # the same bytes after zlib (level 9): zeros and repeats shrink


def state_dict_size(model: nn.Module) -> Size:
    """Bytes of the saved (effective) state_dict, as is and compressed with zlib."""
    buffer = io.BytesIO()
    torch.save(effective_state_dict(model), buffer)
    raw = buffer.getvalue()
    return Size(len(raw), len(zlib.compress(raw, 9)))


def summary(model: nn.Module, data, name: str | None = None, batch_sizes: Sequence[int] = (1, 256),
            threads: int | None = None, min_run_time: float = 0.3) -> dict:
    """One row describing ``model``: test accuracy and errors, size, MACs, latency.

    This is the *final report* of a model, so it reads the test split; use
    :func:`course_utils.train.evaluate` on ``data.val`` for every decision.
    ``batch_sizes=()`` skips the timing. The row also says how many threads
    and which device the latency was measured with.
    """
    from .latency import latency

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
    timing = None
    for b in batch_sizes:
        timing = latency(model, b, input_shape, threads, min_run_time)
        row[f"latency_ms_b{b}"] = timing.median * 1e3
    row["threads"] = timing.threads if timing else None
    row["device"] = timing.device if timing else None
    return row


def summaries(models: Mapping[str, nn.Module], data, batch_sizes: Sequence[int] = (1, 256), rounds: int = 3,
              block_ms: float = 10.0) -> list[dict]:
    """One :func:`summary` row per model (named by its key), for a table that compares them.

    The latencies are measured with :func:`course_utils.latency.latencies`:
    the models in turn, round after round, so that a slow moment of a shared
    machine slows every model alike and the ratios between them stay fair.
    """
    from .latency import latencies

    if not models:
        raise ValueError("no models to summarise")
    rows = [summary(model, data, name, batch_sizes=()) for name, model in models.items()]
    input_shape = tuple(data.test.x.shape[1:])
    timed = {b: latencies(models, b, input_shape, rounds=rounds, block_ms=block_ms) for b in batch_sizes}
    for row in rows:
        where = {k: row.pop(k) for k in ("threads", "device")}   # keep summary's column order: latencies first
        for b, by_name in timed.items():
            row[f"latency_ms_b{b}"] = by_name[row["model"]].median * 1e3
            where = {"threads": by_name[row["model"]].threads, "device": by_name[row["model"]].device}
        row.update(where)
    return rows


def seed_comparison(a: Sequence[float], b: Sequence[float], names: tuple[str, str] = ("a", "b")) -> dict:
    """Is the difference between two methods larger than the spread between seeds?

    ``a`` and ``b`` are one result per seed (test errors, say) of two methods.
    The difference is ``mean(a) - mean(b)``; the spread is the larger of the
    two ranges (max - min over seeds). Only a difference larger than the
    spread is worded as a difference: ``exceeds_spread`` says whether it is,
    ``verdict`` says it in words. Returns a row for :func:`table`, the same
    columns for every comparison.
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if not a or not b:
        raise ValueError("give at least one result per method")
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    difference = mean_a - mean_b
    spread = max(max(a) - min(a), max(b) - min(b))
    exceeds = abs(difference) > spread
    return {"comparison": f"{names[0]} − {names[1]}", "mean_a": mean_a, "mean_b": mean_b,
            "difference": difference, "seed_spread": spread, "exceeds_spread": exceeds,
            "verdict": "larger than the seed spread" if exceeds else "within the seed spread: no evidence"}


def ranking(results: Mapping[str, Sequence[float]]) -> list[dict]:
    """Methods ordered by their mean result, lowest first (test errors, say), each compared with the best.

    ``results`` maps a method to one result per seed. Each row has ``method``,
    ``per_seed``, ``mean``, ``spread`` (its own max - min), ``minus_best`` and
    ``tied_with_best``: whether its difference from the best is within the seed
    spread, by :func:`seed_comparison` (the best is tied with itself). Rows for
    :func:`table`.
    """
    if not results:
        raise ValueError("give at least one method with its results")
    means = {name: sum(map(float, v)) / len(v) if len(v) else float("nan") for name, v in results.items()}
    order = sorted(results, key=means.get)
    best = order[0]
    rows = []
    for name in order:
        verdict = seed_comparison(results[name], results[best], (name, best))
        rows.append({"method": name, "per_seed": list(results[name]), "mean": means[name],
                     "spread": max(results[name]) - min(results[name]), "minus_best": verdict["difference"],
                     "tied_with_best": name == best or not verdict["exceeds_spread"]})
    return rows


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (x, y) that no other point beats on both axes (lower is better on each), in order of
    increasing x: the Pareto front. A point equal to another on both axes stays on the front with it."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], points[i][1]))


# --------------------------------------------------------------------------- tables

_FORMATS = {
    "test_acc": lambda v: f"{100 * v:.2f}%",
    "val_acc": lambda v: f"{100 * v:.2f}%",
    "params": lambda v: f"{v:,}",
    "nonzero_params": lambda v: f"{v:,}",
    "macs": lambda v: f"{v:,}",
    "test_errors": lambda v: f"{v:,}",
    "size_bytes": lambda v: f"{v / 1024:,.1f} KiB",
    "size_compressed_bytes": lambda v: f"{v / 1024:,.1f} KiB",
}


def _fmt(key: str, value) -> str:
    if value is None:
        return "–"
    if key in ("mean_a", "mean_b", "difference", "seed_spread") and isinstance(value, (int, float)):
        return f"{value:+.1f}" if key == "difference" else f"{value:.1f}"
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
        if key in ("model", "threads", "device") or key not in after:
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
