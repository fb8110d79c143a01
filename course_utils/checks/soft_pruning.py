"""Checks for the exercises of notebook 02 (soft pruning). Each returns a truthy or falsy Verdict, never raises."""

from __future__ import annotations

import math

import torch

from . import report, run_safely

__all__ = ["cubic_schedule", "global_threshold"]


def _weights(seed: int = 0) -> list[torch.Tensor]:
    """Three 'layers' with different scales, so a global threshold differs from every per-layer one."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(30, 40, generator=g) * 0.05, torch.randn(20, 30, generator=g) * 0.2,
            torch.randn(10, 20, generator=g) * 0.6]


def _expected_threshold(weights: list[torch.Tensor], amount: float) -> float:
    magnitudes = torch.cat([w.abs().flatten() for w in weights])
    return magnitudes.kthvalue(round(amount * magnitudes.numel())).values.item()


def _as_float(value):
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _number(fn, args, call: str, hide):
    """Run the learner's ``fn(*args)``; return ``(value, None)`` for one number, else ``(None, hint)``."""
    result, error = run_safely(fn, *args, hide=hide)
    if error:
        return None, f"{call} raised {error}"
    if result is None or result is Ellipsis:
        return None, f"{call} returned nothing yet: replace the ... / None with your code"
    value = _as_float(result)
    if value is None:
        return None, f"return one number (a float or a one-element tensor), got {type(result).__name__}"
    return value, None


def global_threshold(fn):
    """``fn(weights, amount)``: the magnitude t such that zeroing every |w| <= t over all layers together
    zeroes the fraction ``amount`` of all the weights."""
    if not callable(fn):
        return report(False, "define a function global_threshold(weights, amount) and pass it to the check")
    for seed, amount in ((0, 0.5), (1, 0.9), (2, 0.25)):
        weights = _weights(seed)
        value, hint = _number(fn, ([w.clone() for w in weights], amount), "global_threshold",
                              ["course_utils.masks.magnitude_masks", "course_utils.masks.mask_smallest"])
        if hint:
            return report(False, hint)
        expected = _expected_threshold(weights, amount)
        if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
            continue
        per_layer = [_expected_threshold([w], amount) for w in weights]
        if any(math.isclose(value, t, rel_tol=1e-6) for t in per_layer):
            return report(False, "that is the threshold of one layer on its own; concatenate the magnitudes of "
                                 "all layers (torch.cat of w.abs().flatten()) and take one threshold for all")
        flat = torch.cat([w.abs().flatten() for w in weights])
        zeroed = (flat <= value).float().mean().item()
        signed = torch.cat([w.flatten() for w in weights])
        if math.isclose(value, signed.kthvalue(round(amount * signed.numel())).values.item(), rel_tol=1e-6):
            return report(False, "rank the magnitudes |w|, not the signed values: use w.abs()")
        return report(False, f"with amount={amount} your threshold zeroes {zeroed:.1%} of all weights "
                             f"(want {amount:.0%}); take the k-th smallest magnitude with k = round(amount * n)")
    return report(True, "one threshold over all layers: the k-th smallest |w| of all the weights together, "
                        "so layers full of small weights lose more than the others")


def cubic_schedule(fn):
    """``fn(step, total_steps, final, initial=0.0)``: Zhu & Gupta's s_t = s_f + (s_i - s_f)(1 - t/n)^3."""
    if not callable(fn):
        return report(False, "define a function cubic(step, total_steps, final, initial=0.0) and pass it to the check")
    cases = [(t, 10, 0.9, 0.0) for t in (0, 1, 3, 5, 8, 10)] + [(t, 4, 0.95, 0.5) for t in (0, 2, 4)]
    for t, n, final, initial in cases:
        value, hint = _number(fn, (t, n, final, initial), f"cubic({t}, {n}, {final}, {initial})",
                              ["course_utils.soft_pruning.cubic_sparsity"])
        if hint:
            return report(False, hint)
        expected = final + (initial - final) * (1 - t / n) ** 3
        if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
            continue
        linear = final + (initial - final) * (1 - t / n)
        swapped = initial + (final - initial) * (1 - t / n) ** 3
        if math.isclose(value, linear, abs_tol=1e-9):
            hint = "that is a straight line; the factor (1 - t/n) is cubed"
        elif math.isclose(value, swapped, abs_tol=1e-9):
            hint = "initial and final are swapped: at t = 0 the sparsity must be the initial one"
        elif t == 0:
            hint = f"at step 0 the sparsity should be the initial value {initial}, got {value}"
        elif t == n:
            hint = f"at the last step the sparsity should be the final value {final}, got {value}"
        else:
            hint = (f"cubic({t}, {n}, final={final}, initial={initial}) should be {expected:.4f}, got {value:.4f}; "
                    "use s_f + (s_i - s_f) * (1 - t / n) ** 3")
        return report(False, hint)
    return report(True, "the cubic schedule prunes fast while many weights are redundant and slowly near the end, "
                        "leaving time to recover")


def cliff(answer, sparsities, val_accs, dense_val: float, tolerance: float = 0.01) -> bool:
    """Reading exercise: the largest sparsity of the sweep up to which every point stays within ``tolerance``
    (one point of accuracy by default) of the dense model's validation accuracy, before the cliff."""
    if answer is None or answer is ...:
        return report(False, "set my_sparsity to one of the sparsities of the sweep, as a fraction (0.5 for 50%).")
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return report(False, f"my_sparsity must be a number such as 0.5, got {answer!r}.")
    sparsities = [float(s) for s in sparsities]
    if answer > 1:
        return report(False, f"give the sparsity as a fraction (0.8 for 80%), got {answer}.")
    if not any(math.isclose(answer, s) for s in sparsities):
        return report(False, f"choose one of the sparsities of the sweep: {sparsities}.")
    last = None
    for s, acc in zip(sparsities, val_accs):
        if dense_val - float(acc) > tolerance:
            break
        last = s
    if last is not None and math.isclose(answer, last):
        return report(True, f"up to {last:.0%} zeros every point is within {tolerance:.0%} of the dense model's "
                            f"{dense_val:.2%}; the next one is past the cliff.")
    return report(False, f"not {answer:.0%}: find the last point of the one-shot global curve that is still within "
                         f"one point of the dense model's {dense_val:.2%}, with none below that line before it.")
