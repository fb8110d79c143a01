"""Which neurons to remove: one importance score per output neuron (Linear) or channel (Conv2d).

:func:`neuron_importance` implements five criteria, low scores first to go:

* ``"random"`` (the article's choice), the baseline every criterion must beat;
* ``"l1"`` and ``"l2"``: norms of the neuron's incoming weights (magnitude
  pruning; Li et al. 2017 rank filters this way);
* ``"activation"``: the mean absolute output on validation images;
* ``"taylor"``: Molchanov et al.'s (2017) first-order estimate of the loss
  change if the neuron is removed, |activation × gradient|.

:func:`weight_norms` is the norm of every output row of one layer, masked
weights included; soft filter pruning ranks filters with it too.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from . import data as _data
from .masks import effective_weight
from .surgery import follow
from .train import device_of

__all__ = ["CRITERIA", "check_criterion", "neuron_importance", "weight_norms"]

CRITERIA = ("random", "l1", "l2", "activation", "taylor")


def weight_norms(module: nn.Module, p: int = 2) -> torch.Tensor:
    """The L1 (``p=1``) or L2 (``p=2``) norm of each output neuron's or filter's incoming weights.

    Reads the effective weight, so a masked layer's zeros count as zeros.
    """
    w = effective_weight(module)
    if p == 1:
        return w.abs().flatten(1).sum(1)
    if p == 2:
        return w.flatten(1).norm(dim=1)
    raise ValueError(f"p must be 1 or 2, got {p!r}")


def _eval_split(data, examples: int) -> _data.Split:
    if isinstance(data, _data.Split):
        split = data
    elif hasattr(data, "val"):
        split = data.val
    else:
        raise ValueError("the 'activation' and 'taylor' criteria need data: a Splits (its validation split is used) "
                         "or a Split(x, y)")
    if len(split.y) == 0:
        raise ValueError("the 'activation' and 'taylor' criteria need at least one example, got an empty split")
    return split.subset(examples)


def check_criterion(criterion) -> str:
    """``criterion`` if it is one of :data:`CRITERIA`, else a ValueError listing them."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}: use one of {', '.join(CRITERIA)}")
    return criterion


def neuron_importance(model: nn.Module, layer: str, criterion: str = "l1", data=None, *,
                      examples: int = 1000, seed: int = 0) -> torch.Tensor:
    """One score per output neuron (Linear) or channel (Conv2d) of ``layer``: low scores are removed first.

    * ``"random"``: uniform random numbers (seeded by ``seed``), the article's choice;
    * ``"l1"`` / ``"l2"``: norm of the neuron's incoming weights (its row, or its kernel);
    * ``"activation"``: mean absolute value of the neuron's output, as the next
      layer reads it (after BatchNorm, activation and pooling), over the first
      ``examples`` images of the validation split;
    * ``"taylor"``: Molchanov et al.'s first-order estimate of how much the loss
      changes if the neuron's output is set to zero: |activation × gradient of
      the loss| averaged over positions, then its absolute value averaged over
      images (same images).

    ``data`` is a :class:`~course_utils.data.Splits` (its ``val`` split is used)
    or a single :class:`~course_utils.data.Split`; only the last two criteria need it.
    """
    check_criterion(criterion)
    chain = follow(model, layer)
    if criterion == "random":
        return torch.rand(chain.width, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    if criterion in ("l1", "l2"):
        return weight_norms(chain.layer, 1 if criterion == "l1" else 2)
    split = _eval_split(data, examples)
    captured = {}

    def grab(_module, inputs):
        captured["x"] = inputs[0]

    handle = chain.next_layer.register_forward_pre_hook(grab)
    was_training = model.training
    model.eval()
    try:
        device = device_of(model)
        x, y = split.x.to(device), split.y.to(device)
        if criterion == "activation":
            with torch.no_grad():
                model(x)
            a = captured["x"].reshape(len(x), chain.width, -1)
            return a.abs().mean(dim=(0, 2)).cpu()
        with torch.enable_grad():
            loss = F.cross_entropy(model(x), y, reduction="sum")  # per-image gradients, not divided by the batch
            a = captured["x"]
            (g,) = torch.autograd.grad(loss, a)
        per_image = (a.detach() * g).reshape(len(x), chain.width, -1).mean(2)
        return per_image.abs().mean(0).cpu()
    finally:
        handle.remove()
        model.train(was_training)
