"""``python -m course_utils prepare [ROOT]``: check (or fetch) both datasets and say where each was found."""

import sys

from . import data


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "prepare" or len(argv) > 2:
        print("usage: python -m course_utils prepare [ROOT]", file=sys.stderr)
        return 2
    try:
        found = data.prepare(root=argv[1] if len(argv) > 1 else None)
    except data.DataUnavailableError as exc:
        print(exc, file=sys.stderr)
        return 1
    for name, where in found.items():
        print(f"{name}: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
