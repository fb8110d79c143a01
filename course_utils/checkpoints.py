"""Save and load trained models safely, and reuse them across notebooks.

* :func:`save` writes to a temporary file in the same folder, then renames it:
  a crash mid-write never leaves a truncated checkpoint.
* :func:`load` reads with ``torch.load(weights_only=True)`` (no pickled code is
  executed) and refuses a checkpoint whose keys or shapes do not match the
  model, naming the keys.
* :func:`load_or_train` returns the cached model when the checkpoint matches,
  and otherwise trains it and saves it: notebook 01 reuses the baseline that
  notebook 00 trained, and still runs on its own.

Checkpoints live in ``$COURSE_CACHE_DIR`` (default ``~/.cache/course_utils/checkpoints``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .metrics import effective_state_dict

__all__ = ["CheckpointMismatchError", "cache_dir", "load", "load_or_train", "meta", "path_for", "save"]

FORMAT = 1


class CheckpointMismatchError(ValueError):
    """A checkpoint's parameters do not fit the model it is loaded into."""


def cache_dir() -> Path:
    env = os.environ.get("COURSE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "course_utils" / "checkpoints"


def path_for(name: str) -> Path:
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"checkpoint name {name!r} must be a plain file name (no folders)")
    return cache_dir() / f"{name}.pt"


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so that only plain data is stored next to the weights."""
    return json.loads(json.dumps(value))


def save(model: nn.Module, path: str | os.PathLike, meta: Any = None) -> Path:
    """Write the model's (effective) state_dict and ``meta`` (plain JSON-like data) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "state_dict": effective_state_dict(model),
               "meta": json.dumps(_jsonable(meta))}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _read(path: Path) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise CheckpointMismatchError(f"{path} cannot be read as a checkpoint ({exc.__class__.__name__}: "
                                      f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it to retrain") from exc
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointMismatchError(f"{path} is not a course checkpoint (no 'state_dict'); delete it to retrain")
    return payload


def load(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights saved by :func:`save` into ``model`` (in place) after checking every key and shape.

    Into a masked model (``torch.nn.utils.prune``) the weights are loaded under
    its masks: ``weight_orig`` takes the saved values and the mask still applies.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = _read(path)["state_dict"]
    expected = effective_state_dict(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                    for k, v in expected.items() if k in state and state[k].shape != v.shape)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if shapes:
            parts.append("mismatched shapes " + "; ".join(shapes))
        raise CheckpointMismatchError(f"{path} does not match the model: " + ", ".join(parts))
    targets = dict(model.state_dict())  # tensors sharing storage with the model's parameters and buffers
    with torch.no_grad():
        for key in expected:
            # a masked layer (torch.nn.utils.prune) keeps its mask: the weights go into `<name>_orig`
            target = targets.get(key + "_orig", targets.get(key))
            target.copy_(state[key])
    return model


def meta(name_or_path: str | os.PathLike) -> Any:
    """The ``meta`` stored with a checkpoint (for example the training history)."""
    p = Path(name_or_path)
    path = p if p.suffix == ".pt" else path_for(str(name_or_path))
    return json.loads(_read(path).get("meta", "null"))


def load_or_train(name: str, build: Callable[[], nn.Module], train: Callable[[nn.Module], Any],
                  config: dict | None = None, verbose: bool = True) -> nn.Module:
    """The model called ``name``: loaded from the cache if it matches, trained and saved otherwise.

    ``build()`` makes a fresh model; ``train(model)`` trains it in place and may
    return plain data (a history), stored with the weights and readable with
    :func:`meta`. ``config`` (plain data: epochs, learning rate...) is stored too;
    a cached checkpoint trained with a different config, or whose shapes do not
    fit ``build()``, is retrained rather than silently reused.
    """
    path = path_for(name)
    model = build()
    config = _jsonable(config or {})
    if path.is_file():
        try:
            stored = json.loads(_read(path).get("meta", "null")) or {}
            if stored.get("config", {}) != config:
                raise CheckpointMismatchError(f"{path} was trained with config {stored.get('config')}, not {config}")
            load(model, path)
            if verbose:
                print(f"loaded {name} from the cache ({path.name})")
            return model.eval()
        except CheckpointMismatchError as exc:
            if verbose:
                print(f"retraining {name}: {exc}")
            model = build()
    history = train(model)
    save(model, path, meta={"config": config, "history": history})
    if verbose:
        print(f"trained {name} and saved it to the cache ({path.name})")
    return model.eval()
