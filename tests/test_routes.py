"""Notebook 05's routes: each sized to a byte budget by measuring its file, trained the same way, compared fairly."""

from __future__ import annotations

import copy

import pytest
import torch

import course_utils as cu
from course_utils.routes import ROUTES


@pytest.fixture(scope="module")
def small(mnist):
    """A tenth of MNIST's training images, a small validation and test split."""
    return cu.data.Splits(mnist.train.subset(3000), mnist.val.subset(500), mnist.test.subset(500), mnist.classes)


@pytest.fixture(scope="module")
def setup(small):
    cu.train.set_seed(0)
    dense = cu.models.mlp()
    cu.train.fit(dense, small, 1, lr=2e-3, batch_size=256, progress=False, validate=False)
    teacher_logits = cu.train.predict(dense, small.train.x)
    return cu.routes.Setup(small, dense, teacher_logits, dense_epochs=1, finetune_epochs=2, bits=3, batch_size=128)


def test_stored_bytes_is_the_size_of_the_file_each_kind_of_model_writes(tmp_path):
    model = cu.models.mlp(hidden=(20, 20))
    assert cu.routes.stored_bytes(model) == cu.metrics.state_dict_size(model).raw
    masked = cu.masks.magnitude_prune(copy.deepcopy(model), 0.9, scope="global")
    written = cu.quantization.save_compressed(masked, tmp_path / "m.dc")
    assert cu.routes.stored_bytes(masked) == written == (tmp_path / "m.dc").stat().st_size
    assert written < cu.routes.stored_bytes(model) / 3
    int8 = cu.quantization.int8_dynamic(model)
    assert cu.routes.stored_bytes(int8) < cu.routes.stored_bytes(model) / 2.5


def test_largest_finds_the_last_integer_that_fits_and_refuses_an_impossible_budget():
    assert cu.routes.largest(1, 300, lambda x: x * x <= 1000) == 31
    assert cu.routes.largest(1, 300, lambda x: True) == 300
    assert cu.routes.largest(5, 5, lambda x: True) == 5
    with pytest.raises(ValueError, match="too small"):
        cu.routes.largest(1, 300, lambda x: False, "fc1 width")


def test_mlp_shape_keeps_fc2_as_wide_as_fc1_up_to_its_width_or_in_proportion():
    assert cu.routes.mlp_shape(31) == (31, 31)
    assert cu.routes.mlp_shape(150) == (150, 100)
    assert cu.routes.mlp_shape(30, proportional=True) == (30, 10)
    assert cu.routes.mlp_shape(2, proportional=True) == (2, 1)


@pytest.mark.parametrize("route", ["small, from scratch", "small, from scratch, int8", "soft pruning, sparse file"])
def test_size_for_is_the_largest_size_whose_file_fits(setup, route):
    budget = 30_000
    size = cu.routes.size_for(route, setup, budget)

    def file_of(s):
        if route == "soft pruning, sparse file":
            model = cu.masks.magnitude_prune(copy.deepcopy(setup.dense), 1 - s / 1000, scope="global")
        else:
            model = cu.models.mlp(hidden=cu.routes.mlp_shape(s))
            if route.endswith("int8"):
                model = cu.quantization.int8_dynamic(model)
        return cu.routes.stored_bytes(model)

    assert file_of(size) <= budget < file_of(size + 1)


def test_unknown_routes_and_missing_pieces_are_refused_with_a_message(setup):
    with pytest.raises(ValueError, match="unknown route"):
        cu.routes.train_route("magic", setup, 30_000, 0, 1e-3)
    with pytest.raises(ValueError, match="no budget"):
        cu.routes.train_route("dense, trained as long again", setup, 30_000, 0, 1e-3)
    with pytest.raises(ValueError, match="no budget"):
        cu.routes.train_route("hard pruning", setup, None, 0, 1e-3)
    no_teacher = copy.copy(setup)
    no_teacher.teacher_logits = None
    with pytest.raises(ValueError, match="teacher"):
        cu.routes.train_route("distillation", no_teacher, 30_000, 0, 1e-3)
    with pytest.raises(ValueError, match="too small"):
        cu.routes.size_for("small, from scratch", setup, 100)


@pytest.mark.parametrize("route", [r for r in ROUTES if r != "dense, trained as long again"])
def test_every_route_trains_a_model_whose_file_fits_the_budget(setup, route):
    budget = 120_000
    model, seconds = cu.routes.train_route(route, setup, budget, 0, 4e-3)
    assert seconds > 0 and not model.training
    assert cu.routes.stored_bytes(model) <= budget
    errors = cu.train.count_errors(model, setup.data.val)
    assert errors < 0.5 * len(setup.data.val.y), f"{route}: {errors} validation errors, it did not learn"
    if route in ("hard pruning", "hard pruning + distillation", "small, from scratch", "distillation"):
        widths = [layer.out_features for layer in cu.models.prunable_layers(model).values()][:2]
        assert tuple(widths) == cu.routes.mlp_shape(cu.routes.size_for(route, setup, budget))
    if route in ("soft pruning, sparse file", "deep compression"):
        deployed = cu.routes.as_deployed(model)
        x = setup.data.test.x[:50]
        assert torch.allclose(deployed(x), model(x), atol=1e-5)
        assert cu.metrics.sparsity(model) > (0.5 if route.startswith("soft") else 0.1)  # 3-bit indices: keeps more


def test_deep_compression_keeps_pruned_weights_at_zero_and_uses_the_codebook(setup):
    model, _ = cu.routes.train_route("deep compression", setup, 30_000, 1, 2e-3)
    shared = cu.weight_sharing.shared_layers(model)
    assert shared and all(len(layer.centroids) == 2**setup.bits for layer in shared.values())
    for layer in cu.models.prunable_layers(model).values():
        assert len(torch.unique(layer.weight[layer.weight != 0])) <= 2**setup.bits


def test_the_same_seed_gives_the_same_model(setup):
    a, _ = cu.routes.train_route("hard pruning", setup, 30_000, 3, 2e-3)
    b, _ = cu.routes.train_route("hard pruning", setup, 30_000, 3, 2e-3)
    c, _ = cu.routes.train_route("hard pruning", setup, 30_000, 4, 2e-3)
    x = setup.data.val.x[:100]
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))


def test_compare_chooses_the_rate_on_validation_and_repeats_the_other_seeds(setup, monkeypatch):
    calls = []
    real = cu.routes.train_route

    def spy(route, s, budget, seed, lr):
        calls.append((route, budget, seed, lr))
        return real(route, s, budget, seed, lr)

    monkeypatch.setattr(cu.routes, "train_route", spy)
    rows = cu.routes.compare(setup, {"none": None, "small": 30_000}, ["dense, trained as long again", "hard pruning"],
                             (1e-4, 3e-3), (0, 1), log=None)
    assert [(r["budget"], r["route"]) for r in rows] == [("none", "dense, trained as long again"),
                                                         ("small", "hard pruning")]
    for row in rows:
        assert row["lr"] == min(row["val_errors"], key=row["val_errors"].get)
        assert len(row["test_errors"]) == len(row["models"]) == len(row["bytes"]) == 2
        assert row["test_errors"][0] == cu.train.count_errors(row["models"][0], setup.data.test)
        assert row["val_per_seed"] == [cu.train.count_errors(m, setup.data.val) for m in row["models"]]
    hard = rows[1]
    assert hard["val_errors"][3e-3] < hard["val_errors"][1e-4]  # a pruned net needs retraining: the larger rate
    assert max(hard["bytes"]) <= 30_000 and hard["keeps"].endswith("float32")
    assert [c[2:] for c in calls if c[0] == "hard pruning"] == [(0, 1e-4), (0, 3e-3), (1, hard["lr"])]


def test_compare_can_choose_each_rate_at_one_budget_and_keep_it_at_the_others(setup, monkeypatch):
    calls = []
    real = cu.routes.train_route

    def spy(route, s, budget, seed, lr):
        calls.append((budget, seed, lr))
        return real(route, s, budget, seed, lr)

    monkeypatch.setattr(cu.routes, "train_route", spy)
    rows = cu.routes.compare(setup, {"large": 60_000, "small": 30_000}, ["hard pruning"], (1e-4, 3e-3), (0, 1),
                             log=None, choose_at="small")
    assert [r["budget"] for r in rows] == ["large", "small"]  # the order of the budgets, whichever chose
    large, small = rows
    assert small["lr"] == 3e-3 == large["lr"] and list(large["val_errors"]) == [3e-3]
    assert calls == [(30_000, 0, 1e-4), (30_000, 0, 3e-3), (30_000, 1, 3e-3), (60_000, 0, 3e-3), (60_000, 1, 3e-3)]
    with pytest.raises(ValueError, match="choose_at"):
        cu.routes.compare(setup, {"small": 30_000}, ["hard pruning"], (3e-3,), (0,), log=None, choose_at="tiny")


def test_describe_says_what_a_route_keeps():
    assert cu.routes.describe("small, from scratch, int8", 113) == "784-113-100-10, int8"
    assert cu.routes.describe("hard pruning", 30, proportional=True) == "784-30-10-10, float32"
    assert cu.routes.describe("deep compression", 106) == "10.6% of the weights, shared"
    assert cu.routes.describe("dense, trained as long again", None).startswith("784-300-100-10")


def test_every_route_says_where_it_starts_and_whether_it_uses_the_teacher():
    scratch = {r for r in ROUTES if cu.routes.starts_from(r) == "random weights"}
    assert scratch == {"small, from scratch", "distillation", "small, from scratch, int8", "distillation + int8"}
    assert {cu.routes.starts_from(r) for r in ROUTES} - {"random weights"} == {"the dense model"}
    teacher = {r for r in ROUTES if cu.routes.uses_teacher(r)}
    assert teacher == {"distillation", "distillation + int8", "hard pruning + distillation", "prune + distil + int8"}
    with pytest.raises(ValueError, match="unknown route"):
        cu.routes.uses_teacher("lottery ticket")


def test_add_seeds_repeats_a_route_at_its_chosen_rate(setup):
    (row,) = cu.routes.compare(setup, {"small": 30_000}, ["hard pruning"], (3e-3,), (0,), log=None)
    cu.routes.add_seeds(setup, row, (5, 6))
    assert len(row["test_errors"]) == len(row["models"]) == len(row["seconds"]) == len(row["bytes"]) == 3
    assert len(row["val_per_seed"]) == 3
    again, _ = cu.routes.train_route("hard pruning", setup, 30_000, 6, 3e-3)
    assert row["test_errors"][2] == cu.train.count_errors(again, setup.data.test)
