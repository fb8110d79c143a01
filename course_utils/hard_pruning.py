"""Hard pruning: how much to remove from each layer, and the loops that remove it.

The surgery itself (deleting rows, columns and channels) is
:mod:`course_utils.surgery`; the scores that say which neurons go are
:mod:`course_utils.importance`. This module decides and loops:

* :func:`prune_neurons` removes the lowest-scored fraction of each layer;
* :func:`sensitivity_scan` and :func:`choose_plan` pick those fractions from
  measurements on the validation split (Li et al. 2017);
* :func:`iterative_prune` is the article's loop (remove, fine-tune, evaluate on
  the validation split, restore if accuracy dropped), built on the shared
  :func:`course_utils.pruning.evaluate_and_restore`;
* :func:`group_l1` is the article's L1 penalty applied per neuron (a group
  lasso), to pass to ``fit(..., penalty=group_l1(), penalty_weight=λ)``.

``amount`` is always a fraction to remove, ``target`` the fraction to keep.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

from . import pruning, train, validate
from .importance import check_criterion, neuron_importance
from .surgery import follow, hidden_layers, remove_inplace

__all__ = ["choose_plan", "group_l1", "iterative_prune", "prune_neurons", "sensitivity_scan"]


def _count(fraction: float, width: int) -> int:
    return int(math.floor(fraction * width + 0.5))


def _plan(model: nn.Module, amounts) -> dict[str, int]:
    """``amounts`` (one fraction, or layer -> fraction) as layer -> number of neurons to remove, all checked."""
    if isinstance(amounts, Mapping):
        if not amounts:
            raise ValueError("amounts is empty: give a fraction, or a dict such as {'fc1': 0.5}")
        fractions = dict(amounts)
    else:
        fractions = {name: amounts for name in hidden_layers(model)}
    plan = {}
    for layer, fraction in fractions.items():
        fraction = validate.fraction(fraction, f"the fraction of neurons to remove from {layer!r}")
        width = follow(model, layer).width
        k = _count(fraction, width)
        if k >= width:
            raise ValueError(f"removing {fraction:.0%} of {layer!r} would remove every one of its {width} neurons: "
                             "use a smaller fraction")
        plan[layer] = k
    return plan


def prune_neurons(model: nn.Module, amounts, criterion: str = "l1", data=None, *, seed: int = 0,
                  examples: int = 1000) -> nn.Module:
    """A smaller copy of ``model`` without the lowest-scored neurons of each layer.

    ``amounts`` is one fraction to remove from every hidden layer (``0.5``) or
    a dict of fractions per layer (``{"fc1": 0.6, "fc2": 0.2}``); each layer
    loses ``round(fraction × neurons)`` neurons, ranked by
    :func:`course_utils.importance.neuron_importance` on the original model (so
    one layer's removal does not change another's ranking). The original model
    is not changed.
    """
    check_criterion(criterion)
    plan = _plan(model, amounts)
    drops = {}
    for i, (layer, k) in enumerate(plan.items()):
        if k == 0:
            continue
        scores = neuron_importance(model, layer, criterion, data, examples=examples, seed=seed + i)
        drops[layer] = torch.argsort(scores, stable=True)[:k]
    out = copy.deepcopy(model)
    for layer, drop in drops.items():
        remove_inplace(out, layer, drop)
    return out


# --------------------------------------------------------------------------- scans and plans


def sensitivity_scan(model: nn.Module, data, fractions: Sequence[float], criterion: str = "l1",
                     layers: Sequence[str] | None = None, seed: int = 0) -> dict[str, list[float]]:
    """Validation accuracy after removing each fraction of one layer at a time (no fine-tuning).

    Returns ``{layer: [accuracy for each fraction]}``, measured with
    :func:`course_utils.pruning.sweep`. Only ``data.val`` is read.
    """
    check_criterion(criterion)
    layers = list(layers) if layers is not None else hidden_layers(model)
    for layer in layers:
        for f in fractions:
            _plan(model, {layer: f})  # every fraction checked before any work
    scan = {}
    for layer in layers:
        rows = pruning.sweep(model, data, fractions,
                             lambda m, f, layer=layer: prune_neurons(m, {layer: f}, criterion, data, seed=seed))
        scan[layer] = [row["val_acc"] for row in rows]
    return scan


def choose_plan(scan: Mapping[str, Sequence[float]], fractions: Sequence[float], counts: Mapping[str, int],
                remove_at_least: float, reference: float) -> dict[str, float]:
    """Per-layer fractions that remove at least ``remove_at_least`` of all neurons and cost the least accuracy.

    Each layer's cost is read from ``scan`` (:func:`sensitivity_scan`): the drop
    from ``reference`` (the unpruned validation accuracy) at that fraction. The
    costs of the layers are added (an approximation: layers are scanned one at
    a time), and every combination of the scanned fractions is tried. Ties go
    to the plan that removes more.
    """
    if not 0.0 < remove_at_least < 1.0:
        raise ValueError(f"remove_at_least must be in (0, 1), got {remove_at_least}")
    fractions = list(fractions)
    layers = list(scan)
    if not layers:
        raise ValueError("the scan is empty")
    for layer in layers:
        if layer not in counts:
            raise ValueError(f"no neuron count for {layer!r} in counts")
        if len(scan[layer]) != len(fractions):
            raise ValueError(f"the scan of {layer!r} has {len(scan[layer])} values for {len(fractions)} fractions")
    if len(fractions) ** len(layers) > 1_000_000:
        raise ValueError("too many combinations: scan fewer fractions or fewer layers")
    total = sum(counts[layer] for layer in layers)
    best, best_key = None, None
    for combo in itertools.product(range(len(fractions)), repeat=len(layers)):
        removed = sum(_count(fractions[i], counts[layer]) for i, layer in zip(combo, layers))
        if removed < remove_at_least * total:
            continue
        cost = sum(max(0.0, reference - scan[layer][i]) for i, layer in zip(combo, layers))
        key = (round(cost, 9), -removed)
        if best_key is None or key < best_key:
            best, best_key = {layer: fractions[i] for i, layer in zip(combo, layers)}, key
    if best is None:
        raise ValueError(f"no combination of the scanned fractions removes {remove_at_least:.0%} of the neurons: "
                         "scan larger fractions")
    return best


# --------------------------------------------------------------------------- the article's loop


@dataclass(frozen=True)
class _Candidate:
    layer: str
    drop: tuple
    criterion: str

    def __str__(self) -> str:
        return f"{self.layer}: remove {len(self.drop)} ({self.criterion})"


def iterative_prune(model: nn.Module, data, target: float = 0.5, *, step: float = 0.1, criterion: str = "l1",
                    tolerance: float = 0.01, finetune_epochs: int = 1, finetune_examples: int | None = 10_000,
                    lr: float = 1e-3, batch_size: int = 128, layers: Sequence[str] | None = None,
                    max_tries: int | None = None, max_rounds: int = 100, seed: int = 0) -> tuple[nn.Module, list]:
    """The article's remove / evaluate / restore loop, on whole neurons, with decisions on the validation split.

    ``target`` is the fraction of the hidden neurons (of ``layers``, default
    all hidden layers) that should remain. Each round offers one candidate per
    layer, least-pruned layer first: its ``step`` (a fraction of the layer's
    original size) lowest-scored neurons by ``criterion`` (``"random"``: a random
    set). The candidate is removed, the model fine-tuned for ``finetune_epochs``
    on the first ``finetune_examples`` training images, and kept if its
    validation accuracy is within ``tolerance`` of the original model's;
    otherwise it is restored and the next layer's candidate is tried. The
    defaults are notebook 01's recipe. The loop itself is
    :func:`course_utils.pruning.evaluate_and_restore`; the test split is never
    read. Returns a new, pruned model (``model`` is not changed) and the log,
    one row per trial.
    """
    check_criterion(criterion)
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 < target < 1.0:
        raise ValueError(f"target is the fraction of hidden neurons to keep, in (0, 1), got {target!r}")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0.0 < step < 1.0:
        raise ValueError(f"step is the fraction of a layer removed per round, in (0, 1), got {step!r}")
    validate.nonnegative_int(finetune_epochs, "finetune_epochs")
    validate.splits_with_val(data)
    layers = list(layers) if layers is not None else hidden_layers(model)
    if not layers:
        raise ValueError("layers is empty: name at least one hidden layer")
    original = {layer: follow(model, layer).width for layer in layers}
    total = sum(original.values())
    per_round = {layer: max(1, _count(step, n)) for layer, n in original.items()}
    draws = itertools.count()

    def remaining(m):
        return {layer: follow(m, layer).width for layer in layers}

    def size(m):
        return sum(remaining(m).values()) / total

    def candidates(m):
        now = remaining(m)
        needed = sum(now.values()) - math.floor(target * total + 1e-9)
        for layer in sorted(layers, key=lambda name: -now[name] / original[name]):  # stable: ties keep order
            k = min(per_round[layer], max(1, needed), now[layer] - 1)
            if k <= 0:
                continue
            scores = neuron_importance(m, layer, criterion, data, seed=seed + next(draws))
            yield _Candidate(layer, tuple(torch.argsort(scores, stable=True)[:k].tolist()), criterion)

    def apply(m, candidate):
        return remove_inplace(m, candidate.layer, candidate.drop)

    tune = None
    if finetune_epochs > 0:
        def tune(m):
            train.finetune(m, data, finetune_epochs, examples=finetune_examples, lr=lr, batch_size=batch_size,
                           seed=seed)

    return pruning.evaluate_and_restore(
        model, data, candidates=candidates, apply=apply, size=size, target=target, tolerance=tolerance,
        finetune=tune, max_tries=max_tries or len(layers), max_rounds=max_rounds, describe=str)


# --------------------------------------------------------------------------- group L1 penalty


def group_l1(layers: Iterable[str] | None = None):
    """The article's L1 penalty applied per neuron: Σ over neurons of the L2 norm of (incoming weights, bias).

    Returns ``penalty(model) -> tensor`` for ``fit(..., penalty=group_l1(), penalty_weight=λ)``.
    Like L1 on single weights, this group lasso (Yuan & Lin 2006; Wen et al.
    2016) drives whole groups, here whole neurons, towards zero, so that
    removing them afterwards costs little. ``layers`` defaults to the model's
    hidden layers (the output layer is never penalised).
    """
    chosen = list(layers) if layers is not None else None
    if chosen is not None and not chosen:
        raise ValueError("layers is empty: name at least one layer, or pass None for all hidden layers")

    def penalty(model: nn.Module) -> torch.Tensor:
        names = chosen if chosen is not None else hidden_layers(model)
        total = None
        for name in names:
            try:
                m = model.get_submodule(name)
            except AttributeError as exc:
                raise ValueError(f"group_l1: no layer named {name!r} in the model") from exc
            if type(m) not in (nn.Linear, nn.Conv2d):
                raise ValueError(f"group_l1: {name!r} is a {type(m).__name__}, not a Linear or Conv2d layer")
            sq = m.weight.pow(2).flatten(1).sum(1)
            if m.bias is not None:
                sq = sq + m.bias.pow(2)
            value = sq.clamp_min(1e-12).sqrt().sum()  # clamp: the gradient of sqrt at exactly 0 is infinite
            total = value if total is None else total + value
        return total

    return penalty
