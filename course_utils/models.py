"""The networks of the course, as ``nn.Sequential`` with named layers.

Every layer has a name (``fc1``, ``relu1``, ``conv2``...), so pruning code and
learners can address it as ``model.fc1`` or by the string ``"fc1"``.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

__all__ = ["article_net", "cnn", "lenet5", "mlp", "prunable_layers"]


def mlp(hidden=(300, 100), dropout: float = 0.0, in_features: int = 784, classes: int = 10) -> nn.Sequential:
    """A fully connected ReLU network; ``mlp()`` is LeNet-300-100 (LeCun et al. 1998; Han et al. 2015).

    Layers are ``flatten``, then ``fc1, relu1[, drop1], fc2, relu2[, drop2], ...``
    and a last ``fc{k}`` that outputs the class scores (logits).
    """
    hidden = tuple(int(h) for h in hidden)
    if any(h <= 0 for h in hidden):
        raise ValueError(f"hidden sizes must be positive, got {hidden}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    width = in_features
    for i, h in enumerate(hidden, start=1):
        layers += [(f"fc{i}", nn.Linear(width, h)), (f"relu{i}", nn.ReLU())]
        if dropout > 0:
            layers.append((f"drop{i}", nn.Dropout(dropout)))
        width = h
    layers.append((f"fc{len(hidden) + 1}", nn.Linear(width, classes)))
    return nn.Sequential(OrderedDict(layers))


def article_net() -> nn.Sequential:
    """The article's network: 784-128-10 with one ReLU hidden layer."""
    return mlp(hidden=(128,))


def lenet5(channels=(6, 16), hidden=(120, 84), batchnorm: bool = False, classes: int = 10) -> nn.Sequential:
    """LeNet-5 for 28×28 inputs (LeCun et al. 1998), with ReLU and max-pooling.

    ``conv1`` (5×5, padding 2) → ``pool1`` → ``conv2`` (5×5) → ``pool2`` →
    ``flatten`` → ``fc1`` → ``fc2`` → ``fc3``. With ``batchnorm=True`` a
    ``bn1``/``bn2`` follows each convolution (used to test channel pruning).
    """
    c1, c2 = (int(c) for c in channels)
    h1, h2 = (int(h) for h in hidden)
    layers: list[tuple[str, nn.Module]] = [("conv1", nn.Conv2d(1, c1, 5, padding=2))]
    if batchnorm:
        layers.append(("bn1", nn.BatchNorm2d(c1)))
    layers += [("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)), ("conv2", nn.Conv2d(c1, c2, 5))]
    if batchnorm:
        layers.append(("bn2", nn.BatchNorm2d(c2)))
    layers += [
        ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)), ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(c2 * 5 * 5, h1)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(h1, h2)), ("relu4", nn.ReLU()),
        ("fc3", nn.Linear(h2, classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


def cnn(channels=(32, 64), hidden: int = 512, dropout: float = 0.3, classes: int = 10) -> nn.Sequential:
    """A wider two-convolution network, used as a teacher for distillation.

    ``conv1`` (5×5, padding 2) → ``pool1`` → ``conv2`` (5×5, padding 2) → ``pool2``
    → ``flatten`` → ``fc1`` (7·7·c2 → hidden) with dropout → ``fc2``.
    """
    c1, c2 = (int(c) for c in channels)
    if min(c1, c2, int(hidden)) <= 0:
        raise ValueError(f"channels and hidden must be positive, got {channels} and {hidden}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, c1, 5, padding=2)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(c2 * 7 * 7, hidden)), ("relu3", nn.ReLU()), ("drop3", nn.Dropout(dropout)),
        ("fc2", nn.Linear(hidden, classes)),
    ]))


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The ``Linear`` and ``Conv2d`` layers of ``model`` by name, in order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
