"""Support package of the neural-network compression course: ``import course_utils as cu``.

Modules: ``data`` (MNIST / Fashion-MNIST as tensors), ``models``, ``train``
(the one training loop), ``metrics``, ``checkpoints``, ``hard_pruning``,
``soft_pruning``, ``distill``, ``plots`` and ``widgets``.
"""

from importlib import import_module

__version__ = "0.1.0"

_MODULES = ("data", "models", "train", "metrics", "checkpoints", "baselines", "plots", "checks",
            "hard_pruning", "soft_pruning", "distill", "widgets")

from . import checkpoints, data, metrics, models, train  # noqa: E402,F401


def __getattr__(name):  # the heavier modules load on first use: cu.plots, cu.distill, ...
    if name in _MODULES:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")


__all__ = list(_MODULES)
