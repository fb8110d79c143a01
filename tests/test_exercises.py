"""Every exercise of every notebook, through one mechanism: its solution passes its check, its untouched
starting code fails it.

The exercises are read from the paired notebook sources (``tests/exercises.py`` says how). An exercise that reads
values a notebook measured (which temperature did best...) gets stand-in values from ``CONTEXT``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import course_utils as cu
from exercises import SOURCES, all_exercises, exercises

# Values that a notebook computes before an exercise reads them: the check's premise must hold in them.
CONTEXT = {
    "background.most_robust_penalty": {"rows": [
        {"penalty": "none", "val_acc": 0.97, "val_acc, 90% of fc1 zeroed": "61.02%"},
        {"penalty": "L1, λ = 1e-4", "val_acc": 0.968, "val_acc, 90% of fc1 zeroed": "95.88%"},
        {"penalty": "L2, λ = 1e-3", "val_acc": 0.969, "val_acc, 90% of fc1 zeroed": "70.40%"}]},
    "hard_pruning.most_sensitive_layer": {"channel_scan": {"conv1": [0.99, 0.97, 0.94, 0.80, 0.6, 0.4, 0.2, 0.1],
                                                           "conv2": [0.99, 0.99, 0.98, 0.97, 0.95, 0.9, 0.8, 0.6]},
                                          "CHANNEL_SCAN": [i / 8 for i in range(8)]},
    "soft_pruning.cliff": {"SWEEP": (0.0, 0.5, 0.7, 0.8, 0.9, 0.95), "dense_val": 0.98,
                           "sweeps": {"global": [{"val_acc": a} for a in (0.98, 0.981, 0.978, 0.972, 0.86, 0.72)]}},
    "distill.temperature_choice": {"tiny_val_errors": {2: 118, 4: 121, 20: 140}},
    "quantization.fewest_bits": {"val_acc_by_bits": {8: 0.9812, 6: 0.9814, 5: 0.9808, 4: 0.9805, 3: 0.9790, 2: 0.9702},
                                 "dense_val": 0.9806},
}
EXERCISES = all_exercises()


def namespace(exercise) -> dict:
    """What a notebook has defined when the learner reaches the exercise: the usual imports, and CONTEXT."""
    return {"cu": cu, "torch": torch, "nn": nn, "F": F, **CONTEXT.get(exercise.name, {})}


def verdict(exercise, code: str, capsys):
    ns = namespace(exercise)
    exec(code, ns)  # noqa: S102 - our own notebooks' code
    result = eval(exercise.check, ns)  # noqa: S307
    return result, capsys.readouterr().out


def test_every_notebook_has_exercises():
    assert SOURCES, "no notebook sources found"
    for path in SOURCES:
        assert exercises(path), f"{path.name} has no exercise (a code cell tagged 'exercise')"


@pytest.mark.parametrize("exercise", EXERCISES, ids=str)
def test_the_solution_passes_its_check(exercise, capsys):
    result, out = verdict(exercise, exercise.solution, capsys)
    assert result, out
    assert out.startswith("Correct: ")


@pytest.mark.parametrize("exercise", EXERCISES, ids=str)
def test_the_untouched_exercise_fails_its_check(exercise, capsys):
    result, out = verdict(exercise, exercise.skeleton, capsys)
    assert not result
    assert out.startswith("Not yet: ") and len(out) > 20  # with a hint


@pytest.mark.parametrize("exercise", EXERCISES, ids=str)
def test_every_check_is_run_by_name_from_its_notebooks_module(exercise):
    module, function = exercise.name.split(".")
    assert callable(getattr(getattr(cu.checks, module), function))
