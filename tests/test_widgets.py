"""Tests of the functions behind the notebooks' sliders (course_utils.widgets), without a browser."""

import pytest
import torch

import course_utils as cu
from conftest import NoTestSplit, blobs
from test_hard_pruning import identity_task
from test_soft_pruning import trained_mlp


def test_slider_result():
    model, data = identity_task(dead=4)
    cache = {}
    result = cu.widgets.hard_pruning_result(model, data, {"fc1": 0.5, "fc2": 0.25}, finetune_examples=64, min_run_time=0.01,
                              cache=cache)
    assert result["neurons"] == {"fc1": "4/8", "fc2": "6/8"}
    assert result["params"] == 4 * 4 + 4 + 6 * 4 + 6 + 4 * 6 + 4
    assert result["val_acc_no_finetune"] == 1.0 and 0.9 <= result["val_acc"] <= 1.0
    assert result["latency_ms"] > 0 and result["threads"] >= 1 and result["batch_size"] == 256
    assert result["macs"] == 4 * 4 + 4 * 6 + 6 * 4
    assert cu.widgets.hard_pruning_result(model, data, {"fc2": 0.25, "fc1": 0.5}, finetune_examples=64, cache=cache) is result


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_preview_and_explore(scope):
    data = blobs()
    model = trained_mlp(data)
    result = cu.widgets.soft_pruning_preview(model, NoTestSplit(data), 0.75, scope)
    assert not any(cu.masks.is_masked(m) for m in model.modules())
    assert result["sparsity"] == pytest.approx(0.75, abs=2e-3)
    assert result["val_acc"] == pytest.approx(cu.train.evaluate(result["model"], data.val).accuracy)
    assert result["dense_val_acc"] == pytest.approx(cu.train.evaluate(model, data.val).accuracy)
    expected = {n: 1 - s for n, s in cu.metrics.layer_sparsity(result["model"]).items()}
    assert result["remaining"] == pytest.approx(expected)
    if scope == "layer":
        assert all(abs(v - 0.25) < 0.02 for v in result["remaining"].values())
    fig = cu.widgets.soft_pruning_figure(model, NoTestSplit(data), 0.75, scope)
    assert len(fig.axes) == 2
    assert f"{result['val_acc']:.2%}" in fig._suptitle.get_text()
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["fc1", "fc2", "fc3"]


def test_quantization_result_and_figure_leave_the_model_alone():
    data = blobs()
    model = trained_mlp(data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cache = {}
    result = cu.widgets.quantization_result(model, data, 2, cache=cache)
    assert len(result["centroids"]) == 4 and result["weights"].numel() == model.fc1.weight.numel()
    assert 0.0 <= result["val_acc_linear"] <= 1.0 and 0.0 <= result["val_acc_kmeans"] <= 1.0
    assert cu.widgets.quantization_result(model, data, 2, cache=cache) is result
    eight = cu.widgets.quantization_result(model, data, 8)
    full = cu.train.evaluate(model, data.val).accuracy
    assert abs(eight["val_acc_linear"] - full) <= 0.02 and abs(eight["val_acc_kmeans"] - full) <= 0.02
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    fig = cu.widgets.quantization_figure(model, data, 3, cache=cache)
    assert len(fig.axes[0].lines) == 8 and "3 bits" in fig.axes[0].get_title()
