"""Tests of course_utils.hard_pruning and its exercise checks (tiny synthetic models and data only)."""

from collections import OrderedDict

import pytest
import torch
import torch.nn.utils.prune
from torch import nn

from course_utils import hard_pruning as hp
from course_utils import metrics, models, train
from course_utils.checks import hard_pruning as checks
from course_utils.data import Split, Splits


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


CASES = [
    ("mlp", lambda s: models.mlp(hidden=(12, 9), dropout=0.2, in_features=16, classes=3), (16,)),
    ("mlp_bn_tanh_sigmoid", mlp_with_bn, (1, 4, 4)),
    ("lenet5", lambda s: small_cnn(False, s), (1, 28, 28)),
    ("lenet5_bn", lambda s: small_cnn(True, s), (1, 28, 28)),
    ("cnn_avgpool", lambda s: nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 5, 3)), ("bn1", nn.BatchNorm2d(5)), ("act1", nn.Tanh()),
        ("pool1", nn.AdaptiveAvgPool2d(2)), ("flatten", nn.Flatten()), ("fc1", nn.Linear(20, 4))])), (3, 7, 7)),
]


# --------------------------------------------------------------------------- removal equals masking


@pytest.mark.parametrize("name,build,shape", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_removal_equals_masking(name, build, shape, seed):
    model = randomise(build(seed), seed)
    x = torch.randn(6, *shape, generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(100 + seed)
    changed = []
    for layer, width in hp.neuron_counts(model).items():
        k = int(torch.randint(1, width, (1,), generator=gen))
        drop = torch.randperm(width, generator=gen)[:k].tolist()
        smaller = hp.remove_neurons(model, layer, drop)
        masked = hp.mask_neurons(model, layer, drop)
        with torch.no_grad():
            out_small, out_masked, out_full = smaller(x), masked(x), model(x)
        assert torch.allclose(out_small, out_masked, atol=1e-5), (name, layer)
        changed.append(not torch.allclose(out_full, out_masked, atol=1e-5))
        assert hp.neuron_counts(smaller)[layer] == width - k
        assert metrics.count_parameters(smaller) < metrics.count_parameters(model)
        assert metrics.count_parameters(masked) == metrics.count_parameters(model)
    assert any(changed)  # removal changed the outputs somewhere: the comparison would notice a no-op


def test_pruning_several_layers_equals_masking_them_all():
    model = randomise(small_cnn(True), 3)
    plan = {"conv1": [0, 2], "conv2": [1, 4, 5], "fc1": [0, 3, 9]}
    smaller, masked = model, model
    for layer, drop in plan.items():
        smaller = hp.remove_neurons(smaller, layer, drop)
    for layer, drop in plan.items():
        masked = hp.mask_neurons(masked, layer, drop)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(smaller(x), masked(x), atol=1e-5)
    assert hp.neuron_counts(smaller) == {"conv1": 2, "conv2": 3, "fc1": 7, "fc2": 8}


def test_zeroing_incoming_weights_of_a_relu_neuron_equals_removing_it():
    model = randomise(models.mlp(hidden=(10, 7), in_features=16, classes=3), 0)
    soft = models.mlp(hidden=(10, 7), in_features=16, classes=3)
    soft.load_state_dict(model.state_dict())
    with torch.no_grad():
        soft.fc1.weight[[2, 5]] = 0.0
        soft.fc1.bias[[2, 5]] = 0.0
    x = torch.randn(8, 16)
    with torch.no_grad():
        assert torch.allclose(hp.remove_neurons(model, "fc1", [2, 5])(x), soft(x), atol=1e-6)


# --------------------------------------------------------------------------- shapes, counts, original untouched


def test_shapes_and_parameter_counts_mlp():
    model = models.mlp()  # LeNet-300-100
    before = state(model)
    smaller = hp.remove_neurons(model, "fc1", list(range(0, 300, 3)))  # 100 of 300
    assert smaller.fc1.weight.shape == (200, 784) and smaller.fc1.bias.shape == (200,)
    assert smaller.fc2.weight.shape == (100, 200) and smaller.fc1.out_features == 200
    assert smaller.fc2.in_features == 200
    assert metrics.count_parameters(smaller) == 784 * 200 + 200 + 200 * 100 + 100 + 100 * 10 + 10
    assert same_state(before, model.state_dict()) and model.fc1.weight.shape == (300, 784)
    kept = [i for i in range(300) if i % 3]
    assert torch.equal(smaller.fc1.weight, model.fc1.weight[kept])
    assert torch.equal(smaller.fc2.weight, model.fc2.weight[:, kept])


def test_shapes_through_flatten_and_batchnorm():
    model = models.lenet5(batchnorm=True)
    before = state(model)
    smaller = hp.remove_neurons(model, "conv2", [0, 5, 15])  # 13 channels of 5×5 left
    assert smaller.conv2.weight.shape == (13, 6, 5, 5) and smaller.bn2.num_features == 13
    assert smaller.bn2.running_mean.shape == (13,) and smaller.bn2.weight.shape == (13,)
    assert smaller.fc1.weight.shape == (120, 13 * 25) and smaller.fc1.in_features == 325
    columns = [c for c in range(400) if c // 25 not in (0, 5, 15)]
    assert torch.equal(smaller.fc1.weight, model.fc1.weight[:, columns])
    smaller = hp.remove_neurons(model, "conv1", [1])
    assert smaller.conv1.weight.shape == (5, 1, 5, 5) and smaller.conv2.weight.shape == (16, 5, 5, 5)
    assert smaller.bn1.num_features == 5 and smaller.conv2.in_channels == 5
    assert same_state(before, model.state_dict())


def test_empty_drop_returns_an_equal_copy():
    model = models.mlp(hidden=(5,), in_features=4, classes=2)
    copy_ = hp.remove_neurons(model, "fc1", [])
    assert copy_ is not model and same_state(state(model), copy_.state_dict())


def test_prune_neurons_removes_the_lowest_scored():
    model = models.mlp(hidden=(10, 6), in_features=8, classes=3)
    with torch.no_grad():
        model.fc1.weight.copy_(torch.arange(1, 11, dtype=torch.float32)[:, None].repeat(1, 8)
                               * torch.tensor([1, -1] * 4))
        model.fc1.weight[[0, 9]] = model.fc1.weight[[9, 0]].clone()  # largest first, smallest last
    before = state(model)
    smaller = hp.prune_neurons(model, {"fc1": 0.3}, "l1")
    assert smaller.fc1.out_features == 7 and smaller.fc2.out_features == 6
    assert smaller.fc1.weight[:, 0].abs().tolist() == [10.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert same_state(before, model.state_dict())
    both = hp.prune_neurons(model, 0.5, "l2")
    assert hp.neuron_counts(both) == {"fc1": 5, "fc2": 3}
    assert hp.prune_neurons(model, {"fc1": 0.0}, "l1").fc1.out_features == 10


# --------------------------------------------------------------------------- criteria on a hand-built layer


def hand_built():
    """fc1 (3 inputs -> 3 neurons, ReLU) then fc2 (3 -> 2): every number chosen by hand."""
    model = models.mlp(hidden=(3,), in_features=3, classes=2)
    with torch.no_grad():
        # row 0: one big weight (L1 = 3, L2 = 3); row 1: three medium ones (L1 = 4.5, L2 ≈ 2.60); row 2: small
        model.fc1.weight.copy_(torch.tensor([[3.0, 0.0, 0.0], [1.5, 1.5, 1.5], [0.5, 0.0, 0.0]]))
        model.fc1.bias.zero_()
        # neuron 0 is never read by fc2 (its outgoing weights are zero)
        model.fc2.weight.copy_(torch.tensor([[0.0, 1.0, -2.0], [0.0, -1.0, 2.0]]))
        model.fc2.bias.zero_()
    return model


def test_l1_and_l2_rank_the_hand_built_layer():
    model = hand_built()
    l1 = hp.neuron_importance(model, "fc1", "l1")
    l2 = hp.neuron_importance(model, "fc1", "l2")
    assert torch.allclose(l1, torch.tensor([3.0, 4.5, 0.5]))
    assert torch.allclose(l2, torch.tensor([3.0, 1.5 * 3 ** 0.5, 0.5]))
    assert l1.argsort().tolist() == [2, 0, 1] and l2.argsort().tolist() == [2, 1, 0]  # they disagree on 0 and 1


def test_activation_and_taylor_rank_the_hand_built_layer():
    model = hand_built()
    x = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0]])
    y = torch.tensor([0, 1])
    split = Split(x, y)
    act = hp.neuron_importance(model, "fc1", "activation", split)
    hidden = torch.relu(x @ model.fc1.weight.detach().T)  # [[3, 4.5, 0.5], [6, 3, 1]]
    assert torch.allclose(act, hidden.mean(0))
    assert act.argsort().tolist() == [2, 1, 0]
    taylor = hp.neuron_importance(model, "fc1", "taylor", split)
    # by hand: dL/dh = W2^T (softmax(W2 h) - onehot(y)) for each image; score = mean over images of |h * dL/dh|
    w2 = model.fc2.weight.detach()
    grads = (torch.softmax(hidden @ w2.T, 1) - nn.functional.one_hot(y, 2).float()) @ w2
    assert torch.allclose(taylor, (hidden * grads).abs().mean(0), atol=1e-6)
    assert taylor[0] == 0.0  # the largest activation, but nothing reads it: Taylor ranks it last, activation first
    assert taylor.argsort()[0] == 0 and taylor[1] > 0 and taylor[2] > 0
    assert model.fc1.weight.grad is None  # scoring leaves no gradients behind


def test_activation_of_conv_channels_after_pooling_and_flatten():
    model = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 3, 1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(3 * 4, 2))]))
    with torch.no_grad():
        model.conv1.weight.copy_(torch.tensor([1.0, -1.0, 2.0]).view(3, 1, 1, 1))
        model.conv1.bias.zero_()
    x = torch.ones(5, 1, 4, 4)
    split = Split(x, torch.zeros(5, dtype=torch.long))
    assert torch.allclose(hp.neuron_importance(model, "conv1", "activation", split), torch.tensor([1.0, 0.0, 2.0]))
    data = Splits(split, split, split, ("a", "b"))  # a Splits: its validation split is used
    assert torch.allclose(hp.neuron_importance(model, "conv1", "activation", data), torch.tensor([1.0, 0.0, 2.0]))


def test_random_criterion_is_seeded():
    model = models.mlp(hidden=(50,), in_features=4, classes=2)
    a = hp.neuron_importance(model, "fc1", "random", seed=1)
    assert torch.equal(a, hp.neuron_importance(model, "fc1", "random", seed=1))
    assert not torch.equal(a, hp.neuron_importance(model, "fc1", "random", seed=2))
    assert a.shape == (50,) and 0 <= a.min() and a.max() < 1


def test_conv_norms_use_the_whole_kernel():
    model = models.lenet5(channels=(2, 3), hidden=(4, 4))
    with torch.no_grad():
        model.conv2.weight.fill_(0.1)
        model.conv2.weight[1] = -0.2
    assert torch.allclose(hp.neuron_importance(model, "conv2", "l1"), torch.tensor([5.0, 10.0, 5.0]))
    assert torch.allclose(hp.neuron_importance(model, "conv2", "l2"), torch.tensor([0.5 * 2 ** 0.5, 2 ** 0.5,
                                                                                      0.5 * 2 ** 0.5]))


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
    pruned, log = hp.iterative_prune(model, data, target=0.5, step=0.25, criterion="l1", tolerance=0.01,
                                     finetune_epochs=0)
    assert [row["decision"] for row in log] == ["restored", "restored"]  # one try per layer, both fail
    assert hp.neuron_counts(pruned) == {"fc1": 4, "fc2": 4}
    assert all(row["val_acc"] < 0.9 for row in log)
    assert log[-1]["stop"] == "nothing more can be removed within the tolerance"
    assert same_state(before, pruned.state_dict()) and same_state(before, model.state_dict())


def test_iterative_prune_keeps_harmless_removals_then_stops():
    model, data = identity_task(dead=2)
    pruned, log = hp.iterative_prune(model, data, target=0.5, step=0.34, criterion="l1", tolerance=0.01,
                                     finetune_epochs=1, lr=1e-4)
    decisions = [(row["candidate"], row["decision"]) for row in log]
    assert decisions[:2] == [("fc1: remove 2 (l1)", "kept"), ("fc2: remove 2 (l1)", "kept")]
    assert [d for _, d in decisions[2:]] == ["restored", "restored"]
    assert hp.neuron_counts(pruned) == {"fc1": 4, "fc2": 4}
    assert train.evaluate(pruned, data.val).accuracy >= 0.99
    assert log[1]["size_after"] == pytest.approx(8 / 12)


def test_iterative_prune_stops_at_the_target():
    model, data = identity_task(dead=4)  # 8 + 8 neurons, 4 + 4 of them dead
    pruned, log = hp.iterative_prune(model, data, target=0.5, step=0.25, criterion="l2", tolerance=0.0,
                                     finetune_epochs=0)
    assert hp.neuron_counts(pruned) == {"fc1": 4, "fc2": 4}
    assert all(row["decision"] == "kept" for row in log) and len(log) == 4
    assert log[-1]["stop"] == "target reached"


def test_iterative_prune_with_random_candidates_runs():
    model, data = identity_task(dead=4)
    pruned, log = hp.iterative_prune(model, data, target=0.75, step=0.25, criterion="random", tolerance=0.0,
                                     finetune_epochs=0, seed=3)
    assert all(row["candidate"].endswith("(random)") for row in log)
    kept = sum(row["decision"] == "kept" for row in log)
    assert 2 * kept == 16 - sum(hp.neuron_counts(pruned).values()) > 0
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
    value = hp.group_l1()(model)  # fc1: 5 + 0 + sqrt(2); fc2: two rows of three ones: 2 * sqrt(3); fc3 not included
    assert value.item() == pytest.approx(5 + 2 ** 0.5 + 2 * 3 ** 0.5, abs=1e-5)
    assert hp.group_l1(["fc1"])(model).item() == pytest.approx(5 + 2 ** 0.5, abs=1e-5)
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
        train.fit(model, data, 30, lr=1e-2, penalty=hp.group_l1(), penalty_weight=weight, progress=False)
        norms[weight] = hp.neuron_importance(model, "fc1", "l2")
    assert (norms[0.05] < 0.05).sum() >= 5 and (norms[0.0] < 0.05).sum() == 0


# --------------------------------------------------------------------------- scan, plan, fine-tune, widget


def test_sensitivity_scan_and_choose_plan():
    model, data = identity_task(dead=2)
    scan = hp.sensitivity_scan(model, data, [0.0, 0.3, 0.5], criterion="l1")
    assert scan["fc1"][:2] == [1.0, 1.0] and scan["fc2"][:2] == [1.0, 1.0]  # the 2 dead neurons go first
    assert scan["fc1"][2] < 1.0
    plan = hp.choose_plan({"a": [1.0, 0.99, 0.9], "b": [1.0, 0.95, 0.94]}, [0.0, 0.5, 0.75], {"a": 100, "b": 100},
                          remove_at_least=0.5, reference=1.0)
    assert plan == {"a": 0.5, "b": 0.5}  # cost 0.01 + 0.05; (0.75, 0) costs 0.1, (0, 0.75) 0.06 and removes less
    scan = {"a": [1.0, 0.99, 0.98], "b": [1.0, 0.95, 0.94]}
    # a big insensitive layer takes all the pruning: 225 of 400 neurons for 0.02, cheaper than (0.5, 0.5) for 0.06
    assert hp.choose_plan(scan, [0.0, 0.5, 0.75], {"a": 300, "b": 100}, 0.5, 1.0) == {"a": 0.75, "b": 0.0}
    # with equal sizes, 0.75 of a alone is not enough (75 of 200): both layers must give half
    assert hp.choose_plan(scan, [0.0, 0.5, 0.75], {"a": 100, "b": 100}, 0.5, 1.0) == {"a": 0.5, "b": 0.5}
    with pytest.raises(ValueError, match="no combination"):
        hp.choose_plan({"a": [1.0, 0.9]}, [0.0, 0.25], {"a": 8}, remove_at_least=0.5, reference=1.0)


def test_finetune_reads_only_the_training_split():
    model, data = identity_task(dead=0)

    class TrainOnly:
        train = data.train

        @property
        def val(self):
            raise AssertionError("val read")

        test = val

    history = hp.finetune(model, TrainOnly(), 1, examples=64)
    assert len(history) == 1 and "val_acc" not in history[0]


def test_slider_result():
    model, data = identity_task(dead=4)
    cache = {}
    result = hp.slider_result(model, data, {"fc1": 0.5, "fc2": 0.25}, finetune_examples=64, min_run_time=0.01,
                              cache=cache)
    assert result["neurons"] == {"fc1": "4/8", "fc2": "6/8"}
    assert result["params"] == 4 * 4 + 4 + 6 * 4 + 6 + 4 * 6 + 4
    assert result["val_acc_no_finetune"] == 1.0 and 0.9 <= result["val_acc"] <= 1.0
    assert result["latency_ms"] > 0 and result["threads"] >= 1 and result["batch_size"] == 256
    assert result["macs"] == 4 * 4 + 4 * 6 + 6 * 4
    assert hp.slider_result(model, data, {"fc2": 0.25, "fc1": 0.5}, finetune_examples=64, cache=cache) is result


def test_fingerprint_changes_with_the_weights():
    model = models.mlp(hidden=(3,), in_features=2, classes=2)
    a = hp.fingerprint(model)
    assert a == hp.fingerprint(model) and len(a) == 12
    with torch.no_grad():
        model.fc1.bias[0] += 1.0
    assert hp.fingerprint(model) != a


# --------------------------------------------------------------------------- bad input


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


class SkipSequential(nn.Sequential):
    def forward(self, x):  # looks like a Sequential, adds a skip connection
        return super().forward(x) + x


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, True, "0.5", None])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fc1.*\\[0, 1\\)"):
        hp.prune_neurons(models.mlp(hidden=(8, 4), in_features=4, classes=2), {"fc1": fraction})


def test_fraction_that_removes_every_neuron():
    with pytest.raises(ValueError, match="every one of its 6 neurons.*conv1|conv1.*every one of its 6"):
        hp.prune_neurons(models.lenet5(), {"conv1": 0.95})
    with pytest.raises(ValueError, match="every neuron of 'fc1'"):
        hp.remove_neurons(models.mlp(hidden=(3,), in_features=2, classes=2), "fc1", [0, 1, 2])


def test_output_layer_is_refused():
    for model, name in ((models.mlp(), "fc3"), (models.lenet5(), "fc3")):
        with pytest.raises(ValueError, match=f"'{name}' is the output layer"):
            hp.remove_neurons(model, name, [0])
        with pytest.raises(ValueError, match="output layer"):
            hp.prune_neurons(model, {name: 0.5})
        with pytest.raises(ValueError, match="output layer"):
            hp.neuron_importance(model, name, "l1")


def test_unknown_layer_names():
    model = models.mlp()
    with pytest.raises(ValueError, match="no layer named 'fc9'.*fc1"):
        hp.remove_neurons(model, "fc9", [0])
    with pytest.raises(ValueError, match="no layer named 'fc9'"):
        hp.prune_neurons(model, {"fc9": 0.5})
    with pytest.raises(ValueError, match="'relu1' is a ReLU"):
        hp.remove_neurons(model, "relu1", [0])
    with pytest.raises(ValueError, match="no layer named 'fc9'"):
        hp.group_l1(["fc9"])(model)


def test_models_that_cannot_be_followed():
    with pytest.raises(ValueError, match="cannot follow a Residual.*skip connections"):
        hp.remove_neurons(Residual(), "fc1", [0])
    skip = SkipSequential(OrderedDict([("fc1", nn.Linear(4, 4)), ("relu", nn.ReLU()), ("fc2", nn.Linear(4, 4))]))
    with pytest.raises(ValueError, match="cannot follow a SkipSequential"):
        hp.prune_neurons(skip, 0.5)
    unknown = nn.Sequential(OrderedDict([("fc1", nn.Linear(4, 6)), ("norm", nn.LayerNorm(6)),
                                         ("fc2", nn.Linear(6, 2))]))
    with pytest.raises(ValueError, match="'fc1'.*'norm' \\(LayerNorm\\)"):
        hp.remove_neurons(unknown, "fc1", [0])
    nested = nn.Sequential(OrderedDict([("block", nn.Sequential(nn.Linear(4, 6), nn.ReLU())),
                                        ("fc2", nn.Linear(6, 2))]))
    with pytest.raises(ValueError, match="nested"):
        hp.remove_neurons(nested, "block.0", [0])
    with pytest.raises(ValueError, match="'fc1'.*'block' \\(Sequential\\)"):
        hp.remove_neurons(nn.Sequential(OrderedDict([("fc1", nn.Linear(4, 6)), ("block", nested)])), "fc1", [0])
    grouped = nn.Sequential(OrderedDict([("conv1", nn.Conv2d(4, 4, 3, groups=2)), ("conv2", nn.Conv2d(4, 2, 3))]))
    with pytest.raises(ValueError, match="'conv1' is a grouped convolution"):
        hp.remove_neurons(grouped, "conv1", [0])
    no_flatten = nn.Sequential(OrderedDict([("conv1", nn.Conv2d(1, 4, 3)), ("fc1", nn.Linear(4, 2))]))
    with pytest.raises(ValueError, match="no Flatten"):
        hp.remove_neurons(no_flatten, "conv1", [0])
    shared = nn.Linear(4, 4)
    reused = nn.Sequential(OrderedDict([("fc1", shared), ("relu", nn.ReLU()), ("again", shared)]))
    with pytest.raises(ValueError, match="used more than once"):
        hp.remove_neurons(reused, "fc1", [0])
    with pytest.raises(ValueError, match="torch.nn.Module"):
        hp.remove_neurons("not a model", "fc1", [0])


def test_masked_layer_is_refused():
    model = models.mlp(hidden=(6,), in_features=4, classes=2)
    torch.nn.utils.prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    with pytest.raises(ValueError, match="'fc1' carries a pruning mask"):
        hp.remove_neurons(model, "fc1", [0])


@pytest.mark.parametrize("drop,message", [
    ([5], "index 5 is out of range"), ([-1], "index -1 is out of range"), ([1, 1], "more than once"),
    ([0.5], "integer"), ([[0, 1]], "1-D"), ("ab", "drop must be"),
])
def test_bad_drop_lists(drop, message):
    model = models.mlp(hidden=(5,), in_features=4, classes=2)
    with pytest.raises(ValueError, match=message):
        hp.remove_neurons(model, "fc1", drop)
    with pytest.raises(ValueError, match=message):
        hp.mask_neurons(model, "fc1", drop)


def test_bad_criterion_and_missing_data():
    model = models.mlp(hidden=(5,), in_features=4, classes=2)
    with pytest.raises(ValueError, match="unknown criterion 'size'"):
        hp.neuron_importance(model, "fc1", "size")
    with pytest.raises(ValueError, match="unknown criterion"):
        hp.prune_neurons(model, 0.5, "L1")
    with pytest.raises(ValueError, match="need data"):
        hp.neuron_importance(model, "fc1", "taylor")


@pytest.mark.parametrize("kwargs,message", [
    (dict(target=0.0), "target"), (dict(target=1.0), "target"), (dict(step=0.0), "step"), (dict(step=1.5), "step"),
    (dict(tolerance=-0.1), "tolerance"), (dict(finetune_epochs=-1), "finetune_epochs"),
    (dict(finetune_epochs=0.5), "finetune_epochs"), (dict(criterion="magnitude"), "criterion"),
    (dict(layers=["fc3"]), "output layer"), (dict(layers=[]), "layers is empty"),
])
def test_iterative_prune_bad_input(kwargs, message):
    model, data = identity_task()
    with pytest.raises(ValueError, match=message):
        hp.iterative_prune(model, data, **kwargs)


def test_iterative_prune_needs_splits():
    model, data = identity_task()
    with pytest.raises(ValueError, match="Splits"):
        hp.iterative_prune(model, data.train)


# --------------------------------------------------------------------------- exercise checks


def l2_scores(layer):
    return layer.weight.detach().flatten(1).norm(dim=1)


def remove_channel(conv, next_conv, index):
    keep = [c for c in range(conv.out_channels) if c != index]
    new_conv = nn.Conv2d(conv.in_channels, len(keep), conv.kernel_size, conv.stride, conv.padding)
    new_next = nn.Conv2d(len(keep), next_conv.out_channels, next_conv.kernel_size, next_conv.stride,
                         next_conv.padding)
    with torch.no_grad():
        new_conv.weight.copy_(conv.weight[keep])
        new_conv.bias.copy_(conv.bias[keep])
        new_next.weight.copy_(next_conv.weight[:, keep])
        new_next.bias.copy_(next_conv.bias)
    return new_conv, new_next


def fc_columns(channel, positions):
    return list(range(channel * positions, (channel + 1) * positions))


def test_notebook_solutions_pass(capsys):
    # the same code as the <details> solutions of notebooks/01_hard_pruning.ipynb
    assert bool(checks.check_l2_scores(l2_scores)) is True
    assert bool(checks.check_remove_channel(remove_channel)) is True
    assert bool(checks.check_fc_columns(fc_columns)) is True
    assert capsys.readouterr().out.count("Correct: ") == 3


def test_wrong_answers_fail_without_raising(capsys):
    def raising(*args):
        raise RuntimeError("boom")

    def stub(*args):
        return None

    for check in (checks.check_l2_scores, checks.check_remove_channel, checks.check_fc_columns):
        assert bool(check(raising)) is False
        assert bool(check(stub)) is False
        assert bool(check(None)) is False
    assert bool(checks.check_l2_scores(lambda layer: layer.weight.detach().flatten(1).pow(2).sum(1))) is False
    assert bool(checks.check_l2_scores(lambda layer: layer.weight.detach().abs().flatten(1).sum(1))) is False
    assert bool(checks.check_l2_scores(lambda layer: layer.weight.detach().norm(dim=1).flatten())) is False

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

    assert bool(checks.check_remove_channel(keeps_wrong_columns)) is False
    assert bool(checks.check_remove_channel(changes_original)) is False
    assert bool(checks.check_fc_columns(lambda c, p: list(range(c, c + p)))) is False
    assert bool(checks.check_fc_columns(lambda c, p: list(range(c, 400, 16))[:p])) is False
    out = capsys.readouterr().out
    assert "Correct" not in out and out.count("Not yet: ") == 16


# --------------------------------------------------------------------------- latency helpers


def test_latencies_and_speedup_curve():
    model = models.mlp(hidden=(64, 32), in_features=16, classes=3)
    timed = hp.latencies({"a": model, "b": hp.prune_neurons(model, 0.5)}, batch_size=8, input_shape=(16,),
                         rounds=3, min_run_time=0.01)
    assert set(timed) == {"a", "b"} and all(t.median > 0 and t.batch_size == 8 for t in timed.values())
    rows = hp.speedup_curve(model, [0.5, 0.75], batch_size=8, input_shape=(16,), rounds=1, min_run_time=0.01)
    dense_macs = 16 * 64 + 64 * 32 + 32 * 3
    assert [r["macs"] for r in rows] == [16 * 32 + 32 * 16 + 16 * 3, 16 * 16 + 16 * 8 + 8 * 3]
    assert rows[0]["mac_ratio"] == pytest.approx(dense_macs / rows[0]["macs"])
    assert all(r["speedup"] > 0 and r["latency_ms"] > 0 and r["threads"] >= 1 for r in rows)
    short_blocks = hp.latencies({"a": model}, batch_size=8, input_shape=(16,), rounds=1, min_run_time=0.01,
                                block_ms=0.5)
    assert short_blocks["a"].repeats >= 7 and short_blocks["a"].median > 0
    long_blocks = hp.latencies({"a": model}, batch_size=8, input_shape=(16,), rounds=1, min_run_time=0.01,
                               block_ms=5)
    assert long_blocks["a"].median < 5e-3  # per forward pass, not per block of many passes
    for bad in (-1, 0):
        with pytest.raises(ValueError, match="block_ms"):
            hp.latencies({"a": model}, block_ms=bad)
    with pytest.raises(ValueError, match="rounds"):
        hp.latencies({"a": model}, rounds=0)
    with pytest.raises(ValueError, match="no models"):
        hp.latencies({})


def test_layer_latencies_cover_every_layer():
    model = models.lenet5(channels=(2, 3), hidden=(8, 6))
    rows = hp.layer_latencies(model, batch_size=4, min_run_time=0.01)
    assert [r["layer"] for r in rows] == [name for name, _ in model.named_children()]
    macs = {r["layer"]: r["macs"] for r in rows}
    assert macs["conv1"] == 28 * 28 * 2 * 25 and macs["conv2"] == 10 * 10 * 3 * 2 * 25 and macs["pool1"] == 0
    assert macs["fc1"] == 75 * 8 and sum(macs.values()) == metrics.macs(model)
    assert all(r["latency_ms"] > 0 for r in rows)
    with pytest.raises(ValueError, match="cannot follow"):
        hp.layer_latencies(Residual())
