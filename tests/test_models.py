import pytest
import torch

import course_utils as cu


@pytest.mark.parametrize("build, params, names", [
    (cu.models.mlp, 266_610, ["flatten", "fc1", "relu1", "fc2", "relu2", "fc3"]),
    (cu.models.article_net, 101_770, ["flatten", "fc1", "relu1", "fc2"]),
    (cu.models.lenet5, 61_706, ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
                                "fc1", "relu3", "fc2", "relu4", "fc3"]),
])
def test_known_architectures_have_their_published_sizes_and_named_layers(build, params, names):
    model = build()
    assert cu.metrics.count_parameters(model) == params
    assert [n for n, _ in model.named_children()] == names
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_mlp_options():
    model = cu.models.mlp(hidden=(800, 800), dropout=0.5)
    assert [n for n, _ in model.named_children()] == ["flatten", "fc1", "relu1", "drop1", "fc2", "relu2", "drop2", "fc3"]
    assert model.fc2.in_features == 800 and model.drop1.p == 0.5
    assert cu.metrics.count_parameters(cu.models.mlp(hidden=(30, 30))) == 784 * 30 + 30 + 30 * 30 + 30 + 300 + 10


def test_lenet5_with_batchnorm_and_other_widths():
    model = cu.models.lenet5(channels=(4, 8), hidden=(32, 16), batchnorm=True)
    assert isinstance(model.bn1, torch.nn.BatchNorm2d) and model.bn2.num_features == 8
    assert model.fc1.in_features == 8 * 5 * 5
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_cnn_teacher_shape():
    model = cu.models.cnn(channels=(8, 16), hidden=64)
    assert model.fc1.in_features == 16 * 7 * 7
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden=(0, 10)), "hidden"),
    (dict(hidden=(10,), dropout=1.0), "dropout"),
    (dict(hidden=(10,), dropout=-0.1), "dropout"),
])
def test_bad_mlp_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cu.models.mlp(**kwargs)


def test_prunable_layers_lists_linear_and_conv_layers_in_order():
    assert list(cu.models.prunable_layers(cu.models.lenet5())) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
