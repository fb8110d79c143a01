"""Tests of course_utils.soft_pruning (masks, schedules, the shared restore loop, soft filter pruning,
sparse storage and kernels, the widget's function) and of the notebook 02 exercise checks."""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import pytest
import torch
from torch import nn

import course_utils as cu

from conftest import NoTestSplit, blobs


def small_mlp(seed: int = 0, hidden=(16, 12), dim: int = 8, classes: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    return cu.models.mlp(hidden=hidden, in_features=dim, classes=classes)


def small_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 6, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(6, 8, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(8, 3)),
    ]))


def image_blobs(n: int = 240, seed: int = 0):
    """Three classes of 8×8 images: a bright square in one of three corners, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3
    for i, c in enumerate(y.tolist()):
        r, col = [(0, 0), (0, 4), (4, 0)][c]
        x[i, 0, r:r + 4, col:col + 4] += 1.5
    a, b = int(0.6 * n), int(0.8 * n)
    split = lambda s: cu.data.Split(x[s], y[s])  # noqa: E731
    return cu.data.Splits(split(slice(0, a)), split(slice(a, b)), split(slice(b, n)), ("0", "1", "2"))


def trained_mlp(data, epochs: int = 15) -> nn.Sequential:
    model = small_mlp()
    cu.train.fit(model, data, epochs, lr=1e-2, batch_size=32, progress=False)
    return model


# --------------------------------------------------------------------------- masks


def test_bad_inputs_raise_clear_value_errors():
    model = small_mlp()
    for amount in (-0.1, 1.5, True, "half", float("nan")):
        with pytest.raises(ValueError, match="amount"):
            cu.masks.magnitude_prune(model, amount)
    with pytest.raises(ValueError, match="unknown layer"):
        cu.masks.magnitude_prune(model, 0.5, layers=["fc9"])
    with pytest.raises(ValueError, match="unknown layer"):
        cu.masks.magnitude_prune(model, {"conv1": 0.5})
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        cu.masks.magnitude_prune(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(ValueError, match="scope"):
        cu.masks.magnitude_prune(model, 0.5, scope="everything")
    with pytest.raises(ValueError, match="scope='layer'"):
        cu.masks.magnitude_prune(model, {"fc1": 0.5}, scope="global")
    with pytest.raises(ValueError, match="shape"):
        cu.masks.apply_masks(model, {"fc1": torch.ones(3, 3)})
    data = blobs()
    with pytest.raises(ValueError, match="unknown schedule"):
        cu.soft_pruning.iterative_prune(model, data, 0.5, schedule="exponential")
    with pytest.raises(ValueError, match="steps"):
        cu.soft_pruning.iterative_prune(model, data, 0.5, steps=0)
    with pytest.raises(ValueError, match="target"):
        cu.soft_pruning.iterative_prune(model, data, 1.2)
    with pytest.raises(ValueError, match="sparsit"):
        cu.latency.matmul_latency([0.5, 2.0])
    assert not any(cu.masks.is_masked(m) for m in model.modules())  # nothing was changed by the failed calls


# --------------------------------------------------------------------------- schedules


def test_cubic_schedule_ends_middle_and_clamping():
    assert cu.soft_pruning.cubic_sparsity(0, 10, 0.9) == 0.0
    assert cu.soft_pruning.cubic_sparsity(10, 10, 0.9) == pytest.approx(0.9)
    assert cu.soft_pruning.cubic_sparsity(5, 10, 0.9) == pytest.approx(0.9 - 0.9 / 8)  # (1 - 1/2)^3 = 1/8
    assert cu.soft_pruning.cubic_sparsity(5, 10, 0.9, initial=0.5) == pytest.approx(0.9 - 0.4 / 8)
    assert cu.soft_pruning.cubic_sparsity(20, 10, 0.9) == pytest.approx(0.9)
    assert cu.soft_pruning.cubic_sparsity(-3, 10, 0.9, 0.2) == pytest.approx(0.2)
    values = [cu.soft_pruning.cubic_sparsity(t, 10, 0.9) for t in range(11)]
    steps = [b - a for a, b in zip(values, values[1:])]
    assert all(s > 0 for s in steps) and all(a > b for a, b in zip(steps, steps[1:]))  # fast first, slow last


def test_han_schedule_is_geometric_in_density():
    assert cu.soft_pruning.han_sparsity(0, 3, 0.92) == 0.0
    assert cu.soft_pruning.han_sparsity(3, 3, 0.92) == pytest.approx(0.92)
    densities = [1 - cu.soft_pruning.han_sparsity(k, 3, 0.92) for k in range(4)]
    ratios = [b / a for a, b in zip(densities, densities[1:])]
    assert ratios == pytest.approx([0.08 ** (1 / 3)] * 3)
    assert cu.soft_pruning.han_sparsity(1, 2, 0.96, initial=0.5) == pytest.approx(1 - 0.5 * math.sqrt(0.08))


@pytest.mark.parametrize("schedule", ["han", "agp", "oneshot"])
def test_iterative_prune_reaches_the_target_without_reading_test(schedule):
    data = blobs()
    model = trained_mlp(data)
    before = copy.deepcopy(model.state_dict())
    pruned, log = cu.soft_pruning.iterative_prune(model, NoTestSplit(data), 0.2, steps=3, finetune_epochs=2,
                                                  schedule=schedule, scope="global", lr=1e-2, lr_schedule=None,
                                                  batch_size=32, frequency=3, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # a copy is pruned
    model = pruned
    assert cu.metrics.sparsity(model) == pytest.approx(0.8, abs=1e-3)
    trains = [r for r in log if r["event"] == "train"]
    assert [r["epoch"] for r in trains] == list(range(1, 7))  # the same 6 epochs for every schedule
    assert all(0.0 <= r["val_acc"] <= 1.0 for r in log)
    assert log[0]["event"] == "start" and log[0]["sparsity"] == 0.0
    sparsities = [r["sparsity"] for r in log]
    assert sparsities == sorted(sparsities)
    if schedule == "han":
        prunes = [r["sparsity"] for r in log if r["event"] == "prune"]
        assert prunes == pytest.approx([cu.soft_pruning.han_sparsity(k, 3, 0.8) for k in (1, 2, 3)], abs=2e-3)
    if schedule == "agp":
        assert trains[0]["sparsity"] < trains[2]["sparsity"] < 0.8 + 1e-9  # gradual
    assert trains[-1]["val_acc"] > 0.9  # the blobs stay easy at 80% sparsity after retraining
    for module in cu.models.prunable_layers(model).values():
        assert torch.count_nonzero(module.weight_orig[module.weight_mask == 0]) == 0


def test_iterative_prune_per_layer_rates():
    data = blobs()
    model = trained_mlp(data, epochs=3)
    rates = {"fc1": 0.9, "fc2": 0.8, "fc3": 0.5}
    model, _ = cu.soft_pruning.iterative_prune(model, data, {n: 1 - r for n, r in rates.items()}, steps=2,
                                               finetune_epochs=1, scope="layer", lr=1e-2, batch_size=64,
                                               progress=False)
    got = cu.metrics.layer_sparsity(model)
    for name, rate in rates.items():
        n = cu.models.prunable_layers(model)[name].weight.numel()
        assert got[name] == pytest.approx(round(rate * n) / n)


# --------------------------------------------------------------------------- the article's loop


def test_restore_loop_uses_the_shared_loop_with_masks():
    data = blobs()
    model = trained_mlp(data)
    before = copy.deepcopy(model.state_dict())
    pruned, log = cu.soft_pruning.restore_loop(model, NoTestSplit(data), target=0.2, group=0.5, tolerance=0.02,
                                  finetune_epochs=1, lr=1e-2, batch_size=32, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the input is untouched
    assert any(cu.masks.is_masked(m) for m in pruned.modules())  # masked, not removed: same shapes
    shapes = lambda m: {k: v.shape for k, v in cu.masks.effective_state_dict(m).items()}  # noqa: E731
    assert shapes(pruned) == shapes(model)
    for row in log:
        assert row["decision"] == ("kept" if row["val_acc"] >= row["reference_val_acc"] - 0.02 else "restored")
    kept = [r for r in log if r["decision"] == "kept"]
    assert kept and kept[-1]["size_after"] == pytest.approx(1 - cu.metrics.sparsity(pruned))
    assert "stop" in log[-1]
    if log[-1]["stop"] == "target reached":
        assert 1 - cu.metrics.sparsity(pruned) <= 0.2 + 1e-9
    ref = cu.train.evaluate(model, data.val).accuracy
    assert cu.train.evaluate(pruned, data.val).accuracy >= ref - 0.02


def test_restore_loop_restores_when_accuracy_drops():
    data = blobs()
    model = trained_mlp(data)
    pruned, log = cu.soft_pruning.restore_loop(model, data, target=0.0, group=1.0, tolerance=0.0, finetune_epochs=1,
                                  penalty=None, lr=1e-6, batch_size=64, progress=False)
    # zeroing a whole layer cannot keep the accuracy: every try is restored and the model keeps its weights
    assert log and all(r["decision"] == "restored" for r in log)
    assert len(log) == 3 and log[-1]["stop"].startswith("nothing more")
    assert cu.metrics.sparsity(pruned) == 0.0


# --------------------------------------------------------------------------- soft filter pruning


def test_prune_filters_soft_stays_trainable_hard_stays_zero():
    for hard in (False, True):
        model = small_cnn()
        zeroed = cu.soft_pruning.prune_filters(model, 0.5, hard=hard)
        assert {n: len(v) for n, v in zeroed.items()} == {"conv1": 3, "conv2": 4}
        norms = cu.importance.weight_norms(model.conv2)
        assert torch.count_nonzero(norms[zeroed["conv2"]]) == 0
        assert norms[[i for i in range(8) if i not in zeroed["conv2"]]].min() > 0
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        cu.masks.refresh_masks(model)
        regrown = torch.count_nonzero(cu.importance.weight_norms(model.conv2)[zeroed["conv2"]])
        assert (regrown == 0) == hard  # soft: the gradient brings the zeroed filters back; hard: frozen


def test_soft_filter_prune_logs_and_masks_at_the_end():
    data = image_blobs()
    base = small_cnn()
    cu.train.fit(base, data, 3, lr=1e-2, batch_size=32, progress=False)
    results = {}
    for hard in (False, True):
        model, log = cu.soft_pruning.soft_filter_prune(base, NoTestSplit(data), 0.5, 3, hard=hard, lr=1e-2, batch_size=32,
                                          progress=False)
        results[hard] = model
        assert [r["epoch"] for r in log] == [0, 1, 2, 3]
        assert all(len(r["zeroed"]["conv1"]) == 3 and len(r["zeroed"]["conv2"]) == 4 for r in log)
        for prev, row in zip(log, log[1:]):
            for name in ("conv1", "conv2"):
                assert row["came_back"][name] == sorted(set(prev["zeroed"][name]) - set(row["zeroed"][name]))
        if hard:
            assert all(r["zeroed"] == log[0]["zeroed"] for r in log)
            assert all(r["came_back"] == {"conv1": [], "conv2": []} for r in log)
        assert all(0.0 <= r["val_acc"] <= 1.0 for r in log)
        final = log[-1]["zeroed"]
        for name in ("conv1", "conv2"):
            module = getattr(model, name)
            assert cu.masks.is_masked(module)
            assert torch.count_nonzero(cu.importance.weight_norms(module)[final[name]]) == 0
    assert not any(cu.masks.is_masked(m) for m in base.modules())  # the input model is untouched
    assert cu.metrics.layer_sparsity(results[False])["conv2"] == cu.metrics.layer_sparsity(results[True])["conv2"] == 0.5


# --------------------------------------------------------------------------- what zeros buy


# --------------------------------------------------------------------------- the widget's function


# --------------------------------------------------------------------------- exercise checks


# --------------------------------------------------------------------------- sweep and mask_zeros


def test_sweep_measures_copies_on_validation_only():
    data = blobs()
    model = trained_mlp(data)
    rows = cu.soft_pruning.sweep(model, NoTestSplit(data), [0.0, 0.5, 0.95], "global", finetune_epochs=1, train_size=100,
                    lr=1e-2, batch_size=32, progress=False)
    assert not any(cu.masks.is_masked(m) for m in model.modules())
    assert [r["amount"] for r in rows] == [0.0, 0.5, 0.95]
    assert rows[0]["val_acc"] == pytest.approx(cu.train.evaluate(model, data.val).accuracy)
    assert all(set(r) == {"scope", "amount", "val_acc", "val_acc_finetuned"} for r in rows)
    assert rows[-1]["val_acc"] < rows[0]["val_acc"]  # 95% zeros one-shot hurts the tiny model
    plain = cu.soft_pruning.sweep(model, data, [0.5], "layer")
    assert "val_acc_finetuned" not in plain[0]
    with pytest.raises(ValueError, match="finetune_epochs"):
        cu.soft_pruning.sweep(model, data, [0.5], finetune_epochs=-1)
    with pytest.raises(ValueError, match="empty"):
        cu.soft_pruning.sweep(model, data, [])
    with pytest.raises(ValueError, match="amount"):
        cu.soft_pruning.sweep(model, data, [1.5])


def test_bad_inputs_of_the_loops_raise_before_any_work():
    data = blobs()
    model = small_mlp()
    with pytest.raises(ValueError, match="group"):
        cu.soft_pruning.restore_loop(model, data, target=0.5, group=0.0)
    with pytest.raises(ValueError, match="target"):
        cu.soft_pruning.restore_loop(model, data, target=1.5)
    with pytest.raises(ValueError, match="no Conv2d"):
        cu.soft_pruning.prune_filters(model, 0.5)
    with pytest.raises(ValueError, match="amount"):
        cu.soft_pruning.soft_filter_prune(small_cnn(), image_blobs(), 2.0, 1)
    with pytest.raises(ValueError, match="epochs"):
        cu.soft_pruning.soft_filter_prune(small_cnn(), image_blobs(), 0.5, 0)
    with pytest.raises(ValueError, match="after_step"):
        cu.soft_pruning.iterative_prune(model, data, 0.5, after_step=print)
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        cu.sparse.to_sparse(nn.Sequential(nn.ReLU()))


