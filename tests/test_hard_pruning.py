"""Tests of course_utils.hard_pruning and its exercise checks (tiny synthetic models and data only)."""

from collections import OrderedDict

import pytest
import torch
import torch.nn.utils.prune
from torch import nn

import course_utils as cu
from course_utils import models, train
from course_utils.data import Split


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics, so that BatchNorm is not the identity; eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.copy_(torch.randn(module.num_features, generator=gen))
                module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=gen))
    return model.eval()


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def mlp_with_bn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(16, 12)), ("bn1", nn.BatchNorm1d(12)), ("act1", nn.Tanh()),
        ("drop1", nn.Dropout(0.3)), ("fc2", nn.Linear(12, 9)), ("act2", nn.Sigmoid()), ("fc3", nn.Linear(9, 3)),
    ]))


def small_cnn(batchnorm: bool, seed=0):
    torch.manual_seed(seed)
    return models.lenet5(channels=(4, 6), hidden=(10, 8), batchnorm=batchnorm)




# --------------------------------------------------------------------------- removal equals masking


# --------------------------------------------------------------------------- shapes, counts, original untouched


def test_prune_neurons_removes_the_lowest_scored():
    model = models.mlp(hidden=(10, 6), in_features=8, classes=3)
    with torch.no_grad():
        model.fc1.weight.copy_(torch.arange(1, 11, dtype=torch.float32)[:, None].repeat(1, 8)
                               * torch.tensor([1, -1] * 4))
        model.fc1.weight[[0, 9]] = model.fc1.weight[[9, 0]].clone()  # largest first, smallest last
    before = state(model)
    smaller = cu.hard_pruning.prune_neurons(model, {"fc1": 0.3}, "l1")
    assert smaller.fc1.out_features == 7 and smaller.fc2.out_features == 6
    assert smaller.fc1.weight[:, 0].abs().tolist() == [10.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert same_state(before, model.state_dict())
    both = cu.hard_pruning.prune_neurons(model, 0.5, "l2")
    assert cu.surgery.neuron_counts(both) == {"fc1": 5, "fc2": 3}
    assert cu.hard_pruning.prune_neurons(model, {"fc1": 0.0}, "l1").fc1.out_features == 10


# --------------------------------------------------------------------------- criteria on a hand-built layer


# --------------------------------------------------------------------------- iterative_prune


class NoTestSplits:
    """train and val as usual; reading test fails the test."""

    def __init__(self, train_split, val_split):
        self.train, self.val, self.classes = train_split, val_split, ("0", "1", "2", "3")

    @property
    def test(self):
        raise AssertionError("the test split was read")


def identity_task(dead: int = 0, n: int = 400, seed: int = 0):
    """4 inputs, 4 classes (the largest input); an MLP of identities solves it and needs all 4 paths.

    ``dead`` extra hidden neurons per layer have all-zero weights: removing them changes nothing.
    """
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=gen)
    x = torch.rand(n, 4, generator=gen) + 2.0 * nn.functional.one_hot(y, 4).float()
    width = 4 + dead
    model = models.mlp(hidden=(width, width), in_features=4, classes=4)
    with torch.no_grad():
        for layer in (model.fc1, model.fc2, model.fc3):
            layer.weight.zero_()
            layer.bias.zero_()
            layer.weight[:4, :4] = torch.eye(4)
    split = Split(x, y)
    return model, NoTestSplits(split, Split(x[: n // 2], y[: n // 2]))


def test_iterative_prune_restores_when_accuracy_drops():
    model, data = identity_task(dead=0)
    before = state(model)
    assert train.evaluate(model, data.val).accuracy == 1.0
    pruned, log = cu.hard_pruning.iterative_prune(model, data, target=0.5, step=0.25, criterion="l1", tolerance=0.01,
                                     finetune_epochs=0)
    assert [row["decision"] for row in log] == ["restored", "restored"]  # one try per layer, both fail
    assert cu.surgery.neuron_counts(pruned) == {"fc1": 4, "fc2": 4}
    assert all(row["val_acc"] < 0.9 for row in log)
    assert log[-1]["stop"] == "nothing more can be removed within the tolerance"
    assert same_state(before, pruned.state_dict()) and same_state(before, model.state_dict())


def test_iterative_prune_keeps_harmless_removals_then_stops():
    model, data = identity_task(dead=2)
    pruned, log = cu.hard_pruning.iterative_prune(model, data, target=0.5, step=0.34, criterion="l1", tolerance=0.01,
                                     finetune_epochs=1, lr=1e-4)
    decisions = [(row["candidate"], row["decision"]) for row in log]
    assert decisions[:2] == [("fc1: remove 2 (l1)", "kept"), ("fc2: remove 2 (l1)", "kept")]
    assert [d for _, d in decisions[2:]] == ["restored", "restored"]
    assert cu.surgery.neuron_counts(pruned) == {"fc1": 4, "fc2": 4}
    assert train.evaluate(pruned, data.val).accuracy >= 0.99
    assert log[1]["size_after"] == pytest.approx(8 / 12)


def test_iterative_prune_stops_at_the_target():
    model, data = identity_task(dead=4)  # 8 + 8 neurons, 4 + 4 of them dead
    pruned, log = cu.hard_pruning.iterative_prune(model, data, target=0.5, step=0.25, criterion="l2", tolerance=0.0,
                                     finetune_epochs=0)
    assert cu.surgery.neuron_counts(pruned) == {"fc1": 4, "fc2": 4}
    assert all(row["decision"] == "kept" for row in log) and len(log) == 4
    assert log[-1]["stop"] == "target reached"


def test_iterative_prune_with_random_candidates_runs():
    model, data = identity_task(dead=4)
    pruned, log = cu.hard_pruning.iterative_prune(model, data, target=0.75, step=0.25, criterion="random", tolerance=0.0,
                                     finetune_epochs=0, seed=3)
    assert all(row["candidate"].endswith("(random)") for row in log)
    kept = sum(row["decision"] == "kept" for row in log)
    assert 2 * kept == 16 - sum(cu.surgery.neuron_counts(pruned).values()) > 0
    assert any(row["decision"] == "restored" for row in log)  # some random draws hit a needed neuron
    assert train.evaluate(pruned, data.val).accuracy == 1.0  # only dead neurons were kept out


# --------------------------------------------------------------------------- group L1 penalty


def test_group_l1_value_and_gradient():
    model = models.mlp(hidden=(3, 2), in_features=2, classes=2)
    with torch.no_grad():
        model.fc1.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]]))
        model.fc1.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
        model.fc2.weight.fill_(1.0)
        model.fc2.bias.zero_()
    value = cu.hard_pruning.group_l1()(model)  # fc1: 5 + 0 + sqrt(2); fc2: two rows of three ones: 2 * sqrt(3); fc3 not included
    assert value.item() == pytest.approx(5 + 2 ** 0.5 + 2 * 3 ** 0.5, abs=1e-5)
    assert cu.hard_pruning.group_l1(["fc1"])(model).item() == pytest.approx(5 + 2 ** 0.5, abs=1e-5)
    value.backward()
    assert torch.isfinite(model.fc1.weight.grad).all()  # an all-zero neuron does not give NaN
    assert torch.allclose(model.fc1.weight.grad[0], torch.tensor([0.6, 0.8]))


def test_group_l1_in_fit_shrinks_whole_neurons():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=gen)
    y = (x[:, 0] > 0).long()
    data = Split(x, y)
    norms = {}
    for weight in (0.0, 0.05):
        torch.manual_seed(0)
        model = models.mlp(hidden=(16,), in_features=6, classes=2)
        train.fit(model, data, 30, lr=1e-2, penalty=cu.hard_pruning.group_l1(), penalty_weight=weight, progress=False)
        norms[weight] = cu.importance.neuron_importance(model, "fc1", "l2")
    assert (norms[0.05] < 0.05).sum() >= 5 and (norms[0.0] < 0.05).sum() == 0


# --------------------------------------------------------------------------- scan, plan, fine-tune, widget


def test_sensitivity_scan_and_choose_plan():
    model, data = identity_task(dead=2)
    scan = cu.hard_pruning.sensitivity_scan(model, data, [0.0, 0.3, 0.5], criterion="l1")
    assert scan["fc1"][:2] == [1.0, 1.0] and scan["fc2"][:2] == [1.0, 1.0]  # the 2 dead neurons go first
    assert scan["fc1"][2] < 1.0
    plan = cu.hard_pruning.choose_plan({"a": [1.0, 0.99, 0.9], "b": [1.0, 0.95, 0.94]}, [0.0, 0.5, 0.75], {"a": 100, "b": 100},
                          remove_at_least=0.5, reference=1.0)
    assert plan == {"a": 0.5, "b": 0.5}  # cost 0.01 + 0.05; (0.75, 0) costs 0.1, (0, 0.75) 0.06 and removes less
    scan = {"a": [1.0, 0.99, 0.98], "b": [1.0, 0.95, 0.94]}
    # a big insensitive layer takes all the pruning: 225 of 400 neurons for 0.02, cheaper than (0.5, 0.5) for 0.06
    assert cu.hard_pruning.choose_plan(scan, [0.0, 0.5, 0.75], {"a": 300, "b": 100}, 0.5, 1.0) == {"a": 0.75, "b": 0.0}
    # with equal sizes, 0.75 of a alone is not enough (75 of 200): both layers must give half
    assert cu.hard_pruning.choose_plan(scan, [0.0, 0.5, 0.75], {"a": 100, "b": 100}, 0.5, 1.0) == {"a": 0.5, "b": 0.5}
    with pytest.raises(ValueError, match="no combination"):
        cu.hard_pruning.choose_plan({"a": [1.0, 0.9]}, [0.0, 0.25], {"a": 8}, remove_at_least=0.5, reference=1.0)


# --------------------------------------------------------------------------- bad input


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


@pytest.mark.parametrize("fraction", [-0.1, 1.5, True, "0.5", None])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fc1.*\\[0, 1\\]"):
        cu.hard_pruning.prune_neurons(models.mlp(hidden=(8, 4), in_features=4, classes=2), {"fc1": fraction})


def test_removing_everything_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="would remove every one of its 8 neurons"):
        cu.hard_pruning.prune_neurons(models.mlp(hidden=(8, 4), in_features=4, classes=2), {"fc1": 1.0})


def test_fraction_that_removes_every_neuron():
    with pytest.raises(ValueError, match="every one of its 6 neurons.*conv1|conv1.*every one of its 6"):
        cu.hard_pruning.prune_neurons(models.lenet5(), {"conv1": 0.95})
    with pytest.raises(ValueError, match="every neuron of 'fc1'"):
        cu.surgery.remove_neurons(models.mlp(hidden=(3,), in_features=2, classes=2), "fc1", [0, 1, 2])


@pytest.mark.parametrize("kwargs,message", [
    (dict(target=0.0), "target"), (dict(target=1.0), "target"), (dict(step=0.0), "step"), (dict(step=1.5), "step"),
    (dict(tolerance=-0.1), "tolerance"), (dict(finetune_epochs=-1), "finetune_epochs"),
    (dict(finetune_epochs=0.5), "finetune_epochs"), (dict(criterion="magnitude"), "criterion"),
    (dict(layers=["fc3"]), "output layer"), (dict(layers=[]), "layers is empty"),
])
def test_iterative_prune_bad_input(kwargs, message):
    model, data = identity_task()
    with pytest.raises(ValueError, match=message):
        cu.hard_pruning.iterative_prune(model, data, **kwargs)


def test_iterative_prune_needs_splits():
    model, data = identity_task()
    with pytest.raises(ValueError, match="Splits"):
        cu.hard_pruning.iterative_prune(model, data.train)


# --------------------------------------------------------------------------- exercise checks


# --------------------------------------------------------------------------- latency helpers


