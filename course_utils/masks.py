"""Masks: zero weights and keep them at zero, on top of PyTorch's :mod:`torch.nn.utils.prune`.

A masked layer holds ``weight_orig`` (a parameter), ``weight_mask`` (a buffer
of 0s and 1s) and a forward pre-hook that computes ``weight = weight_orig *
weight_mask`` before every forward pass. The model keeps its shape; the zeros
are real, but a dense kernel still multiplies by every one of them.

* The masked-weight view, used by every measurement and by checkpoints:
  :func:`is_masked`, :func:`effective_weight`, :func:`effective_state_dict`,
  :func:`refresh_masks`.
* Making masks: :func:`magnitude_masks` (compute), :func:`apply_masks`
  (install), :func:`magnitude_prune` (both), :func:`current_masks`,
  :func:`mask_zeros` (mask the weights that are zero now).
* Keeping them: :func:`enforce_masks` is the ``after_step`` hook of
  :func:`course_utils.train.fit`; :func:`remove_masks` bakes the zeros in.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import prune

from . import validate
from .models import prunable_layers

__all__ = [
    "SCOPES",
    "apply_masks",
    "current_masks",
    "effective_state_dict",
    "effective_weight",
    "enforce_masks",
    "is_masked",
    "magnitude_masks",
    "magnitude_prune",
    "mask_zeros",
    "refresh_masks",
    "remove_masks",
    "select_layers",
]

SCOPES = ("layer", "global")


# --------------------------------------------------------------------------- the masked-weight view


def is_masked(module: nn.Module, name: str = "weight") -> bool:
    """Whether ``module.<name>`` is reparametrised by ``torch.nn.utils.prune`` (``<name>_orig`` and ``<name>_mask``)."""
    return f"{name}_orig" in module._parameters and hasattr(module, f"{name}_mask")


def effective_weight(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The value a layer computes with: ``<name>_orig * <name>_mask`` for a masked layer, else the parameter.

    Computed from the parameter and the mask rather than read from the
    attribute that ``torch.nn.utils.prune`` refreshes at each forward pass,
    which lags behind after an optimiser step.
    """
    if is_masked(module, name):
        return (getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")).detach()
    return getattr(module, name).detach()


def effective_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``state_dict`` with every pruning mask applied and ``*_orig``/``*_mask`` pairs merged."""
    state = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith("_mask") and key[: -len("_mask")] + "_orig" in state:
            continue
        if key.endswith("_orig") and key[: -len("_orig")] + "_mask" in state:
            base = key[: -len("_orig")]
            out[base] = (tensor * state[base + "_mask"]).detach().clone()
        else:
            out[key] = tensor
    return out


@torch.no_grad()
def refresh_masks(model: nn.Module) -> nn.Module:
    """Recompute every masked attribute (``weight = weight_orig * weight_mask``) now, outside autograd.

    ``torch.nn.utils.prune`` recomputes a masked layer's ``weight`` at each
    forward pass; after a forward pass with gradients that attribute belongs to
    an autograd graph, which ``copy.deepcopy`` refuses, and after an optimiser
    step it holds stale values. Refreshed without gradients it is a plain tensor
    with the current values. Returns the model.
    """
    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                setattr(module, hook._tensor_name, hook.apply_mask(module))
    return model


# --------------------------------------------------------------------------- choosing layers and amounts


def select_layers(model: nn.Module, layers: Iterable[str] | str | None = None) -> dict[str, nn.Module]:
    """The named Linear/Conv2d layers to prune: all of them, or the ones named in ``layers``."""
    available = prunable_layers(model)
    if not available:
        raise ValueError("the model has no Linear or Conv2d layer to prune")
    if layers is None:
        return available
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("layers is empty: name at least one layer, or pass None for all of them")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}: this model's prunable layers are {list(available)}")
    return {n: available[n] for n in names}


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}: use 'layer' (the same fraction in every layer) "
                         f"or 'global' (one threshold for all layers)")
    return scope


def checked_amounts(model: nn.Module, amount, scope: str, layers) -> tuple[dict[str, nn.Module], float | dict]:
    """Validate ``amount`` (a fraction, or a ``{layer: fraction}`` dict for scope ``"layer"``)."""
    check_scope(scope)
    if isinstance(amount, Mapping):
        if scope != "layer":
            raise ValueError("a per-layer amount {layer: fraction} needs scope='layer'")
        if layers is not None:
            raise ValueError("give either layers or a per-layer amount dict, not both")
        chosen = select_layers(model, list(amount))
        return chosen, {n: validate.fraction(a, f"amount[{n!r}]") for n, a in amount.items()}
    return select_layers(model, layers), validate.fraction(amount)


# --------------------------------------------------------------------------- making masks


def _scores(module: nn.Module) -> torch.Tensor:
    """|w| of the effective weight; weights already masked score -1, so they are always pruned first."""
    score = effective_weight(module).abs()
    if is_masked(module):
        score = torch.where(module.weight_mask == 0, torch.full_like(score, -1.0), score)
    return score


def mask_smallest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A mask (same shape and dtype as ``scores``) with 0 at the ``k`` smallest entries, 1 elsewhere.

    The same ``torch.topk`` call as ``torch.nn.utils.prune.l1_unstructured``, so
    ties are broken the same way.
    """
    mask = torch.ones_like(scores)
    if k > 0:
        idx = torch.topk(scores.reshape(-1), k=k, largest=False).indices
        mask.view(-1)[idx] = 0
    return mask


def magnitude_masks(model: nn.Module, amount, scope: str = "layer",
                    layers: Iterable[str] | str | None = None) -> dict[str, torch.Tensor]:
    """Masks that zero the smallest-magnitude weights, without touching the model.

    ``amount`` is the fraction of weights to zero (the sparsity the layers will
    have, counting weights already masked, which are pruned first).

    * ``scope="layer"``: every layer loses ``round(amount * n)`` of its ``n``
      weights (``amount`` may also be a ``{layer: fraction}`` dict, as in Han et
      al.'s per-layer rates);
    * ``scope="global"``: one threshold for all the chosen layers together, so
      layers with many small weights lose more.

    Returns ``{layer name: mask}`` with 1 for kept and 0 for pruned weights.
    """
    chosen, amounts = checked_amounts(model, amount, scope, layers)
    if scope == "layer":
        return {name: mask_smallest(_scores(m), round((amounts[name] if isinstance(amounts, dict) else amounts)
                                                      * m.weight.numel()))
                for name, m in chosen.items()}
    scores = [_scores(m) for m in chosen.values()]
    flat = torch.cat([s.reshape(-1) for s in scores])
    mask = mask_smallest(flat, round(amounts * flat.numel()))
    out, start = {}, 0
    for (name, m), s in zip(chosen.items(), scores):
        out[name] = mask[start:start + s.numel()].view_as(s).clone()
        start += s.numel()
    return out


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Install ``{layer name: mask}`` with ``torch.nn.utils.prune`` (in place) and return the model.

    A layer seen for the first time gets ``prune.custom_from_mask`` (``weight``
    becomes ``weight_orig`` × ``weight_mask`` through a forward pre-hook); a
    layer that already has a mask gets its mask *replaced*. Masked entries of
    ``weight_orig`` are set to zero as well, so no stored value can come back:
    a masked weight is zero everywhere.
    """
    available = prunable_layers(model)
    if not available:
        raise ValueError("the model has no Linear or Conv2d layer to prune")
    checked = {}
    for name, mask in masks.items():
        if name not in available:
            raise ValueError(f"unknown layer {name!r}: this model's prunable layers are {list(available)}")
        module = available[name]
        mask = torch.as_tensor(mask)
        if tuple(mask.shape) != tuple(module.weight.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, the weight has "
                             f"{tuple(module.weight.shape)}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"mask for {name!r} must contain only 0 and 1")
        checked[name] = mask
    for name, mask in checked.items():
        module = available[name]
        if is_masked(module):
            module.weight_mask.copy_(mask.to(module.weight_mask))
        else:
            prune.custom_from_mask(module, "weight", mask.to(module.weight).detach().clone())
        with torch.no_grad():
            module.weight_orig.mul_(module.weight_mask)
        refresh_masks(module)
    return model


def magnitude_prune(model: nn.Module, amount, scope: str = "layer",
                    layers: Iterable[str] | str | None = None) -> nn.Module:
    """Zero the smallest-magnitude weights with masks (in place); see :func:`magnitude_masks`."""
    return apply_masks(model, magnitude_masks(model, amount, scope, layers))


def current_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{layer name: copy of its mask}`` for every masked layer."""
    return {name: m.weight_mask.detach().clone() for name, m in prunable_layers(model).items() if is_masked(m)}


def mask_zeros(model: nn.Module, layers: Iterable[str] | str | None = None) -> nn.Module:
    """Mask the weights that are exactly zero now (in place), so that training keeps them at zero.

    For a pruned model loaded from a checkpoint (which stores plain weights
    with zeros): it gets its masks back.
    """
    chosen = select_layers(model, layers)
    refresh_masks(model)
    return apply_masks(model, {n: (m.weight.detach() != 0).to(m.weight.dtype) for n, m in chosen.items()})


# --------------------------------------------------------------------------- keeping and removing masks


@torch.no_grad()
def enforce_masks(model: nn.Module) -> None:
    """The ``after_step`` hook for ``cu.train.fit``: keep masked entries of ``weight_orig`` at exactly zero.

    The effective weight is zero anyway (the forward pre-hook multiplies by
    the mask and the gradient of a masked entry is zero); this also stops an
    optimiser carrying momentum from before the mask, or weight decay, from
    moving the hidden ``weight_orig`` value.
    """
    for module in model.modules():
        if is_masked(module):
            module.weight_orig.mul_(module.weight_mask)


def remove_masks(model: nn.Module) -> nn.Module:
    """Make the zeros permanent and drop the masks and hooks (in place): a plain model with the same outputs.

    Do this before exporting the model anywhere that does not know about
    ``torch.nn.utils.prune``. (``cu.checkpoints.save`` already stores the
    effective weights, so a masked model can be saved as it is.)
    """
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    return model
