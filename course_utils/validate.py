"""Checks of the arguments that many functions of the course share, each with one clear message.

Every public function of the package checks its input before it starts work,
so that a mistake (an impossible fraction, a count that is not a whole number,
data without a validation split) is reported in one line naming the argument,
instead of failing deep inside PyTorch.

Vocabulary used across the package:

* ``amount`` is a fraction to *remove* (as in :mod:`torch.nn.utils.prune`);
* ``target`` is the fraction of the original size that should *remain* at the
  end of a pruning loop (neurons left, weights left).
"""

from __future__ import annotations

import math

__all__ = ["bit_width", "fraction", "module", "nonnegative_int", "positive_int", "positive_number", "splits_with_val"]


def fraction(value, what: str = "amount") -> float:
    """``value`` as a float in [0, 1], or a ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a fraction in [0, 1], got {value!r}")
    return float(value)


def positive_int(value, what: str) -> int:
    """``value`` if it is an integer > 0, else a ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def nonnegative_int(value, what: str) -> int:
    """``value`` if it is an integer >= 0, else a ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be an integer >= 0, got {value!r}")
    return value


def positive_number(value, what: str) -> float:
    """``value`` as a float if it is a finite number > 0, else a ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a number > 0, got {value!r}")
    return float(value)


def bit_width(value, what: str = "bits", tensor: str | None = None) -> int:
    """``value`` if it is an integer from 1 to 16 (a number of bits), else a ValueError naming ``what`` (and ``tensor``)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
        if tensor is None:
            raise ValueError(f"{what} must be an integer from 1 to 16, got {value!r}")
        raise ValueError(f"tensor {tensor!r} has {what}={value!r}; it must be an integer from 1 to 16")
    return value


def module(model):
    """``model`` if it is a ``torch.nn.Module``, else a ValueError saying what it is."""
    from torch import nn

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def splits_with_val(data):
    """``data`` if it has ``train`` and a non-empty ``val`` split (a ``Splits`` from ``load_dataset``)."""
    if not hasattr(data, "train") or getattr(data, "val", None) is None:
        raise ValueError("data must be a Splits with train and val splits (from cu.data.load_dataset)")
    if len(data.val.y) == 0:
        raise ValueError("data.val is empty: decisions need a validation split")
    return data
