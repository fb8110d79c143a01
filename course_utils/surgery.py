"""Structural surgery: delete whole neurons (Linear) or channels (Conv2d) so that the tensors really shrink.

* :func:`remove_neurons` returns a new, physically smaller model: the layer's
  rows (and bias, and a BatchNorm after it) go, and so do the next layer's
  input columns or channels, including the blocks of ``H*W`` columns behind a
  ``Flatten``.
* :func:`mask_neurons` zeroes the same neurons instead, keeping the shapes
  (soft pruning): both give the same outputs.
* :func:`hidden_layers` and :func:`neuron_counts` say what can be removed.

*Which* neurons to remove is :mod:`course_utils.importance`; *how much*, and
the loops around it, :mod:`course_utils.hard_pruning`.

Only models whose layers run one after the other (a plain ``nn.Sequential``)
are handled. Anything this code cannot follow (a custom ``forward`` that might
add skip connections, an unknown module between two layers, grouped
convolutions, the output layer) raises a ``ValueError`` naming the layer and
the reason, instead of returning a silently wrong model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Chain", "follow", "hidden_layers", "mask_neurons", "neuron_counts", "remove_inplace", "remove_neurons",
           "sequential_children"]

# Modules that act on each neuron / channel separately and keep their number: they can sit between a layer and
# the next one. Exact types only: a subclass may have changed what forward() does.
_ELEMENTWISE = {
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid,
    nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout,
}
_POOLS = {nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d}
_LAYERS = (nn.Linear, nn.Conv2d)


# --------------------------------------------------------------------------- following the graph

@dataclass
class Chain:
    """What removing neurons of one layer touches: the layer, BatchNorms after it, and the next layer."""

    name: str
    layer: nn.Module
    width: int  # output neurons / channels of the layer
    batchnorms: list  # (name, module) between the layer and the next one, to shrink with it
    next_name: str
    next_layer: nn.Module
    block: int  # next-layer inputs per neuron: 1, or H*W when a Flatten sits between a conv and a Linear


def _is_layer(module: nn.Module) -> bool:
    return type(module) in _LAYERS


def sequential_children(model) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every layer of a plain ``nn.Sequential``, or a ValueError saying why not."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if type(model) is not nn.Sequential:
        raise ValueError(
            f"cannot follow a {type(model).__name__}: hard pruning here works on a plain nn.Sequential, whose layers "
            "run one after the other; a custom forward() may add skip connections or reuse layers, and removing "
            "neurons from it could give a silently wrong model")
    return list(model._modules.items())  # not named_children(): it hides a module used twice


def _layer_names(children) -> list[str]:
    return [n for n, m in children if _is_layer(m)]


def follow(model: nn.Module, layer: str) -> Chain:
    """Find ``layer`` in ``model`` and everything its output feeds, or raise a ValueError saying why not."""
    children = sequential_children(model)
    if not isinstance(layer, str):
        raise ValueError(f"layer must be a layer name such as 'fc1', got {layer!r}")
    names = [n for n, _ in children]
    if layer not in names:
        nested = dict(model.named_modules())
        if layer in nested:
            raise ValueError(f"layer {layer!r} sits inside a nested container: hard pruning follows only a flat "
                             "nn.Sequential (one level of named layers)")
        raise ValueError(f"no layer named {layer!r} in the model; its Linear/Conv2d layers are "
                         f"{_layer_names(children)}")
    index = names.index(layer)
    module = children[index][1]
    if not _is_layer(module):
        raise ValueError(f"layer {layer!r} is a {type(module).__name__}: only Linear and Conv2d layers have neurons "
                         "or channels to remove")
    if sum(m is module for _, m in children) > 1:
        raise ValueError(f"layer {layer!r} is used more than once in the model: its neurons cannot be removed "
                         "in one place only")
    if hasattr(module, "weight_orig"):
        raise ValueError(f"layer {layer!r} carries a pruning mask (torch.nn.utils.prune): call "
                         f"torch.nn.utils.prune.remove(model.{layer}, 'weight') first")
    conv = isinstance(module, nn.Conv2d)
    if conv and module.groups != 1:
        raise ValueError(f"layer {layer!r} is a grouped convolution (groups={module.groups}): removing its channels "
                         "would change the groups; not supported")
    width = module.out_channels if conv else module.out_features
    batchnorms, flattened = [], False
    for name, m in children[index + 1:]:
        kind = type(m)
        if kind in _LAYERS:
            nxt = m
            break
        if kind in _ELEMENTWISE:
            continue
        if kind in _POOLS and conv and not flattened:
            continue
        if kind is nn.BatchNorm2d and conv and not flattened or kind is nn.BatchNorm1d and not conv:
            if m.num_features != width:
                raise ValueError(f"cannot remove neurons of {layer!r}: {name!r} normalises {m.num_features} "
                                 f"features but {layer!r} has {width}")
            batchnorms.append((name, m))
            continue
        if kind is nn.Flatten and m.start_dim == 1 and m.end_dim == -1:
            flattened = flattened or conv  # after a Linear the input is already flat: a no-op
            continue
        raise ValueError(
            f"cannot remove neurons of {layer!r}: it feeds {name!r} ({kind.__name__}), a module this code does not "
            "know how to follow (it knows activations, dropout, BatchNorm, pooling and Flatten)")
    else:
        raise ValueError(f"{layer!r} is the output layer (no Linear or Conv2d after it): its outputs are the model's "
                         "predictions, one per class, so none of them can be removed")
    next_name = name
    if hasattr(nxt, "weight_orig"):
        raise ValueError(f"{next_name!r}, the layer after {layer!r}, carries a pruning mask "
                         f"(torch.nn.utils.prune): call torch.nn.utils.prune.remove(model.{next_name}, 'weight') first")
    if isinstance(nxt, nn.Linear):
        if conv and not flattened:
            raise ValueError(f"cannot remove channels of {layer!r}: {next_name!r} is a Linear layer but no Flatten "
                             "sits between them")
        if conv:
            if nxt.in_features % width:
                raise ValueError(f"cannot remove channels of {layer!r}: {next_name!r} has {nxt.in_features} inputs, "
                                 f"not a multiple of the {width} channels")
            block = nxt.in_features // width
        else:
            if nxt.in_features != width:
                raise ValueError(f"cannot remove neurons of {layer!r}: {next_name!r} expects {nxt.in_features} "
                                 f"inputs but {layer!r} has {width} outputs")
            block = 1
    else:
        if not conv or flattened:
            raise ValueError(f"cannot remove neurons of {layer!r}: it feeds the convolution {next_name!r} through "
                             "a reshape this code cannot follow")
        if nxt.groups != 1:
            raise ValueError(f"cannot remove channels of {layer!r}: {next_name!r} is a grouped convolution "
                             f"(groups={nxt.groups})")
        if nxt.in_channels != width:
            raise ValueError(f"cannot remove channels of {layer!r}: {next_name!r} expects {nxt.in_channels} input "
                             f"channels but {layer!r} has {width}")
        block = 1
    return Chain(layer, module, width, batchnorms, next_name, nxt, block)


def hidden_layers(model: nn.Module) -> list[str]:
    """Names of the Linear/Conv2d layers whose neurons can be removed: all but the output layer.

    Raises a ``ValueError`` if the model is not a plain ``nn.Sequential`` or one
    of these layers cannot be followed to the next.
    """
    names = _layer_names(sequential_children(model))
    if len(names) < 2:
        raise ValueError("the model needs at least two Linear/Conv2d layers to remove neurons from one of them")
    for name in names[:-1]:
        follow(model, name)
    return names[:-1]


def neuron_counts(model: nn.Module) -> dict[str, int]:
    """Number of output neurons (Linear) or channels (Conv2d) of each hidden layer."""
    return {name: follow(model, name).width for name in hidden_layers(model)}


# --------------------------------------------------------------------------- removing and masking


def _indices(drop, width: int, layer: str) -> torch.Tensor:
    """``drop`` as a sorted LongTensor of distinct indices in [0, width), leaving at least one neuron."""
    try:
        t = torch.as_tensor(list(drop) if not isinstance(drop, torch.Tensor) else drop)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"drop must be a list of neuron indices of {layer!r}, got {drop!r}") from exc
    if t.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    if t.dim() != 1 or t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"drop must be a 1-D list of integer neuron indices of {layer!r}, got {drop!r}")
    t = t.long()
    bad = t[(t < 0) | (t >= width)]
    if bad.numel():
        raise ValueError(f"neuron index {int(bad[0])} is out of range for {layer!r}, which has {width} neurons "
                         f"(valid: 0..{width - 1})")
    if t.unique().numel() != t.numel():
        raise ValueError(f"drop lists a neuron of {layer!r} more than once: {t.tolist()}")
    if t.numel() >= width:
        raise ValueError(f"removing {t.numel()} neurons would remove every neuron of {layer!r} ({width}): keep at "
                         "least one")
    return t.sort().values


def _keep(drop: torch.Tensor, width: int) -> torch.Tensor:
    mask = torch.ones(width, dtype=torch.bool)
    mask[drop] = False
    return mask.nonzero().flatten()


def _next_columns(keep: torch.Tensor, block: int) -> torch.Tensor:
    """Input columns of the next layer that belong to the kept neurons (``block`` columns per neuron)."""
    if block == 1:
        return keep
    return (keep[:, None] * block + torch.arange(block)[None, :]).flatten()


def _shrink(param: nn.Parameter | None, index: torch.Tensor, dim: int = 0):
    if param is None:
        return None
    index = index.to(param.device)  # the indices are built on the CPU; the model may live on a GPU
    return nn.Parameter(param.detach().index_select(dim, index).clone(), requires_grad=param.requires_grad)


def remove_inplace(model: nn.Module, layer: str, drop) -> nn.Module:
    """:func:`remove_neurons` without the copy: ``model`` itself loses the neurons (used by the pruning loops)."""
    chain = follow(model, layer)
    drop = _indices(drop, chain.width, layer)
    if drop.numel() == 0:
        return model
    keep = _keep(drop, chain.width)
    m = chain.layer
    m.weight = _shrink(m.weight, keep)
    m.bias = _shrink(m.bias, keep)
    if isinstance(m, nn.Conv2d):
        m.out_channels = len(keep)
    else:
        m.out_features = len(keep)
    for _, bn in chain.batchnorms:
        bn.num_features = len(keep)
        if bn.affine:
            bn.weight = _shrink(bn.weight, keep)
            bn.bias = _shrink(bn.bias, keep)
        if bn.running_mean is not None:
            bn.running_mean = bn.running_mean[keep].clone()
            bn.running_var = bn.running_var[keep].clone()
    nxt = chain.next_layer
    columns = _next_columns(keep, chain.block)
    nxt.weight = _shrink(nxt.weight, columns, dim=1)
    if isinstance(nxt, nn.Conv2d):
        nxt.in_channels = len(keep)
    else:
        nxt.in_features = len(columns)
    return model


def remove_neurons(model: nn.Module, layer: str, drop) -> nn.Module:
    """A new, smaller copy of ``model`` without the neurons (or channels) ``drop`` of ``layer``.

    The layer's weight rows and biases go, and so do the matching entries of a
    BatchNorm after it and the matching input columns (or input channels, or
    blocks of ``H*W`` columns after a ``Flatten``) of the next layer. The
    original model is not changed. ``drop`` is a list of indices; removing
    every neuron, the output layer, or a layer this code cannot follow raises a
    ``ValueError``.
    """
    _indices(drop, follow(model, layer).width, layer)  # every check before the copy
    return remove_inplace(copy.deepcopy(model), layer, drop)


@torch.no_grad()
def mask_neurons(model: nn.Module, layer: str, drop) -> nn.Module:
    """A copy of ``model`` of the same shape in which the neurons ``drop`` of ``layer`` are zeroed (soft pruning).

    Their incoming weights and biases (and BatchNorm scale and shift) are set to
    zero, and so are their outgoing weights in the next layer: the masked model
    computes what :func:`remove_neurons` computes, with all the zeros still stored.
    """
    chain = follow(model, layer)
    drop = _indices(drop, chain.width, layer)
    out = copy.deepcopy(model)
    chain = follow(out, layer)
    if drop.numel() == 0:
        return out
    chain.layer.weight[drop] = 0.0
    if chain.layer.bias is not None:
        chain.layer.bias[drop] = 0.0
    for _, bn in chain.batchnorms:
        if bn.affine:
            bn.weight[drop] = 0.0
            bn.bias[drop] = 0.0
    chain.next_layer.weight[:, _next_columns(drop, chain.block)] = 0.0
    return out
