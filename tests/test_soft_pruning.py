"""Tests of course_utils.soft_pruning (masks, schedules, the shared restore loop, soft filter pruning,
sparse storage and kernels, the widget's function) and of the notebook 02 exercise checks."""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import course_utils as cu
from course_utils import soft_pruning as sp
from course_utils.checks import soft_pruning as checks

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


@pytest.mark.parametrize("amount", [0.0, 0.3, 0.7, 1.0])
def test_layer_masks_match_torch_prune_and_kth_magnitude(amount):
    ours, theirs = small_mlp(), small_mlp()
    sp.magnitude_prune(ours, amount, "layer")
    for module in cu.models.prunable_layers(theirs).values():
        prune.l1_unstructured(module, "weight", amount)
    for (name, mine), other in zip(sp.current_masks(ours).items(), sp.current_masks(theirs).values()):
        assert torch.equal(mine, other), name
        w = cu.models.prunable_layers(small_mlp())[name].weight.detach().abs().flatten()
        k = round(amount * w.numel())
        if 0 < k:
            kth = w.kthvalue(k).values
            assert torch.equal(mine.flatten() == 0, w <= kth)  # random weights: no ties
        assert int((mine == 0).sum()) == k


@pytest.mark.parametrize("amount", [0.25, 0.8])
def test_global_masks_match_torch_global_unstructured(amount):
    ours, theirs = small_mlp(), small_mlp()
    sp.magnitude_prune(ours, amount, "global")
    prune.global_unstructured([(m, "weight") for m in cu.models.prunable_layers(theirs).values()],
                              prune.L1Unstructured, amount=amount)
    for mine, other in zip(sp.current_masks(ours).values(), sp.current_masks(theirs).values()):
        assert torch.equal(mine, other)
    all_w = torch.cat([m.weight.detach().abs().flatten() for m in cu.models.prunable_layers(small_mlp()).values()])
    k = round(amount * all_w.numel())
    assert sp.sparsity(ours) == pytest.approx(k / all_w.numel(), abs=1e-12)
    kth = all_w.kthvalue(k).values
    for name, mask in sp.current_masks(ours).items():
        w = cu.models.prunable_layers(small_mlp())[name].weight.detach().abs()
        assert torch.equal(mask == 0, w <= kth)


def test_exact_sparsity_layer_and_global_and_per_layer_rates():
    model = small_mlp()
    sp.magnitude_prune(model, 0.5, "layer")
    sizes = {n: m.weight.numel() for n, m in cu.models.prunable_layers(model).items()}
    assert sp.layer_sparsity(model) == {n: round(0.5 * s) / s for n, s in sizes.items()}
    model = small_mlp()
    sp.magnitude_prune(model, {"fc1": 0.9, "fc3": 0.25})
    got = sp.layer_sparsity(model)
    assert got["fc1"] == pytest.approx(round(0.9 * sizes["fc1"]) / sizes["fc1"])
    assert got["fc2"] == 0.0 and not sp.is_masked(model.fc2)
    assert got["fc3"] == pytest.approx(round(0.25 * sizes["fc3"]) / sizes["fc3"])
    model = small_mlp()
    sp.magnitude_prune(model, 0.6, "global")
    total = sum(sizes.values())
    assert sp.sparsity(model) == pytest.approx(round(0.6 * total) / total)
    assert len(set(sp.layer_sparsity(model).values())) > 1  # global: layers differ


def test_mask_internals_are_torch_prune_and_weight_orig_is_zeroed():
    model = small_mlp()
    before = model.fc1.weight.detach().clone()
    sp.magnitude_prune(model, 0.5, layers=["fc1"])
    names = dict(model.fc1.named_parameters())
    assert "weight_orig" in names and "weight" not in names
    assert "weight_mask" in dict(model.fc1.named_buffers())
    assert any(isinstance(h, prune.BasePruningMethod) for h in model.fc1._forward_pre_hooks.values())
    mask = model.fc1.weight_mask
    assert torch.equal(model.fc1.weight, before * mask)
    assert torch.equal(model.fc1.weight_orig[mask == 0], torch.zeros(int((mask == 0).sum())))
    copy.deepcopy(model)  # the weight attribute is not part of an autograd graph


def test_pruning_again_is_monotone_and_apply_masks_can_replace_a_mask():
    model = small_mlp()
    sp.magnitude_prune(model, 0.5)
    first = sp.current_masks(model)
    sp.magnitude_prune(model, 0.8)
    for name, mask in sp.current_masks(model).items():
        assert bool((mask <= first[name]).all()), "a weight pruned at 50% came back at 80%"
    revived = {n: torch.ones_like(m) for n, m in first.items()}
    sp.apply_masks(model, revived)
    assert sp.sparsity(model) > 0.75  # unmasked, but the hidden values were zeroed: nothing old comes back
    x = torch.randn(4, 8)
    model.train()
    out = model(x).sum()
    out.backward()
    assert model.fc1.weight_orig.grad.abs().sum() > 0  # revived weights are trainable again


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=1e-3),
], ids=["sgd-momentum", "adam"])
def test_masked_weights_stay_zero_through_optimiser_steps(make_opt):
    data = blobs()
    model = small_mlp()
    opt = make_opt(model.parameters())  # an optimiser built before the masks, which then carries momentum
    for xb, yb, _ in cu.data.batches(data.train, 32, shuffle=True, generator=torch.Generator().manual_seed(0)):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    sp.magnitude_prune(model, 0.7)
    masks = sp.current_masks(model)
    for _ in range(3):
        for xb, yb, _ in cu.data.batches(data.train, 32, shuffle=True, generator=torch.Generator().manual_seed(1)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
            sp.enforce_masks(model)
    sp.refresh(model)
    for name, module in cu.models.prunable_layers(model).items():
        assert torch.count_nonzero(module.weight[masks[name] == 0]) == 0
        assert torch.count_nonzero(module.weight_orig[masks[name] == 0]) == 0
    assert sp.sparsity(model) == pytest.approx(0.7, abs=1e-3)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_masked_weights_stay_zero_through_fit(optimizer):
    data = blobs()
    model = trained_mlp(data, epochs=3)
    sp.magnitude_prune(model, 0.6, "global")
    masks = sp.current_masks(model)
    cu.train.fit(model, data, 3, lr=0.05, optimizer=optimizer, momentum=0.9, weight_decay=1e-3,
                 after_step=sp.enforce_masks, progress=False)
    for name, module in cu.models.prunable_layers(model).items():
        assert torch.count_nonzero(module.weight[masks[name] == 0]) == 0
        assert torch.count_nonzero(module.weight_orig[masks[name] == 0]) == 0
        assert torch.count_nonzero(module.weight[masks[name] == 1]) == int(masks[name].sum())  # the rest trained


def test_masked_model_saved_loads_into_a_plain_model_with_the_same_outputs(tmp_path):
    model = small_mlp()
    sp.magnitude_prune(model, 0.75, "global")
    path = cu.checkpoints.save(model, tmp_path / "masked.pt")
    plain = cu.checkpoints.load(small_mlp(seed=5), path)
    x = torch.randn(10, 8)
    model.eval()
    assert torch.equal(plain(x), model(x))
    assert sp.sparsity(plain) == pytest.approx(0.75, abs=1e-3)
    assert not any(sp.is_masked(m) for m in plain.modules())


def test_remove_masks_leaves_a_plain_module_with_the_same_outputs():
    model = small_mlp()
    sp.magnitude_prune(model, 0.5, "global")
    x = torch.randn(6, 8)
    expected = model(x).detach()
    sp.remove_masks(model)
    for module in cu.models.prunable_layers(model).values():
        assert isinstance(module.weight, nn.Parameter)
        assert not hasattr(module, "weight_orig") and not hasattr(module, "weight_mask")
        assert not module._forward_pre_hooks
    assert set(model.state_dict()) == set(small_mlp().state_dict())
    assert torch.equal(model(x), expected)
    assert sp.current_masks(model) == {}


def test_bad_inputs_raise_clear_value_errors():
    model = small_mlp()
    for amount in (-0.1, 1.5, True, "half", float("nan")):
        with pytest.raises(ValueError, match="amount"):
            sp.magnitude_prune(model, amount)
    with pytest.raises(ValueError, match="unknown layer"):
        sp.magnitude_prune(model, 0.5, layers=["fc9"])
    with pytest.raises(ValueError, match="unknown layer"):
        sp.magnitude_prune(model, {"conv1": 0.5})
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        sp.magnitude_prune(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(ValueError, match="scope"):
        sp.magnitude_prune(model, 0.5, scope="everything")
    with pytest.raises(ValueError, match="scope='layer'"):
        sp.magnitude_prune(model, {"fc1": 0.5}, scope="global")
    with pytest.raises(ValueError, match="shape"):
        sp.apply_masks(model, {"fc1": torch.ones(3, 3)})
    data = blobs()
    with pytest.raises(ValueError, match="unknown schedule"):
        sp.iterative_prune(model, data, 0.5, schedule="exponential")
    with pytest.raises(ValueError, match="steps"):
        sp.iterative_prune(model, data, 0.5, steps=0)
    with pytest.raises(ValueError, match="amount"):
        sp.iterative_prune(model, data, 1.2)
    with pytest.raises(ValueError, match="sparsit"):
        sp.matmul_latency([0.5, 2.0])
    assert not any(sp.is_masked(m) for m in model.modules())  # nothing was changed by the failed calls


# --------------------------------------------------------------------------- schedules


def test_cubic_schedule_ends_middle_and_clamping():
    assert sp.cubic_sparsity(0, 10, 0.9) == 0.0
    assert sp.cubic_sparsity(10, 10, 0.9) == pytest.approx(0.9)
    assert sp.cubic_sparsity(5, 10, 0.9) == pytest.approx(0.9 - 0.9 / 8)  # (1 - 1/2)^3 = 1/8
    assert sp.cubic_sparsity(5, 10, 0.9, initial=0.5) == pytest.approx(0.9 - 0.4 / 8)
    assert sp.cubic_sparsity(20, 10, 0.9) == pytest.approx(0.9)
    assert sp.cubic_sparsity(-3, 10, 0.9, 0.2) == pytest.approx(0.2)
    values = [sp.cubic_sparsity(t, 10, 0.9) for t in range(11)]
    steps = [b - a for a, b in zip(values, values[1:])]
    assert all(s > 0 for s in steps) and all(a > b for a, b in zip(steps, steps[1:]))  # fast first, slow last


def test_han_schedule_is_geometric_in_density():
    assert sp.han_sparsity(0, 3, 0.92) == 0.0
    assert sp.han_sparsity(3, 3, 0.92) == pytest.approx(0.92)
    densities = [1 - sp.han_sparsity(k, 3, 0.92) for k in range(4)]
    ratios = [b / a for a, b in zip(densities, densities[1:])]
    assert ratios == pytest.approx([0.08 ** (1 / 3)] * 3)
    assert sp.han_sparsity(1, 2, 0.96, initial=0.5) == pytest.approx(1 - 0.5 * math.sqrt(0.08))


@pytest.mark.parametrize("schedule", ["han", "agp", "oneshot"])
def test_iterative_prune_reaches_the_target_without_reading_test(schedule):
    data = blobs()
    model = trained_mlp(data)
    log = sp.iterative_prune(model, NoTestSplit(data), 0.8, steps=3, finetune_epochs=2, schedule=schedule,
                             scope="global", lr=1e-2, batch_size=32, frequency=3, progress=False)
    assert sp.sparsity(model) == pytest.approx(0.8, abs=1e-3)
    trains = [r for r in log if r["event"] == "train"]
    assert [r["epoch"] for r in trains] == list(range(1, 7))  # the same 6 epochs for every schedule
    assert all(0.0 <= r["val_acc"] <= 1.0 for r in log)
    assert log[0]["event"] == "start" and log[0]["sparsity"] == 0.0
    sparsities = [r["sparsity"] for r in log]
    assert sparsities == sorted(sparsities)
    if schedule == "han":
        prunes = [r["sparsity"] for r in log if r["event"] == "prune"]
        assert prunes == pytest.approx([sp.han_sparsity(k, 3, 0.8) for k in (1, 2, 3)], abs=2e-3)
    if schedule == "agp":
        assert trains[0]["sparsity"] < trains[2]["sparsity"] < 0.8 + 1e-9  # gradual
    assert trains[-1]["val_acc"] > 0.9  # the blobs stay easy at 80% sparsity after retraining
    for module in cu.models.prunable_layers(model).values():
        assert torch.count_nonzero(module.weight_orig[module.weight_mask == 0]) == 0


def test_iterative_prune_per_layer_rates():
    data = blobs()
    model = trained_mlp(data, epochs=3)
    rates = {"fc1": 0.9, "fc2": 0.8, "fc3": 0.5}
    sp.iterative_prune(model, data, rates, steps=2, finetune_epochs=1, lr=1e-2, batch_size=64, progress=False)
    got = sp.layer_sparsity(model)
    for name, rate in rates.items():
        n = cu.models.prunable_layers(model)[name].weight.numel()
        assert got[name] == pytest.approx(round(rate * n) / n)


# --------------------------------------------------------------------------- the article's loop


def test_restore_loop_uses_the_shared_loop_with_masks():
    data = blobs()
    model = trained_mlp(data)
    before = copy.deepcopy(model.state_dict())
    pruned, log = sp.restore_loop(model, NoTestSplit(data), target=0.2, group=0.5, tolerance=0.02,
                                  finetune_epochs=1, lr=1e-2, batch_size=32, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the input is untouched
    assert any(sp.is_masked(m) for m in pruned.modules())  # masked, not removed: same shapes
    shapes = lambda m: {k: v.shape for k, v in cu.metrics.effective_state_dict(m).items()}  # noqa: E731
    assert shapes(pruned) == shapes(model)
    for row in log:
        assert row["decision"] == ("kept" if row["val_acc"] >= row["reference_val_acc"] - 0.02 else "restored")
    kept = [r for r in log if r["decision"] == "kept"]
    assert kept and kept[-1]["size_after"] == pytest.approx(1 - sp.sparsity(pruned))
    assert "stop" in log[-1]
    if log[-1]["stop"] == "target reached":
        assert 1 - sp.sparsity(pruned) <= 0.2 + 1e-9
    ref = cu.train.evaluate(model, data.val).accuracy
    assert cu.train.evaluate(pruned, data.val).accuracy >= ref - 0.02


def test_restore_loop_restores_when_accuracy_drops():
    data = blobs()
    model = trained_mlp(data)
    pruned, log = sp.restore_loop(model, data, target=0.0, group=1.0, tolerance=0.0, finetune_epochs=1,
                                  penalty=None, lr=1e-6, batch_size=64, progress=False)
    # zeroing a whole layer cannot keep the accuracy: every try is restored and the model keeps its weights
    assert log and all(r["decision"] == "restored" for r in log)
    assert len(log) == 3 and log[-1]["stop"].startswith("nothing more")
    assert sp.sparsity(pruned) == 0.0


# --------------------------------------------------------------------------- soft filter pruning


def test_prune_filters_soft_stays_trainable_hard_stays_zero():
    for hard in (False, True):
        model = small_cnn()
        zeroed = sp.prune_filters(model, 0.5, hard=hard)
        assert {n: len(v) for n, v in zeroed.items()} == {"conv1": 3, "conv2": 4}
        norms = sp.filter_norms(model.conv2)
        assert torch.count_nonzero(norms[zeroed["conv2"]]) == 0
        assert norms[[i for i in range(8) if i not in zeroed["conv2"]]].min() > 0
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        sp.refresh(model)
        regrown = torch.count_nonzero(sp.filter_norms(model.conv2)[zeroed["conv2"]])
        assert (regrown == 0) == hard  # soft: the gradient brings the zeroed filters back; hard: frozen


def test_soft_filter_prune_logs_and_masks_at_the_end():
    data = image_blobs()
    base = small_cnn()
    cu.train.fit(base, data, 3, lr=1e-2, batch_size=32, progress=False)
    results = {}
    for hard in (False, True):
        model, log = sp.soft_filter_prune(base, NoTestSplit(data), 0.5, 3, hard=hard, lr=1e-2, batch_size=32,
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
            assert sp.is_masked(module)
            assert torch.count_nonzero(sp.filter_norms(module)[final[name]]) == 0
    assert not any(sp.is_masked(m) for m in base.modules())  # the input model is untouched
    assert sp.layer_sparsity(results[False])["conv2"] == sp.layer_sparsity(results[True])["conv2"] == 0.5


# --------------------------------------------------------------------------- what zeros buy


def test_to_sparse_gives_the_same_outputs_with_csr_weights():
    torch.manual_seed(0)
    model = cu.models.lenet5(channels=(2, 4), hidden=(12, 10))
    sp.magnitude_prune(model, 0.8, "global")
    sparse = sp.to_sparse(model)
    x = torch.randn(5, 1, 28, 28)
    model.eval()
    assert torch.allclose(sparse(x), model(x), atol=1e-5)
    assert isinstance(sparse.fc1, sp.SparseLinear) and sparse.fc1.weight.layout == torch.sparse_csr
    assert sparse.fc1.weight.values().numel() == int(torch.count_nonzero(model.fc1.weight))
    assert isinstance(sparse.conv1, nn.Conv2d)  # convolutions stay dense
    assert sp.is_masked(model.fc1)  # the original keeps its masks


def test_storage_csr_wins_only_when_sparse_enough():
    dense = small_mlp(hidden=(200, 100), dim=300)
    sizes = sp.storage(dense)
    assert sizes["csr_bytes"] > sizes["dense_bytes"]  # 8 bytes per nonzero against 4 per weight
    pruned = sp.magnitude_prune(copy.deepcopy(dense), 0.9, "global")
    sizes = sp.storage(pruned)
    assert sizes["csr_bytes"] < 0.4 * sizes["dense_bytes"]
    assert sizes["dense_compressed_bytes"] < 0.5 * sizes["dense_bytes"]  # zeros compress
    assert sizes["dense_bytes"] == cu.metrics.state_dict_size(pruned).raw


def test_matmul_latency_rows():
    rows = sp.matmul_latency([0.0, 0.9], out_features=20, in_features=30, batch_size=4, threads=1,
                             min_run_time=0.01)
    assert [r["sparsity"] for r in rows] == [0.0, 0.9]
    for r in rows:
        assert r["dense_ms"] > 0 and r["csr_ms"] > 0
        assert r["csr_speedup"] == pytest.approx(r["dense_ms"] / r["csr_ms"])
        assert r["batch_size"] == 4 and r["threads"] == 1 and r["shape"] == "20x30"


# --------------------------------------------------------------------------- the widget's function


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_preview_and_explore(scope):
    data = blobs()
    model = trained_mlp(data)
    result = sp.preview(model, NoTestSplit(data), 0.75, scope)
    assert not any(sp.is_masked(m) for m in model.modules())
    assert result["sparsity"] == pytest.approx(0.75, abs=2e-3)
    assert result["val_acc"] == pytest.approx(cu.train.evaluate(result["model"], data.val).accuracy)
    assert result["dense_val_acc"] == pytest.approx(cu.train.evaluate(model, data.val).accuracy)
    expected = {n: 1 - s for n, s in sp.layer_sparsity(result["model"]).items()}
    assert result["remaining"] == pytest.approx(expected)
    if scope == "layer":
        assert all(abs(v - 0.25) < 0.02 for v in result["remaining"].values())
    fig = sp.explore(model, NoTestSplit(data), 0.75, scope)
    assert len(fig.axes) == 2
    assert f"{result['val_acc']:.2%}" in fig._suptitle.get_text()
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["fc1", "fc2", "fc3"]


# --------------------------------------------------------------------------- exercise checks


def test_check_global_threshold(capsys):
    # the solution of the notebook, copied verbatim
    def global_threshold(weights, amount):
        magnitudes = torch.cat([w.abs().flatten() for w in weights])
        k = round(amount * magnitudes.numel())
        return magnitudes.kthvalue(k).values.item()

    assert checks.check_global_threshold(global_threshold)
    assert "Correct" in capsys.readouterr().out

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
        assert not checks.check_global_threshold(wrong)
        assert hint in capsys.readouterr().out


def test_check_cubic_schedule(capsys):
    # the solution of the notebook, copied verbatim
    def cubic(step, total_steps, final, initial=0.0):
        t = min(max(step, 0), total_steps)
        return final + (initial - final) * (1 - t / total_steps) ** 3

    assert checks.check_cubic_schedule(cubic)
    assert "Correct" in capsys.readouterr().out
    assert checks.check_cubic_schedule(sp.cubic_sparsity)
    capsys.readouterr()

    def linear(step, total_steps, final, initial=0.0):
        return final + (initial - final) * (1 - step / total_steps)

    def swapped(step, total_steps, final, initial=0.0):
        return initial + (final - initial) * (1 - step / total_steps) ** 3

    def stub(step, total_steps, final, initial=0.0):
        ...

    for wrong, hint in ((linear, "straight line"), (swapped, "swapped"), (stub, "nothing yet"),
                        (lambda *a: 1 / 0, "ZeroDivisionError")):
        assert not checks.check_cubic_schedule(wrong)
        assert hint in capsys.readouterr().out


# --------------------------------------------------------------------------- sweep and mask_zeros


def test_sweep_measures_copies_on_validation_only():
    data = blobs()
    model = trained_mlp(data)
    rows = sp.sweep(model, NoTestSplit(data), [0.0, 0.5, 0.95], "global", finetune_epochs=1, train_size=100,
                    lr=1e-2, batch_size=32, progress=False)
    assert not any(sp.is_masked(m) for m in model.modules())
    assert [r["sparsity"] for r in rows] == pytest.approx([0.0, 0.5, 0.95], abs=2e-3)
    assert rows[0]["val_acc"] == pytest.approx(cu.train.evaluate(model, data.val).accuracy)
    assert all(set(r) == {"scope", "sparsity", "val_acc", "val_acc_finetuned"} for r in rows)
    assert rows[-1]["val_acc"] < rows[0]["val_acc"]  # 95% zeros one-shot hurts the tiny model
    plain = sp.sweep(model, data, [0.5], "layer")
    assert "val_acc_finetuned" not in plain[0]
    with pytest.raises(ValueError, match="finetune_epochs"):
        sp.sweep(model, data, [0.5], finetune_epochs=-1)
    with pytest.raises(ValueError, match="sparsities"):
        sp.sweep(model, data, [])


def test_mask_zeros_restores_masks_after_a_checkpoint(tmp_path):
    data = blobs()
    model = trained_mlp(data, epochs=2)
    sp.magnitude_prune(model, 0.6, "global")
    masks = sp.current_masks(model)
    zeros = sp.sparsity(model)
    path = cu.checkpoints.save(model, tmp_path / "pruned.pt")
    loaded = cu.checkpoints.load(small_mlp(seed=3), path)  # plain weights with zeros, no masks
    sp.mask_zeros(loaded)
    for name, mask in sp.current_masks(loaded).items():
        assert torch.equal(mask, masks[name])
    cu.train.fit(loaded, data, 2, lr=1e-2, after_step=sp.enforce_masks, progress=False)
    assert sp.sparsity(sp.refresh(loaded)) == zeros


def test_bad_inputs_of_the_loops_raise_before_any_work():
    data = blobs()
    model = small_mlp()
    with pytest.raises(ValueError, match="group"):
        sp.restore_loop(model, data, target=0.5, group=0.0)
    with pytest.raises(ValueError, match="target"):
        sp.restore_loop(model, data, target=1.5)
    with pytest.raises(ValueError, match="no Conv2d"):
        sp.prune_filters(model, 0.5)
    with pytest.raises(ValueError, match="amount"):
        sp.soft_filter_prune(small_cnn(), image_blobs(), 2.0, 1)
    with pytest.raises(ValueError, match="epochs"):
        sp.soft_filter_prune(small_cnn(), image_blobs(), 0.5, 0)
    with pytest.raises(ValueError, match="after_step"):
        sp.iterative_prune(model, data, 0.5, after_step=print)
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        sp.to_sparse(nn.Sequential(nn.ReLU()))


def test_masked_model_fresh_from_a_training_step_can_be_copied_and_measured():
    data = blobs()
    model = small_mlp()
    sp.magnitude_prune(model, 0.5)
    model.train()
    model(data.train.x[:8]).sum().backward()  # the hook leaves `weight` inside an autograd graph
    assert model.fc1.weight.grad_fn is not None
    with pytest.raises(RuntimeError):
        copy.deepcopy(model)  # why the module refreshes before copying
    result = sp.preview(model, data, 0.7)
    assert result["sparsity"] == pytest.approx(0.7, abs=3e-3)
    copy.deepcopy(model)  # refreshed: now a plain tensor
    assert sp.to_sparse(model).fc1.weight.layout == torch.sparse_csr
