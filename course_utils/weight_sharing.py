"""Trained quantisation (weight sharing), the second stage of Deep Compression (Han, Mao & Dally, ICLR 2016).

:func:`share_weights` clusters each layer's nonzero weights with k-means (:func:`kmeans_1d`) into ``2**bits``
shared values, a *codebook*; the layer then computes its weight as ``codebook[index]`` through a PyTorch
parametrisation (:class:`WeightSharing`, the mechanism ``torch.nn.utils.prune`` uses for masks), so the codebook is
the trainable parameter and :func:`finetune_centroids` is plain :func:`course_utils.train.fit`: each centroid's
gradient is the sum of the gradients of the weights that share it, and pruned weights stay exactly zero.
:func:`remove_sharing` turns the layers back into ordinary ones; :mod:`course_utils.quantization` writes a shared
model to a compressed file.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from .train import fit
from . import validate
from .validate import bit_width

__all__ = ["INITS", "SharedLayer", "WeightSharing", "finetune_centroids", "kmeans_1d", "remove_sharing",
           "share_weights", "shared_layers"]

INITS = ("linear", "density", "random")


def kmeans_1d(values: torch.Tensor, k: int, init: str = "linear", max_iter: int = 100,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means on numbers (1-D): returns ``(centroids, assignment)``, centroids sorted ascending.

    ``init`` places the ``k`` starting centroids as compared in Deep Compression:
    ``"linear"`` (evenly spaced from the smallest to the largest value, the
    paper's choice: it keeps centroids on the rare large weights),
    ``"density"`` (at evenly spaced quantiles) or ``"random"`` (``k`` values
    drawn with ``seed``). Lloyd iterations then alternate "each value joins its
    nearest centroid" and "each centroid moves to the mean of its values" until
    no assignment changes or ``max_iter`` rounds; a centroid without values
    stays where it is. ``assignment[i]`` is the centroid of ``values[i]``.
    """
    if not isinstance(values, torch.Tensor) or not values.dtype.is_floating_point:
        raise ValueError("values must be a floating-point tensor")
    if values.numel() == 0:
        raise ValueError("values is empty: there is nothing to cluster")
    if not torch.isfinite(values).all():
        raise ValueError("values contains NaN or infinity")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (the number of clusters) must be a positive integer, got {k!r}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {INITS}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    v = values.detach().reshape(-1).double().cpu()
    if init == "linear":
        centroids = torch.linspace(float(v.min()), float(v.max()), k, dtype=torch.float64)
    elif init == "density":
        centroids = torch.quantile(v[:16_000_000], (torch.arange(k, dtype=torch.float64) + 0.5) / k)
    else:
        g = torch.Generator().manual_seed(seed)
        centroids = v[torch.randint(len(v), (k,), generator=g)]
    centroids = centroids.sort().values
    assignment = None
    for _ in range(max_iter):
        new = torch.bucketize(v, (centroids[1:] + centroids[:-1]) / 2)
        if assignment is not None and torch.equal(new, assignment):
            break
        assignment = new
        counts = torch.bincount(assignment, minlength=k)
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, assignment, v)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        centroids, order = centroids.sort()
        assignment = torch.argsort(order)[assignment]
    return centroids.float(), assignment


class WeightSharing(nn.Module):
    """Parametrisation ``weight = [0, c_0, ..., c_{k-1}][slot]``: the codebook is the trainable tensor.

    ``slot`` (a buffer shaped like the weight) holds ``1 + cluster`` for every
    shared weight and 0 for a pruned one, which reads the fixed zero, so pruned
    weights stay exactly zero whatever the training does. Indexing sums the
    gradients of the weights that share a centroid into that centroid's gradient.
    """

    def __init__(self, index: torch.Tensor, k: int):
        super().__init__()
        self.k = k
        self.register_buffer("slot", (index.long() + 1).clamp(min=0))

    def forward(self, centroids: torch.Tensor) -> torch.Tensor:
        return torch.cat([centroids.new_zeros(1), centroids])[self.slot]

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        """The codebook that best represents ``weight`` with the current assignment: each cluster's mean."""
        index = self.slot.reshape(-1) - 1
        keep = index >= 0
        w = weight.detach().reshape(-1)[keep].double()
        counts = torch.bincount(index[keep], minlength=self.k)
        sums = torch.zeros(self.k, dtype=torch.float64, device=w.device).index_add_(0, index[keep], w)
        return (sums / counts.clamp(min=1)).to(weight.dtype)


class SharedLayer(NamedTuple):
    """A weight-shared layer: its codebook and, per weight, the cluster used (-1 for a pruned weight)."""

    centroids: torch.Tensor  # (2**bits,)
    index: torch.Tensor  # int64, shape of the weight

    @property
    def bits(self) -> int:
        return int(math.log2(len(self.centroids)))

    def weight(self) -> torch.Tensor:
        """The weight these stand for: ``centroids[index]``, zero where ``index == -1``."""
        return torch.where(self.index >= 0, self.centroids[self.index.clamp(min=0)], torch.zeros(()))


def _sharing(module: nn.Module) -> WeightSharing | None:
    if parametrize.is_parametrized(module, "weight"):
        for p in module.parametrizations.weight:
            if isinstance(p, WeightSharing):
                return p
    return None


def _layers(model: nn.Module, layers) -> dict[str, nn.Module]:
    found = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    if layers is None:
        if not found:
            raise ValueError("model has no Linear or Conv2d layer")
        return found
    if isinstance(layers, str):
        layers = [layers]
    unknown = [name for name in layers if name not in found]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}: choose among the Linear/Conv2d layers {list(found)}")
    return {name: found[name] for name in layers}


def share_weights(model: nn.Module, bits: int, layers=None, init: str = "linear", max_iter: int = 100) -> nn.Module:
    """Weight sharing (Deep Compression's trained quantisation), in place: returns ``model``.

    For every Linear/Conv2d layer (or only those named in ``layers``), the
    nonzero weights are clustered with :func:`kmeans_1d` into ``2**bits``
    centroids (``init="linear"`` as in the paper) and each is replaced by its
    centroid. Weights that are exactly zero (pruned) are not clustered and stay
    exactly zero. A layer masked with ``torch.nn.utils.prune`` has its mask made
    permanent first. The layer then computes its weight through
    :class:`WeightSharing`: ``layer.parametrizations.weight.original`` is the
    codebook, a trainable parameter, so :func:`finetune_centroids` (plain
    ``fit``) trains the centroids. Read the result with :func:`shared_layers`;
    turn the model back into ordinary layers with :func:`remove_sharing`.
    """
    validate.module(model)
    bits = bit_width(bits)
    targets = _layers(model, layers)
    already = [name for name, m in targets.items() if _sharing(m) is not None]
    if already:
        raise ValueError(f"layer(s) {already} are already weight-shared: call remove_sharing(model) first")
    k = 2**bits
    for module in targets.values():
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            prune.remove(module, "weight")
        weight = module.weight.detach()
        nonzero = weight != 0
        index = torch.full(weight.shape, -1, dtype=torch.int64, device=weight.device)
        centroids = torch.zeros(k)
        if nonzero.any():
            centroids, assignment = kmeans_1d(weight[nonzero], k, init=init, max_iter=max_iter)
            index[nonzero] = assignment.to(weight.device)
        parametrize.register_parametrization(module, "weight", WeightSharing(index, k), unsafe=True)
        with torch.no_grad():
            module.parametrizations.weight.original.copy_(centroids.to(weight))
    return model


def shared_layers(model: nn.Module) -> dict[str, SharedLayer]:
    """The codebook and cluster indices of every weight-shared layer, by layer name (detached copies)."""
    validate.module(model)
    out = {}
    for name, module in model.named_modules():
        sharing = _sharing(module)
        if sharing is not None:
            out[name] = SharedLayer(module.parametrizations.weight.original.detach().clone().cpu(),
                                    (sharing.slot - 1).clone().cpu())
    return out


def finetune_centroids(model: nn.Module, data, epochs: int, **fit_kwargs) -> list[dict]:
    """Fine-tune the codebooks of a weight-shared model with :func:`course_utils.train.fit`; returns its history.

    Nothing special happens here: the trainable parameters of a shared layer
    *are* its centroids, so ``fit`` computes each centroid's gradient as the
    sum of the gradients of the weights that share it (the paper's rule) and
    pruned weights stay zero. Biases and layers that are not shared train as
    usual. ``fit_kwargs`` go to ``fit`` (``lr``, ``batch_size``, ``schedule``...).
    """
    validate.module(model)
    if not shared_layers(model):
        raise ValueError("model has no weight-shared layer: call share_weights(model, bits) first")
    return fit(model, data, epochs, **fit_kwargs)


def remove_sharing(model: nn.Module) -> nn.Module:
    """Turn every weight-shared layer back into an ordinary one (``weight`` a plain parameter), in place."""
    validate.module(model)
    for module in model.modules():
        if _sharing(module) is not None:
            # A parametrised module's class is shared with its deep copies, and removing a parametrisation
            # deletes the property from that class: give this module a class of its own first.
            cls = type(module)
            module.__class__ = type(cls.__name__, cls.__bases__,
                                    {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")})
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
