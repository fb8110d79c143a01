"""Checks for notebook 05's exercise (the comparison)."""

from __future__ import annotations

from . import report, run_safely, whole_number


def mlp_parameters(hidden: int, inputs: int = 784, classes: int = 10) -> int:
    """Parameters of an MLP with two hidden layers of ``hidden`` neurons each (weights and biases)."""
    return inputs * hidden + hidden + hidden * hidden + hidden + hidden * classes + classes


def hidden_for_budget(fn) -> bool:
    """Exercise: ``fn(budget)`` is the largest width h such that a 784-h-h-10 MLP has at most ``budget`` parameters."""
    for budget in (24_810, 25_000, 50_000, 100_000, 266_610, 1_000):
        h = 1
        while mlp_parameters(h + 1) <= budget:
            h += 1
        got, error = run_safely(fn, budget)
        if error:
            return report(False, f"your function raised {error} for budget={budget:,}.")
        if got is None or got is ...:
            return report(False, "your function returned nothing: return the width h as an integer.")
        if whole_number(got) is None:
            return report(False, f"return the width as an int (a count of neurons), got {got!r}.")
        if got != h:
            hint = ("too wide: count both hidden layers, the output layer and every bias"
                    if isinstance(got, int) and got > h else "a wider network still fits")
            return report(False, f"for a budget of {budget:,} parameters the answer is not {got!r} ({hint}).")
    return report(True, "784·h + h + h·h + h + 10·h + 10 ≤ budget, solved for the largest h.")
