"""Checks for the notebooks' exercises: each returns a verdict (true or false) and prints what is right or what to try.

One module per notebook: ``cu.checks.background`` (00), ``hard_pruning`` (01), ``soft_pruning`` (02),
``distill`` (03), ``quantization`` (04), ``comparison`` (05). Every exercise follows one pattern in its notebook: a
code cell tagged ``exercise`` that the learner completes, the next code cell calls its check
(``cu.checks.<notebook>.<exercise>(answer)``), and a collapsed ``<details>`` block after it holds the solution.

A check never raises: an exception in the learner's code is reported as a hint. It compares the answer with a
computation written in the check itself, and while the learner's function runs, the package function that the
exercise asks the learner to write is switched off (:func:`run_safely` with ``hide=``), so an answer that only
calls it is refused with a hint.
"""

import contextlib
from importlib import import_module


def __getattr__(name):
    if name in ("background", "hard_pruning", "soft_pruning", "distill", "quantization", "comparison"):
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


class HiddenFunctionError(RuntimeError):
    """Raised by a package function that is switched off while a check runs the learner's answer."""


@contextlib.contextmanager
def hidden(*names: str):
    """Switch off package functions (``"course_utils.distill.kd_loss"``...) for the duration of a check."""
    saved = []
    try:
        for dotted in names:
            module_name, attribute = dotted.rsplit(".", 1)
            module = import_module(module_name)
            saved.append((module, attribute, getattr(module, attribute)))
            short = dotted.replace("course_utils.", "cu.")

            def refuse(*args, _name=short, **kwargs):
                raise HiddenFunctionError(f"{_name} is switched off during this check: the exercise asks you to "
                                          "write it yourself, with torch operations")

            setattr(module, attribute, refuse)
        yield
    finally:
        for module, attribute, original in reversed(saved):
            setattr(module, attribute, original)


def run_safely(fn, *args, hide=(), **kwargs):
    """Call the learner's function with the package functions ``hide`` switched off.

    Returns ``(result, None)`` or ``(None, 'ErrorName: message')``.
    """
    for dotted in hide:
        module_name, attribute = dotted.rsplit(".", 1)
        if fn is getattr(import_module(module_name), attribute):
            return None, (f"that is {dotted.replace('course_utils.', 'cu.')} itself: the exercise asks you to write "
                          "it yourself")
    try:
        with hidden(*hide):
            return fn(*args, **kwargs), None
    except HiddenFunctionError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a check reports, it never raises
        return None, f"{exc.__class__.__name__}: {exc}"


def whole_number(value) -> int | None:
    """``value`` if it is an integer (not a bool, a float or a string), else None."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)
