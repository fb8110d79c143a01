"""The notebooks' controls: :func:`controls` wires ``ipywidgets`` sliders to a function, and the
functions behind the sliders live here too (each tested without a browser).

* :func:`controls` builds a panel of sliders, dropdowns and checkboxes that
  re-runs a function when a control is released;
* :func:`hard_pruning_result` is notebook 01's slider: remove a fraction of
  each hidden layer, fine-tune briefly, measure;
* :func:`soft_pruning_preview` and :func:`soft_pruning_figure` are notebook
  02's: magnitude pruning of a copy, measured and drawn;
* notebook 03's temperature slider redraws :func:`course_utils.plots.soft_target_bars`;
* :func:`quantization_result` and :func:`quantization_figure` are notebook 04's bits slider.
"""

from __future__ import annotations

import copy
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from . import metrics, train
from .hard_pruning import prune_neurons
from .latency import latencies
from .masks import checked_amounts, magnitude_prune, refresh_masks
from .models import prunable_layers
from .surgery import neuron_counts

__all__ = ["controls", "hard_pruning_result", "quantization_figure", "quantization_result", "soft_pruning_figure",
           "soft_pruning_preview"]


def controls(update: Callable[..., object], **specs):
    """Build a control panel: ``update(**values)`` runs whenever a control is released.

    Each keyword is a control: a ``(min, max, step, value)`` tuple gives a
    slider (float if any number is a float), a list gives a dropdown (first item
    selected), a bool gives a checkbox. What ``update`` prints, displays or
    plots appears below the controls. Returns the ``ipywidgets`` box to display.
    """
    import ipywidgets as w
    from IPython.display import display

    made = {}
    for name, spec in specs.items():
        if isinstance(spec, bool):
            made[name] = w.Checkbox(value=spec, description=name)
        elif isinstance(spec, (list, tuple)) and len(spec) == 4 and all(isinstance(v, (int, float)) for v in spec):
            lo, hi, step, value = spec
            cls = w.FloatSlider if any(isinstance(v, float) for v in spec) else w.IntSlider
            made[name] = cls(min=lo, max=hi, step=step, value=value, description=name, continuous_update=False,
                             style={"description_width": "initial"})
        elif isinstance(spec, list) and spec:
            made[name] = w.Dropdown(options=spec, value=spec[0], description=name)
        else:
            raise ValueError(f"control {name!r}: use (min, max, step, value), a non-empty list, or a bool")
    out = w.Output()

    def redraw(_change=None):
        out.clear_output(wait=True)
        with out:
            result = update(**{k: c.value for k, c in made.items()})
            if result is not None:
                display(result)

    for c in made.values():
        c.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox(list(made.values())), out])


# --------------------------------------------------------------------------- notebook 01


def hard_pruning_result(model: nn.Module, data, fractions: Mapping[str, float], *, criterion: str = "l1",
                  finetune_epochs: int = 1, finetune_examples: int | None = 10_000, lr: float = 5e-4,
                  batch_size: int = 256, min_run_time: float = 0.2, seed: int = 0,
                  cache: dict | None = None) -> dict:
    """Prune ``fractions`` (layer -> fraction removed) of ``model``, fine-tune briefly, and measure the result.

    Returns a dict: ``neurons`` (layer -> kept/original), ``params``, ``macs``,
    ``val_acc_no_finetune`` and ``val_acc`` (after the short fine-tune, on the
    validation split), ``latency_ms`` at ``batch_size`` (:func:`course_utils.latency.latencies`, one round) and
    the ``threads`` used.
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
        train.finetune(pruned, data, finetune_epochs, examples=finetune_examples, lr=lr, seed=seed)
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


# --------------------------------------------------------------------------- notebook 02


def soft_pruning_preview(model: nn.Module, data, amount: float, scope: str = "layer",
            layers: Iterable[str] | str | None = None) -> dict:
    """Prune a copy of ``model`` by magnitude (no retraining) and measure it on the validation split.

    Returns ``{"model", "sparsity", "val_acc", "dense_val_acc", "remaining"}``
    where ``remaining`` is the fraction of weights left in each layer.
    """
    checked_amounts(model, amount, scope, layers)  # validate before copying
    dense = copy.deepcopy(refresh_masks(model))
    pruned = magnitude_prune(copy.deepcopy(dense), amount, scope, layers)
    return {
        "model": pruned,
        "sparsity": metrics.sparsity(pruned),
        "val_acc": train.evaluate(pruned, data.val).accuracy,
        "dense_val_acc": train.evaluate(dense, data.val).accuracy,
        "remaining": {n: 1.0 - s for n, s in metrics.layer_sparsity(pruned).items()},
    }


def soft_pruning_figure(model: nn.Module, data, amount: float = 0.9, scope: str = "layer"):
    """The widget's picture: validation accuracy, weight histogram and weights left per layer after pruning.

    Returns a matplotlib ``Figure`` (not registered with pyplot, so a notebook
    shows it once, where it is returned or displayed).
    """
    from matplotlib.figure import Figure

    from . import plots

    result = soft_pruning_preview(model, data, amount, scope)
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    ax_hist, ax_bars = fig.subplots(1, 2, width_ratios=(2, 1))
    dense_w = torch.cat([m.weight.detach().flatten() for m in prunable_layers(refresh_masks(model)).values()])
    kept = torch.cat([m.weight.detach().flatten() for m in prunable_layers(result["model"]).values()])
    plots.weight_histogram({"dense": dense_w, "kept after pruning": kept}, bins=120, ax=ax_hist, drop_zeros=True,
                           log=True, title="weights (zeros left out, log scale)")
    plots.bars(result["remaining"], ylabel="weights left (%)", ax=ax_bars, percent=True,
               title="weights left per layer")
    fig.suptitle(f"{scope} pruning to {result['sparsity']:.1%} zeros: validation accuracy "
                 f"{result['val_acc']:.2%} (dense {result['dense_val_acc']:.2%}), no retraining")
    return fig


# --------------------------------------------------------------------------- notebook 04


def quantization_result(model: nn.Module, data, bits: int, layer: str = "fc1", cache: dict | None = None) -> dict:
    """What notebook 04's bits slider shows: ``model``'s weights at ``bits`` bits, two ways, on the validation split.

    * ``linear``: every Linear/Conv2d weight quantised per output channel to
      ``bits`` bits and back (:func:`course_utils.quantization.quantize_tensor`);
    * ``kmeans``: weight sharing with ``2**bits`` centroids per layer
      (:func:`course_utils.quantization.share_weights`), no fine-tuning.

    Returns ``val_acc_linear``, ``val_acc_kmeans``, the ``centroids`` of
    ``layer`` and its nonzero ``weights`` (for the histogram). ``model`` is not
    changed. Pass a dict as ``cache`` to reuse results for bits already seen.
    """
    from . import quantization

    if cache is not None and (bits, layer) in cache:
        return cache[(bits, layer)]
    plain = copy.deepcopy(refresh_masks(model))
    linear = copy.deepcopy(plain)
    with torch.no_grad():
        for module in prunable_layers(linear).values():
            weight = module.weight_orig if hasattr(module, "weight_orig") else module.weight
            qt = quantization.quantize_tensor(weight, bits, per_channel=True)
            weight.copy_(quantization.dequantize(qt))
    shared = quantization.share_weights(copy.deepcopy(plain), bits)
    weights = refresh_masks(plain).get_submodule(layer).weight.detach().flatten()
    result = {"bits": bits, "val_acc_linear": train.evaluate(linear, data.val).accuracy,
              "val_acc_kmeans": train.evaluate(shared, data.val).accuracy,
              "centroids": quantization.shared_layers(shared)[layer].centroids, "weights": weights[weights != 0]}
    if cache is not None:
        cache[(bits, layer)] = result
    return result


def quantization_figure(model: nn.Module, data, bits: int, layer: str = "fc1", cache: dict | None = None):
    """The slider's picture: the histogram of ``layer``'s nonzero weights with the ``2**bits`` k-means centroids
    drawn on it, and the validation accuracy of both quantisations in the title (:func:`quantization_result`)."""
    from matplotlib.figure import Figure

    r = quantization_result(model, data, bits, layer, cache)
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.hist(r["weights"].numpy(), bins=150, color="tab:blue", alpha=0.7)
    for c in r["centroids"].tolist():
        ax.axvline(c, color="tab:orange", linewidth=0.8)
    ax.set_xlabel(f"{layer} weight value (zeros left out); orange: the {2**bits} shared values")
    ax.set_ylabel("count")
    ax.set_title(f"{bits} bits: validation accuracy {r['val_acc_kmeans']:.2%} with k-means sharing, "
                 f"{r['val_acc_linear']:.2%} with linear steps (no fine-tuning)")
    return fig
