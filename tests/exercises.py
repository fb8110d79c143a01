"""The notebooks' exercises, read from their paired sources: one pattern for every notebook.

An exercise is a code cell tagged ``exercise`` (what the learner completes), the next code cell (the check:
``cu.checks.<notebook>.<name>(answer)``) and, in the markdown after it, a collapsed ``<details>`` block with
the solution in a ``python`` code block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
SOLUTION = re.compile(r"<details><summary>Solution</summary>\s*```python\n(.*?)```", flags=re.S)
CHECK = re.compile(r"^cu\.checks\.(\w+)\.(\w+)\((.*)\)\s*;?\s*$", flags=re.S)


@dataclass
class Exercise:
    notebook: str  # e.g. "01_hard_pruning"
    skeleton: str  # the code the learner starts from
    check: str  # the check call, one expression
    solution: str  # the code in the <details> block

    @property
    def name(self) -> str:
        module, function, _ = CHECK.match(self.check).groups()
        return f"{module}.{function}"

    def __str__(self) -> str:
        return f"{self.notebook}:{self.name}"


def exercises(path: Path) -> list[Exercise]:
    """Every exercise of one notebook source, in order; a malformed one raises AssertionError naming it."""
    import jupytext

    cells = jupytext.read(path).cells
    found = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or "exercise" not in cell.metadata.get("tags", []):
            continue
        after = cells[i + 1:]
        check = next((c for c in after if c.cell_type == "code"), None)
        assert check is not None and CHECK.match(check.source.strip()), \
            f"{path.name}: the code cell after exercise cell {i} must be one check call, cu.checks.<nb>.<name>(...)"
        start = after.index(check) + 1
        solution = None
        for c in after[start:]:
            if c.cell_type == "code":
                break
            match = SOLUTION.search(c.source)
            if match:
                solution = match.group(1)
                break
        assert solution, f"{path.name}: no <details> solution between the check of exercise cell {i} and the next code"
        found.append(Exercise(path.stem, cell.source, check.source.strip().rstrip(";"), solution))
    return found


def all_exercises() -> list[Exercise]:
    return [e for path in SOURCES for e in exercises(path)]


def solution(check_name: str) -> dict:
    """The names the solution of ``check_name`` (``"hard_pruning.remove_channel"``) defines, run in a fresh namespace."""
    from test_exercises import namespace  # noqa: PLC0415 - one place builds the namespace

    for ex in all_exercises():
        if ex.name == check_name:
            ns = namespace(ex)
            exec(ex.solution, ns)  # noqa: S102 - our own notebooks' code
            return ns
    raise KeyError(check_name)
