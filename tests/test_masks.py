"""Tests of course_utils.masks: masks computed, installed, kept through training, removed, restored from checkpoints."""

from __future__ import annotations
import copy
from collections import OrderedDict
import pytest
import torch
from torch import nn
from torch.nn.utils import prune
import course_utils as cu
from conftest import blobs


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


def trained_mlp(data, epochs: int = 15) -> nn.Sequential:
    model = small_mlp()
    cu.train.fit(model, data, epochs, lr=1e-2, batch_size=32, progress=False)
    return model


@pytest.mark.parametrize("amount", [0.0, 0.3, 0.7, 1.0])
def test_layer_masks_match_torch_prune_and_kth_magnitude(amount):
    ours, theirs = small_mlp(), small_mlp()
    cu.masks.magnitude_prune(ours, amount, "layer")
    for module in cu.models.prunable_layers(theirs).values():
        prune.l1_unstructured(module, "weight", amount)
    for (name, mine), other in zip(cu.masks.current_masks(ours).items(), cu.masks.current_masks(theirs).values()):
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
    cu.masks.magnitude_prune(ours, amount, "global")
    prune.global_unstructured([(m, "weight") for m in cu.models.prunable_layers(theirs).values()],
                              prune.L1Unstructured, amount=amount)
    for mine, other in zip(cu.masks.current_masks(ours).values(), cu.masks.current_masks(theirs).values()):
        assert torch.equal(mine, other)
    all_w = torch.cat([m.weight.detach().abs().flatten() for m in cu.models.prunable_layers(small_mlp()).values()])
    k = round(amount * all_w.numel())
    assert cu.metrics.sparsity(ours) == pytest.approx(k / all_w.numel(), abs=1e-12)
    kth = all_w.kthvalue(k).values
    for name, mask in cu.masks.current_masks(ours).items():
        w = cu.models.prunable_layers(small_mlp())[name].weight.detach().abs()
        assert torch.equal(mask == 0, w <= kth)


def test_exact_sparsity_layer_and_global_and_per_layer_rates():
    model = small_mlp()
    cu.masks.magnitude_prune(model, 0.5, "layer")
    sizes = {n: m.weight.numel() for n, m in cu.models.prunable_layers(model).items()}
    assert cu.metrics.layer_sparsity(model) == {n: round(0.5 * s) / s for n, s in sizes.items()}
    model = small_mlp()
    cu.masks.magnitude_prune(model, {"fc1": 0.9, "fc3": 0.25})
    got = cu.metrics.layer_sparsity(model)
    assert got["fc1"] == pytest.approx(round(0.9 * sizes["fc1"]) / sizes["fc1"])
    assert got["fc2"] == 0.0 and not cu.masks.is_masked(model.fc2)
    assert got["fc3"] == pytest.approx(round(0.25 * sizes["fc3"]) / sizes["fc3"])
    model = small_mlp()
    cu.masks.magnitude_prune(model, 0.6, "global")
    total = sum(sizes.values())
    assert cu.metrics.sparsity(model) == pytest.approx(round(0.6 * total) / total)
    assert len(set(cu.metrics.layer_sparsity(model).values())) > 1  # global: layers differ


def test_mask_internals_are_torch_prune_and_weight_orig_is_zeroed():
    model = small_mlp()
    before = model.fc1.weight.detach().clone()
    cu.masks.magnitude_prune(model, 0.5, layers=["fc1"])
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
    cu.masks.magnitude_prune(model, 0.5)
    first = cu.masks.current_masks(model)
    cu.masks.magnitude_prune(model, 0.8)
    for name, mask in cu.masks.current_masks(model).items():
        assert bool((mask <= first[name]).all()), "a weight pruned at 50% came back at 80%"
    revived = {n: torch.ones_like(m) for n, m in first.items()}
    cu.masks.apply_masks(model, revived)
    assert cu.metrics.sparsity(model) > 0.75  # unmasked, but the hidden values were zeroed: nothing old comes back
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
    cu.masks.magnitude_prune(model, 0.7)
    masks = cu.masks.current_masks(model)
    for _ in range(3):
        for xb, yb, _ in cu.data.batches(data.train, 32, shuffle=True, generator=torch.Generator().manual_seed(1)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
            cu.masks.enforce_masks(model)
    cu.masks.refresh_masks(model)
    for name, module in cu.models.prunable_layers(model).items():
        assert torch.count_nonzero(module.weight[masks[name] == 0]) == 0
        assert torch.count_nonzero(module.weight_orig[masks[name] == 0]) == 0
    assert cu.metrics.sparsity(model) == pytest.approx(0.7, abs=1e-3)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_masked_weights_stay_zero_through_fit(optimizer):
    data = blobs()
    model = trained_mlp(data, epochs=3)
    cu.masks.magnitude_prune(model, 0.6, "global")
    masks = cu.masks.current_masks(model)
    cu.train.fit(model, data, 3, lr=0.05, optimizer=optimizer, momentum=0.9, weight_decay=1e-3,
                 after_step=cu.masks.enforce_masks, progress=False)
    for name, module in cu.models.prunable_layers(model).items():
        assert torch.count_nonzero(module.weight[masks[name] == 0]) == 0
        assert torch.count_nonzero(module.weight_orig[masks[name] == 0]) == 0
        assert torch.count_nonzero(module.weight[masks[name] == 1]) == int(masks[name].sum())  # the rest trained


def test_masked_model_saved_loads_into_a_plain_model_with_the_same_outputs(tmp_path):
    model = small_mlp()
    cu.masks.magnitude_prune(model, 0.75, "global")
    path = cu.checkpoints.save(model, tmp_path / "masked.pt")
    plain = cu.checkpoints.load(small_mlp(seed=5), path)
    x = torch.randn(10, 8)
    model.eval()
    assert torch.equal(plain(x), model(x))
    assert cu.metrics.sparsity(plain) == pytest.approx(0.75, abs=1e-3)
    assert not any(cu.masks.is_masked(m) for m in plain.modules())


def test_remove_masks_leaves_a_plain_module_with_the_same_outputs():
    model = small_mlp()
    cu.masks.magnitude_prune(model, 0.5, "global")
    x = torch.randn(6, 8)
    expected = model(x).detach()
    cu.masks.remove_masks(model)
    for module in cu.models.prunable_layers(model).values():
        assert isinstance(module.weight, nn.Parameter)
        assert not hasattr(module, "weight_orig") and not hasattr(module, "weight_mask")
        assert not module._forward_pre_hooks
    assert set(model.state_dict()) == set(small_mlp().state_dict())
    assert torch.equal(model(x), expected)
    assert cu.masks.current_masks(model) == {}


def test_mask_zeros_restores_masks_after_a_checkpoint(tmp_path):
    data = blobs()
    model = trained_mlp(data, epochs=2)
    cu.masks.magnitude_prune(model, 0.6, "global")
    masks = cu.masks.current_masks(model)
    zeros = cu.metrics.sparsity(model)
    path = cu.checkpoints.save(model, tmp_path / "pruned.pt")
    loaded = cu.checkpoints.load(small_mlp(seed=3), path)  # plain weights with zeros, no masks
    cu.masks.mask_zeros(loaded)
    for name, mask in cu.masks.current_masks(loaded).items():
        assert torch.equal(mask, masks[name])
    cu.train.fit(loaded, data, 2, lr=1e-2, after_step=cu.masks.enforce_masks, progress=False)
    assert cu.metrics.sparsity(cu.masks.refresh_masks(loaded)) == zeros


def test_masked_model_fresh_from_a_training_step_can_be_copied_and_measured():
    data = blobs()
    model = small_mlp()
    cu.masks.magnitude_prune(model, 0.5)
    model.train()
    model(data.train.x[:8]).sum().backward()  # the hook leaves `weight` inside an autograd graph
    assert model.fc1.weight.grad_fn is not None
    with pytest.raises(RuntimeError):
        copy.deepcopy(model)  # why the module refreshes before copying
    result = cu.widgets.soft_pruning_preview(model, data, 0.7)
    assert result["sparsity"] == pytest.approx(0.7, abs=3e-3)
    copy.deepcopy(model)  # refreshed: now a plain tensor
    assert cu.sparse.to_sparse(model).fc1.weight.layout == torch.sparse_csr


def test_effective_state_dict_merges_masks():
    model = cu.models.mlp(hidden=(20,))
    prune.random_unstructured(model.fc1, "weight", amount=0.3)
    state = cu.masks.effective_state_dict(model)
    assert set(state) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    assert torch.equal(state["fc1.weight"], model.fc1.weight_orig * model.fc1.weight_mask)


def test_effective_weights_do_not_lag_behind_an_optimiser_step():
    model = cu.models.mlp(hidden=(8,), in_features=4, classes=2)
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()  # weight_orig changed; the hook-computed `weight` attribute is refreshed only at the next forward
    expected = model.fc1.weight_orig.detach() * model.fc1.weight_mask
    assert not torch.equal(model.fc1.weight.detach(), expected)
    assert torch.equal(cu.masks.effective_state_dict(model)["fc1.weight"], expected)
    assert torch.equal(cu.masks.effective_weight(model.fc1), expected)
