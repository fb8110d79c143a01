"""Tests of course_utils.pruning: the evaluate-and-restore loop and the sweep that hard and soft pruning share."""

import pytest
import torch
from torch import nn
from torch.nn.utils import prune
import course_utils as cu
from conftest import NoTestSplit, blobs


def tiny_model(dim=8, classes=3, hidden=16):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def test_evaluate_and_restore_restores_a_harmful_change_and_keeps_a_harmless_one():
    data, model, candidates, apply = _restore_setup()
    final, log = cu.pruning.evaluate_and_restore(
        model, NoTestSplit(data), candidates=candidates, apply=apply, size=lambda m: m.size_left,
        target=0.5, tolerance=0.01)
    decisions = [(row["round"], row["candidate"], row["decision"]) for row in log]
    assert decisions == [(1, "harmful", "restored"), (1, "harmless", "kept"),
                         (2, "harmful", "restored"), (2, "harmless", "kept")]
    assert log[-1]["stop"] == "target reached" and final.size_left == 0.5
    assert model.size_left == 1.0  # the original is untouched
    assert cu.train.evaluate(final, data.val).accuracy >= log[0]["reference_val_acc"] - 0.01
    assert log[0]["val_acc"] < 0.5  # the harmful trial really was bad


def test_evaluate_and_restore_stops_when_nothing_can_be_removed():
    data, model, _, apply = _restore_setup()
    finetuned = []
    final, log = cu.pruning.evaluate_and_restore(
        model, data, candidates=lambda m: iter(["harmful"]), apply=apply, size=lambda m: m.size_left,
        target=0.0, tolerance=0.01, finetune=lambda m: finetuned.append(m))
    assert [row["decision"] for row in log] == ["restored"]
    assert "nothing more" in log[-1]["stop"] and len(finetuned) == 1
    assert final is not model and all(torch.equal(a, b) for a, b in zip(final.parameters(), model.parameters()))


def test_evaluate_and_restore_refuses_bad_targets():
    data, model, candidates, apply = _restore_setup()
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="target"):
            cu.pruning.evaluate_and_restore(model, data, candidates=candidates, apply=apply,
                                          size=lambda m: 1.0, target=bad)


def test_evaluate_and_restore_copies_a_masked_model_used_with_gradients():
    data = blobs()
    model = tiny_model()
    prune.l1_unstructured(model[0], "weight", amount=0.3)
    cu.train.fit(model, data, 1, validate=False)  # leaves `weight` attached to an autograd graph
    model(data.train.x[:2]).sum().backward()
    final, log = cu.pruning.evaluate_and_restore(
        model, data, candidates=lambda m: iter(["nothing"]), apply=lambda m, c: m,
        size=lambda m: 1.0, target=0.5, tolerance=1.0, max_rounds=1)
    assert log[0]["decision"] == "kept" and final is not model


def _restore_setup():
    data = blobs()
    model = tiny_model()
    cu.train.fit(model, data, 5, lr=1e-2)
    model.size_left = 1.0

    def candidates(m):
        yield "harmful"   # zeroes the output layer: accuracy falls to chance
        yield "harmless"  # removes nothing that matters

    def apply(m, candidate):
        if candidate == "harmful":
            with torch.no_grad():
                m[2].weight.zero_()
                m[2].bias.zero_()
        m.size_left -= 0.25
        return m

    return data, model, candidates, apply
