"""Checks for the notebooks' exercises: each returns True or False and prints what is right or what to try.

``cu.checks.hard_pruning``, ``cu.checks.soft_pruning``, ``cu.checks.distill``,
``cu.checks.background``: one module per notebook. A check never raises: an
exception in the learner's code is reported as a hint.
"""

from importlib import import_module


def __getattr__(name):
    if name in ("background", "hard_pruning", "soft_pruning", "distill"):
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_utils.checks' has no attribute {name!r}")


def report(ok: bool, message: str) -> bool:
    """Print the verdict in one line and return it."""
    print(("Correct: " if ok else "Not yet: ") + message)
    return ok


def run_safely(fn, *args, **kwargs):
    """Call the learner's function; return (result, None) or (None, 'ErrorName: message')."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - a check reports, it never raises
        return None, f"{exc.__class__.__name__}: {exc}"
