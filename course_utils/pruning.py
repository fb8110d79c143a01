"""The two loops that hard pruning (remove neurons) and soft pruning (zero weights) share.

* :func:`sweep` prunes copies of a model by growing amounts and measures each
  on the validation split, right away and (optionally) after a short
  fine-tune: a sensitivity scan of one layer, or of the whole model.
* :func:`evaluate_and_restore` is the article's prune loop done properly:
  change the model, fine-tune, check on the *validation* split, keep the change
  only if accuracy stays within a tolerance, otherwise restore it and try the
  next candidate.

Both take the pruning itself as a function, so the same loop serves
:mod:`course_utils.hard_pruning` (an ``apply`` that removes neurons) and
:mod:`course_utils.soft_pruning` (one that masks weights). Neither reads the
test split.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable, Sequence

from torch import nn

from . import validate
from .masks import refresh_masks
from .train import evaluate

__all__ = ["evaluate_and_restore", "sweep"]


def sweep(model: nn.Module, data, amounts: Sequence[float], prune: Callable[[nn.Module, float], nn.Module], *,
          finetune: Callable[[nn.Module], Any] | None = None) -> list[dict]:
    """Prune a copy of ``model`` by each of ``amounts`` and measure it on the validation split.

    ``prune(model_copy, amount)`` returns the pruned model (it may change the
    copy in place or return a new one). Each row has ``amount``, ``val_acc``
    right after pruning and, when ``finetune(pruned)`` is given (a short
    retraining, in place), ``val_acc_finetuned``. ``model`` is not changed.
    """
    validate.splits_with_val(data)
    amounts = [validate.fraction(a) for a in amounts]
    if not amounts:
        raise ValueError("amounts is empty: give at least one fraction in [0, 1]")
    base = copy.deepcopy(refresh_masks(model))
    rows = []
    for amount in amounts:
        pruned = prune(copy.deepcopy(base), amount)
        row = {"amount": amount, "val_acc": evaluate(pruned, data.val).accuracy}
        if finetune is not None:
            finetune(pruned)
            row["val_acc_finetuned"] = evaluate(refresh_masks(pruned), data.val).accuracy
        rows.append(row)
    return rows


def evaluate_and_restore(
    model: nn.Module,
    data,
    *,
    candidates: Callable[[nn.Module], Iterable[Any]],
    apply: Callable[[nn.Module, Any], nn.Module],
    size: Callable[[nn.Module], float],
    target: float,
    tolerance: float = 0.005,
    finetune: Callable[[nn.Module], Any] | None = None,
    max_tries: int = 3,
    max_rounds: int = 100,
    describe: Callable[[Any], str] = str,
) -> tuple[nn.Module, list[dict]]:
    """The article's prune loop, with the decision made on the validation split.

    Each round asks ``candidates(model)`` for changes to try, in order of
    preference. For each one it builds a trial model ``apply(deepcopy(model),
    candidate)``, fine-tunes it with ``finetune(trial)`` (if given) and
    evaluates it on ``data.val``. The trial is *kept* when its validation
    accuracy is at least the starting model's minus ``tolerance``; otherwise the
    change is *restored* (the trial is dropped) and the next candidate is tried,
    up to ``max_tries`` per round. ``size(model)`` is the fraction of the
    original size that remains; the loop stops when it is at most ``target``,
    when a round keeps nothing, or after ``max_rounds``.

    Returns the final model (``model`` itself is never changed) and a log with
    one row per trial.
    """
    target = validate.fraction(target, "target (the fraction of the original size to keep)")
    if not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ValueError(f"tolerance must be a number >= 0 (a fraction: 0.005 is half a point), got {tolerance!r}")
    validate.splits_with_val(data)
    model = copy.deepcopy(refresh_masks(model))
    reference = evaluate(model, data.val).accuracy
    log: list[dict] = []
    stop = "max_rounds reached"
    for round_ in range(1, max_rounds + 1):
        current = size(model)
        if current <= target + 1e-9:
            stop = "target reached"
            break
        kept = False
        for tries, candidate in enumerate(candidates(model), start=1):
            if tries > max_tries:
                break
            trial = apply(copy.deepcopy(refresh_masks(model)), candidate)
            if finetune is not None:
                finetune(trial)
            acc = evaluate(trial, data.val).accuracy
            kept = acc >= reference - tolerance
            log.append({
                "round": round_, "try": tries, "candidate": describe(candidate),
                "size_before": current, "size_after": size(trial),
                "val_acc": acc, "reference_val_acc": reference,
                "decision": "kept" if kept else "restored",
            })
            if kept:
                model = trial
                break
        if not kept:
            stop = "nothing more can be removed within the tolerance"
            break
    if log:
        log[-1]["stop"] = stop
    else:
        log.append({"round": 0, "stop": stop, "size_before": size(model), "size_after": size(model)})
    return model, log
