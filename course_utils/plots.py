"""Plotting helpers shared by the notebooks (matplotlib only)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
import torch

__all__ = ["bars", "curves", "distinct_colors", "history", "images", "pareto", "soft_target_bars", "sweeps", "weight_histogram"]


def _axes(ax, figsize=(6, 3.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def history(hist: Sequence[dict], keys=("train_loss", "val_acc"), title: str | None = None):
    """One small plot per key of a :func:`course_utils.train.fit` history, against the epoch."""
    keys = [k for k in keys if any(k in row for row in hist)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    epochs = [row["epoch"] for row in hist]
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, [row.get(key) for row in hist], marker="o")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves(x: Sequence[float], ys: Mapping[str, Sequence], xlabel: str = "", ylabel: str = "",
           title: str | None = None, ax=None, marker: str = "o", percent: bool = False, **plot_kwargs):
    """One line per label. A value may be a list of repeats (seeds): the line is their mean, the band their min-max."""
    ax = _axes(ax)
    scale = 100.0 if percent else 1.0
    for label, values in ys.items():
        t = torch.as_tensor([list(v) if isinstance(v, (list, tuple)) else [v] for v in values], dtype=torch.float64)
        mean = t.mean(1) * scale
        line, = ax.plot(list(x), mean.tolist(), marker=marker, label=label, **plot_kwargs)
        if t.shape[1] > 1:
            ax.fill_between(list(x), (t.min(1).values * scale).tolist(), (t.max(1).values * scale).tolist(),
                            color=line.get_color(), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (%)" if percent and "%" not in ylabel else ""))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def sweeps(results: Mapping, reference: Mapping, xlabel: str, ylabel: str = "validation errors",
           label: str = "{key}", reference_label: str = "reference", log_x: bool = False):
    """One panel per key of ``results`` (``{key: {x: y}}``) that swept more than one ``x``, with ``reference[key]``
    drawn as a dashed line; nothing is drawn (and None returned) when no key swept more than one value."""
    swept = [k for k in results if len(results[k]) > 1]
    if not swept:
        return None
    fig, axes = plt.subplots(1, len(swept), figsize=(4 * len(swept), 3), squeeze=False)
    for ax, key in zip(axes[0], swept):
        curves(list(results[key]), {label.format(key=key): list(results[key].values())}, xlabel=xlabel,
               ylabel=ylabel, ax=ax)
        ax.axhline(reference[key], color="gray", ls="--", label=reference_label)
        if log_x:
            ax.set_xscale("log")
        ax.legend()
    fig.tight_layout()
    return fig


def weight_histogram(weights: Mapping[str, torch.Tensor], bins: int = 100, ax=None, title: str | None = None,
                     drop_zeros: bool = False, log: bool = False):
    """Histograms of weight values, one per label, on shared axes."""
    ax = _axes(ax)
    for label, w in weights.items():
        values = w.detach().flatten().cpu()
        if drop_zeros:
            values = values[values != 0]
        ax.hist(values.numpy(), bins=bins, alpha=0.6, label=f"{label} ({values.numel():,} values)", log=log)
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def bars(values: Mapping[str, float], ylabel: str = "", title: str | None = None, ax=None,
         percent: bool = False, annotate: bool = True):
    """A bar per name (for example the fraction of weights left in each layer)."""
    ax = _axes(ax, figsize=(5, 3))
    names = list(values)
    heights = [values[n] * (100.0 if percent else 1.0) for n in names]
    rects = ax.bar(names, heights, color="tab:blue")
    if annotate:
        ax.bar_label(rects, labels=[f"{h:.1f}%" if percent else f"{h:.3g}" for h in heights], fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def images(x: torch.Tensor, titles: Sequence[str] | None = None, cols: int = 10, size: float = 1.2):
    """A grid of 28×28 images (normalised tensors are fine: each image is scaled for display)."""
    n = len(x)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(x[i].detach().cpu().squeeze(0).numpy(), cmap="gray_r")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def soft_target_bars(logits: torch.Tensor, temperatures, classes=None, images: torch.Tensor | None = None,
                     titles=None):
    """Bar charts of ``softmax(logits / T)``: one row per example, one column per temperature.

    ``logits`` is one example (a vector) or several (rows); ``temperatures`` one
    number or a list. With ``images`` the example's picture is drawn on the
    left of its row. Each chart shows the probability of every class (the top
    class in orange) and names the runner-up with its probability: the "dark
    knowledge" that grows with the temperature.
    Returns the matplotlib figure (the notebook's temperature slider redraws it).
    """
    from .distill import check_temperature, soft_targets

    logits = torch.as_tensor(logits, dtype=torch.float32)
    if logits.dim() == 1:
        logits = logits[None]
    temps = [check_temperature(t) for t in (temperatures if isinstance(temperatures, (list, tuple))
                                             else [temperatures])]
    classes = [str(c) for c in (classes if classes is not None else range(logits.shape[1]))]
    if len(classes) != logits.shape[1]:
        raise ValueError(f"{len(classes)} class names for {logits.shape[1]} logits")
    extra = 1 if images is not None else 0
    rows, cols = logits.shape[0], len(temps) + extra
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * extra + 3.2 * len(temps), 2.2 * rows), squeeze=False,
                             gridspec_kw={"width_ratios": [0.5] * extra + [1] * len(temps)})
    for r in range(rows):
        if images is not None:
            ax = axes[r, 0]
            ax.imshow(images[r].detach().cpu().squeeze(0).numpy(), cmap="gray_r")
            ax.axis("off")
            if titles is not None:
                ax.set_title(str(titles[r]), fontsize=9)
        for c, t in enumerate(temps):
            ax = axes[r, c + extra]
            p = soft_targets(logits[r], t)
            top = int(p.argmax())
            colors = ["tab:orange" if i == top else "tab:blue" for i in range(len(classes))]
            ax.bar(classes, p.tolist(), color=colors)
            ax.set_ylim(0, 1)
            ax.set_title(f"T = {t:g}", fontsize=9)
            ax.tick_params(labelsize=8)
            runner_up = int(p.clone().index_fill_(0, torch.tensor([top]), -1).argmax())
            ax.text(0.98, 0.95, f"runner-up {classes[runner_up]}: {p[runner_up]:.2g}", transform=ax.transAxes,
                    ha="right", va="top", fontsize=7)
    fig.tight_layout()
    return fig


def _short_number(value, _position=None) -> str:
    """A tick label that stays short: 20k, 1.5M, 0.2, 300."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


_EXTRA_COLORS = ("black", "gold", "navy", "lime", "maroon", "teal", "magenta", "darkkhaki", "slateblue", "salmon")


def distinct_colors(n: int) -> list:
    """``n`` colours, no two alike: matplotlib's ten ``tab10`` colours, then ten more of clearly different hue or
    lightness (at most 20)."""
    if not 0 <= n <= 20:
        raise ValueError(f"distinct_colors gives at most 20 colours, {n} asked")
    return [plt.cm.tab10(i) for i in range(min(n, 10))] + list(_EXTRA_COLORS[:max(0, n - 10)])


def pareto(points: Sequence[dict], axes_of: Mapping[str, str], ylabel: str = "test errors", title: str | None = None):
    """One panel per x quantity: each point at its mean result with a bar from its best to its worst seed, and
    the Pareto front (:func:`course_utils.metrics.pareto_front` of the means) as a dashed line.

    A point is a dict with ``label`` (one colour each, named in a shared legend
    under the panels), ``marker``, ``results`` (one value per seed) and a value
    for every key of ``axes_of`` (``{key: axis label}``, drawn on a log scale).
    """
    from .metrics import pareto_front

    fig, axes = plt.subplots(1, len(axes_of), figsize=(4.6 * len(axes_of), 3.8), squeeze=False)
    labels = list(dict.fromkeys(p["label"] for p in points))
    colors = dict(zip(labels, distinct_colors(len(labels))))
    for ax, (key, axis_label) in zip(axes[0], axes_of.items()):
        means = [sum(p["results"]) / len(p["results"]) for p in points]
        for p, mean in zip(points, means):
            low, high = mean - min(p["results"]), max(p["results"]) - mean
            ax.errorbar(p[key], mean, yerr=[[low], [high]], fmt=p.get("marker", "o"), color=colors[p["label"]],
                        capsize=3, markersize=6)
        front = pareto_front([(p[key], m) for p, m in zip(points, means)])
        ax.plot([points[i][key] for i in front], [means[i] for i in front], ls="--", color="gray", lw=1,
                drawstyle="steps-post")
        for axis, scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
            scale("log")
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(_short_number))
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(axis_label)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    handles = [plt.Line2D([], [], color=colors[label], marker="o", ls="") for label in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 * ((len(labels) + 2) // 3), 1, 1))
    return fig
