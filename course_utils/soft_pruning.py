"""Soft pruning: zero weights with masks, keep them in the model, and retrain around them.

The masks themselves are :mod:`course_utils.masks` (on top of PyTorch's
``torch.nn.utils.prune``); this module decides when and how much to mask:

* schedules: :func:`han_sparsity` (Han et al. 2015: prune, retrain, repeat) and
  :func:`cubic_sparsity` (Zhu & Gupta 2017); :func:`iterative_prune` runs
  either, or one-shot pruning, through ``cu.train.fit``;
* :func:`sweep`: one-shot magnitude pruning to growing sparsities, measured on
  the validation split (with :func:`course_utils.pruning.sweep`);
* :func:`restore_loop`: the article's loop (zero a group, check on the
  validation split, restore if accuracy drops) through the shared
  :func:`course_utils.pruning.evaluate_and_restore`, with masking as the change;
* :func:`soft_filter_prune`: soft filter pruning (He et al. 2018) against
  frozen (hard) filter masks.

``amount`` is a fraction of weights to zero; ``target`` the fraction of
weights that should remain at the end.
"""

from __future__ import annotations

import copy
import math
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

from . import pruning, train, validate
from .importance import weight_norms
from .masks import (apply_masks, check_scope, checked_amounts, enforce_masks, is_masked, magnitude_prune,
                    refresh_masks, select_layers)
from .metrics import layer_sparsity, sparsity
from .models import prunable_layers

__all__ = [
    "SCHEDULES",
    "cubic_sparsity",
    "han_sparsity",
    "iterative_prune",
    "prune_filters",
    "restore_loop",
    "soft_filter_prune",
    "sweep",
]

SCHEDULES = ("han", "agp", "oneshot")


# --------------------------------------------------------------------------- schedules


def cubic_sparsity(step: int, total_steps: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's (2017) gradual schedule: s_t = s_f + (s_i − s_f)(1 − t/n)³, with t clamped to [0, n].

    Prunes fast at first, when there are many redundant weights, and slowly
    near the end.
    """
    validate.positive_int(total_steps, "total_steps")
    final, initial = validate.fraction(final, "final"), validate.fraction(initial, "initial")
    t = min(max(step, 0), total_steps)
    return final + (initial - final) * (1.0 - t / total_steps) ** 3


def han_sparsity(step: int, steps: int, final: float, initial: float = 0.0) -> float:
    """Sparsity after ``step`` of ``steps`` prune-and-retrain iterations (Han et al. 2015).

    Each iteration keeps the same fraction of the weights still alive (the
    density falls geometrically from 1 − initial to 1 − final), so early
    iterations remove many weights and late ones few.
    """
    validate.positive_int(steps, "steps")
    final, initial = validate.fraction(final, "final"), validate.fraction(initial, "initial")
    t = min(max(step, 0), steps)
    if initial >= 1.0 or t == 0:
        return initial
    density = (1.0 - initial) * ((1.0 - final) / (1.0 - initial)) ** (t / steps)
    return 1.0 - density


def _per_layer(model: nn.Module, target, scope: str, layers) -> tuple[dict[str, float] | float, dict | float]:
    """The final amounts and the current (initial) sparsities, per layer or global."""
    chosen, amounts = checked_amounts(model, target, scope, layers)
    refresh_masks(model)
    if isinstance(amounts, dict) or scope == "layer":
        now = layer_sparsity(model)
        final = amounts if isinstance(amounts, dict) else {n: amounts for n in chosen}
        return final, {n: min(now[n], final[n]) for n in final}
    zeros = sum(m.weight.numel() - int(torch.count_nonzero(m.weight)) for m in chosen.values())
    total = sum(m.weight.numel() for m in chosen.values())
    return amounts, min(zeros / total, amounts)


def _at(fn, t: int, n: int, final, initial):
    if isinstance(final, dict):
        return {k: fn(t, n, final[k], initial[k]) for k in final}
    return fn(t, n, final, initial)



def iterative_prune(model: nn.Module, data, target=0.08, *, steps: int = 3, finetune_epochs: int = 2,
                    schedule: str = "han", scope: str = "global", layers: Iterable[str] | str | None = None,
                    frequency: int | None = None, ramp: float = 0.75, lr: float = 1e-3,
                    lr_schedule: str | None = "cosine", seed: int = 0, **fit_kwargs) -> tuple[nn.Module, list[dict]]:
    """Prune a copy of ``model`` until only ``target`` of its weights remain, training it for ``steps × finetune_epochs`` epochs.

    ``target`` is the fraction of weights left (``0.08``: 8% left, 92% zeros),
    or ``{layer: fraction left}`` with scope ``"layer"``. The schedule says
    when the masks grow:

    * ``"han"`` (Han et al. 2015): ``steps`` iterations of *prune, then retrain
      for* ``finetune_epochs``; the sparsity after iteration k follows
      :func:`han_sparsity`;
    * ``"agp"`` (Zhu & Gupta 2017): one run of training during which the masks
      are updated every ``frequency`` mini-batches (default: ten times per
      epoch) following :func:`cubic_sparsity`, reaching the target after the
      first ``ramp`` fraction of the batches; the rest of training recovers;
    * ``"oneshot"``: prune to the target at once, then train for the same
      number of epochs.

    Training goes through ``cu.train.fit`` (Adam at ``lr``, ``lr_schedule`` is
    fit's ``schedule``: ``"cosine"`` decays the rate to zero within each call;
    other keywords are passed on) with :func:`course_utils.masks.enforce_masks`
    after every step. The defaults are notebook 02's recipe (one global
    threshold, 3 × (prune + 2 epochs), Adam at 0.001 with a cosine decay).
    Returns the pruned copy (``model`` is not changed) and a log: one row per
    pruning (``event="prune"``) and per epoch (``event="train"``), each with
    the epoch count so far, the sparsity and the validation accuracy.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: use one of {SCHEDULES}")
    validate.positive_int(steps, "steps")
    validate.positive_int(finetune_epochs, "finetune_epochs")
    validate.fraction(ramp, "ramp")
    if frequency is not None:
        validate.positive_int(frequency, "frequency")
    for key in ("after_step", "after_epoch", "epochs"):
        if key in fit_kwargs:
            raise ValueError(f"iterative_prune sets {key} itself; do not pass it")
    if isinstance(target, Mapping):
        amount = {n: 1.0 - validate.fraction(t, f"target[{n!r}] (the fraction of weights to keep)")
                  for n, t in target.items()}
    else:
        amount = 1.0 - validate.fraction(target, "target (the fraction of weights to keep)")
    validate.splits_with_val(data)
    model = copy.deepcopy(refresh_masks(model))
    final, initial = _per_layer(model, amount, scope, layers)
    names = list(final) if isinstance(final, dict) else list(select_layers(model, layers))

    def prune_to(amount):
        if isinstance(amount, dict):
            magnitude_prune(model, amount, "layer")
        else:
            magnitude_prune(model, amount, scope, names)

    log: list[dict] = []

    def record(event: str, step: int, epoch: int):
        """One log row; the validation accuracy of a "train" row comes from fit's history afterwards."""
        refresh_masks(model)
        acc = None if event == "train" else train.evaluate(model, data.val).accuracy
        log.append({"schedule": schedule, "event": event, "step": step, "epoch": epoch,
                    "sparsity": sparsity(model), "val_acc": acc})

    def run(epochs: int, step: int, done: int, after_step, seed_: int):
        start = len(log)
        history = train.fit(model, data, epochs, after_step=after_step, seed=seed_,
                            after_epoch=lambda m, e: record("train", step, done + e), **fit_kwargs)
        for row, h in zip(log[start:], history):
            row["val_acc"], row["seconds"] = h.get("val_acc"), h.get("seconds")

    record("start", 0, 0)
    fit_kwargs = {"lr": lr, "schedule": lr_schedule, **fit_kwargs}
    epochs_total = steps * finetune_epochs
    if schedule in ("han", "oneshot"):
        rounds = steps if schedule == "han" else 1
        for k in range(1, rounds + 1):
            prune_to(_at(han_sparsity, k, rounds, final, initial))
            done = (k - 1) * finetune_epochs
            record("prune", k, done)
            run(finetune_epochs if schedule == "han" else epochs_total, k, done, enforce_masks, seed + k)
    else:  # agp: the masks are updated during one run of training
        batch_size = fit_kwargs.get("batch_size", 128)
        per_epoch = math.ceil(len(data.train.y) / batch_size)
        every = frequency or max(1, per_epoch // 10)
        updates = max(1, int(ramp * epochs_total * per_epoch) // every)
        state = {"batches": 0, "update": 0}

        def after_step(m):
            enforce_masks(m)
            state["batches"] += 1
            if state["batches"] % every == 0 and state["update"] < updates:
                state["update"] += 1
                prune_to(_at(cubic_sparsity, state["update"], updates, final, initial))

        run(epochs_total, 1, 0, after_step, seed + 1)
        if state["update"] < updates:  # too few batches to finish the ramp (ramp=1 and rounding)
            prune_to(final)
            record("prune", 1, epochs_total)
    refresh_masks(model)
    return model, log


def sweep(model: nn.Module, data, sparsities: Sequence[float], scope: str = "layer", finetune_epochs: int = 0,
          train_size: int | None = None, lr: float = 3e-4, seed: int = 0, **fit_kwargs) -> list[dict]:
    """Magnitude-prune copies of ``model`` to each sparsity and measure them on the validation split.

    Each row has the ``scope``, the ``amount`` (sparsity), ``val_acc`` right after
    pruning and, when ``finetune_epochs > 0``, ``val_acc_finetuned`` after that
    many epochs of ``cu.train.fit`` on the first ``train_size`` training images,
    with the masks kept. ``model`` is not modified.
    """
    check_scope(scope)
    validate.nonnegative_int(finetune_epochs, "finetune_epochs")
    select_layers(model)

    def tune(m):
        train.finetune(m, data, finetune_epochs, examples=train_size, lr=lr, schedule=None, seed=seed,
                       after_step=enforce_masks, **fit_kwargs)

    rows = pruning.sweep(model, data, sparsities, lambda m, s: magnitude_prune(m, s, scope),
                         finetune=tune if finetune_epochs else None)
    return [{"scope": scope, **row} for row in rows]


# --------------------------------------------------------------------------- the article's loop


def restore_loop(model: nn.Module, data, *, target: float, group: float = 0.5, tolerance: float = 0.005,
                 finetune_epochs: int = 1, train_size: int | None = None, penalty: str | None = "l2",
                 penalty_weight: float = 1e-5, lr: float = 1e-4, max_rounds: int = 100,
                 layers: Iterable[str] | str | None = None, **fit_kwargs) -> tuple[nn.Module, list[dict]]:
    """The article's loop with masks: zero a group, fine-tune, check on validation, keep or restore.

    This is :func:`course_utils.pruning.evaluate_and_restore` (the same loop as
    notebook 01's hard pruning) with an ``apply`` that *masks*: a candidate is
    ``(layer, sparsity)``, zeroing another ``group`` fraction of the layer's
    remaining weights (smallest magnitudes first). Layers with the most weights
    left are tried first; a change is kept when the validation accuracy stays
    within ``tolerance`` of the starting model's. Fine-tuning uses the article's
    soft-pruning formula, an L2 penalty (``penalty="l2"``, weight
    ``penalty_weight``), on the first ``train_size`` training images. Stops at
    ``target`` (the fraction of weights left) or when no layer can lose a group.

    Returns ``(model, log)``; the model passed in is not modified.
    """
    target = validate.fraction(target, "target (the fraction of weights to keep)")
    group = validate.fraction(group, "group")
    if group == 0:
        raise ValueError("group must be > 0: it is the fraction of a layer's remaining weights zeroed per try")
    validate.positive_int(finetune_epochs, "finetune_epochs")
    chosen = list(select_layers(model, layers))

    def candidates(m):
        refresh_masks(m)
        alive = {n: int(torch.count_nonzero(prunable_layers(m)[n].weight)) for n in chosen}
        for name in sorted(chosen, key=lambda n: -alive[n]):
            if alive[name] == 0:
                continue
            n = prunable_layers(m)[name].weight.numel()
            new = 1.0 - (alive[name] * (1.0 - group)) / n
            if round(new * n) > n - alive[name]:  # the group must zero at least one weight
                yield name, new

    def apply(m, candidate):
        name, amount = candidate
        return magnitude_prune(m, amount, "layer", [name])

    def finetune(m):
        train.finetune(m, data, finetune_epochs, examples=train_size, lr=lr, schedule=None, penalty=penalty,
                       penalty_weight=penalty_weight, after_step=enforce_masks, **fit_kwargs)
        refresh_masks(m)

    return pruning.evaluate_and_restore(
        model, data, candidates=candidates, apply=apply, size=lambda m: 1.0 - sparsity(refresh_masks(m)),
        target=target, tolerance=tolerance, finetune=finetune, max_tries=len(chosen), max_rounds=max_rounds,
        describe=lambda c: f"{c[0]} to {c[1]:.1%} zeros")


# --------------------------------------------------------------------------- soft filter pruning


def prune_filters(model: nn.Module, amount: float, layers: Iterable[str] | str | None = None,
                  hard: bool = False) -> dict[str, list[int]]:
    """Zero the ``round(amount × filters)`` filters of smallest L2 norm in each layer (in place).

    ``layers`` defaults to every Conv2d layer. With ``hard=True`` the zeroed
    filters are masked (they get no gradient and stay zero); otherwise they are
    only set to zero and stay trainable, as in soft filter pruning. Returns the
    indices of the zeroed filters of each layer.
    """
    amount = validate.fraction(amount)
    if layers is None:
        chosen = {n: m for n, m in select_layers(model).items() if isinstance(m, nn.Conv2d)}
        if not chosen:
            raise ValueError("the model has no Conv2d layer: name the layers to prune with layers=[...]")
    else:
        chosen = select_layers(model, layers)
    zeroed: dict[str, list[int]] = {}
    masks = {}
    for name, module in chosen.items():
        norms = weight_norms(module, 2)
        k = round(amount * norms.numel())
        idx = torch.topk(norms, k, largest=False).indices if k else torch.empty(0, dtype=torch.long)
        zeroed[name] = sorted(int(i) for i in idx)
        mask = torch.ones_like(module.weight)
        mask[idx] = 0
        masks[name] = mask
    if hard:
        apply_masks(model, masks)
    else:  # soft: set the filters to zero but leave them trainable
        with torch.no_grad():
            for name, module in chosen.items():
                (module.weight_orig if is_masked(module) else module.weight).mul_(masks[name])
                refresh_masks(module)
    return zeroed


def soft_filter_prune(model: nn.Module, data, amount: float, epochs: int, *, hard: bool = False,
                      layers: Iterable[str] | str | None = None, lr: float = 1e-3, seed: int = 0,
                      **fit_kwargs) -> tuple[nn.Module, list[dict]]:
    """Soft filter pruning (He et al. 2018), or its hard counterpart, on a copy of ``model``.

    Before training and at the end of every epoch, :func:`prune_filters` zeroes
    the ``round(amount × filters)`` filters of smallest L2 norm in each chosen
    layer (default: every Conv2d layer). Training goes through ``cu.train.fit``.

    * soft (``hard=False``): the zeroed filters stay trainable, so the gradient
      can grow them back, and a filter zeroed at one epoch may be spared at the
      next (it *came back*). After the last epoch the zeroed filters are masked.
    * hard (``hard=True``): the zeroed filters are masked at once; a masked
      filter gets no gradient, stays zero and is chosen again every time.

    Only the filters' weights are zeroed, as in the paper: a zeroed filter's
    bias leaves a constant channel, which would be folded into the next
    layer's bias when the filter is removed. Returns ``(pruned model, log)``: one
    row per pruning with the epoch, the zeroed filters of each layer, the
    filters that came back since the previous pruning, every filter's L2 norm
    just before the pruning (how far the zeroed ones grew back), and the
    validation accuracy right after the pruning.
    """
    amount = validate.fraction(amount)
    validate.positive_int(epochs, "epochs")
    for key in ("after_step", "after_epoch"):
        if key in fit_kwargs:
            raise ValueError(f"soft_filter_prune sets {key} itself; do not pass it")
    model = copy.deepcopy(refresh_masks(model))
    log: list[dict] = []

    def step(m, epoch: int):
        refresh_masks(m)
        norms = {n: weight_norms(mod, 2) for n, mod in prunable_layers(m).items()}
        zeroed = prune_filters(m, amount, layers, hard=hard or epoch == epochs)
        before = log[-1]["zeroed"] if log else {}
        log.append({"epoch": epoch, "mode": "hard" if hard else "soft", "zeroed": zeroed,
                    "came_back": {n: sorted(set(before.get(n, [])) - set(z)) for n, z in zeroed.items()},
                    "norms": {n: [round(v, 6) for v in norms[n].tolist()] for n in zeroed},
                    "val_acc": None})

    step(model, 0)
    log[0]["val_acc"] = train.evaluate(model, data.val).accuracy
    history = train.fit(model, data, epochs, lr=lr, after_epoch=step, after_step=enforce_masks if hard else None,
                        seed=seed, **fit_kwargs)
    for row, h in zip(log[1:], history):
        row["val_acc"] = h.get("val_acc")
    refresh_masks(model)
    return model, log
