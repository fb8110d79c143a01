"""Checks for the notebooks' exercises: each returns True or False and prints what is right or what to try.

``cu.checks.hard_pruning``, ``cu.checks.soft_pruning``, ``cu.checks.distill``,
``cu.checks.background``, ``cu.checks.comparison``: one module per notebook. A check never raises: an
exception in the learner's code is reported as a hint.
"""

from importlib import import_module


def __getattr__(name):
    if name in ("background", "hard_pruning", "soft_pruning", "distill", "comparison"):
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_utils.checks' has no attribute {name!r}")


class Verdict:
    """The result of a check: true or false like a bool, and silent as a cell's last value.

    The message is printed once by :func:`report`; a notebook cell that ends
    with a check shows that line and no extra ``Out[...]: True``.
    """

    __slots__ = ("ok", "message")

    def __init__(self, ok: bool, message: str):
        self.ok, self.message = bool(ok), message

    def __bool__(self) -> bool:
        return self.ok

    def __eq__(self, other) -> bool:
        return self.ok == bool(other)

    def __hash__(self) -> int:
        return hash(self.ok)

    def __repr__(self) -> str:
        return f"Verdict({self.ok}, {self.message!r})"

    def _ipython_display_(self) -> None:  # already printed by report()
        pass


def report(ok: bool, message: str) -> Verdict:
    """Print the verdict in one line and return it (truthy when correct)."""
    print(("Correct: " if ok else "Not yet: ") + message)
    return Verdict(ok, message)


def run_safely(fn, *args, **kwargs):
    """Call the learner's function; return (result, None) or (None, 'ErrorName: message')."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - a check reports, it never raises
        return None, f"{exc.__class__.__name__}: {exc}"
