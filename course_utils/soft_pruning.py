"""Soft pruning: zero weights with masks, keep them in the model.

Everything here sits on PyTorch's own :mod:`torch.nn.utils.prune`: a masked
layer holds ``weight_orig`` (a parameter), ``weight_mask`` (a buffer of 0s and
1s) and a forward pre-hook that computes ``weight = weight_orig * weight_mask``
before every forward pass. The model keeps its shape; the zeros are real
(``cu.metrics.sparsity`` counts them, the compressed file shrinks), but a dense
kernel still multiplies by every one of them.

* Masks: :func:`magnitude_masks` (compute), :func:`apply_masks` (install),
  :func:`magnitude_prune` (both), :func:`current_masks`, :func:`remove_masks`
  (make the zeros permanent, drop the hooks), :func:`enforce_masks` (the
  ``after_step`` hook of :func:`course_utils.train.fit`), and
  :func:`sparsity` / :func:`layer_sparsity` (from :mod:`course_utils.metrics`).
* Schedules: :func:`han_sparsity` (Han et al. 2015, prune then retrain, repeated)
  and :func:`cubic_sparsity` (Zhu & Gupta 2017); :func:`iterative_prune` runs
  either (or one-shot pruning) through ``cu.train.fit``.
* :func:`restore_loop`: the article's loop (zero a group, check on the
  validation split, restore if accuracy drops) through the shared
  :func:`course_utils.train.evaluate_and_restore`, with masking as the change.
* :func:`soft_filter_prune`: soft filter pruning (He et al. 2018) against
  frozen (hard) filter masks.
* What zeros buy: :func:`to_sparse` (CSR weights), :func:`storage`,
  :func:`matmul_latency` (dense against CSR matrix multiply).
* The widget's function: :func:`preview` and :func:`explore`.
"""

from __future__ import annotations

import copy
import math
import warnings
from types import SimpleNamespace
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from . import train
from .metrics import layer_sparsity, sparsity, state_dict_size, time_call
from .models import prunable_layers

__all__ = [
    "SCHEDULES",
    "SCOPES",
    "SparseLinear",
    "apply_masks",
    "cubic_sparsity",
    "current_masks",
    "enforce_masks",
    "explore",
    "filter_norms",
    "han_sparsity",
    "is_masked",
    "iterative_prune",
    "layer_sparsity",
    "magnitude_masks",
    "magnitude_prune",
    "mask_zeros",
    "matmul_latency",
    "preview",
    "prune_filters",
    "refresh",
    "remove_masks",
    "restore_loop",
    "soft_filter_prune",
    "sparsity",
    "storage",
    "sweep",
    "to_sparse",
]

SCOPES = ("layer", "global")
SCHEDULES = ("han", "agp", "oneshot")


# --------------------------------------------------------------------------- checks of the input


def _with_train_subset(data, n: int | None):
    """``data`` with only the first ``n`` training images (the validation split unchanged); ``data`` if n is None."""
    if n is None:
        return data
    return SimpleNamespace(train=data.train.subset(n), val=getattr(data, "val", None))


def _check_fraction(value, what: str = "amount") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a fraction in [0, 1], got {value!r}")
    return float(value)


def _check_positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}: use 'layer' (the same fraction in every layer) "
                         f"or 'global' (one threshold for all layers)")
    return scope


def _select_layers(model: nn.Module, layers: Iterable[str] | str | None = None) -> dict[str, nn.Module]:
    """The named Linear/Conv2d layers to prune: all of them, or the ones named in ``layers``."""
    available = prunable_layers(model)
    if not available:
        raise ValueError("the model has no Linear or Conv2d layer to prune")
    if layers is None:
        return available
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("layers is empty: name at least one layer, or pass None for all of them")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}: this model's prunable layers are {list(available)}")
    return {n: available[n] for n in names}


def _amounts(model: nn.Module, amount, scope: str, layers) -> tuple[dict[str, nn.Module], float | dict[str, float]]:
    """Validate ``amount`` (a fraction, or a ``{layer: fraction}`` dict for scope ``"layer"``)."""
    _check_scope(scope)
    if isinstance(amount, Mapping):
        if scope != "layer":
            raise ValueError("a per-layer amount {layer: fraction} needs scope='layer'")
        if layers is not None:
            raise ValueError("give either layers or a per-layer amount dict, not both")
        chosen = _select_layers(model, list(amount))
        return chosen, {n: _check_fraction(a, f"amount[{n!r}]") for n, a in amount.items()}
    return _select_layers(model, layers), _check_fraction(amount)


# --------------------------------------------------------------------------- masks


def is_masked(module: nn.Module, name: str = "weight") -> bool:
    """Whether ``module.<name>`` is reparametrised by ``torch.nn.utils.prune`` (``<name>_orig`` and ``<name>_mask``)."""
    return f"{name}_orig" in module._parameters and hasattr(module, f"{name}_mask")


def _effective(module: nn.Module) -> torch.Tensor:
    """The weight the layer computes with: ``weight_orig * weight_mask`` for a masked layer."""
    if is_masked(module):
        return (module.weight_orig * module.weight_mask).detach()
    return module.weight.detach()


def _scores(module: nn.Module) -> torch.Tensor:
    """|w| of the effective weight; weights already masked score -1, so they are always pruned first."""
    score = _effective(module).abs()
    if is_masked(module):
        score = torch.where(module.weight_mask == 0, torch.full_like(score, -1.0), score)
    return score


def _mask_smallest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A mask (same shape and dtype as ``scores``) with 0 at the ``k`` smallest entries, 1 elsewhere.

    The same ``torch.topk`` call as ``torch.nn.utils.prune.l1_unstructured``, so
    ties are broken the same way.
    """
    mask = torch.ones_like(scores)
    if k > 0:
        idx = torch.topk(scores.reshape(-1), k=k, largest=False).indices
        mask.view(-1)[idx] = 0
    return mask


def magnitude_masks(model: nn.Module, amount, scope: str = "layer",
                    layers: Iterable[str] | str | None = None) -> dict[str, torch.Tensor]:
    """Masks that zero the smallest-magnitude weights, without touching the model.

    ``amount`` is the fraction of weights to zero (the sparsity the layers will
    have, counting weights already masked, which are pruned first).

    * ``scope="layer"``: every layer loses ``round(amount * n)`` of its ``n``
      weights (``amount`` may also be a ``{layer: fraction}`` dict, as in Han et
      al.'s per-layer rates);
    * ``scope="global"``: one threshold for all the chosen layers together, so
      layers with many small weights lose more.

    Returns ``{layer name: mask}`` with 1 for kept and 0 for pruned weights.
    """
    chosen, amounts = _amounts(model, amount, scope, layers)
    if scope == "layer":
        return {name: _mask_smallest(_scores(m), round((amounts[name] if isinstance(amounts, dict) else amounts)
                                                       * m.weight.numel()))
                for name, m in chosen.items()}
    scores = [_scores(m) for m in chosen.values()]
    flat = torch.cat([s.reshape(-1) for s in scores])
    mask = _mask_smallest(flat, round(amounts * flat.numel()))
    out, start = {}, 0
    for (name, m), s in zip(chosen.items(), scores):
        out[name] = mask[start:start + s.numel()].view_as(s).clone()
        start += s.numel()
    return out


@torch.no_grad()
def _refresh(module: nn.Module) -> None:
    """Recompute ``module.weight`` from ``weight_orig * weight_mask`` now (the hook does it at every forward).

    Done without gradients, so the attribute is a plain tensor: metrics read
    the current values and ``copy.deepcopy`` works (it refuses tensors that are
    part of an autograd graph). :func:`course_utils.train.refresh_masks` does
    the same for a whole model.
    """
    with torch.no_grad():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                setattr(module, hook._tensor_name, hook.apply_mask(module))


def refresh(model: nn.Module) -> nn.Module:
    """Recompute every masked layer's ``weight`` attribute (after training, before measuring or copying)."""
    for module in model.modules():
        _refresh(module)
    return model


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Install ``{layer name: mask}`` with ``torch.nn.utils.prune`` (in place) and return the model.

    A layer seen for the first time gets ``prune.custom_from_mask`` (``weight``
    becomes ``weight_orig`` × ``weight_mask`` through a forward pre-hook); a
    layer that already has a mask gets its mask *replaced*. Masked entries of
    ``weight_orig`` are set to zero as well, so no stored value can come back:
    a masked weight is zero everywhere.
    """
    available = prunable_layers(model)
    if not available:
        raise ValueError("the model has no Linear or Conv2d layer to prune")
    checked = {}
    for name, mask in masks.items():
        if name not in available:
            raise ValueError(f"unknown layer {name!r}: this model's prunable layers are {list(available)}")
        module = available[name]
        mask = torch.as_tensor(mask)
        if tuple(mask.shape) != tuple(module.weight.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, the weight has "
                             f"{tuple(module.weight.shape)}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"mask for {name!r} must contain only 0 and 1")
        checked[name] = mask
    for name, mask in checked.items():
        module = available[name]
        if is_masked(module):
            module.weight_mask.copy_(mask.to(module.weight_mask))
        else:
            prune.custom_from_mask(module, "weight", mask.to(module.weight).detach().clone())
        with torch.no_grad():
            module.weight_orig.mul_(module.weight_mask)
        _refresh(module)
    return model


def magnitude_prune(model: nn.Module, amount, scope: str = "layer",
                    layers: Iterable[str] | str | None = None) -> nn.Module:
    """Zero the smallest-magnitude weights with masks (in place); see :func:`magnitude_masks`."""
    return apply_masks(model, magnitude_masks(model, amount, scope, layers))


def current_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{layer name: copy of its mask}`` for every masked layer."""
    return {name: m.weight_mask.detach().clone() for name, m in prunable_layers(model).items() if is_masked(m)}


def remove_masks(model: nn.Module) -> nn.Module:
    """Make the zeros permanent and drop the masks and hooks (in place): a plain model with the same outputs.

    Do this before exporting the model anywhere that does not know about
    ``torch.nn.utils.prune``. (``cu.checkpoints.save`` already stores the
    effective weights, so a masked model can be saved as it is.)
    """
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    return model


def mask_zeros(model: nn.Module, layers: Iterable[str] | str | None = None) -> nn.Module:
    """Mask the weights that are exactly zero now (in place), so that training keeps them at zero.

    For a pruned model loaded from a checkpoint (which stores plain weights
    with zeros): it gets its masks back.
    """
    chosen = _select_layers(model, layers)
    refresh(model)
    return apply_masks(model, {n: (m.weight.detach() != 0).to(m.weight.dtype) for n, m in chosen.items()})


@torch.no_grad()
def enforce_masks(model: nn.Module) -> None:
    """The ``after_step`` hook for ``cu.train.fit``: keep masked entries of ``weight_orig`` at exactly zero.

    The effective weight is zero anyway (the forward pre-hook multiplies by
    the mask and the gradient of a masked entry is zero); this also stops an
    optimiser carrying momentum from before the mask, or weight decay, from
    moving the hidden ``weight_orig`` value.
    """
    for module in model.modules():
        if is_masked(module):
            module.weight_orig.mul_(module.weight_mask)


# --------------------------------------------------------------------------- schedules


def cubic_sparsity(step: int, total_steps: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's (2017) gradual schedule: s_t = s_f + (s_i − s_f)(1 − t/n)³, with t clamped to [0, n].

    Prunes fast at first, when there are many redundant weights, and slowly
    near the end.
    """
    _check_positive_int(total_steps, "total_steps")
    final, initial = _check_fraction(final, "final"), _check_fraction(initial, "initial")
    t = min(max(step, 0), total_steps)
    return final + (initial - final) * (1.0 - t / total_steps) ** 3


def han_sparsity(step: int, steps: int, final: float, initial: float = 0.0) -> float:
    """Sparsity after ``step`` of ``steps`` prune-and-retrain iterations (Han et al. 2015).

    Each iteration keeps the same fraction of the weights still alive (the
    density falls geometrically from 1 − initial to 1 − final), so early
    iterations remove many weights and late ones few.
    """
    _check_positive_int(steps, "steps")
    final, initial = _check_fraction(final, "final"), _check_fraction(initial, "initial")
    t = min(max(step, 0), steps)
    if initial >= 1.0 or t == 0:
        return initial
    density = (1.0 - initial) * ((1.0 - final) / (1.0 - initial)) ** (t / steps)
    return 1.0 - density


def _per_layer(model: nn.Module, target, scope: str, layers) -> tuple[dict[str, float] | float, dict | float]:
    """The final amounts and the current (initial) sparsities, per layer or global."""
    chosen, amounts = _amounts(model, target, scope, layers)
    refresh(model)
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


def iterative_prune(model: nn.Module, data, target, steps: int = 4, finetune_epochs: int = 1, *,
                    schedule: str = "han", scope: str = "layer", layers: Iterable[str] | str | None = None,
                    frequency: int | None = None, ramp: float = 0.75, lr: float = 3e-4,
                    lr_schedule: str | None = None, seed: int = 0, **fit_kwargs) -> list[dict]:
    """Prune ``model`` (in place) to ``target`` sparsity while training it for ``steps × finetune_epochs`` epochs.

    * ``"han"`` (Han et al. 2015): ``steps`` iterations of *prune, then retrain
      for* ``finetune_epochs``; the sparsity after iteration k follows
      :func:`han_sparsity`;
    * ``"agp"`` (Zhu & Gupta 2017): one run of training during which the masks
      are updated every ``frequency`` mini-batches (default: ten times per
      epoch) following :func:`cubic_sparsity`, reaching the target after the
      first ``ramp`` fraction of the batches; the rest of training recovers;
    * ``"oneshot"``: prune to the target at once, then train for the same
      number of epochs.

    ``target`` is a fraction, or ``{layer: fraction}`` with scope ``"layer"``.
    Training goes through ``cu.train.fit`` (Adam at ``lr`` by default,
    ``lr_schedule`` is fit's ``schedule``: ``"cosine"`` decays the rate to zero
    within each call; other keywords are passed on) with :func:`enforce_masks`
    after every step.
    Returns a log: one row per pruning (``event="prune"``) and per epoch
    (``event="train"``), each with the epoch count so far, the sparsity and the
    validation accuracy.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: use one of {SCHEDULES}")
    _check_positive_int(steps, "steps")
    _check_positive_int(finetune_epochs, "finetune_epochs")
    _check_fraction(ramp, "ramp")
    if frequency is not None:
        _check_positive_int(frequency, "frequency")
    for key in ("after_step", "after_epoch", "epochs"):
        if key in fit_kwargs:
            raise ValueError(f"iterative_prune sets {key} itself; do not pass it")
    final, initial = _per_layer(model, target, scope, layers)
    if getattr(data, "val", None) is None or len(data.val.y) == 0:
        raise ValueError("data needs a validation split (data.val) to log accuracy on")
    names = list(final) if isinstance(final, dict) else list(_select_layers(model, layers))

    def prune_to(amount):
        if isinstance(amount, dict):
            magnitude_prune(model, amount, "layer")
        else:
            magnitude_prune(model, amount, scope, names)

    log: list[dict] = []

    def record(event: str, step: int, epoch: int):
        """One log row; the validation accuracy of a "train" row comes from fit's history afterwards."""
        refresh(model)
        acc = None if event == "train" else train.evaluate(model, data.val).accuracy
        log.append({"schedule": schedule, "event": event, "step": step, "epoch": epoch,
                    "sparsity": sparsity(model), "val_acc": acc})

    def run(epochs: int, step: int, done: int, after_step, seed_: int):
        start = len(log)
        history = train.fit(model, data, epochs, after_step=after_step, seed=seed_,
                            after_epoch=lambda m, e: record("train", step, done + e), **fit_kwargs)
        for row, h in zip(log[start:], history):
            row["val_acc"] = h.get("val_acc")

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
    refresh(model)
    return log


# --------------------------------------------------------------------------- the article's loop


def restore_loop(model: nn.Module, data, *, target: float, group: float = 0.5, tolerance: float = 0.005,
                 finetune_epochs: int = 1, train_size: int | None = None, penalty: str | None = "l2",
                 penalty_weight: float = 1e-5, lr: float = 1e-4, max_rounds: int = 100,
                 layers: Iterable[str] | str | None = None, **fit_kwargs) -> tuple[nn.Module, list[dict]]:
    """The article's loop with masks: zero a group, fine-tune, check on validation, keep or restore.

    This is :func:`course_utils.train.evaluate_and_restore` (the same loop as
    notebook 01's hard pruning) with an ``apply`` that *masks*: a candidate is
    ``(layer, sparsity)``, zeroing another ``group`` fraction of the layer's
    remaining weights (smallest magnitudes first). Layers with the most weights
    left are tried first; a change is kept when the validation accuracy stays
    within ``tolerance`` of the starting model's. Fine-tuning uses the article's
    soft-pruning formula, an L2 penalty (``penalty="l2"``, weight
    ``penalty_weight``), on the first ``train_size`` training images. Stops at
    ``target`` (fraction of weights left) or when no layer can lose a group.

    Returns ``(model, log)``; the model passed in is not modified.
    """
    target = _check_fraction(target, "target (fraction of weights left)")
    group = _check_fraction(group, "group")
    if group == 0:
        raise ValueError("group must be > 0: it is the fraction of a layer's remaining weights zeroed per try")
    _check_positive_int(finetune_epochs, "finetune_epochs")
    if train_size is not None:
        _check_positive_int(train_size, "train_size")
    chosen = list(_select_layers(model, layers))
    model = copy.deepcopy(refresh(model))
    tune_data = _with_train_subset(data, train_size)

    def candidates(m):
        refresh(m)
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
        train.fit(m, tune_data, finetune_epochs, lr=lr, penalty=penalty, penalty_weight=penalty_weight,
                  after_step=enforce_masks, validate=False, **fit_kwargs)
        refresh(m)

    return train.evaluate_and_restore(
        model, data, candidates=candidates, apply=apply, size=lambda m: 1.0 - sparsity(refresh(m)),
        target=target, tolerance=tolerance, finetune=finetune, max_tries=len(chosen), max_rounds=max_rounds,
        describe=lambda c: f"{c[0]} to {c[1]:.1%} zeros")


# --------------------------------------------------------------------------- soft filter pruning


def filter_norms(module: nn.Module) -> torch.Tensor:
    """L2 norm of each output filter (row of a Linear layer) of the effective weight."""
    w = _effective(module)
    return w.reshape(w.shape[0], -1).norm(dim=1)


def prune_filters(model: nn.Module, amount: float, layers: Iterable[str] | str | None = None,
                  hard: bool = False) -> dict[str, list[int]]:
    """Zero the ``round(amount × filters)`` filters of smallest L2 norm in each layer (in place).

    ``layers`` defaults to every Conv2d layer. With ``hard=True`` the zeroed
    filters are masked (they get no gradient and stay zero); otherwise they are
    only set to zero and stay trainable, as in soft filter pruning. Returns the
    indices of the zeroed filters of each layer.
    """
    amount = _check_fraction(amount)
    if layers is None:
        chosen = {n: m for n, m in _select_layers(model).items() if isinstance(m, nn.Conv2d)}
        if not chosen:
            raise ValueError("the model has no Conv2d layer: name the layers to prune with layers=[...]")
    else:
        chosen = _select_layers(model, layers)
    zeroed: dict[str, list[int]] = {}
    masks = {}
    for name, module in chosen.items():
        norms = filter_norms(module)
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
                _refresh(module)
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
    amount = _check_fraction(amount)
    _check_positive_int(epochs, "epochs")
    for key in ("after_step", "after_epoch"):
        if key in fit_kwargs:
            raise ValueError(f"soft_filter_prune sets {key} itself; do not pass it")
    model = copy.deepcopy(refresh(model))
    log: list[dict] = []

    def step(m, epoch: int):
        refresh(m)
        norms = {n: filter_norms(mod) for n, mod in prunable_layers(m).items()}
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
    refresh(model)
    return model, log


# --------------------------------------------------------------------------- what the zeros buy


class SparseLinear(nn.Module):
    """A Linear layer whose weight is stored as a sparse CSR matrix (32-bit indices) and multiplied with
    ``torch.sparse.mm``: only the nonzero weights are stored and multiplied."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach()
        with warnings.catch_warnings():  # PyTorch says once per process that sparse CSR is a beta feature
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = w.to_sparse_csr()
            weight = torch.sparse_csr_tensor(csr.crow_indices().to(torch.int32), csr.col_indices().to(torch.int32),
                                             csr.values(), tuple(w.shape), check_invariants=True)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", weight)
        self.bias = nn.Parameter(linear.bias.detach().clone()) if linear.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        out = torch.sparse.mm(self.weight, x2.t()).t()
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        nnz = self.weight.values().numel()
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"nonzero={nnz} ({nnz / (self.in_features * self.out_features):.1%})")


def to_sparse(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose Linear layers store and multiply only their nonzero weights (CSR).

    Masks are made permanent first. Conv2d layers stay dense (PyTorch has no
    sparse convolution on the CPU). The copy is for measuring storage and
    inference time; train the masked model, not this one.
    """
    if not prunable_layers(model):
        raise ValueError("the model has no Linear or Conv2d layer")
    out = remove_masks(copy.deepcopy(refresh(model)))
    for name, module in list(out.named_modules()):
        if isinstance(module, nn.Linear):
            parent_name, _, child = name.rpartition(".")
            parent = out.get_submodule(parent_name) if parent_name else out
            setattr(parent, child, SparseLinear(module))
    return out.eval()


def storage(model: nn.Module) -> dict[str, int]:
    """Bytes on disk of the model saved dense and saved with CSR Linear weights, each raw and zlib-compressed.

    Measured with ``cu.metrics.state_dict_size``. Zeros compress well, so the
    compressed dense file already shrinks with sparsity; CSR stores 4 bytes of
    value and 4 of column index per nonzero weight, so it wins raw only below
    50% density.
    """
    dense = state_dict_size(refresh(model))
    sparse = state_dict_size(to_sparse(model))
    return {"dense_bytes": dense.raw, "dense_compressed_bytes": dense.compressed,
            "csr_bytes": sparse.raw, "csr_compressed_bytes": sparse.compressed}


def matmul_latency(sparsities: Sequence[float], out_features: int = 300, in_features: int = 784,
                   batch_size: int = 256, threads: int | None = None, min_run_time: float = 0.2,
                   seed: int = 0) -> list[dict]:
    """Median time of ``y = x Wᵀ`` with W dense against W in CSR, for a W of each sparsity.

    W is random (``out_features × in_features``, the shape of LeNet-300-100's fc1
    by default) with its smallest-magnitude entries zeroed; x has ``batch_size``
    rows. Each product is timed with :func:`course_utils.metrics.time_call`
    (at least ``min_run_time`` seconds) on ``threads`` threads (default: PyTorch's
    current count); rows report the medians in milliseconds and the speed-up of
    CSR over dense (above 1: sparse is faster).
    """
    values = [_check_fraction(s, "sparsity") for s in sparsities]
    if not values:
        raise ValueError("sparsities is empty: give at least one fraction in [0, 1]")
    for what, v in (("out_features", out_features), ("in_features", in_features), ("batch_size", batch_size)):
        _check_positive_int(v, what)
    threads = threads or torch.get_num_threads()
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out_features, in_features, generator=g)
    x = torch.randn(batch_size, in_features, generator=g)
    rows = []
    for s in values:
        layer = nn.Linear(in_features, out_features, bias=False)
        with torch.no_grad():
            layer.weight.copy_(w * _mask_smallest(w.abs(), round(s * w.numel())))
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


def sweep(model: nn.Module, data, sparsities: Sequence[float], scope: str = "layer", finetune_epochs: int = 0,
          train_size: int | None = None, lr: float = 3e-4, seed: int = 0, **fit_kwargs) -> list[dict]:
    """Magnitude-prune copies of ``model`` to each sparsity and measure them on the validation split.

    Each row has the scope, the sparsity, ``val_acc`` right after pruning and,
    when ``finetune_epochs > 0``, ``val_acc_finetuned`` after that many epochs
    of ``cu.train.fit`` on the first ``train_size`` training images, with the
    masks kept. ``model`` is not modified.
    """
    values = [_check_fraction(s, "sparsity") for s in sparsities]
    if not values:
        raise ValueError("sparsities is empty: give at least one fraction in [0, 1]")
    _check_scope(scope)
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise ValueError(f"finetune_epochs must be an integer >= 0, got {finetune_epochs!r}")
    if train_size is not None:
        _check_positive_int(train_size, "train_size")
    _select_layers(model)
    tune_data = _with_train_subset(data, train_size)
    base = copy.deepcopy(refresh(model))
    rows = []
    for s in values:
        pruned = magnitude_prune(copy.deepcopy(base), s, scope)
        row = {"scope": scope, "sparsity": sparsity(pruned), "val_acc": train.evaluate(pruned, data.val).accuracy}
        if finetune_epochs:
            train.fit(pruned, tune_data, finetune_epochs, lr=lr, seed=seed, after_step=enforce_masks,
                      validate=False, **fit_kwargs)
            row["val_acc_finetuned"] = train.evaluate(refresh(pruned), data.val).accuracy
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- the widget's function


def preview(model: nn.Module, data, amount: float, scope: str = "layer",
            layers: Iterable[str] | str | None = None) -> dict:
    """Prune a copy of ``model`` by magnitude (no retraining) and measure it on the validation split.

    Returns ``{"model", "sparsity", "val_acc", "dense_val_acc", "remaining"}``
    where ``remaining`` is the fraction of weights left in each layer.
    """
    _amounts(model, amount, scope, layers)  # validate before copying
    dense = copy.deepcopy(refresh(model))
    pruned = magnitude_prune(copy.deepcopy(dense), amount, scope, layers)
    return {
        "model": pruned,
        "sparsity": sparsity(pruned),
        "val_acc": train.evaluate(pruned, data.val).accuracy,
        "dense_val_acc": train.evaluate(dense, data.val).accuracy,
        "remaining": {n: 1.0 - s for n, s in layer_sparsity(pruned).items()},
    }


def explore(model: nn.Module, data, amount: float = 0.9, scope: str = "layer"):
    """The widget's picture: validation accuracy, weight histogram and weights left per layer after pruning.

    Returns a matplotlib ``Figure`` (not registered with pyplot, so a notebook
    shows it once, where it is returned or displayed).
    """
    from matplotlib.figure import Figure

    from . import plots

    result = preview(model, data, amount, scope)
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    ax_hist, ax_bars = fig.subplots(1, 2, width_ratios=(2, 1))
    dense_w = torch.cat([m.weight.detach().flatten() for m in prunable_layers(refresh(model)).values()])
    kept = torch.cat([m.weight.detach().flatten() for m in prunable_layers(result["model"]).values()])
    plots.weight_histogram({"dense": dense_w, "kept after pruning": kept}, bins=120, ax=ax_hist, drop_zeros=True,
                           log=True, title="weights (zeros left out, log scale)")
    plots.bars(result["remaining"], ylabel="weights left (%)", ax=ax_bars, percent=True,
               title="weights left per layer")
    fig.suptitle(f"{scope} pruning to {result['sparsity']:.1%} zeros: validation accuracy "
                 f"{result['val_acc']:.2%} (dense {result['dense_val_acc']:.2%}), no retraining")
    return fig
