"""Hard pruning: delete whole neurons (Linear) or channels (Conv2d) so the model really gets smaller.

* :func:`neuron_importance` scores every output neuron / channel of a layer:
  ``"random"`` (the article's choice), ``"l1"`` and ``"l2"`` norms of the
  incoming weights (Li et al. 2017), ``"activation"`` (mean absolute output on
  validation images) and ``"taylor"`` (Molchanov et al. 2017: |activation ×
  gradient|, a first-order estimate of the loss change if the neuron is removed).
* :func:`remove_neurons` returns a new, physically smaller model: the layer's
  rows (and bias, and a BatchNorm after it) shrink, and so do the next layer's
  input columns or channels, including the blocks of ``H*W`` columns behind a
  ``Flatten``. :func:`mask_neurons` zeroes the same neurons instead, keeping the
  shapes (soft pruning): both give the same outputs.
* :func:`prune_neurons` removes the lowest-scored fraction of each layer;
  :func:`sensitivity_scan` and :func:`choose_plan` pick those fractions from
  measurements on the validation split.
* :func:`iterative_prune` is the article's loop (remove, fine-tune, evaluate on
  the validation split, restore if accuracy dropped), built on the shared
  :func:`course_utils.train.evaluate_and_restore`.
* :func:`group_l1` is the article's L1 penalty applied per neuron (a group
  lasso), to pass to ``fit(..., penalty=group_l1(), penalty_weight=λ)``.
* :func:`finetune` is a short retraining with :func:`course_utils.train.fit` on
  (part of) the training split.
* :func:`latencies`, :func:`speedup_curve` and :func:`layer_latencies` measure
  what removal buys in time, with :func:`course_utils.metrics.latency`.
* :func:`slider_result` is what the notebook's sliders show.

Only models whose layers run one after the other (a plain ``nn.Sequential``)
are handled. Anything this code cannot follow (a custom ``forward`` that might
add skip connections, an unknown module between two layers, grouped
convolutions, the output layer) raises a ``ValueError`` naming the layer and
the reason, instead of returning a silently wrong model.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from . import data as _data
from . import metrics, train

__all__ = [
    "CRITERIA",
    "choose_plan",
    "finetune",
    "fingerprint",
    "group_l1",
    "hidden_layers",
    "iterative_prune",
    "latencies",
    "layer_latencies",
    "mask_neurons",
    "neuron_counts",
    "neuron_importance",
    "prune_neurons",
    "remove_neurons",
    "sensitivity_scan",
    "slider_result",
    "speedup_curve",
]

CRITERIA = ("random", "l1", "l2", "activation", "taylor")

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
class _Chain:
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


def _check_model(model) -> list[tuple[str, nn.Module]]:
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


def _follow(model: nn.Module, layer: str) -> _Chain:
    """Find ``layer`` in ``model`` and everything its output feeds, or raise a ValueError saying why not."""
    children = _check_model(model)
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
    return _Chain(layer, module, width, batchnorms, next_name, nxt, block)


def hidden_layers(model: nn.Module) -> list[str]:
    """Names of the Linear/Conv2d layers whose neurons can be removed: all but the output layer.

    Raises a ``ValueError`` if the model is not a plain ``nn.Sequential`` or one
    of these layers cannot be followed to the next.
    """
    names = _layer_names(_check_model(model))
    if len(names) < 2:
        raise ValueError("the model needs at least two Linear/Conv2d layers to remove neurons from one of them")
    for name in names[:-1]:
        _follow(model, name)
    return names[:-1]


def neuron_counts(model: nn.Module) -> dict[str, int]:
    """Number of output neurons (Linear) or channels (Conv2d) of each hidden layer."""
    return {name: _follow(model, name).width for name in hidden_layers(model)}


def fingerprint(model: nn.Module) -> str:
    """A short hash of the model's weights and buffers: cached pruned models record which model they came from."""
    h = hashlib.sha1()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(str(tuple(value.shape)).encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


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
    return nn.Parameter(param.detach().index_select(dim, index).clone(), requires_grad=param.requires_grad)


def _remove_inplace(model: nn.Module, layer: str, drop) -> nn.Module:
    chain = _follow(model, layer)
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
    _indices(drop, _follow(model, layer).width, layer)  # every check before the copy
    return _remove_inplace(copy.deepcopy(model), layer, drop)


@torch.no_grad()
def mask_neurons(model: nn.Module, layer: str, drop) -> nn.Module:
    """A copy of ``model`` of the same shape in which the neurons ``drop`` of ``layer`` are zeroed (soft pruning).

    Their incoming weights and biases (and BatchNorm scale and shift) are set to
    zero, and so are their outgoing weights in the next layer: the masked model
    computes what :func:`remove_neurons` computes, with all the zeros still stored.
    """
    chain = _follow(model, layer)
    drop = _indices(drop, chain.width, layer)
    out = copy.deepcopy(model)
    chain = _follow(out, layer)
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


# --------------------------------------------------------------------------- importance


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


def _check_criterion(criterion) -> str:
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
    _check_criterion(criterion)
    chain = _follow(model, layer)
    w = chain.layer.weight.detach()
    if criterion == "random":
        return torch.rand(chain.width, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    if criterion == "l1":
        return w.abs().flatten(1).sum(1)
    if criterion == "l2":
        return w.flatten(1).norm(dim=1)
    split = _eval_split(data, examples)
    captured = {}

    def grab(_module, inputs):
        captured["x"] = inputs[0]

    handle = chain.next_layer.register_forward_pre_hook(grab)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
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


def _count(fraction: float, width: int) -> int:
    return int(math.floor(fraction * width + 0.5))


def _check_fraction(fraction, layer: str) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"the fraction of neurons to remove from {layer!r} must be a number in [0, 1), "
                         f"got {fraction!r}")
    return float(fraction)


def _plan(model: nn.Module, amounts) -> dict[str, int]:
    """``amounts`` (one fraction, or layer -> fraction) as layer -> number of neurons to remove, all checked."""
    if isinstance(amounts, Mapping):
        if not amounts:
            raise ValueError("amounts is empty: give a fraction, or a dict such as {'fc1': 0.5}")
        fractions = dict(amounts)
    else:
        fractions = {name: amounts for name in hidden_layers(model)}
    plan = {}
    for layer, fraction in fractions.items():
        fraction = _check_fraction(fraction, layer)
        width = _follow(model, layer).width
        k = _count(fraction, width)
        if k >= width:
            raise ValueError(f"removing {fraction:.0%} of {layer!r} would remove every one of its {width} neurons: "
                             "use a smaller fraction")
        plan[layer] = k
    return plan


def prune_neurons(model: nn.Module, amounts, criterion: str = "l1", data=None, *, seed: int = 0,
                  examples: int = 1000) -> nn.Module:
    """A smaller copy of ``model`` without the lowest-scored neurons of each layer.

    ``amounts`` is one fraction for every hidden layer (``0.5``) or a dict of
    fractions per layer (``{"fc1": 0.6, "fc2": 0.2}``); each layer loses
    ``round(fraction × neurons)`` neurons, ranked by :func:`neuron_importance`
    on the original model (so one layer's removal does not change another's
    ranking). The original model is not changed.
    """
    _check_criterion(criterion)
    plan = _plan(model, amounts)
    drops = {}
    for i, (layer, k) in enumerate(plan.items()):
        if k == 0:
            continue
        scores = neuron_importance(model, layer, criterion, data, examples=examples, seed=seed + i)
        drops[layer] = torch.argsort(scores, stable=True)[:k]
    out = copy.deepcopy(model)
    for layer, drop in drops.items():
        _remove_inplace(out, layer, drop)
    return out


# --------------------------------------------------------------------------- fine-tuning, scans and plans


def finetune(model: nn.Module, data, epochs: int = 1, *, examples: int | None = None, lr: float = 5e-4,
             batch_size: int = 128, schedule: str | None = "cosine", seed: int = 0, **fit_kwargs) -> list[dict]:
    """A short retraining with :func:`course_utils.train.fit` on the first ``examples`` training images (all if None).

    Only the training split is read (no validation, no test). Returns fit's history.
    """
    split = data.train if hasattr(data, "train") else data
    if not isinstance(split, _data.Split):
        raise ValueError("data must be a Splits (from load_dataset) or a Split(x, y)")
    if examples is not None:
        if isinstance(examples, bool) or not isinstance(examples, int) or examples <= 0:
            raise ValueError(f"examples must be a positive integer or None, got {examples!r}")
        split = split.subset(examples)
    fit_kwargs.setdefault("progress", False)
    return train.fit(model, split, epochs, lr=lr, batch_size=batch_size, schedule=schedule, seed=seed,
                     validate=False, **fit_kwargs)


def sensitivity_scan(model: nn.Module, data, fractions: Sequence[float], criterion: str = "l1",
                     layers: Sequence[str] | None = None, seed: int = 0) -> dict[str, list[float]]:
    """Validation accuracy after removing each fraction of one layer at a time (no fine-tuning).

    Returns ``{layer: [accuracy for each fraction]}``. Only ``data.val`` is read.
    """
    _check_criterion(criterion)
    layers = list(layers) if layers is not None else hidden_layers(model)
    for layer in layers:
        width = _follow(model, layer).width
        for f in fractions:
            if _count(_check_fraction(f, layer), width) >= width:
                raise ValueError(f"removing {f:.0%} of {layer!r} would remove every one of its {width} neurons")
    scan = {}
    for layer in layers:
        scores = neuron_importance(model, layer, criterion, data, seed=seed)
        order = torch.argsort(scores, stable=True)
        width = len(order)
        scan[layer] = [train.evaluate(_remove_inplace(copy.deepcopy(model), layer, order[:_count(f, width)]),
                                      data.val).accuracy for f in fractions]
    return scan


def choose_plan(scan: Mapping[str, Sequence[float]], fractions: Sequence[float], counts: Mapping[str, int],
                remove_at_least: float, reference: float) -> dict[str, float]:
    """Per-layer fractions that remove at least ``remove_at_least`` of all neurons and cost the least accuracy.

    Each layer's cost is read from ``scan`` (:func:`sensitivity_scan`): the drop
    from ``reference`` (the unpruned validation accuracy) at that fraction. The
    costs of the layers are added (an approximation: layers are scanned one at
    a time), and every combination of the scanned fractions is tried. Ties go
    to the plan that removes more.
    """
    if not 0.0 < remove_at_least < 1.0:
        raise ValueError(f"remove_at_least must be in (0, 1), got {remove_at_least}")
    fractions = list(fractions)
    layers = list(scan)
    if not layers:
        raise ValueError("the scan is empty")
    for layer in layers:
        if layer not in counts:
            raise ValueError(f"no neuron count for {layer!r} in counts")
        if len(scan[layer]) != len(fractions):
            raise ValueError(f"the scan of {layer!r} has {len(scan[layer])} values for {len(fractions)} fractions")
    if len(fractions) ** len(layers) > 1_000_000:
        raise ValueError("too many combinations: scan fewer fractions or fewer layers")
    total = sum(counts[layer] for layer in layers)
    best, best_key = None, None
    for combo in itertools.product(range(len(fractions)), repeat=len(layers)):
        removed = sum(_count(fractions[i], counts[layer]) for i, layer in zip(combo, layers))
        if removed < remove_at_least * total:
            continue
        cost = sum(max(0.0, reference - scan[layer][i]) for i, layer in zip(combo, layers))
        key = (round(cost, 9), -removed)
        if best_key is None or key < best_key:
            best, best_key = {layer: fractions[i] for i, layer in zip(combo, layers)}, key
    if best is None:
        raise ValueError(f"no combination of the scanned fractions removes {remove_at_least:.0%} of the neurons: "
                         "scan larger fractions")
    return best


# --------------------------------------------------------------------------- the article's loop


@dataclass(frozen=True)
class _Candidate:
    layer: str
    drop: tuple
    criterion: str

    def __str__(self) -> str:
        return f"{self.layer}: remove {len(self.drop)} ({self.criterion})"


def iterative_prune(model: nn.Module, data, target: float = 0.5, step: float = 0.1, criterion: str = "l1",
                    tolerance: float = 0.005, finetune_epochs: int = 1, *, layers: Sequence[str] | None = None,
                    finetune_examples: int | None = None, lr: float = 5e-4, batch_size: int = 128,
                    max_tries: int | None = None, max_rounds: int = 100, seed: int = 0) -> tuple[nn.Module, list]:
    """The article's remove / evaluate / restore loop, on whole neurons, with decisions on the validation split.

    ``target`` is the fraction of the hidden neurons (of ``layers``, default
    all hidden layers) that should remain. Each round offers one candidate per
    layer, least-pruned layer first: its ``step`` (a fraction of the layer's
    original size) lowest-scored neurons by ``criterion`` (``"random"``: a random
    set). The candidate is removed, the model fine-tuned for ``finetune_epochs``
    on the training split (the first ``finetune_examples`` images), and kept if
    its validation accuracy is within ``tolerance`` of the original model's;
    otherwise it is restored and the next layer's candidate is tried. The loop
    itself is :func:`course_utils.train.evaluate_and_restore`; the test split is
    never read. Returns the pruned model and the log (one row per trial).
    """
    _check_criterion(criterion)
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 < target < 1.0:
        raise ValueError(f"target is the fraction of hidden neurons to keep, in (0, 1), got {target!r}")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0.0 < step < 1.0:
        raise ValueError(f"step is the fraction of a layer removed per round, in (0, 1), got {step!r}")
    if not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ValueError(f"tolerance must be a number >= 0 (a fraction: 0.005 is half a point), got {tolerance!r}")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise ValueError(f"finetune_epochs must be an integer >= 0, got {finetune_epochs!r}")
    if not hasattr(data, "val") or not hasattr(data, "train"):
        raise ValueError("data must be a Splits with train and val splits (from load_dataset)")
    layers = list(layers) if layers is not None else hidden_layers(model)
    if not layers:
        raise ValueError("layers is empty: name at least one hidden layer")
    original = {layer: _follow(model, layer).width for layer in layers}
    total = sum(original.values())
    per_round = {layer: max(1, _count(step, n)) for layer, n in original.items()}
    draws = itertools.count()

    def remaining(m):
        return {layer: _follow(m, layer).width for layer in layers}

    def size(m):
        return sum(remaining(m).values()) / total

    def candidates(m):
        now = remaining(m)
        needed = sum(now.values()) - math.floor(target * total + 1e-9)
        for layer in sorted(layers, key=lambda name: -now[name] / original[name]):  # stable: ties keep order
            k = min(per_round[layer], max(1, needed), now[layer] - 1)
            if k <= 0:
                continue
            scores = neuron_importance(m, layer, criterion, data, seed=seed + next(draws))
            yield _Candidate(layer, tuple(torch.argsort(scores, stable=True)[:k].tolist()), criterion)

    def apply(m, candidate):
        return _remove_inplace(m, candidate.layer, candidate.drop)

    tune = None
    if finetune_epochs > 0:
        def tune(m):
            finetune(m, data, finetune_epochs, examples=finetune_examples, lr=lr, batch_size=batch_size, seed=seed)

    return train.evaluate_and_restore(
        model, data, candidates=candidates, apply=apply, size=size, target=target, tolerance=tolerance,
        finetune=tune, max_tries=max_tries or len(layers), max_rounds=max_rounds, describe=str)


# --------------------------------------------------------------------------- group L1 penalty


def group_l1(layers: Iterable[str] | None = None):
    """The article's L1 penalty applied per neuron: Σ over neurons of the L2 norm of (incoming weights, bias).

    Returns ``penalty(model) -> tensor`` for ``fit(..., penalty=group_l1(), penalty_weight=λ)``.
    Like L1 on single weights, this group lasso (Yuan & Lin 2006; Wen et al.
    2016) drives whole groups, here whole neurons, towards zero, so that
    removing them afterwards costs little. ``layers`` defaults to the model's
    hidden layers (the output layer is never penalised).
    """
    chosen = list(layers) if layers is not None else None
    if chosen is not None and not chosen:
        raise ValueError("layers is empty: name at least one layer, or pass None for all hidden layers")

    def penalty(model: nn.Module) -> torch.Tensor:
        names = chosen if chosen is not None else hidden_layers(model)
        total = None
        for name in names:
            try:
                m = model.get_submodule(name)
            except AttributeError as exc:
                raise ValueError(f"group_l1: no layer named {name!r} in the model") from exc
            if not _is_layer(m):
                raise ValueError(f"group_l1: {name!r} is a {type(m).__name__}, not a Linear or Conv2d layer")
            sq = m.weight.pow(2).flatten(1).sum(1)
            if m.bias is not None:
                sq = sq + m.bias.pow(2)
            value = sq.clamp_min(1e-12).sqrt().sum()  # clamp: the gradient of sqrt at exactly 0 is infinite
            total = value if total is None else total + value
        return total

    return penalty


# --------------------------------------------------------------------------- what it buys: latency


def latencies(models: Mapping[str, nn.Module], batch_size: int = 256, input_shape=(1, 28, 28), rounds: int = 3,
              min_run_time: float = 0.1, block_ms: float = 30.0) -> dict[str, metrics.Timing]:
    """:func:`course_utils.metrics.latency` of several models, measured in interleaved rounds with long blocks.

    Round after round, every model is timed once (A, B, C, A, B, C, ...); for
    each model the round with the median time is returned. Each timed block
    runs the model for at least ``block_ms`` milliseconds. Both make ratios
    between models robust on a shared machine: a slow period hits every model
    alike, and the other programs' share of the CPU stretches a long block
    proportionally instead of adding a whole scheduler time slice to a short
    one. On a quiet machine the results are the same as plain
    :func:`~course_utils.metrics.latency`.
    """
    if not models:
        raise ValueError("no models to time")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds <= 0:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if not isinstance(block_ms, (int, float)) or block_ms <= 0:
        raise ValueError(f"block_ms must be a number > 0, got {block_ms!r}")
    results: dict[str, list] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            results[name].append(metrics.latency(model, batch_size, input_shape, min_run_time=min_run_time,
                                                 min_repeats=7, min_block=block_ms * 1e-3))
    return {name: sorted(ts, key=lambda t: t.median)[(len(ts) - 1) // 2] for name, ts in results.items()}


def layer_latencies(model: nn.Module, batch_size: int = 256, input_shape=(1, 28, 28),
                    min_run_time: float = 0.1) -> list[dict]:
    """Time every layer of a ``nn.Sequential`` on its own, with :func:`course_utils.metrics.latency`.

    Each layer gets an input of the shape it sees inside the model (random
    values). Returns one row per layer: ``layer``, ``type``, ``macs`` (per
    image), ``latency_ms`` (batch ``batch_size``) and ``threads``. The rows show
    where the time goes, including layers without any MACs (activations, pooling).
    """
    children = _check_model(model)
    device = next(model.parameters()).device
    x = torch.zeros(1, *input_shape, device=device)
    rows = []
    was_training = model.training
    model.eval()
    try:
        for name, module in children:
            shape = tuple(x.shape[1:])
            timing = metrics.latency(module, batch_size, shape, min_run_time=min_run_time)
            macs = metrics.macs(module, shape)
            rows.append({"layer": name, "type": type(module).__name__, "macs": macs,
                         "latency_ms": timing.median * 1e3, "threads": timing.threads})
            with torch.no_grad():
                x = module(x)
    finally:
        model.train(was_training)
    return rows


def speedup_curve(model: nn.Module, fractions: Sequence[float], batch_size: int = 256, input_shape=(1, 28, 28),
                  layers: Sequence[str] | None = None, rounds: int = 3, min_run_time: float = 0.1,
                  block_ms: float = 30.0) -> list[dict]:
    """Measured latency speed-up against the ideal one (the MAC ratio) as a growing fraction of neurons goes.

    For each fraction, ``layers`` (default: every hidden layer) lose that
    fraction of their neurons (by L1 norm: the weights do not change the
    time), and the pruned model is timed against the original with
    :func:`latencies`. Returns one row per fraction: ``fraction``, ``macs``,
    ``mac_ratio`` (original / pruned), ``latency_ms``, ``speedup``
    (original / pruned time), ``batch_size`` and ``threads``.
    """
    layers = list(layers) if layers is not None else hidden_layers(model)
    pruned = {f"{f:g}": prune_neurons(model, {layer: f for layer in layers}, "l1") for f in fractions}
    timed = latencies({"original": model, **pruned}, batch_size, input_shape, rounds, min_run_time, block_ms)
    base_macs = metrics.macs(model, input_shape)
    rows = []
    for f, (key, m) in zip(fractions, pruned.items()):
        mac = metrics.macs(m, input_shape)
        rows.append({"fraction": f, "macs": mac, "mac_ratio": base_macs / mac,
                     "latency_ms": timed[key].median * 1e3, "speedup": timed["original"].median / timed[key].median,
                     "batch_size": batch_size, "threads": timed[key].threads})
    return rows


# --------------------------------------------------------------------------- the notebook's sliders


def slider_result(model: nn.Module, data, fractions: Mapping[str, float], *, criterion: str = "l1",
                  finetune_epochs: int = 1, finetune_examples: int | None = 10_000, lr: float = 5e-4,
                  batch_size: int = 256, min_run_time: float = 0.2, seed: int = 0,
                  cache: dict | None = None) -> dict:
    """Prune ``fractions`` (layer -> fraction removed) of ``model``, fine-tune briefly, and measure the result.

    Returns a dict: ``neurons`` (layer -> kept/original), ``params``, ``macs``,
    ``val_acc_no_finetune`` and ``val_acc`` (after the short fine-tune, on the
    validation split), ``latency_ms`` at ``batch_size`` (:func:`latencies`, one round) and the ``threads`` used.
    Pass a dict as ``cache`` to reuse results for fractions already seen.
    """
    if not isinstance(fractions, Mapping):
        raise ValueError("fractions must be a dict such as {'fc1': 0.5, 'fc2': 0.3}")
    key = (tuple(sorted(fractions.items())), criterion, finetune_epochs, finetune_examples, lr, batch_size, seed)
    if cache is not None and key in cache:
        return cache[key]
    counts = neuron_counts(model)
    pruned = prune_neurons(model, dict(fractions), criterion, data, seed=seed)
    before = train.evaluate(pruned, data.val).accuracy
    if finetune_epochs > 0:
        finetune(pruned, data, finetune_epochs, examples=finetune_examples, lr=lr, seed=seed)
    after = train.evaluate(pruned, data.val).accuracy
    timing = latencies({"pruned": pruned}, batch_size, tuple(data.val.x.shape[1:]), rounds=1,
                       min_run_time=min_run_time)["pruned"]
    kept = neuron_counts(pruned)
    result = {
        "neurons": {layer: f"{kept[layer]}/{n}" for layer, n in counts.items()},
        "params": metrics.count_parameters(pruned),
        "macs": metrics.macs(pruned, tuple(data.val.x.shape[1:])),
        "val_acc_no_finetune": before,
        "val_acc": after,
        "latency_ms": timing.median * 1e3,
        "batch_size": batch_size,
        "threads": timing.threads,
    }
    if cache is not None:
        cache[key] = result
    return result
