"""Compression routes under a byte budget: notebook 05's experiment, one route at a time.

A *route* turns the trained dense LeNet-300-100 (or nothing, for the routes that start from random weights) into a
model whose stored file fits a byte budget, using only the course's tested pieces: :func:`course_utils.train.fit`,
:func:`course_utils.hard_pruning.prune_neurons`, :func:`course_utils.masks.magnitude_prune`,
:func:`course_utils.distill.distill`, :func:`course_utils.quantization.int8_dynamic` and weight sharing with its
compressed file. Each route is sized to the budget by *measuring* the file it would store (:func:`stored_bytes`),
never by estimating it, and every route gets the same training budget: the routes that start from the dense model
inherit its epochs and add ``finetune_epochs``; the routes that start from scratch train for the sum.
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from . import distill, hard_pruning, masks, metrics, models, quantization, train, weight_sharing

__all__ = ["ROUTES", "Setup", "add_seeds", "as_deployed", "compare", "describe", "largest", "mlp_shape", "size_for",
           "starts_from", "stored_bytes", "train_route", "uses_teacher"]

ROUTES = {
    "dense, trained as long again": "the dense model trained for the routes' extra epochs (a control; no budget)",
    "small, from scratch": "a small MLP trained on the labels from random weights",
    "hard pruning": "neurons removed from the dense model (ranked by L2 norm, notebook 01's criterion) down to the "
                    "widths that fit, then fine-tuned",
    "soft pruning, sparse file": "the dense model's smallest weights masked (one global threshold), fine-tuned, "
                                 "stored as nonzero values at relative indices",
    "distillation": "the small MLP trained on the teacher's soft targets",
    "hard pruning + distillation": "hard pruning fine-tuned on the teacher's soft targets",
    "small, from scratch, int8": "a wider MLP trained from scratch, then int8 (dynamic quantisation)",
    "distillation + int8": "the wider MLP trained on the teacher's soft targets, then int8",
    "hard pruning + int8": "hard pruning to the widths that fit in int8, fine-tuned, then int8",
    "prune + distil + int8": "the article's combination: hard pruning, fine-tuned on the teacher's soft targets, "
                             "then int8",
    "deep compression": "soft pruning, then weight sharing (k-means codebooks, fine-tuned), Huffman-coded file",
}

_FROM_SCRATCH = {"small, from scratch", "distillation", "small, from scratch, int8", "distillation + int8"}
_INT8 = {"small, from scratch, int8", "distillation + int8", "hard pruning + int8", "prune + distil + int8"}
_DISTIL = {"distillation", "distillation + int8", "hard pruning + distillation", "prune + distil + int8"}
_MASKED = {"soft pruning, sparse file", "deep compression"}


def _check_route(route: str) -> str:
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}: choose one of {', '.join(map(repr, ROUTES))}")
    return route


def starts_from(route: str) -> str:
    """Where ``route`` starts: ``"random weights"`` or ``"the dense model"``."""
    return "random weights" if _check_route(route) in _FROM_SCRATCH else "the dense model"


def uses_teacher(route: str) -> bool:
    """Whether ``route`` trains on the teacher's soft targets (and so inherits the teacher's training)."""
    return _check_route(route) in _DISTIL


def _writes_compressed(model: nn.Module) -> bool:
    """Whether ``model`` has weight-shared or masked layers, stored in Deep Compression's file."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return bool(weight_sharing.shared_layers(model)) or any(masks.is_masked(m) for m in layers)


def stored_bytes(model: nn.Module) -> int:
    """The bytes a device stores for ``model``, measured on a file written to a temporary folder.

    A model with weight-shared or masked layers is written with
    :func:`course_utils.quantization.save_compressed` (Deep Compression's file:
    codebooks and Huffman-coded indices, or nonzero float32 values, at
    relative indices); any other model, int8 copies included, as its
    ``torch.save`` state_dict (:func:`course_utils.metrics.state_dict_size`).
    """
    if _writes_compressed(model):
        with tempfile.TemporaryDirectory() as folder:
            return quantization.save_compressed(model, Path(folder) / "model.dc")
    return metrics.state_dict_size(model).raw


def as_deployed(model: nn.Module) -> nn.Module:
    """The model a device runs: a masked or weight-shared model read back from its compressed file (an ordinary
    dense float32 model: the file saves bytes, not multiply-accumulates); any other model unchanged."""
    if not _writes_compressed(model):
        return model
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.dc"
        quantization.save_compressed(model, path)
        return quantization.load_compressed(path)


def describe(route: str, size: int | None, proportional: bool = False) -> str:
    """What ``route`` keeps at its size (:func:`size_for`), in words: an architecture or a share of weights."""
    _check_route(route)
    if size is None:
        return "784-300-100-10, float32"
    if route in _MASKED:
        return f"{size / 10:.1f}% of the weights" + (", shared" if route == "deep compression" else ", float32")
    h1, h2 = mlp_shape(size, proportional)
    return f"784-{h1}-{h2}-10, " + ("int8" if route in _INT8 else "float32")


def largest(low: int, high: int, fits: Callable[[int], bool], what: str = "size") -> int:
    """The largest integer ``x`` in ``[low, high]`` with ``fits(x)``, for a ``fits`` that is true up to some ``x``
    and false beyond (binary search). Raises ``ValueError`` when not even ``low`` fits."""
    if low > high:
        raise ValueError(f"empty range [{low}, {high}]")
    if not fits(low):
        raise ValueError(f"the budget is too small: even the smallest {what} ({low}) does not fit")
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def mlp_shape(fc1: int, proportional: bool = False, dense_widths: Sequence[int] = (300, 100)) -> tuple[int, int]:
    """The hidden widths of a small MLP given fc1's width: fc2 as wide as fc1 (at most the dense fc2's width), or,
    with ``proportional=True``, the same fraction of each dense hidden layer (notebook 01's plan)."""
    if proportional:
        return fc1, max(1, round(fc1 * dense_widths[1] / dense_widths[0]))
    return fc1, min(fc1, dense_widths[1])


@dataclass
class Setup:
    """What every route shares: the data, the dense model, the teacher's logits over the training split, and the
    training budget (``dense_epochs`` inherited + ``finetune_epochs``)."""

    data: object
    dense: nn.Module
    teacher_logits: torch.Tensor | None = None
    dense_epochs: int = 8
    finetune_epochs: int = 2
    temperature: float = 2.0
    alpha: float = 1.0
    bits: int = 5
    centroid_lr: float = 1e-4
    batch_size: int = 512
    proportional: bool = False
    sizes: dict = field(default_factory=dict)

    @property
    def scratch_epochs(self) -> int:
        return self.dense_epochs + self.finetune_epochs


def _pruned_to(setup: Setup, keep_permille: int) -> nn.Module:
    return masks.magnitude_prune(copy.deepcopy(setup.dense), 1 - keep_permille / 1000, scope="global")


def _shared(model: nn.Module, bits: int) -> nn.Module:
    return weight_sharing.share_weights(model, bits)


def _share_within(model: nn.Module, bits: int, budget: int) -> nn.Module:
    """Share ``model``'s weights; if fine-tuning made the file grow past ``budget`` (its indices code less well),
    prune a little more by magnitude first (the share kept scaled by budget / bytes, less 0.1%) until it fits."""
    masks.refresh_masks(model)  # a masked weight computed in training cannot be deep-copied
    kept = 1 - metrics.sparsity(model)
    while True:
        shared = _shared(masks.magnitude_prune(copy.deepcopy(model), 1 - kept, scope="global"), bits)
        size = stored_bytes(shared)
        if size <= budget or kept <= 0.001:
            return shared
        kept = max(0.001, kept * budget / size - 0.001)


def size_for(route: str, setup: Setup, budget: int) -> int:
    """The size parameter of ``route`` at ``budget`` bytes: fc1's width for the routes that end in a small dense
    MLP (fp32 or int8), the permille of weights kept for soft pruning and Deep Compression (whose file is measured
    after weight sharing). Cached in ``setup.sizes``."""
    _check_route(route)
    key = (route, budget, setup.proportional)
    if key in setup.sizes:
        return setup.sizes[key]
    if route in _MASKED:
        def fits(permille):
            model = _pruned_to(setup, permille)
            if route == "deep compression":
                model = _shared(model, setup.bits)
            return stored_bytes(model) <= budget

        size = largest(1, 1000, fits, "share of weights kept (permille)")
    else:
        def fits(width):
            model = models.mlp(hidden=mlp_shape(width, setup.proportional))
            if route in _INT8:
                model = quantization.int8_dynamic(model)
            return stored_bytes(model) <= budget

        size = largest(1, 300, fits, "fc1 width")
    setup.sizes[key] = size
    return size


def _fit(model: nn.Module, setup: Setup, epochs: int, lr: float, seed: int, distil: bool) -> None:
    recipe = dict(lr=lr, batch_size=setup.batch_size, schedule="cosine", seed=seed, validate=False, progress=False,
                  track_accuracy=False)
    if distil:
        distill.distill(model, None, setup.data, epochs, setup.temperature, setup.alpha,
                        teacher_logits=setup.teacher_logits, **recipe)
    else:
        train.fit(model, setup.data, epochs, **recipe)


def train_route(route: str, setup: Setup, budget: int | None, seed: int, lr: float) -> tuple[nn.Module, float]:
    """Build and train ``route`` at ``budget`` bytes with ``seed`` and learning rate ``lr`` (Adam, cosine decay);
    returns the final model (eval mode) and the seconds it took, sizing included."""
    _check_route(route)
    if route in _DISTIL and setup.teacher_logits is None:
        raise ValueError(f"route {route!r} needs the teacher's logits: Setup(teacher_logits=...)")
    if (budget is None) != (route == "dense, trained as long again"):
        raise ValueError("only the control route 'dense, trained as long again' has no budget")
    start = time.perf_counter()
    distil = route in _DISTIL
    if route == "dense, trained as long again":
        model = copy.deepcopy(setup.dense)
        _fit(model, setup, setup.finetune_epochs, lr, seed, False)
    elif route in _MASKED:
        model = _pruned_to(setup, size_for(route, setup, budget))
        if route == "deep compression":  # one epoch of the budget goes to the codebooks
            if setup.finetune_epochs > 1:
                _fit(model, setup, setup.finetune_epochs - 1, lr, seed, False)
            model = _share_within(model, setup.bits, budget)
            weight_sharing.finetune_centroids(model, setup.data, 1, lr=setup.centroid_lr, batch_size=setup.batch_size,
                                              schedule="cosine", seed=seed, validate=False, progress=False,
                                              track_accuracy=False)
        else:
            _fit(model, setup, setup.finetune_epochs, lr, seed, False)
    else:
        h1, h2 = mlp_shape(size_for(route, setup, budget), setup.proportional)
        if route in _FROM_SCRATCH:
            train.set_seed(seed)
            model = models.mlp(hidden=(h1, h2))
            _fit(model, setup, setup.scratch_epochs, lr, seed, distil)
        else:
            dense_h1, dense_h2 = (m.out_features for m in list(models.prunable_layers(setup.dense).values())[:2])
            model = hard_pruning.prune_neurons(setup.dense, {"fc1": 1 - h1 / dense_h1, "fc2": 1 - h2 / dense_h2},
                                               criterion="l2")
            _fit(model, setup, setup.finetune_epochs, lr, seed, distil)
        if route in _INT8:
            model = quantization.int8_dynamic(model.cpu())
    masks.refresh_masks(model)  # a masked weight last computed in training cannot be copied or saved
    return model.eval(), time.perf_counter() - start


def compare(setup: Setup, budgets: dict[str, int | None], routes: Sequence[str], learning_rates: Sequence[float],
            seeds: Sequence[int], log: Callable[[str], None] | None = print, choose_at: str | None = None) -> list[dict]:
    """Every route at every budget: the learning rate chosen on the validation split with ``seeds[0]``, then the
    other seeds at that rate. With ``choose_at`` (a budget's name), each route chooses its rate at that budget only and
    keeps it at the others (fewer runs: one per seed there); by default every budget chooses its own.

    One dict per (budget, route), in the order of ``budgets`` and ``routes``: ``budget``, ``route``, ``budget_bytes``,
    ``size``, ``keeps``, ``lr``, ``val_errors`` (by learning rate tried), ``models``, ``seconds``, ``bytes``,
    ``val_per_seed`` (validation errors, for decisions such as which routes need more seeds) and ``test_errors``
    (one per seed, for the report). The control route runs once, under the budget named None."""
    if choose_at is not None and choose_at not in budgets:
        raise ValueError(f"choose_at={choose_at!r} is not one of the budgets {list(budgets)}")
    data = setup.data
    rows, chosen = {}, {}
    for budget_name in sorted(budgets, key=lambda name: name != choose_at):  # the choosing budget first
        budget = budgets[budget_name]
        for route in routes:
            if (budget is None) != (route == "dense, trained as long again"):
                continue
            rates = [chosen[route]] if route in chosen else learning_rates
            trials = {lr: train_route(route, setup, budget, seeds[0], lr) for lr in rates}
            val_errors = {lr: train.count_errors(model, data.val) for lr, (model, _) in trials.items()}
            lr = min(val_errors, key=val_errors.get)  # ties keep the first candidate
            if budget_name == choose_at:
                chosen[route] = lr
            runs = [trials[lr]] + [train_route(route, setup, budget, seed, lr) for seed in seeds[1:]]
            size = None if budget is None else setup.sizes.get((route, budget, setup.proportional))
            if route in _MASKED:  # Deep Compression may have pruned a little more to fit: report what seed 0 kept
                size = round(1000 * (1 - metrics.sparsity(runs[0][0])))
            row = {"budget": budget_name, "route": route, "budget_bytes": budget, "size": size,
                   "keeps": describe(route, size, setup.proportional),
                   "lr": lr, "val_errors": val_errors, "models": [m for m, _ in runs],
                   "seconds": [s for _, s in runs], "bytes": [stored_bytes(m) for m, _ in runs]}
            row["val_per_seed"] = [val_errors[lr]] + [train.count_errors(m, data.val) for m in row["models"][1:]]
            row["test_errors"] = [train.count_errors(m, data.test) for m in row["models"]]
            rows[budget_name, route] = row
            if log:
                log(f"{budget_name:>9} | {route:<30} lr {lr:g} (validation errors {val_errors}) -> "
                    f"test errors {row['test_errors']}, {max(row['bytes']):,} bytes")
    return [rows[name, route] for name in budgets for route in routes if (name, route) in rows]


def add_seeds(setup: Setup, row: dict, seeds: Sequence[int]) -> dict:
    """Repeat the route of a :func:`compare` row with more ``seeds`` at its chosen learning rate (when two routes are
    too close for three seeds to tell), appending to its lists in place; returns the row."""
    for seed in seeds:
        model, seconds = train_route(row["route"], setup, row["budget_bytes"], seed, row["lr"])
        row["models"].append(model)
        row["seconds"].append(seconds)
        row["bytes"].append(stored_bytes(model))
        row["val_per_seed"].append(train.count_errors(model, setup.data.val))
        row["test_errors"].append(train.count_errors(model, setup.data.test))
    return row
