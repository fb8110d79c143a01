"""Tests of course_utils.sparse: CSR weights give the same outputs, and what they save on disk."""

from __future__ import annotations
import copy
import torch
from torch import nn
import course_utils as cu


def small_mlp(seed: int = 0, hidden=(16, 12), dim: int = 8, classes: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    return cu.models.mlp(hidden=hidden, in_features=dim, classes=classes)


def test_to_sparse_gives_the_same_outputs_with_csr_weights():
    torch.manual_seed(0)
    model = cu.models.lenet5(channels=(2, 4), hidden=(12, 10))
    cu.masks.magnitude_prune(model, 0.8, "global")
    sparse = cu.sparse.to_sparse(model)
    x = torch.randn(5, 1, 28, 28)
    model.eval()
    assert torch.allclose(sparse(x), model(x), atol=1e-5)
    assert isinstance(sparse.fc1, cu.sparse.SparseLinear) and sparse.fc1.weight.layout == torch.sparse_csr
    assert sparse.fc1.weight.values().numel() == int(torch.count_nonzero(model.fc1.weight))
    assert isinstance(sparse.conv1, nn.Conv2d)  # convolutions stay dense
    assert cu.masks.is_masked(model.fc1)  # the original keeps its masks


def test_storage_csr_wins_only_when_sparse_enough():
    dense = small_mlp(hidden=(200, 100), dim=300)
    sizes = cu.sparse.storage(dense)
    assert sizes["csr_bytes"] > sizes["dense_bytes"]  # 8 bytes per nonzero against 4 per weight
    pruned = cu.masks.magnitude_prune(copy.deepcopy(dense), 0.9, "global")
    sizes = cu.sparse.storage(pruned)
    assert sizes["csr_bytes"] < 0.4 * sizes["dense_bytes"]
    assert sizes["dense_compressed_bytes"] < 0.5 * sizes["dense_bytes"]  # zeros compress
    assert sizes["dense_bytes"] == cu.metrics.state_dict_size(pruned).raw
