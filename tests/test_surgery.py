"""Tests of course_utils.surgery: removing neurons and channels computes what masking them computes, with smaller tensors; what cannot be followed is refused."""

from collections import OrderedDict
import pytest
import torch
import torch.nn.utils.prune
from torch import nn
import course_utils as cu
from course_utils import metrics, models


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


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


CASES = [
    ("mlp", lambda s: models.mlp(hidden=(12, 9), dropout=0.2, in_features=16, classes=3), (16,)),
    ("mlp_bn_tanh_sigmoid", mlp_with_bn, (1, 4, 4)),
    ("lenet5", lambda s: small_cnn(False, s), (1, 28, 28)),
    ("lenet5_bn", lambda s: small_cnn(True, s), (1, 28, 28)),
    ("cnn_avgpool", lambda s: nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 5, 3)), ("bn1", nn.BatchNorm2d(5)), ("act1", nn.Tanh()),
        ("pool1", nn.AdaptiveAvgPool2d(2)), ("flatten", nn.Flatten()), ("fc1", nn.Linear(20, 4))])), (3, 7, 7)),
]


@pytest.mark.parametrize("name,build,shape", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_removal_equals_masking(name, build, shape, seed):
    model = randomise(build(seed), seed)
    x = torch.randn(6, *shape, generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(100 + seed)
    changed = []
    for layer, width in cu.surgery.neuron_counts(model).items():
        k = int(torch.randint(1, width, (1,), generator=gen))
        drop = torch.randperm(width, generator=gen)[:k].tolist()
        smaller = cu.surgery.remove_neurons(model, layer, drop)
        masked = cu.surgery.mask_neurons(model, layer, drop)
        with torch.no_grad():
            out_small, out_masked, out_full = smaller(x), masked(x), model(x)
        assert torch.allclose(out_small, out_masked, atol=1e-5), (name, layer)
        changed.append(not torch.allclose(out_full, out_masked, atol=1e-5))
        assert cu.surgery.neuron_counts(smaller)[layer] == width - k
        assert metrics.count_parameters(smaller) < metrics.count_parameters(model)
        assert metrics.count_parameters(masked) == metrics.count_parameters(model)
    assert any(changed)  # removal changed the outputs somewhere: the comparison would notice a no-op


def test_pruning_several_layers_equals_masking_them_all():
    model = randomise(small_cnn(True), 3)
    plan = {"conv1": [0, 2], "conv2": [1, 4, 5], "fc1": [0, 3, 9]}
    smaller, masked = model, model
    for layer, drop in plan.items():
        smaller = cu.surgery.remove_neurons(smaller, layer, drop)
    for layer, drop in plan.items():
        masked = cu.surgery.mask_neurons(masked, layer, drop)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(smaller(x), masked(x), atol=1e-5)
    assert cu.surgery.neuron_counts(smaller) == {"conv1": 2, "conv2": 3, "fc1": 7, "fc2": 8}


def test_zeroing_incoming_weights_of_a_relu_neuron_equals_removing_it():
    model = randomise(models.mlp(hidden=(10, 7), in_features=16, classes=3), 0)
    soft = models.mlp(hidden=(10, 7), in_features=16, classes=3)
    soft.load_state_dict(model.state_dict())
    with torch.no_grad():
        soft.fc1.weight[[2, 5]] = 0.0
        soft.fc1.bias[[2, 5]] = 0.0
    x = torch.randn(8, 16)
    with torch.no_grad():
        assert torch.allclose(cu.surgery.remove_neurons(model, "fc1", [2, 5])(x), soft(x), atol=1e-6)


def test_shapes_and_parameter_counts_mlp():
    model = models.mlp()  # LeNet-300-100
    before = state(model)
    smaller = cu.surgery.remove_neurons(model, "fc1", list(range(0, 300, 3)))  # 100 of 300
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
    smaller = cu.surgery.remove_neurons(model, "conv2", [0, 5, 15])  # 13 channels of 5×5 left
    assert smaller.conv2.weight.shape == (13, 6, 5, 5) and smaller.bn2.num_features == 13
    assert smaller.bn2.running_mean.shape == (13,) and smaller.bn2.weight.shape == (13,)
    assert smaller.fc1.weight.shape == (120, 13 * 25) and smaller.fc1.in_features == 325
    columns = [c for c in range(400) if c // 25 not in (0, 5, 15)]
    assert torch.equal(smaller.fc1.weight, model.fc1.weight[:, columns])
    smaller = cu.surgery.remove_neurons(model, "conv1", [1])
    assert smaller.conv1.weight.shape == (5, 1, 5, 5) and smaller.conv2.weight.shape == (16, 5, 5, 5)
    assert smaller.bn1.num_features == 5 and smaller.conv2.in_channels == 5
    assert same_state(before, model.state_dict())


def test_empty_drop_returns_an_equal_copy():
    model = models.mlp(hidden=(5,), in_features=4, classes=2)
    copy_ = cu.surgery.remove_neurons(model, "fc1", [])
    assert copy_ is not model and same_state(state(model), copy_.state_dict())


class SkipSequential(nn.Sequential):
    def forward(self, x):  # looks like a Sequential, adds a skip connection
        return super().forward(x) + x


def test_output_layer_is_refused():
    for model, name in ((models.mlp(), "fc3"), (models.lenet5(), "fc3")):
        with pytest.raises(ValueError, match=f"'{name}' is the output layer"):
            cu.surgery.remove_neurons(model, name, [0])
        with pytest.raises(ValueError, match="output layer"):
            cu.hard_pruning.prune_neurons(model, {name: 0.5})
        with pytest.raises(ValueError, match="output layer"):
            cu.importance.neuron_importance(model, name, "l1")


def test_unknown_layer_names():
    model = models.mlp()
    with pytest.raises(ValueError, match="no layer named 'fc9'.*fc1"):
        cu.surgery.remove_neurons(model, "fc9", [0])
    with pytest.raises(ValueError, match="no layer named 'fc9'"):
        cu.hard_pruning.prune_neurons(model, {"fc9": 0.5})
    with pytest.raises(ValueError, match="'relu1' is a ReLU"):
        cu.surgery.remove_neurons(model, "relu1", [0])
    with pytest.raises(ValueError, match="no layer named 'fc9'"):
        cu.hard_pruning.group_l1(["fc9"])(model)


def test_models_that_cannot_be_followed():
    with pytest.raises(ValueError, match="cannot follow a Residual.*skip connections"):
        cu.surgery.remove_neurons(Residual(), "fc1", [0])
    skip = SkipSequential(OrderedDict([("fc1", nn.Linear(4, 4)), ("relu", nn.ReLU()), ("fc2", nn.Linear(4, 4))]))
    with pytest.raises(ValueError, match="cannot follow a SkipSequential"):
        cu.hard_pruning.prune_neurons(skip, 0.5)
    unknown = nn.Sequential(OrderedDict([("fc1", nn.Linear(4, 6)), ("norm", nn.LayerNorm(6)),
                                         ("fc2", nn.Linear(6, 2))]))
    with pytest.raises(ValueError, match="'fc1'.*'norm' \\(LayerNorm\\)"):
        cu.surgery.remove_neurons(unknown, "fc1", [0])
    nested = nn.Sequential(OrderedDict([("block", nn.Sequential(nn.Linear(4, 6), nn.ReLU())),
                                        ("fc2", nn.Linear(6, 2))]))
    with pytest.raises(ValueError, match="nested"):
        cu.surgery.remove_neurons(nested, "block.0", [0])
    with pytest.raises(ValueError, match="'fc1'.*'block' \\(Sequential\\)"):
        cu.surgery.remove_neurons(nn.Sequential(OrderedDict([("fc1", nn.Linear(4, 6)), ("block", nested)])), "fc1", [0])
    grouped = nn.Sequential(OrderedDict([("conv1", nn.Conv2d(4, 4, 3, groups=2)), ("conv2", nn.Conv2d(4, 2, 3))]))
    with pytest.raises(ValueError, match="'conv1' is a grouped convolution"):
        cu.surgery.remove_neurons(grouped, "conv1", [0])
    no_flatten = nn.Sequential(OrderedDict([("conv1", nn.Conv2d(1, 4, 3)), ("fc1", nn.Linear(4, 2))]))
    with pytest.raises(ValueError, match="no Flatten"):
        cu.surgery.remove_neurons(no_flatten, "conv1", [0])
    shared = nn.Linear(4, 4)
    reused = nn.Sequential(OrderedDict([("fc1", shared), ("relu", nn.ReLU()), ("again", shared)]))
    with pytest.raises(ValueError, match="used more than once"):
        cu.surgery.remove_neurons(reused, "fc1", [0])
    with pytest.raises(ValueError, match="torch.nn.Module"):
        cu.surgery.remove_neurons("not a model", "fc1", [0])


def test_masked_layer_is_refused():
    model = models.mlp(hidden=(6,), in_features=4, classes=2)
    torch.nn.utils.prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    with pytest.raises(ValueError, match="'fc1' carries a pruning mask"):
        cu.surgery.remove_neurons(model, "fc1", [0])


@pytest.mark.parametrize("drop,message", [
    ([5], "index 5 is out of range"), ([-1], "index -1 is out of range"), ([1, 1], "more than once"),
    ([0.5], "integer"), ([[0, 1]], "1-D"), ("ab", "drop must be"),
])
def test_bad_drop_lists(drop, message):
    model = models.mlp(hidden=(5,), in_features=4, classes=2)
    with pytest.raises(ValueError, match=message):
        cu.surgery.remove_neurons(model, "fc1", drop)
    with pytest.raises(ValueError, match=message):
        cu.surgery.mask_neurons(model, "fc1", drop)
