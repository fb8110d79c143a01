"""Checks for notebook 00's exercises."""

from __future__ import annotations

import torch
from torch import nn

from . import report, run_safely, whole_number


def article_net_parameters(answer) -> bool:
    """Exercise: the number of learnable parameters of the article's 784-128-10 network."""
    expected = 784 * 128 + 128 + 128 * 10 + 10
    if answer is None or answer is ...:
        return report(False, "set `answer` to a number: weights (inputs × outputs) plus biases (one per output), "
                             "for both layers.")
    value = whole_number(answer)
    if value is None:
        return report(False, f"`answer` should be a whole number (an int, such as 1234), got {answer!r}.")
    if value == expected:
        return report(True, f"{expected:,} parameters: 784·128 + 128 weights and biases in fc1, 128·10 + 10 in fc2.")
    if value == 784 * 128 + 128 * 10:
        return report(False, "you counted the weights; the biases (one per output neuron) are parameters too.")
    return report(False, f"{value:,} is not it. Count fc1 (784 inputs → 128 outputs) and fc2 (128 → 10), "
                         "weights and biases.")


def l1_penalty(fn) -> bool:
    """Exercise: ``fn(model)`` returns Σ|w| over the weights of the Linear layers (not the biases)."""
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)),
              nn.Sequential(nn.Flatten(), nn.Linear(6, 2))]
    for model in models:
        expected = sum(m.weight.abs().sum() for m in model.modules() if isinstance(m, nn.Linear))
        with_bias = expected + sum(m.bias.abs().sum() for m in model.modules() if isinstance(m, nn.Linear))
        got, error = run_safely(fn, model, hide=["course_utils.train.penalty_value"])
        if error:
            return report(False, f"your function raised {error}.")
        if got is None or got is ...:
            return report(False, "your function returned nothing: return the sum as a tensor.")
        if not torch.is_tensor(got):
            return report(False, "return a tensor (so that gradients can flow through the penalty), "
                                 f"not {type(got).__name__}.")
        if torch.isclose(got.detach(), with_bias.detach()):
            return report(False, "you included the biases; the penalty is on the weights (connections) only.")
        if not torch.isclose(got.detach(), expected.detach()):
            return report(False, f"expected {expected.item():.4f} on a test model, got {got.item():.4f}.")
        if not got.requires_grad:
            return report(False, "the value is right but detached from the weights: avoid .item(), .data or "
                                 "torch.no_grad() so that training can differentiate it.")
    return report(True, "Σ|w| over every Linear weight, differentiable: this is the article's L1 term.")


PENALTY_NAMES = ("none", "l1", "l2")


def most_robust_penalty(answer, rows) -> bool:
    """Reading exercise: which penalty's network kept the most validation accuracy with 90% of fc1 zeroed?

    ``rows`` is the notebook's table (``penalty`` and ``val_acc, 90% of fc1 zeroed`` per network); the answer is
    ``"none"``, ``"l1"`` or ``"l2"``.
    """
    if answer is None or answer is ...:
        return report(False, 'set my_penalty to "none", "l1" or "l2" after reading the last column of the table.')
    if not isinstance(answer, str) or answer.strip().lower() not in PENALTY_NAMES:
        return report(False, f'my_penalty must be one of the strings "none", "l1" or "l2", got {answer!r}.')
    measured = {}
    for row in rows:
        label = str(row["penalty"]).lower()
        key = "l1" if label.startswith("l1") else "l2" if label.startswith("l2") else "none"
        value = row["val_acc, 90% of fc1 zeroed"]
        measured[key] = float(value.rstrip("%")) / 100 if isinstance(value, str) else float(value)
    best = max(measured, key=measured.get)
    choice = answer.strip().lower()
    if choice == best:
        return report(True, f"{choice}: {measured[choice]:.2%} of the validation images right with 90% of fc1 "
                            "zeroed, the most of the three. Its histogram shows why: the spike of weights at zero.")
    return report(False, f"{choice} keeps {measured[choice]:.2%}; another network keeps {measured[best]:.2%}. "
                         "Read the last column of the table, then look for the spike at zero in the histograms.")
