"""Command line of the course package.

``python -m course_utils prepare [ROOT]``: check (or fetch) both datasets and say where each was found.
``python -m course_utils warm [DATASET]``: train (or load) the models that several notebooks share and cache them
(the dense LeNet-300-100 and LeNet-5, notebook 02's pruned LeNet-300-100, notebook 03's teacher), so that a
session — a Binder image, a workshop machine — starts with a warm model cache (``COURSE_CACHE_DIR``).
"""

import sys

from . import data

USAGE = "usage: python -m course_utils prepare [ROOT]  |  python -m course_utils warm [mnist|fashion-mnist]"


def warm(dataset: str = "mnist") -> list[str]:
    """Load or train every shared cached model for ``dataset``; returns their names."""
    from . import baselines

    splits = data.load_dataset(dataset)
    builders = {"lenet300-100": baselines.lenet300_100, "lenet5": baselines.lenet5,
                "lenet300-100-pruned": baselines.lenet300_100_pruned, "teacher": baselines.teacher}
    for build in builders.values():
        build(splits)
    return list(builders)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command, rest = (argv[0], argv[1:]) if argv else (None, [])
    if command not in ("prepare", "warm") or len(rest) > 1:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        if command == "warm":
            dataset = data._check_name(rest[0] if rest else "mnist")
            print(f"cached for {dataset}: {', '.join(warm(dataset))}")
            return 0
        found = data.prepare(root=rest[0] if rest else None)
    except (data.DataUnavailableError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    for name, where in found.items():
        print(f"{name}: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
