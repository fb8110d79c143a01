"""Checks for the exercises of notebook 03 (knowledge distillation)."""

from __future__ import annotations

import math

import torch

from . import report, run_safely

__all__ = ["kd_loss", "temperature_choice"]


def _cases():
    g = torch.Generator().manual_seed(3)
    for temperature, alpha in ((1.0, 0.5), (4.0, 0.9), (20.0, 0.7), (2.5, 0.0), (8.0, 1.0)):
        student = torch.randn(6, 10, generator=g) * 3
        teacher = torch.randn(6, 10, generator=g) * 3
        targets = torch.randint(0, 10, (6,), generator=g)
        yield student, teacher, targets, temperature, alpha


def _expected(student, teacher, targets, t, a, t_squared=True):
    """The distillation loss written out here, independently of ``cu.distill.kd_loss``, in float64."""
    s, te = student.double(), teacher.double()
    p_teacher = torch.softmax(te / t, dim=1)
    kl = (p_teacher * (torch.log_softmax(te / t, dim=1) - torch.log_softmax(s / t, dim=1))).sum(1).mean()
    ce = -torch.log_softmax(s, dim=1).gather(1, targets[:, None]).mean()
    return float(a * (t * t if t_squared else 1.0) * kl + (1 - a) * ce)


def kd_loss(fn) -> bool:
    """Compare the learner's ``fn(student_logits, teacher_logits, targets, T, alpha)`` with the formula."""
    if not callable(fn):
        return report(False, "define a function my_kd_loss(student_logits, teacher_logits, targets, T, alpha)")
    for student, teacher, targets, t, a in _cases():
        expected = _expected(student, teacher, targets, t, a)
        got, error = run_safely(fn, student.clone(), teacher.clone(), targets.clone(), t, a,
                                 hide=["course_utils.distill.kd_loss"])
        if error:
            return report(False, f"your function raised {error} (T={t}, alpha={a})")
        if got is None:
            return report(False, "your function returned None: return the loss tensor")
        try:
            value = float(torch.as_tensor(got).detach().reshape(()))
        except Exception:  # noqa: BLE001 - anything that is not one number
            return report(False, "return one number (a 0-dimensional tensor): average over the batch")
        if not math.isfinite(value):
            return report(False, f"your loss is {value} for T={t}: use log_softmax, not log(softmax(...))")
        if abs(value - float(expected)) <= 1e-4 * max(1.0, abs(float(expected))):
            continue
        no_t2 = _expected(student, teacher, targets, t, a, t_squared=False)
        if a > 0 and t != 1 and abs(value - float(no_t2)) <= 1e-4 * max(1.0, abs(float(no_t2))):
            return report(False, f"right except for the scale: multiply the soft term by T² (T={t})")
        swapped = _expected(student, teacher, targets, t, 1 - a) if a not in (0.0, 1.0) else None
        if swapped is not None and abs(value - float(swapped)) <= 1e-4 * max(1.0, abs(float(swapped))):
            return report(False, "alpha weighs the soft (teacher) term and 1 - alpha the labels: you swapped them")
        return report(False, f"for T={t}, alpha={a} you return {value:.5f}, the formula gives {float(expected):.5f}. "
                             "Use kl_div(log_softmax(student/T), log_softmax(teacher/T), reduction='batchmean', "
                             "log_target=True)")
    return report(True, "your loss matches α·T²·KL(teacher‖student) + (1−α)·CE for every T and α tried.")


def temperature_choice(choice, val_errors: dict, test_errors: dict | None = None) -> bool:
    """The learner picks a temperature for the tiny student; it must be the best one on the *validation* split."""
    if choice is None or choice is Ellipsis:
        return report(False, "set my_temperature to one of the temperatures of the sweep")
    try:
        choice = float(choice)
    except (TypeError, ValueError):
        return report(False, f"my_temperature must be a number, got {choice!r}")
    measured = {float(k): v for k, v in val_errors.items()}
    if choice not in measured:
        return report(False, f"choose one of the temperatures measured: {sorted(measured)}")
    best = min(measured.values())
    if measured[choice] <= best:
        return report(True, f"T = {choice:g} has the fewest validation errors ({measured[choice]}) for this student.")
    if test_errors is not None:
        test = {float(k): v for k, v in test_errors.items()}
        if choice in test and test[choice] <= min(test.values()):
            return report(False, "that is the best on the test split: decide on the validation split, "
                                 "keep the test split for the final report")
    if choice >= 8 and measured[choice] > best:
        return report(False, f"T = {choice:g} has {measured[choice]} validation errors against {best} for the best: "
                             "a tiny student cannot follow the teacher's smallest probabilities, try a lower T")
    return report(False, f"T = {choice:g} has {measured[choice]} validation errors; another temperature has {best}")
