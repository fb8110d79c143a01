"""Seconds per training epoch: `course_utils.train.fit` against the article's DataLoader loop.

    python benchmarks/epoch_speed.py [--repeats 3] [--json benchmarks/results/epoch_speed.json]

Same model, same data (all 60,000 training images), same optimiser (SGD, lr 0.01,
the article's settings), same batch size (64), same machine and thread count;
the two loops run alternately, epoch by epoch, so that both see the same machine
load. The article's loop reads a ``DataLoader`` over a dataset that turns each
image into a tensor with ``ToTensor`` (what ``torchvision.datasets.MNIST`` does);
``fit`` indexes in-memory tensors once per batch. The figure is the ratio of the
median epoch times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from _report import write_json
from torch import nn

import course_utils as cu

BATCH = 64


def article_epoch(model: nn.Module, loader) -> float:
    """One epoch of the article's training loop (its code, reduced to what runs), timed."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for data, target in loader:
        optimizer.zero_grad()
        loss = criterion(model(data), target)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def fit_epoch(model: nn.Module, split) -> float:
    start = time.perf_counter()
    cu.train.fit(model, split, 1, optimizer="sgd", lr=0.01, momentum=0.0, batch_size=BATCH,
                 validate=False, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "epoch_speed.json")
    args = parser.parse_args()

    data = cu.data.load_dataset("mnist", val_size=0)  # all 60,000 training images, like the article
    loader = cu.data.article_loader("mnist", batch_size=BATCH, train=True)
    assert len(loader.dataset) == len(data.train) == 60000
    results = []
    for name, build in [("article 784-128-10", cu.models.article_net), ("LeNet-300-100", cu.models.mlp)]:
        times = {"article DataLoader loop": [], "course_utils fit": []}
        for _ in range(args.repeats):
            cu.train.set_seed(0)
            times["article DataLoader loop"].append(article_epoch(build(), loader))
            cu.train.set_seed(0)
            times["course_utils fit"].append(fit_epoch(build(), data.train))
        medians = {k: statistics.median(v) for k, v in times.items()}
        ratio = medians["article DataLoader loop"] / medians["course_utils fit"]
        results.append({"model": name, "batch_size": BATCH, "threads": torch.get_num_threads(),
                        "repeats": args.repeats, "seconds_per_epoch": medians, "all_seconds": times,
                        "speedup": ratio})
        print(f"{name}: article loop {medians['article DataLoader loop']:.2f} s/epoch, "
              f"fit {medians['course_utils fit']:.2f} s/epoch -> {ratio:.1f}x "
              f"(median of {args.repeats}, batch {BATCH}, {torch.get_num_threads()} threads)", flush=True)
    write_json({"torch": torch.__version__, "results": results}, args.json)


if __name__ == "__main__":
    main()
