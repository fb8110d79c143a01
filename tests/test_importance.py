"""Tests of course_utils.importance: the five criteria rank a hand-built layer as they should."""

from collections import OrderedDict
import pytest
import torch
import torch.nn.utils.prune
from torch import nn
import course_utils as cu
from course_utils import models
from course_utils.data import Split, Splits


def test_l1_and_l2_rank_the_hand_built_layer():
    model = hand_built()
    l1 = cu.importance.neuron_importance(model, "fc1", "l1")
    l2 = cu.importance.neuron_importance(model, "fc1", "l2")
    assert torch.allclose(l1, torch.tensor([3.0, 4.5, 0.5]))
    assert torch.allclose(l2, torch.tensor([3.0, 1.5 * 3 ** 0.5, 0.5]))
    assert l1.argsort().tolist() == [2, 0, 1] and l2.argsort().tolist() == [2, 1, 0]  # they disagree on 0 and 1


def test_activation_and_taylor_rank_the_hand_built_layer():
    model = hand_built()
    x = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0]])
    y = torch.tensor([0, 1])
    split = Split(x, y)
    act = cu.importance.neuron_importance(model, "fc1", "activation", split)
    hidden = torch.relu(x @ model.fc1.weight.detach().T)  # [[3, 4.5, 0.5], [6, 3, 1]]
    assert torch.allclose(act, hidden.mean(0))
    assert act.argsort().tolist() == [2, 1, 0]
    taylor = cu.importance.neuron_importance(model, "fc1", "taylor", split)
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
    assert torch.allclose(cu.importance.neuron_importance(model, "conv1", "activation", split), torch.tensor([1.0, 0.0, 2.0]))
    data = Splits(split, split, split, ("a", "b"))  # a Splits: its validation split is used
    assert torch.allclose(cu.importance.neuron_importance(model, "conv1", "activation", data), torch.tensor([1.0, 0.0, 2.0]))


def test_random_criterion_is_seeded():
    model = models.mlp(hidden=(50,), in_features=4, classes=2)
    a = cu.importance.neuron_importance(model, "fc1", "random", seed=1)
    assert torch.equal(a, cu.importance.neuron_importance(model, "fc1", "random", seed=1))
    assert not torch.equal(a, cu.importance.neuron_importance(model, "fc1", "random", seed=2))
    assert a.shape == (50,) and 0 <= a.min() and a.max() < 1


def test_conv_norms_use_the_whole_kernel():
    model = models.lenet5(channels=(2, 3), hidden=(4, 4))
    with torch.no_grad():
        model.conv2.weight.fill_(0.1)
        model.conv2.weight[1] = -0.2
    assert torch.allclose(cu.importance.neuron_importance(model, "conv2", "l1"), torch.tensor([5.0, 10.0, 5.0]))
    assert torch.allclose(cu.importance.neuron_importance(model, "conv2", "l2"), torch.tensor([0.5 * 2 ** 0.5, 2 ** 0.5,
                                                                                      0.5 * 2 ** 0.5]))


def test_bad_criterion_and_missing_data():
    model = models.mlp(hidden=(5,), in_features=4, classes=2)
    with pytest.raises(ValueError, match="unknown criterion 'size'"):
        cu.importance.neuron_importance(model, "fc1", "size")
    with pytest.raises(ValueError, match="unknown criterion"):
        cu.hard_pruning.prune_neurons(model, 0.5, "L1")
    with pytest.raises(ValueError, match="need data"):
        cu.importance.neuron_importance(model, "fc1", "taylor")


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
