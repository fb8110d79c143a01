"""The trained dense models that several notebooks start from, each trained once and cached.

Notebook 00 trains LeNet-300-100; notebooks 01 and 02 call the same function
and get the cached model (or train it themselves when run alone). The recipe
is part of the checkpoint's config, so changing it here retrains.
"""

from __future__ import annotations

from . import checkpoints, data, models, train

__all__ = ["RECIPES", "lenet300_100", "lenet5", "training_history"]

RECIPES = {
    "lenet300-100": dict(epochs=8, lr=1e-3, batch_size=128, schedule="cosine", seed=0),
    "lenet5": dict(epochs=6, lr=2e-3, batch_size=256, schedule="cosine", seed=0),
}


def _cached(kind: str, build, splits, verbose: bool, **overrides):
    recipe = {**RECIPES[kind], **overrides}
    name = f"{kind}-{data.dataset_name(splits)}"

    def run(model):
        train.set_seed(recipe["seed"])
        return train.fit(model, splits, **recipe)

    def build_seeded():
        train.set_seed(recipe["seed"])  # the same initial weights every time
        return build()

    return checkpoints.load_or_train(name, build_seeded, run, config=recipe, verbose=verbose)


def lenet300_100(splits, verbose: bool = True, **overrides):
    """Dense LeNet-300-100 trained with Adam (8 epochs, cosine decay): about 98.3% on MNIST's test set."""
    return _cached("lenet300-100", models.mlp, splits, verbose, **overrides)


def lenet5(splits, verbose: bool = True, **overrides):
    """Dense LeNet-5 trained with Adam (6 epochs, batch 256, cosine decay)."""
    return _cached("lenet5", models.lenet5, splits, verbose, **overrides)


def training_history(kind: str, splits) -> list[dict]:
    """The per-epoch history stored with a cached baseline (``kind`` is ``"lenet300-100"`` or ``"lenet5"``)."""
    if kind not in RECIPES:
        raise ValueError(f"unknown baseline {kind!r}: choose one of {', '.join(RECIPES)}")
    return checkpoints.meta(f"{kind}-{data.dataset_name(splits)}")["history"]
