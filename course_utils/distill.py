"""Knowledge distillation (Hinton, Vinyals & Dean 2015) and hint training (Romero et al. 2015, FitNets).

A small *student* network learns from the outputs of a large, already trained
*teacher* (:func:`course_utils.baselines.teacher`): besides the true labels it
matches the teacher's probabilities softened by a temperature ``T``. Everything
trains through the course's one loop, :func:`course_utils.train.fit`, with a
``loss_fn``:

* :func:`soft_targets` -- ``softmax(logits / T)``: at ``T = 1`` the usual
  probabilities, at larger ``T`` the small ones ("dark knowledge") grow.
* :func:`kd_loss` -- ``α · T² · KL(p_teacher^T ‖ p_student^T) + (1 − α) · CE(student, labels)``.
* :func:`distill` -- trains a student against a frozen teacher. Without data
  augmentation the teacher's logits over the training split are computed once
  and looked up by example index; with augmentation they are computed on the fly.
* :func:`teacher_outputs` -- the teacher's outputs on the three splits, cached.
* :func:`student` -- one student, on labels alone or distilled, trained once and cached.
* :func:`hint_loss` and :func:`hint_stage` -- FitNets' first stage: a student's
  lower layers plus a small regressor learn to reproduce a teacher hidden layer.
* :func:`gap_closed` and :func:`best_class_bias` -- what the notebook measures.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from . import checkpoints, data as cudata, train
from .baselines import TEACHER_RECIPE, freeze
from .models import mlp

__all__ = [
    "LABELS_LR",
    "STUDENT_RECIPE",
    "best_class_bias",
    "check_alpha",
    "check_temperature",
    "distill",
    "feature_extractor",
    "gap_closed",
    "hint_loss",
    "hint_stage",
    "kd_loss",
    "soft_targets",
    "student",
    "teacher_outputs",
]


# --------------------------------------------------------------------------- checks of the arguments

def check_temperature(temperature) -> float:
    """``temperature`` as a float, or a ValueError if it is not a finite number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a number > 0 (T = 1 is the plain softmax), got {temperature!r}")
    return float(temperature)


def check_alpha(alpha) -> float:
    """``alpha`` as a float, or a ValueError if it is not in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha is the weight of the soft-target term and must be in [0, 1], got {alpha!r}")
    return float(alpha)


# --------------------------------------------------------------------------- the loss

def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the last dimension: T = 1 gives the usual probabilities, larger T softer ones."""
    t = check_temperature(temperature)
    return F.softmax(torch.as_tensor(logits, dtype=torch.float32) / t, dim=-1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None,
            temperature: float, alpha: float, *, t_squared: bool = True) -> torch.Tensor:
    """Hinton et al.'s distillation loss, averaged over the batch.

    ``α · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − α) · CE(student, targets)``

    The KL term is computed from ``log_softmax`` of both sides with
    ``kl_div(reduction="batchmean")``; the teacher's logits are detached (no
    gradient reaches the teacher). ``α = 0`` is plain cross-entropy on the
    labels; ``α = 1`` uses the soft targets alone (``targets`` may then be None).

    Why T²: the gradient of the soft term with respect to a student logit is
    ``(q_i − p_i) / T``, and for large T the difference ``q_i − p_i`` itself
    shrinks like ``1 / T`` (both softmaxes flatten towards uniform), so the
    soft-target gradients scale as ``1 / T²``. Multiplying by ``T²`` keeps their
    size roughly independent of the temperature, so changing T does not
    silently change how much the soft targets weigh against the labels.
    ``t_squared=False`` drops the factor (to see what it changes).
    """
    t = check_temperature(temperature)
    a = check_alpha(alpha)
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits must both be batch × classes with the same shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)} (same number of classes?)")
    loss = student_logits.new_zeros(())
    if a > 0:
        log_p_student = F.log_softmax(student_logits / t, dim=1)
        log_p_teacher = F.log_softmax(teacher_logits.detach().to(student_logits.dtype) / t, dim=1)
        soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
        loss = loss + a * (t * t if t_squared else 1.0) * soft
    if a < 1:
        if targets is None:
            raise ValueError("targets (the labels) are needed when alpha < 1")
        loss = loss + (1.0 - a) * F.cross_entropy(student_logits, targets)
    return loss


# --------------------------------------------------------------------------- distillation through fit

def _train_split(data) -> cudata.Split:
    if isinstance(data, cudata.Split):
        return data
    if hasattr(data, "train"):
        return data.train
    raise ValueError("data must be a Splits (from load_dataset) or a Split(x, y)")


def _outputs_of(model: nn.Module, x: torch.Tensor) -> int:
    """Number of outputs of ``model`` for one example (eval mode, no gradient; the mode is restored)."""
    return train.predict(model, x[:1]).shape[1]


def _prepare_teacher(teacher: nn.Module) -> nn.Module:
    if any(m.training for m in teacher.modules()):
        warnings.warn("the teacher was in training mode (dropout on, batch-norm statistics updating); "
                      "distillation switched it to eval mode. Call teacher.eval() first to silence this.",
                      UserWarning, stacklevel=3)
    return freeze(teacher)


def distill(student: nn.Module, teacher: nn.Module | None, data, epochs: int, temperature: float = 4.0,
            alpha: float = 0.9, *, teacher_logits: torch.Tensor | None = None,
            augment: Callable[[torch.Tensor], torch.Tensor] | None = None, t_squared: bool = True,
            **fit_kwargs: Any) -> list[dict]:
    """Train ``student`` in place on :func:`kd_loss` against ``teacher``, through :func:`course_utils.train.fit`.

    The teacher is put in eval mode (with a warning if it was training) and
    frozen (``requires_grad=False``): it is never updated. Without ``augment``
    its logits over the training split are computed once (or taken from
    ``teacher_logits``, one row per training example, in order) and each batch
    looks up its rows by index, so an epoch costs no teacher forward pass. With
    ``augment`` the teacher must see the same shifted images as the student, so
    its logits are computed on the fly. ``teacher`` may be None when
    ``teacher_logits`` are given. Other keywords (``lr``, ``batch_size``,
    ``seed``, ``schedule``...) go to ``fit``. Returns ``fit``'s history.
    """
    t = check_temperature(temperature)
    a = check_alpha(alpha)
    train_split = _train_split(data)
    if teacher is None and teacher_logits is None:
        raise ValueError("give a teacher, or its precomputed teacher_logits over the training split")
    if augment is not None and teacher is None:
        raise ValueError("with augment the teacher must see each shifted image: pass the teacher itself")
    if augment is not None and teacher_logits is not None:
        raise ValueError("teacher_logits were computed on the un-augmented images; with augment, pass "
                         "teacher_logits=None so the teacher sees the same shifted images as the student")
    if teacher is not None:
        _prepare_teacher(teacher)
    n_student = _outputs_of(student, train_split.x)
    if teacher_logits is not None:
        teacher_logits = torch.as_tensor(teacher_logits)
        if teacher_logits.dim() != 2 or teacher_logits.shape[0] != len(train_split):
            raise ValueError(f"teacher_logits must have one row per training example "
                             f"({len(train_split)} × classes), got {tuple(teacher_logits.shape)}")
        n_teacher = teacher_logits.shape[1]
    else:
        n_teacher = _outputs_of(teacher, train_split.x)
    if n_student != n_teacher:
        raise ValueError(f"the student has {n_student} outputs but the teacher {n_teacher}: "
                         "both must score the same classes")

    if augment is None:
        table = teacher_logits if teacher_logits is not None else train.predict(teacher, train_split.x)

        def loss_fn(outputs, y, x, index):
            return kd_loss(outputs, table[index].to(outputs.device), y, t, a, t_squared=t_squared)
    else:
        teacher_device = next(teacher.parameters()).device

        def loss_fn(outputs, y, x, index):
            with torch.no_grad():
                soft = teacher(x.to(teacher_device)).to(outputs.device)
            return kd_loss(outputs, soft, y, t, a, t_squared=t_squared)

    return train.fit(student, data, epochs, loss_fn=loss_fn, augment=augment, **fit_kwargs)


# --------------------------------------------------------------------------- FitNets hints

def feature_extractor(model: nn.Module, layer: str) -> nn.Sequential:
    """The layers of a named ``nn.Sequential`` from the input up to and including ``layer`` (shared, not copied)."""
    if not isinstance(model, nn.Sequential):
        raise ValueError("feature_extractor needs an nn.Sequential with named layers (as cu.models builds)")
    names = [name for name, _ in model.named_children()]
    if layer not in names:
        raise ValueError(f"no layer {layer!r} in the model; its layers are {names}")
    keep = names[: names.index(layer) + 1]
    extractor = nn.Sequential(OrderedDict((name, getattr(model, name)) for name in keep))
    # a new container starts in training mode; give it the model's mode, or restoring "its" mode after an
    # evaluation (as predict does) would switch the shared layers of an eval-mode teacher to training
    return extractor.train(model.training)


def hint_loss(student_features: torch.Tensor, teacher_features: torch.Tensor,
              regressor: nn.Module | None = None) -> torch.Tensor:
    """FitNets' hint loss: ``½ ‖r(student_features) − teacher_features‖²`` per example, averaged over the batch.

    ``regressor`` (for example a ``nn.Linear``) maps the student's hidden layer
    to the width of the teacher's; without it the two must already have the same
    shape. Features are flattened per example.
    """
    guided = regressor(student_features) if regressor is not None else student_features
    guided, target = guided.flatten(1), teacher_features.detach().flatten(1).to(guided.dtype)
    if guided.shape != target.shape:
        raise ValueError(f"the (regressed) student features have shape {tuple(guided.shape)} but the teacher's "
                         f"{tuple(target.shape)}: give a regressor that maps one to the other")
    return 0.5 * (guided - target).pow(2).sum(1).mean()


def hint_stage(student: nn.Module, teacher: nn.Module | None, data, epochs: int, *, student_layer: str,
               teacher_layer: str, teacher_features: torch.Tensor | None = None,
               **fit_kwargs: Any) -> tuple[nn.Module, list[dict]]:
    """FitNets' first stage: train the student up to ``student_layer`` plus a linear regressor to match the teacher.

    The target is the teacher's output at ``teacher_layer`` (computed once over
    the training split, or given as ``teacher_features``, one row per training
    example). The student's lower layers are trained in place through
    :func:`course_utils.train.fit` (``track_accuracy=False``, no validation: the
    outputs are features, not class scores); the teacher is frozen. Follow with
    :func:`distill` for the second stage. Returns ``(regressor, history)``.
    """
    train_split = _train_split(data)
    lower = feature_extractor(student, student_layer)
    if teacher is not None:
        _prepare_teacher(teacher)
    if teacher_features is None:
        if teacher is None:
            raise ValueError("give a teacher, or its precomputed teacher_features over the training split")
        teacher_features = train.predict(feature_extractor(teacher, teacher_layer), train_split.x)
    teacher_features = torch.as_tensor(teacher_features).flatten(1)
    if teacher_features.shape[0] != len(train_split):
        raise ValueError(f"teacher_features must have one row per training example ({len(train_split)}), "
                         f"got {teacher_features.shape[0]}")
    width = train.predict(lower, train_split.x[:1]).flatten(1).shape[1]
    regressor = nn.Linear(width, teacher_features.shape[1])
    model = nn.Sequential(OrderedDict([("student", lower), ("flatten", nn.Flatten()), ("regressor", regressor)]))

    def loss_fn(outputs, y, x, index):
        return hint_loss(outputs, teacher_features[index].to(outputs.device))

    fit_kwargs.setdefault("track_accuracy", False)
    fit_kwargs.setdefault("validate", False)
    history = train.fit(model, train_split, epochs, loss_fn=loss_fn, **fit_kwargs)
    return regressor, history


# --------------------------------------------------------------------------- the teacher's outputs, cached

def teacher_outputs(teacher_model: nn.Module, splits, layer: str | None = None, train_size: int | None = None,
                    verbose: bool = True, **overrides) -> dict[str, torch.Tensor]:
    """The teacher's logits (or the flattened output of ``layer``) on train, val and test, cached.

    Computed once (a few seconds for the logits, more for a wide hidden layer)
    and stored with :func:`course_utils.checkpoints.load_or_compute`, keyed by
    the teacher's recipe (:data:`course_utils.baselines.TEACHER_RECIPE` with
    ``overrides``), the layer and the data. ``train_size`` keeps only the first
    examples of the training split. Returns ``{"train": ..., "val": ..., "test": ...}``.
    """
    source = teacher_model if layer is None else feature_extractor(teacher_model, layer)
    n_train = len(splits.train) if train_size is None else min(int(train_size), len(splits.train))
    parts = {"train": splits.train.x[:n_train], "val": splits.val.x, "test": splits.test.x}
    config = {"teacher": {**TEACHER_RECIPE, **overrides}, "layer": layer, "train_size": n_train}

    def compute():
        return {key: train.predict(source, x).flatten(1) for key, x in parts.items()}

    kind = "teacher-logits" if layer is None else f"teacher-{layer}"
    return checkpoints.load_or_compute(kind, compute, data=splits, config=config, verbose=verbose)


# --------------------------------------------------------------------------- students, cached

STUDENT_RECIPE = dict(lr=4e-3, batch_size=512, schedule="cosine")
"""How notebook 03 trains its distilled students (Adam). The defaults of :func:`student`; pass
``**STUDENT_RECIPE`` to :func:`distill` to train a student the same way."""

LABELS_LR = 2e-3
"""The learning rate of notebook 03's students trained on labels alone (otherwise :data:`STUDENT_RECIPE`).

``benchmarks/distillation.py --part choose`` chose each method's rate on the validation split for the 2×800 student
(10 epochs, notebook 03's teacher): labels alone does best at 0.002 (85 errors against 89 at 0.004); the distilled
student ties (72 at both 0.002 and 0.004 with T = 20), and a tie keeps the rate chosen before, 0.004."""


def student(hidden, data, *, epochs: int, seed: int = 0, teacher: nn.Module | None = None,
            teacher_logits: torch.Tensor | None = None, temperature: float | None = None,
            alpha: float | None = None, t_squared: bool = True, lr: float | None = None,
            batch_size: int = STUDENT_RECIPE["batch_size"], schedule: str | None = STUDENT_RECIPE["schedule"],
            cache: bool = True, verbose: bool = False,
            validate: bool = False) -> nn.Module:
    """An MLP student (``cu.models.mlp(hidden)``) trained on labels alone, or distilled when a teacher is given.

    The same ``seed`` gives the same initial weights and the same batch order in
    both cases, so "labels alone" and "distilled" differ only in the loss (and in the
    learning rate, each at the one the validation split prefers: ``lr=None`` means
    :data:`LABELS_LR` on labels alone, ``STUDENT_RECIPE["lr"]`` when distilled). With
    ``cache=True`` the trained model is stored with
    :func:`course_utils.checkpoints.load_or_train`, keyed by every setting, a
    fingerprint of the teacher's logits and the training data, so a different
    teacher or transfer set retrains. The validation split is
    not evaluated during training unless ``validate=True`` (the caller scores the
    final model; this saves an evaluation per epoch). The other defaults are
    :data:`STUDENT_RECIPE`.
    """
    hidden = tuple(int(h) for h in hidden)
    train_split = _train_split(data)
    distilled = teacher is not None or teacher_logits is not None
    if lr is None:
        lr = STUDENT_RECIPE["lr"] if distilled else LABELS_LR
    if distilled:
        check_temperature(temperature)
        check_alpha(alpha)
        if teacher_logits is None:
            teacher_logits = train.predict(_prepare_teacher(teacher), train_split.x)
    fit_kwargs = dict(lr=lr, batch_size=batch_size, schedule=schedule, seed=seed)
    train_kwargs = dict(fit_kwargs, validate=validate)

    def build():
        train.set_seed(seed)
        return _mlp(hidden, data)

    def run(model):
        if distilled:
            return distill(model, teacher, data, epochs, temperature, alpha, teacher_logits=teacher_logits,
                           t_squared=t_squared, **train_kwargs)
        return train.fit(model, data, epochs, **train_kwargs)

    if not cache:
        model = build()
        run(model)
        return model.eval()
    config = {"hidden": list(hidden), "epochs": epochs, **fit_kwargs}
    if distilled:
        config.update(temperature=float(temperature), alpha=float(alpha), t_squared=bool(t_squared),
                      teacher_logits=checkpoints.fingerprint(teacher_logits))
    kind = f"student-{'x'.join(map(str, hidden))}-{'distilled' if distilled else 'labels'}"
    return checkpoints.load_or_train(kind, build, run, data=data, config=config, verbose=verbose)


def _mlp(hidden, data) -> nn.Module:
    classes = len(data.classes) if hasattr(data, "classes") else 10
    return mlp(hidden, classes=classes)


# --------------------------------------------------------------------------- measuring

def gap_closed(labels_errors: float, distilled_errors: float, teacher_errors: float) -> float:
    """Fraction of the gap between the student on labels alone and the teacher that distillation closes.

    ``(labels − distilled) / (labels − teacher)``: 1 means the distilled student
    is as good as the teacher, 0 that distillation changed nothing, below 0 that it hurt.
    When the student on labels alone is already as good as the teacher there is no gap, and the result is
    ``nan`` (printed as "nan%"): an outcome an experiment can have (a weak teacher, a short run), not an error.
    """
    gap = labels_errors - teacher_errors
    if gap <= 0:
        return math.nan
    return (labels_errors - distilled_errors) / gap


def best_class_bias(logits: torch.Tensor, labels: torch.Tensor, cls: int, candidates) -> tuple[float, float]:
    """The bias added to class ``cls``'s logit that maximises accuracy on (validation) ``logits``/``labels``.

    Returns ``(bias, accuracy)``; among equally good biases the one closest to zero wins.
    """
    candidates = [float(b) for b in candidates]
    if not candidates:
        raise ValueError("give at least one candidate bias")
    if not 0 <= cls < logits.shape[1]:
        raise ValueError(f"class {cls} does not exist: the logits have {logits.shape[1]} classes")
    best = None
    for b in sorted(candidates, key=abs):
        shifted = logits.clone()
        shifted[:, cls] += b
        acc = (shifted.argmax(1) == labels).float().mean().item()
        if best is None or acc > best[1]:
            best = (b, acc)
    return best
