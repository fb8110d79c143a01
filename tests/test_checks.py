"""The exercise checks refuse wrong answers with a useful hint, never raise, and cannot be passed by calling the
package. (That every solution passes and every untouched exercise fails is ``test_exercises.py``.)"""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import course_utils as cu
from exercises import solution


def test_parameter_count_refuses_wrong_counts_and_non_integers(capsys):
    check = cu.checks.background.article_net_parameters
    assert check(784 * 128 + 128 + 128 * 10 + 10)
    assert not check(784 * 128 + 128 * 10)
    assert "biases" in capsys.readouterr().out
    for wrong in ("101770", 101770.0, True, "many", 100_000, ...):
        assert not check(wrong)
    assert "whole number" in capsys.readouterr().out


def test_l1_penalty_refuses_biases_detached_values_and_l2(capsys):
    check = cu.checks.background.l1_penalty
    with_bias = lambda m: sum(p.abs().sum() for p in m.parameters())  # noqa: E731
    assert not check(with_bias)
    assert "biases" in capsys.readouterr().out
    detached = lambda m: torch.tensor(sum(l.weight.abs().sum().item() for l in m.modules() if isinstance(l, nn.Linear)))  # noqa: E731,E741
    assert not check(detached)
    assert not check(lambda m: None)
    assert not check(lambda m: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    l2 = lambda m: sum(l.weight.pow(2).sum() for l in m.modules() if isinstance(l, nn.Linear))  # noqa: E731,E741
    assert not check(l2)


def test_a_verdict_is_silent_in_a_notebook_and_behaves_like_a_bool(capsys):
    verdict = cu.checks.report(False, "try again")
    assert capsys.readouterr().out == "Not yet: try again\n"
    assert not verdict and verdict == False and verdict != True  # noqa: E712
    assert verdict._ipython_display_() is None


def test_an_answer_that_only_calls_the_package_is_refused(capsys):
    def calls_the_package(student, teacher, targets, T, alpha):
        return cu.distill.kd_loss(student, teacher, targets, T, alpha)

    assert not cu.checks.distill.kd_loss(calls_the_package)
    assert "switched off" in capsys.readouterr().out
    assert not cu.checks.soft_pruning.cubic_schedule(lambda *args: cu.soft_pruning.cubic_sparsity(*args))
    assert "cu.soft_pruning.cubic_sparsity is switched off" in capsys.readouterr().out
    assert not cu.checks.soft_pruning.cubic_schedule(cu.soft_pruning.cubic_sparsity)
    assert "itself" in capsys.readouterr().out
    assert not cu.checks.hard_pruning.l2_scores(lambda layer: cu.importance.weight_norms(layer, 2))
    assert not cu.checks.background.l1_penalty(lambda m: cu.train.penalty_value(m, "l1"))
    assert "switched off" in capsys.readouterr().out
    # and the package functions are back afterwards
    assert cu.soft_pruning.cubic_sparsity(10, 10, 0.9) == pytest.approx(0.9)
    assert cu.train.penalty_value(nn.Linear(2, 2), "l1").item() > 0


def test_budget_width_must_be_an_integer(capsys):
    check = cu.checks.comparison.hidden_for_budget
    assert not check(lambda budget: 30.0)
    assert "int" in capsys.readouterr().out


def test_hard_pruning_checks_refuse_wrong_answers_without_raising(capsys):
    remove_channel = solution("hard_pruning.remove_channel")["remove_channel"]

    def raising(*args):
        raise RuntimeError("boom")

    def stub(*args):
        return None

    for check in (cu.checks.hard_pruning.l2_scores, cu.checks.hard_pruning.remove_channel, cu.checks.hard_pruning.fc_columns):
        assert bool(check(raising)) is False
        assert bool(check(stub)) is False
        assert bool(check(None)) is False
    assert bool(cu.checks.hard_pruning.l2_scores(lambda layer: layer.weight.detach().flatten(1).pow(2).sum(1))) is False
    assert bool(cu.checks.hard_pruning.l2_scores(lambda layer: layer.weight.detach().abs().flatten(1).sum(1))) is False
    assert bool(cu.checks.hard_pruning.l2_scores(lambda layer: layer.weight.detach().norm(dim=1).flatten())) is False

    def keeps_wrong_columns(conv, next_conv, index):
        new_conv, new_next = remove_channel(conv, next_conv, index)
        with torch.no_grad():
            new_next.weight.copy_(next_conv.weight[:, :-1])  # drops the last input channel, not `index`
        return new_conv, new_next

    def changes_original(conv, next_conv, index):
        out = remove_channel(conv, next_conv, index)
        with torch.no_grad():
            conv.weight.zero_()
        return out

    assert bool(cu.checks.hard_pruning.remove_channel(keeps_wrong_columns)) is False
    assert bool(cu.checks.hard_pruning.remove_channel(changes_original)) is False
    assert bool(cu.checks.hard_pruning.fc_columns(lambda c, p: list(range(c, c + p)))) is False
    assert bool(cu.checks.hard_pruning.fc_columns(lambda c, p: list(range(c, 400, 16))[:p])) is False
    out = capsys.readouterr().out
    assert "Correct" not in out and out.count("Not yet: ") == 16


def test_global_threshold_check_refuses_wrong_answers(capsys):
    def per_layer(weights, amount):
        w = weights[0].abs().flatten()
        return w.kthvalue(round(amount * w.numel())).values.item()

    def signed(weights, amount):
        w = torch.cat([w.flatten() for w in weights])
        return w.kthvalue(round(amount * w.numel())).values.item()

    def stub(weights, amount):
        return None

    def broken(weights, amount):
        raise RuntimeError("oops")

    for wrong, hint in ((per_layer, "one layer"), (signed, "magnitudes"), (stub, "nothing yet"),
                        (broken, "RuntimeError"), (None, "define")):
        assert not cu.checks.soft_pruning.global_threshold(wrong)
        assert hint in capsys.readouterr().out


def test_cubic_schedule_check_refuses_wrong_answers(capsys):
    def linear(step, total_steps, final, initial=0.0):
        return final + (initial - final) * (1 - step / total_steps)

    def swapped(step, total_steps, final, initial=0.0):
        return initial + (final - initial) * (1 - step / total_steps) ** 3

    def stub(step, total_steps, final, initial=0.0):
        ...

    for wrong, hint in ((linear, "straight line"), (swapped, "swapped"), (stub, "nothing yet"),
                        (lambda *a: 1 / 0, "ZeroDivisionError")):
        assert not cu.checks.soft_pruning.cubic_schedule(wrong)
        assert hint in capsys.readouterr().out


def test_kd_loss_check_refuses_mistakes(capsys):
    my_kd_loss = solution("distill.kd_loss")["my_kd_loss"]

    def by_hand(s, t, y, T, alpha, t_squared=True):  # the solution, with the T² optional
        if t_squared:
            return my_kd_loss(s, t, y, T, alpha)
        return (my_kd_loss(s, t, y, T, alpha) - (1 - alpha) * F.cross_entropy(s, y)) / (T * T) \
            + (1 - alpha) * F.cross_entropy(s, y)

    def no_t2(s, t, y, T, alpha):
        return by_hand(s, t, y, T, alpha, t_squared=False)

    assert not cu.checks.distill.kd_loss(no_t2)
    assert "T²" in capsys.readouterr().out
    assert not cu.checks.distill.kd_loss(lambda s, t, y, T, a: by_hand(s, t, y, T, 1 - a))
    assert not cu.checks.distill.kd_loss(lambda *args: None)
    assert not cu.checks.distill.kd_loss(lambda *args: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert not cu.checks.distill.kd_loss(None)


def test_temperature_check_refuses_choices_made_on_the_test_split():
    val = {1: 60, 2: 41, 4: 38, 8: 45, 20: 70}
    test = {1: 600, 2: 400, 4: 410, 8: 450, 20: 700}
    assert cu.checks.distill.temperature_choice(4, val, test)
    assert not cu.checks.distill.temperature_choice(2, val, test)  # best on test, not on validation
    assert not cu.checks.distill.temperature_choice(20, val)
    assert not cu.checks.distill.temperature_choice(3.0, val)
    assert not cu.checks.distill.temperature_choice(None, val)
    assert not cu.checks.distill.temperature_choice("hot", val)


def test_quantization_checks_refuse_wrong_answers(capsys):
    def no_zero_in_range(x, bits):
        lo, hi = float(x.min()), float(x.max())
        scale = (hi - lo) / (2**bits - 1)
        zero = round(-lo / scale)
        return torch.clamp(torch.round(x / scale) + zero, 0, 2**bits - 1), scale, zero

    def unclamped(x, bits):
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        scale = (hi - lo) / (2**bits - 1)
        return torch.floor(x / scale) + round(-lo / scale), scale, round(-lo / scale)

    assert not cu.checks.quantization.quantize(no_zero_in_range)
    assert "include 0" in capsys.readouterr().out
    assert not cu.checks.quantization.quantize(unclamped)
    assert not cu.checks.quantization.quantize(lambda x, bits: cu.quantization.quantize_tensor(x, bits)[:3])
    assert "switched off" in capsys.readouterr().out

    def without_fillers(mask, index_bits):
        positions = torch.nonzero(mask).flatten().tolist()
        return [p - q for p, q in zip(positions, [-1] + positions[:-1])]

    assert not cu.checks.quantization.relative_indices(without_fillers)
    assert "filler" in capsys.readouterr().out
    assert not cu.checks.quantization.relative_indices(lambda mask, bits: "gaps")
    measured = {8: 0.981, 6: 0.981, 4: 0.9805, 3: 0.975, 2: 0.95}
    assert cu.checks.quantization.fewest_bits(4, measured, 0.981)
    assert not cu.checks.quantization.fewest_bits(6, measured, 0.981)
    assert "fewer bits" in capsys.readouterr().out
    assert not cu.checks.quantization.fewest_bits(3, measured, 0.981)
    assert not cu.checks.quantization.fewest_bits(4.0, measured, 0.981)
    assert not cu.checks.quantization.fewest_bits(5, measured, 0.981)
    capsys.readouterr()
    assert cu.checks.quantization.fewest_bits(6, measured, 0.981, tolerance=0)   # no loss at all: 4 bits is out
    assert not cu.checks.quantization.fewest_bits(4, measured, 0.981, tolerance=0)
    assert "below 98.10%" in capsys.readouterr().out
    assert cu.checks.quantization.fewest_bits(6, measured, 0.99, tolerance=0)    # none gets there: the closest
    assert not cu.checks.quantization.fewest_bits(8, measured, 0.99, tolerance=0)  # as close, with more bits
    assert "comes closest" in capsys.readouterr().out


def test_reading_exercises_refuse_wrong_readings_and_wrong_types(capsys):
    rows = [{"penalty": "none", "val_acc, 90% of fc1 zeroed": "61.02%"},
            {"penalty": "L1, λ = 1e-4", "val_acc, 90% of fc1 zeroed": "95.88%"},
            {"penalty": "L2, λ = 1e-3", "val_acc, 90% of fc1 zeroed": "70.40%"}]
    assert cu.checks.background.most_robust_penalty("l1", rows)
    assert cu.checks.background.most_robust_penalty(" L1 ", rows)
    for wrong in ("l2", "none", None, ..., 1, "lasso"):
        assert not cu.checks.background.most_robust_penalty(wrong, rows)

    scan = {"conv1": [0.99, 0.95, 0.9, 0.5], "conv2": [0.99, 0.98, 0.97, 0.9]}
    fractions = [0.0, 0.25, 0.5, 0.75]
    assert cu.checks.hard_pruning.most_sensitive_layer("conv1", scan, fractions)
    for wrong in ("conv2", "fc1", None, ..., 1, ["conv1"]):
        assert not cu.checks.hard_pruning.most_sensitive_layer(wrong, scan, fractions)
    # the mean over the fractions decides, not one point: conv2 falls at the last fraction only, but far
    late = {"conv1": [0.99, 0.9, 0.9, 0.9], "conv2": [0.99, 0.99, 0.99, 0.2]}
    assert cu.checks.hard_pruning.most_sensitive_layer("conv2", late, fractions)

    sweep, accs = (0.0, 0.5, 0.8, 0.9, 0.95), (0.98, 0.979, 0.975, 0.95, 0.8)
    assert cu.checks.soft_pruning.cliff(0.8, sweep, accs, 0.98)
    for wrong in (0.9, 0.5, 80, 0.85, "0.8", None, ..., True):
        assert not cu.checks.soft_pruning.cliff(wrong, sweep, accs, 0.98)
    # a point below the line ends the flat part even if a later one comes back within it
    assert cu.checks.soft_pruning.cliff(0.0, sweep, (0.98, 0.95, 0.975, 0.97, 0.8), 0.98)
    out = capsys.readouterr().out
    assert "Not yet: " in out and "Correct: " in out
