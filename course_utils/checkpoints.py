"""Save and load trained models safely, and reuse them across notebooks.

* :func:`save` writes to a temporary file in the same folder, then renames it:
  a crash mid-write never leaves a truncated checkpoint.
* :func:`load` reads with ``torch.load(weights_only=True)`` (no pickled code is
  executed) and refuses a checkpoint whose keys or shapes do not match the
  model, naming the keys.
* :func:`load_or_train` returns the cached model when there is one, and
  otherwise trains it and saves it: notebook 01 reuses the baseline that
  notebook 00 trained, and still runs on its own. :func:`load_or_compute` does
  the same for tensors (a teacher's outputs, say).

Every cached file is named by :func:`cache_path` from three things: a *kind*
(``"lenet300-100"``), the *config* that produced it (the recipe: epochs,
learning rate, the fingerprint of the model it started from...) and the *data*
it was trained on (dataset, split sizes, a fingerprint of the labels). Change
any of them and the cache key changes, so a stale model is never reused.
Checkpoints live in ``$COURSE_CACHE_DIR`` (default ``~/.cache/course_utils/checkpoints``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .masks import effective_state_dict

__all__ = [
    "CheckpointMismatchError",
    "cache_dir",
    "cache_path",
    "data_key",
    "fingerprint",
    "history",
    "load",
    "load_or_compute",
    "load_or_train",
    "meta",
    "save",
]

FORMAT = 1


class CheckpointMismatchError(ValueError):
    """A checkpoint's parameters do not fit the model it is loaded into, or the file is not a checkpoint."""


def cache_dir() -> Path:
    """``$COURSE_CACHE_DIR``, or ``~/.cache/course_utils/checkpoints``."""
    env = os.environ.get("COURSE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "course_utils" / "checkpoints"


# --------------------------------------------------------------------------- cache keys


def fingerprint(*items) -> str:
    """A short hash (12 hex digits) of tensors, models (their state_dict) or plain data, in order.

    Used in configs to record *which* model a pruned model started from, or
    which labels a student was trained on.
    """
    h = hashlib.sha1()
    for item in items:
        if isinstance(item, nn.Module):
            for key, value in effective_state_dict(item).items():
                h.update(key.encode())
                h.update(str(tuple(value.shape)).encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(item, torch.Tensor):
            h.update(str(tuple(item.shape)).encode())
            h.update(item.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(json.dumps(item, sort_keys=True, default=str).encode())
    return h.hexdigest()[:12]


def data_key(data) -> dict:
    """What identifies a dataset for caching: its name, split sizes and a fingerprint of its labels and first images.

    ``data`` is a ``Splits`` (from ``cu.data.load_dataset``, possibly with a
    changed training split) or a single ``Split``.
    """
    from .data import dataset_name

    splits = [("train", data.train), ("val", getattr(data, "val", None)), ("test", getattr(data, "test", None))] \
        if hasattr(data, "train") else [("train", data)]
    try:
        name = dataset_name(data)
    except (AttributeError, ValueError):
        name = "custom"
    key = {"dataset": name}
    for split_name, split in splits:
        if split is not None:
            key[split_name] = [len(split.y), fingerprint(split.y, split.x[:64])]
    return key


def _slug(text: str) -> str:
    if not text or any(c in text for c in "/\\") or text.startswith("."):
        raise ValueError(f"cache kind {text!r} must be a plain name such as 'lenet300-100' (no folders)")
    return text


def cache_path(kind: str, config: dict | None, data) -> Path:
    """The file of the cached result of ``kind`` made with ``config`` from ``data``: ``<kind>-<dataset>-<hash>.pt``."""
    key = data_key(data)
    digest = fingerprint(_jsonable(config or {}), key)
    return cache_dir() / f"{_slug(kind)}-{key['dataset']}-{digest}.pt"


# --------------------------------------------------------------------------- files


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so that only plain data is stored next to the weights."""
    return json.loads(json.dumps(value))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(payload: dict, path: Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; a cache shared by a room must stay readable
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def save(model: nn.Module, path: str | os.PathLike, meta: Any = None) -> Path:
    """Write the model's (effective) state_dict and ``meta`` (plain JSON-like data) atomically."""
    payload = {"format": FORMAT, "state_dict": effective_state_dict(model), "meta": json.dumps(_jsonable(meta))}
    return _write(payload, Path(path))


def _read(path: Path, key: str = "state_dict") -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise CheckpointMismatchError(f"{path} cannot be read as a checkpoint ({exc.__class__.__name__}: "
                                      f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it to retrain") from exc
    if not isinstance(payload, dict) or key not in payload:
        raise CheckpointMismatchError(f"{path} is not a course checkpoint (no {key!r}); delete it to retrain")
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


def meta(path: str | os.PathLike) -> Any:
    """The ``meta`` stored with a cached file (for example ``{"config": ..., "history": ...}``)."""
    payload = _read(Path(path), "meta")
    return json.loads(payload["meta"])


def history(kind: str, config: dict | None, data) -> Any:
    """The training history stored by :func:`load_or_train` for the same ``kind``, ``config`` and ``data``."""
    path = cache_path(kind, config, data)
    if not path.is_file():
        raise FileNotFoundError(f"nothing cached for {kind!r} with this config and data ({path.name}): "
                                "call load_or_train first")
    return meta(path)["history"]


# --------------------------------------------------------------------------- the cache


def load_or_train(kind: str, build: Callable[[], nn.Module], train: Callable[[nn.Module], Any], *,
                  data, config: dict | None = None, verbose: bool = True) -> nn.Module:
    """The model of ``kind`` trained with ``config`` on ``data``: loaded from the cache, or trained and saved.

    ``build()`` makes a fresh model; ``train(model)`` trains it in place and may
    return plain data (a history), stored with the weights and readable with
    :func:`history`. ``config`` (plain data: epochs, learning rate, the
    fingerprint of a starting model...) and ``data`` (what it is trained on)
    make the cache key with ``kind`` (:func:`cache_path`). A cached file that
    cannot be read or does not fit ``build()`` is retrained, with a message.
    Returns the model in eval mode.
    """
    config = _jsonable(config or {})
    path = cache_path(kind, config, data)
    model = build()
    if path.is_file():
        try:
            stored = json.loads(_read(path).get("meta", "null")) or {}
            if stored.get("config", {}) != config:
                raise CheckpointMismatchError(f"{path} was trained with config {stored.get('config')}, not {config}")
            load(model, path)
            if verbose:
                print(f"loaded {kind} from the cache ({path.name})")
            return model.eval()
        except CheckpointMismatchError as exc:
            if verbose:
                print(f"retraining {kind}: {exc}")
            model = build()
    trained = train(model)
    save(model, path, meta={"config": config, "history": trained})
    if verbose:
        print(f"trained {kind} and saved it to the cache ({path.name})")
    return model.eval()


def load_or_compute(kind: str, compute: Callable[[], dict[str, torch.Tensor]], *, data, config: dict | None = None,
                    verbose: bool = True) -> dict[str, torch.Tensor]:
    """Tensors (``{name: tensor}``) computed once by ``compute()`` and cached like a model (see :func:`load_or_train`).

    For results that take long to compute and are read many times, such as a
    teacher's outputs on every training image.
    """
    config = _jsonable(config or {})
    path = cache_path(kind, config, data)
    if path.is_file():
        try:
            payload = _read(path, "tensors")
            if json.loads(payload.get("meta", "null") or "null") == {"config": config}:
                if verbose:
                    print(f"loaded {kind} from the cache ({path.name})")
                return dict(payload["tensors"])
        except CheckpointMismatchError as exc:
            if verbose:
                print(f"recomputing {kind}: {exc}")
    tensors = compute()
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise ValueError("compute() must return a dict of tensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _write({"format": FORMAT, "tensors": tensors, "meta": json.dumps({"config": config})}, path)
    if verbose:
        print(f"computed {kind} and saved it to the cache ({path.name})")
    return tensors
