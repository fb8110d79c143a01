"""The trained models that several notebooks start from, each trained once and cached.

Notebook 00 trains LeNet-300-100; notebooks 01 and 02 call the same function
and get the cached model (or train it themselves when run alone). Notebook 02's
soft-pruned LeNet-300-100 (reused by notebook 04) and notebook 03's teacher are
cached the same way. Each recipe is part of the cache key
(:func:`course_utils.checkpoints.load_or_train`), so changing it retrains.
"""

from __future__ import annotations

import torch
from torch import nn

from . import checkpoints, data as cudata, models, train

__all__ = ["PRUNED_RECIPE", "RECIPES", "TEACHER_RECIPE", "freeze", "lenet300_100", "lenet300_100_pruned", "lenet5",
           "teacher", "teacher_net", "training_history"]

RECIPES = {
    "lenet300-100": dict(epochs=8, lr=1e-3, batch_size=128, schedule="cosine", seed=0),
    "lenet5": dict(epochs=6, lr=2e-3, batch_size=256, schedule="cosine", seed=0),
}

PRUNED_RECIPE = dict(keep=0.08, steps=3, epochs=4, lr=1e-3, scope="global", seed=0)
"""Notebook 02's reproduction of Han et al. (2015): 8% of the weights kept, 3 × (prune + 4 epochs of Adam)."""

TEACHER_RECIPE = dict(channels=[16, 32], hidden=256, dropout=0.3, jitter=2, epochs=5, lr=3e-3, batch_size=128,
                      schedule="onecycle", seed=0)
"""Notebook 03's teacher: a small convolutional network (:func:`teacher_net`) trained with dropout, ±2-pixel jitter
and a one-cycle schedule. ``benchmarks/distillation.py --part teacher`` chose it on the validation split."""


def _dense(kind: str, build, splits, verbose: bool, **overrides) -> nn.Module:
    recipe = {**RECIPES[kind], **overrides}

    def run(model):
        train.set_seed(recipe["seed"])
        return train.fit(model, splits, **recipe)

    def build_seeded():
        train.set_seed(recipe["seed"])  # the same initial weights every time
        return build()

    return checkpoints.load_or_train(kind, build_seeded, run, data=splits, config=recipe, verbose=verbose)


def lenet300_100(splits, verbose: bool = True, **overrides) -> nn.Module:
    """Dense LeNet-300-100 trained with Adam (8 epochs, cosine decay): about 98.3% on MNIST's test set."""
    return _dense("lenet300-100", models.mlp, splits, verbose, **overrides)


def lenet5(splits, verbose: bool = True, **overrides) -> nn.Module:
    """Dense LeNet-5 trained with Adam (6 epochs, batch 256, cosine decay)."""
    return _dense("lenet5", models.lenet5, splits, verbose, **overrides)


def lenet300_100_pruned(splits, verbose: bool = True, **overrides) -> nn.Module:
    """Notebook 02's soft-pruned LeNet-300-100: the cached dense model pruned by one global magnitude threshold
    until ``keep`` of its weights remain, in ``steps`` rounds of *prune, then retrain ``epochs`` epochs*
    (:func:`course_utils.soft_pruning.iterative_prune` with Han et al.'s schedule; :data:`PRUNED_RECIPE`).

    Returns the model with its masks installed (the cache stores the plain weights with their zeros).
    """
    from . import masks, soft_pruning

    recipe = {**PRUNED_RECIPE, **overrides}
    dense = lenet300_100(splits, verbose=verbose)

    def run(model):
        pruned, log = soft_pruning.iterative_prune(
            dense, splits, recipe["keep"], steps=recipe["steps"], finetune_epochs=recipe["epochs"], schedule="han",
            scope=recipe["scope"], lr=recipe["lr"], lr_schedule="cosine", seed=recipe["seed"])
        model.load_state_dict(masks.effective_state_dict(pruned))
        return log

    model = checkpoints.load_or_train("lenet300-100-pruned", models.mlp, run, data=splits,
                                      config=_pruned_config(dense, recipe), verbose=verbose)
    return masks.mask_zeros(model)


def _pruned_config(dense: nn.Module, recipe: dict) -> dict:
    return {"dense": checkpoints.fingerprint(dense), **recipe}


def training_history(kind: str, splits, **overrides) -> list[dict]:
    """The history stored with a cached model: ``kind`` is ``"lenet300-100"``, ``"lenet5"``, ``"teacher"`` (one
    row per epoch) or ``"lenet300-100-pruned"`` (one row per pruning step and per epoch)."""
    if kind == "lenet300-100-pruned":
        config = _pruned_config(lenet300_100(splits, verbose=False), {**PRUNED_RECIPE, **overrides})
        return checkpoints.history(kind, config, splits)
    recipes = {**RECIPES, "teacher": TEACHER_RECIPE}
    if kind not in recipes:
        raise ValueError(f"unknown baseline {kind!r}: choose one of {', '.join(recipes)}, lenet300-100-pruned")
    return checkpoints.history(kind, {**recipes[kind], **overrides}, splits)


# --------------------------------------------------------------------------- the distillation teacher


def teacher_net(channels=(16, 32), hidden: int = 256, dropout: float = 0.3, classes: int = 10) -> nn.Sequential:
    """The course's teacher: a convolutional network (:func:`course_utils.models.cnn`) with dropout.

    ``conv1`` (5×5, 16 channels) → ``pool1`` → ``conv2`` (5×5, 32 channels) → ``pool2`` → ``fc1`` (1,568 → 256)
    → ``drop3`` → ``fc2``: about 417,000 parameters, a third of the 2×800 student's, but about 2.5 times its
    multiply-accumulates per image. Hinton et al.'s MNIST teacher was a 2×1200 MLP; a convolutional one reaches
    fewer test errors in a fraction of the training time, because its filters see every position of the image
    with the same weights. The students stay MLPs, so they learn a function computed differently from theirs.
    """
    return models.cnn(tuple(channels), hidden, dropout, classes)


def teacher(splits, verbose: bool = True, **overrides) -> nn.Module:
    """The teacher of notebook 03, trained once with :data:`TEACHER_RECIPE` and cached (eval mode, frozen).

    Adam with a one-cycle schedule, dropout and ±``jitter``-pixel random shifts of
    every training image (as in Hinton et al.'s MNIST teacher).
    """
    recipe = {**TEACHER_RECIPE, **overrides}

    def build():
        train.set_seed(recipe["seed"])
        return teacher_net(recipe["channels"], recipe["hidden"], recipe["dropout"], len(splits.classes))

    def run(model):
        generator = torch.Generator().manual_seed(recipe["seed"] + 1)
        shift = recipe["jitter"]
        return train.fit(model, splits, recipe["epochs"], lr=recipe["lr"], batch_size=recipe["batch_size"],
                         schedule=recipe["schedule"], seed=recipe["seed"],
                         augment=(lambda x: cudata.jitter(x, shift, generator)) if shift else None)

    model = checkpoints.load_or_train("teacher", build, run, data=splits, config=recipe, verbose=verbose)
    return freeze(model)


def freeze(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with ``requires_grad=False`` everywhere: a teacher that is never updated."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
