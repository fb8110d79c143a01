"""The one training loop of the course, and how a model is evaluated.

* :func:`fit` trains any model on a :class:`~course_utils.data.Splits` (or a
  single split). Distillation passes ``loss_fn``; pruning masks and shared
  weights pass ``after_step``; the article's L1 and L2 formulas are
  ``penalty="l1"`` / ``"l2"`` with weight ``penalty_weight`` (λ).
* :func:`finetune` is a short run of :func:`fit` on (part of) the training split.
* :func:`predict`, :func:`evaluate` and :func:`count_errors` read one split.
"""

from __future__ import annotations

import math
import os
import random
import time
from typing import Any, Callable, Iterable, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .validate import positive_int
from .data import Split, Splits, batches

__all__ = [
    "Evaluation",
    "count_errors",
    "default_device",
    "device_of",
    "evaluate",
    "finetune",
    "fit",
    "penalty_value",
    "predict",
    "set_seed",
]

PENALTIES = ("l1", "l2")
SCHEDULES = (None, "cosine", "onecycle")
OPTIMIZERS = ("adam", "sgd")


def set_seed(seed: int) -> torch.Generator:
    """Seed Python, NumPy (if present) and PyTorch; return a ``torch.Generator`` seeded the same way."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy comes with matplotlib
        pass
    return torch.Generator().manual_seed(seed)


def default_device() -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Evaluation(NamedTuple):
    loss: float
    accuracy: float  # fraction in [0, 1]


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's parameters (or buffers); the CPU for a model without either."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The model's outputs (logits) for every row of ``x``, in eval mode, on the CPU."""
    was_training = model.training
    model.eval()
    device = device_of(model)
    try:
        out = [model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def evaluate(model: nn.Module, split: Split, batch_size: int = 500) -> Evaluation:
    """Mean cross-entropy and accuracy of ``model`` on ``split`` (no gradients, eval mode)."""
    if len(split.y) == 0:
        raise ValueError("cannot evaluate on an empty split")
    logits = predict(model, split.x, batch_size)
    loss = F.cross_entropy(logits, split.y).item()
    accuracy = (logits.argmax(1) == split.y).float().mean().item()
    return Evaluation(loss, accuracy)


def count_errors(model_or_logits, split: Split) -> int:
    """Misclassified examples of ``split``: pass a model, or its logits over the split (one row per example)."""
    logits = model_or_logits if isinstance(model_or_logits, torch.Tensor) else predict(model_or_logits, split.x)
    if logits.shape[0] != len(split):
        raise ValueError(f"{logits.shape[0]} rows of logits for a split of {len(split)} examples")
    return int((logits.argmax(1) != split.y).sum())


def _weights(model: nn.Module) -> Iterable[torch.Tensor]:
    """The weight matrices and kernels (not biases, not BatchNorm) the penalties apply to."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            yield module.weight


def penalty_value(model: nn.Module, penalty: str) -> torch.Tensor:
    """Σ|w| for ``"l1"`` or Σw² for ``"l2"`` over all weights of Linear and Conv2d layers."""
    if penalty == "l1":
        return sum(w.abs().sum() for w in _weights(model))
    if penalty == "l2":
        return sum(w.pow(2).sum() for w in _weights(model))
    raise ValueError(f"unknown penalty {penalty!r}: use 'l1', 'l2', a callable or None")


def _make_optimizer(model, optimizer, lr, weight_decay, momentum):
    params = [p for p in model.parameters() if p.requires_grad]
    if callable(optimizer):
        return optimizer(params)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}: use one of {OPTIMIZERS} or a callable")


def _progress(iterable, enabled: bool, **kwargs):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def fit(
    model: nn.Module,
    data: Splits | Split,
    epochs: int,
    *,
    lr: float = 1e-3,
    optimizer: str | Callable = "adam",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    batch_size: int = 128,
    schedule: str | None = None,
    penalty: str | Callable[[nn.Module], torch.Tensor] | None = None,
    penalty_weight: float = 0.0,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    after_step: Callable[[nn.Module], Any] | None = None,
    after_epoch: Callable[[nn.Module, int], Any] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int | None = 0,
    validate: bool = True,
    track_accuracy: bool = True,
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> list[dict]:
    """Train ``model`` in place and return its history, one dict per epoch.

    The loss minimised on each batch is ``loss_fn(outputs, y, x, index)`` (default:
    cross-entropy of the outputs against the labels ``y``) plus
    ``penalty_weight * penalty`` where ``penalty`` is ``"l1"`` (Σ|w|, the
    article's hard-pruning formula), ``"l2"`` (Σw², its soft-pruning formula) or
    any callable ``penalty(model) -> tensor``. ``index`` is the batch's positions
    in the training split, so a loss can look up per-example values computed
    once (see :mod:`course_utils.distill`).

    ``after_step(model)`` runs after every optimiser step (to re-apply a pruning
    mask, for instance) and ``after_epoch(model, epoch)`` after every epoch.
    ``schedule="cosine"`` decays the learning rate to zero over the run;
    ``schedule="onecycle"`` (Smith & Topin 2017) warms it up from ``lr / 25`` to
    ``lr`` over the first 30% of the steps, then anneals it to almost zero.
    Each history entry has ``epoch``, ``train_loss``, ``train_acc`` and, when
    ``data`` has a validation split and ``validate`` is true, ``val_loss`` and
    ``val_acc``, plus ``seconds``. The test split is never touched.

    A progress bar (``tqdm.auto``: a widget in a notebook, text in a terminal)
    shows the epochs unless ``progress=False`` or the environment variable
    ``COURSE_PROGRESS=0`` is set (as when the notebooks are executed headless).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not callable(optimizer) and (not isinstance(lr, (int, float)) or not lr > 0 or math.isinf(lr)):
        raise ValueError(f"lr (learning rate) must be a positive number, got {lr!r}")
    if penalty is not None and not callable(penalty) and penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}: use 'l1', 'l2', a callable or None")
    if penalty_weight < 0:
        raise ValueError(f"penalty_weight must be >= 0, got {penalty_weight}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: use None, 'cosine' or 'onecycle'")
    if isinstance(data, Split):
        train_split, val_split = data, None
    elif hasattr(data, "train"):
        train_split, val_split = data.train, getattr(data, "val", None)
    else:
        raise ValueError("data must be a Splits (from load_dataset) or a Split(x, y)")
    if val_split is not None and (not validate or len(val_split.y) == 0):
        val_split = None

    device = torch.device(device) if device is not None else device_of(model)
    model.to(device)
    opt = _make_optimizer(model, optimizer, lr, weight_decay, momentum)
    steps_per_epoch = math.ceil(len(train_split.y) / batch_size)
    sched = None
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    elif schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                    total_steps=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    penalty_fn = penalty if callable(penalty) else (
        (lambda m: penalty_value(m, penalty)) if penalty and penalty_weight > 0 else None)

    if progress is None:
        progress = os.environ.get("COURSE_PROGRESS", "1") != "0"
    history: list[dict] = []
    bar = _progress(range(1, epochs + 1), progress, desc="epochs", leave=False)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        total_loss = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.long, device=device)  # summed on the device: no sync per step
        seen = 0
        for xb, yb, idx in batches(train_split, batch_size, shuffle=True, generator=generator, augment=augment):
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            loss = loss_fn(out, yb, xb, idx) if loss_fn is not None else F.cross_entropy(out, yb)
            if penalty_fn is not None and penalty_weight > 0:
                loss = loss + penalty_weight * penalty_fn(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if after_step is not None:
                after_step(model)
            n = yb.shape[0]
            total_loss += loss.detach().double().cpu() * n
            if track_accuracy and out.dim() == 2 and yb.dim() == 1:
                correct += (out.detach().argmax(1) == yb).sum()
            seen += n
        if after_epoch is not None:
            after_epoch(model, epoch)
        row = {"epoch": epoch, "train_loss": (total_loss / seen).item()}
        if track_accuracy:
            row["train_acc"] = correct.item() / seen
        if val_split is not None:
            val = evaluate(model, val_split)
            row["val_loss"], row["val_acc"] = val.loss, val.accuracy
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        if progress and hasattr(bar, "set_postfix"):
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("train_loss", "val_acc")})
    model.eval()
    return history


def finetune(model: nn.Module, data, epochs: int = 1, *, examples: int | None = None, lr: float = 5e-4,
             batch_size: int = 128, schedule: str | None = "cosine", seed: int = 0, **fit_kwargs) -> list[dict]:
    """A short retraining with :func:`fit` on the first ``examples`` training images (all if None).

    Only the training split is read (no validation, no test): pruning loops
    call this between a change and its evaluation. Returns fit's history.
    """
    split = data.train if hasattr(data, "train") else data
    if not isinstance(split, Split):
        raise ValueError("data must be a Splits (from load_dataset) or a Split(x, y)")
    if examples is not None:
        split = split.subset(positive_int(examples, "examples"))
    fit_kwargs.setdefault("progress", False)
    return fit(model, split, epochs, lr=lr, batch_size=batch_size, schedule=schedule, seed=seed,
               validate=False, **fit_kwargs)
