import math

import pytest
import torch
from torch import nn

import course_utils as cu
from test_hard_pruning import identity_task
from conftest import NoTestSplit, blobs


def tiny_model(dim=8, classes=3, hidden=16):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def test_fit_learns_a_separable_problem_and_reports_each_epoch():
    data = blobs()
    model = tiny_model()
    before = cu.train.evaluate(model, data.val)
    history = cu.train.fit(model, data, epochs=5, lr=1e-2, batch_size=32)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    assert set(history[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    after = cu.train.evaluate(model, data.val)
    assert after.accuracy > 0.95 > before.accuracy
    assert math.isclose(after.accuracy, history[-1]["val_acc"]) and after.loss < before.loss
    assert not model.training


def test_fit_on_a_single_split_has_no_validation_columns():
    data = blobs()
    history = cu.train.fit(tiny_model(), data.train, epochs=1)
    assert "val_acc" not in history[0]


def test_fit_never_reads_the_test_split():
    cu.train.fit(tiny_model(), NoTestSplit(blobs()), epochs=2)


def test_same_seed_same_weights_and_different_seed_differs():
    data = blobs()
    a, b, c = tiny_model(), tiny_model(), tiny_model()
    cu.train.fit(a, data, 2, seed=7)
    cu.train.fit(b, data, 2, seed=7)
    cu.train.fit(c, data, 2, seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_sgd_and_cosine_schedule_end_at_zero_learning_rate():
    data = blobs()
    seen = []
    opt_holder = {}

    def make(params):
        opt_holder["opt"] = torch.optim.SGD(params, lr=0.1)
        return opt_holder["opt"]

    cu.train.fit(tiny_model(), data, 2, optimizer=make, schedule="cosine",
                 after_step=lambda m: seen.append(opt_holder["opt"].param_groups[0]["lr"]))
    assert seen[0] < 0.1 and seen[-1] == pytest.approx(0.0, abs=1e-12)


def test_onecycle_schedule_warms_up_then_anneals():
    data = blobs()
    seen = []
    opt_holder = {}

    def make(params):
        opt_holder["opt"] = torch.optim.Adam(params, lr=0.01)
        return opt_holder["opt"]

    cu.train.fit(tiny_model(), data, 4, optimizer=make, schedule="onecycle", batch_size=16,
                 after_step=lambda m: seen.append(opt_holder["opt"].param_groups[0]["lr"]))
    peak = seen.index(max(seen))
    assert seen[0] == pytest.approx(0.01 / 25, rel=0.1)            # starts at lr / 25
    assert max(seen) == pytest.approx(0.01, rel=0.02)               # peaks at lr
    assert 0.2 * len(seen) < peak < 0.4 * len(seen)                 # after about 30% of the steps
    assert seen[-1] < 1e-5                                          # and ends near zero
    with pytest.raises(ValueError, match="onecycle"):
        cu.train.fit(tiny_model(), data, 1, schedule="triangle")


def test_penalty_values_follow_the_formulas():
    model = tiny_model()
    weights = [model[0].weight, model[2].weight]  # biases are not penalised
    assert cu.train.penalty_value(model, "l1").item() == pytest.approx(sum(w.abs().sum().item() for w in weights))
    assert cu.train.penalty_value(model, "l2").item() == pytest.approx(sum(w.pow(2).sum().item() for w in weights))


def test_l1_penalty_drives_many_weights_near_zero_and_l2_shrinks_them():
    data = blobs()
    plain, l1, l2 = tiny_model(), tiny_model(), tiny_model()
    settings = dict(epochs=8, lr=0.1, optimizer="sgd")
    cu.train.fit(plain, data, **settings)
    cu.train.fit(l1, data, **settings, penalty="l1", penalty_weight=2e-2)
    cu.train.fit(l2, data, **settings, penalty="l2", penalty_weight=2e-2)
    small = lambda m: (m[0].weight.abs() < 0.05).float().mean().item()  # noqa: E731
    assert small(l1) > 0.4 and small(l1) > 2 * small(plain)
    assert cu.train.penalty_value(l2, "l2") < 0.7 * cu.train.penalty_value(plain, "l2")
    assert cu.train.evaluate(l1, data.val).accuracy > 0.9  # sparse, and still right


def test_loss_fn_receives_the_batch_index_and_hooks_run_as_documented():
    data = blobs()
    calls = {"loss": 0, "step": 0, "epoch": []}

    def loss_fn(out, y, x, index):
        assert torch.equal(data.train.y[index], y) and torch.equal(data.train.x[index], x)
        calls["loss"] += 1
        return nn.functional.cross_entropy(out, y)

    cu.train.fit(tiny_model(), data, 3, batch_size=50, loss_fn=loss_fn,
                 after_step=lambda m: calls.__setitem__("step", calls["step"] + 1),
                 after_epoch=lambda m, e: calls["epoch"].append(e))
    steps = 3 * math.ceil(len(data.train) / 50)
    assert calls["loss"] == steps and calls["step"] == steps and calls["epoch"] == [1, 2, 3]


def test_callable_penalty_is_added_to_the_loss():
    data = blobs()
    plain, penalised = tiny_model(), tiny_model()
    cu.train.fit(plain, data, 3, lr=0.01, optimizer="sgd")
    cu.train.fit(penalised, data, 3, lr=0.01, optimizer="sgd",
                 penalty=lambda m: m[2].bias.pow(2).sum(), penalty_weight=10.0)
    assert penalised[2].bias.abs().max() < 0.3 * plain[2].bias.abs().max()


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "epochs"), (dict(epochs=-1), "epochs"), (dict(epochs=1.5), "epochs"),
    (dict(epochs=True), "epochs"), (dict(epochs=1, lr=0), "lr"), (dict(epochs=1, lr=-1e-3), "lr"),
    (dict(epochs=1, lr=float("nan")), "lr"), (dict(epochs=1, penalty="l3"), "penalty"),
    (dict(epochs=1, optimizer="rmsprop"), "optimizer"), (dict(epochs=1, schedule="step"), "schedule"),
    (dict(epochs=1, penalty="l1", penalty_weight=-1), "penalty_weight"),
])
def test_bad_arguments_are_refused_before_training(kwargs, match):
    model = tiny_model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=match):
        cu.train.fit(model, blobs(), **kwargs)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_fit_refuses_data_that_is_not_a_split():
    with pytest.raises(ValueError, match="Splits"):
        cu.train.fit(tiny_model(), [1, 2, 3], 1)


def test_evaluate_on_a_hand_built_model():
    split = cu.data.Split(torch.eye(3), torch.tensor([0, 1, 1]))
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3) * 10)  # predicts the position of the one: 0, 1, 2
    result = cu.train.evaluate(model, split)
    assert result.accuracy == pytest.approx(2 / 3)
    expected = nn.functional.cross_entropy(torch.eye(3) * 10, split.y).item()
    assert result.loss == pytest.approx(expected)
    with pytest.raises(ValueError, match="empty"):
        cu.train.evaluate(model, cu.data.Split(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)))


def test_predict_keeps_the_training_mode_and_batches():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    model.train()
    x = torch.randn(10, 3)
    out = cu.train.predict(model, x, batch_size=3)
    assert out.shape == (10, 3) and model.training
    # dropout off in eval mode (with dropout on, half the values would be zero and the rest doubled); batches of 3
    # and of 10 may use different matrix kernels, so equal up to float rounding
    assert torch.allclose(out, cu.train.predict(model, x), rtol=1e-5, atol=1e-6)


def test_default_device_is_cpu_here_and_set_seed_is_reproducible():
    assert cu.train.default_device().type in ("cpu", "cuda", "mps")
    g = cu.train.set_seed(3)
    a = torch.rand(3, generator=g), torch.rand(3)
    g = cu.train.set_seed(3)
    b = torch.rand(3, generator=g), torch.rand(3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------- evaluate_and_restore


def test_finetune_reads_only_the_training_split():
    model, data = identity_task(dead=0)

    class TrainOnly:
        train = data.train

        @property
        def val(self):
            raise AssertionError("val read")

        test = val

    history = cu.train.finetune(model, TrainOnly(), 1, examples=64)
    assert len(history) == 1 and "val_acc" not in history[0]
