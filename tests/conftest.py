"""Shared fixtures. MNIST is read through the same COURSE_DATA_DIR mechanism a learner uses."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("COURSE_PROGRESS", "0")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def mnist():
    import course_utils as cu

    return cu.data.load_dataset("mnist")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A private, empty checkpoint cache for one test."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "checkpoints"))
    return tmp_path / "checkpoints"


class NoTestSplit:
    """Stands in for ``Splits``: train and val work, touching ``test`` fails the test."""

    def __init__(self, splits):
        self.train, self.val, self.classes = splits.train, splits.val, splits.classes

    @property
    def test(self):
        raise AssertionError("the test split was read")


def blobs(n: int = 600, classes: int = 3, dim: int = 8, seed: int = 0):
    """A small, well separated classification problem as a Splits (train/val/test = 60/20/20)."""
    import course_utils as cu

    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g) * 4
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, dim, generator=g)
    a, b = int(0.6 * n), int(0.8 * n)
    split = lambda s: cu.data.Split(x[s], y[s])  # noqa: E731
    return cu.data.Splits(split(slice(0, a)), split(slice(a, b)), split(slice(b, n)),
                          tuple(str(c) for c in range(classes)))
