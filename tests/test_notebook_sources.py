"""Every notebook is a pair: a jupytext percent-format source (``notebooks/NN_name.py``, what people edit and
review) and the executed ``.ipynb`` (what readers see). The two must hold the same cells."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def cells(path: Path) -> list[tuple[str, str, list]]:
    import jupytext

    return [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in jupytext.read(path).cells
            if c.source.strip()]


def test_every_notebook_has_its_source_and_every_source_its_notebook():
    assert NOTEBOOKS, "no notebooks found"
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in SOURCES]


def test_jupytext_pairs_them_in_percent_format():
    config = tomllib.loads((ROOT / "jupytext.toml").read_text())
    assert config["formats"] == "ipynb,py:percent"
    for path in SOURCES:
        assert "# %%" in path.read_text(encoding="utf-8"), f"{path.name} is not in jupytext's percent format"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_the_pair_holds_the_same_cells(source):
    notebook, script = cells(source.with_suffix(".ipynb")), cells(source)
    for i, (a, b) in enumerate(zip(script, notebook)):
        assert a == b, (f"cell {i} differs between {source.name} and its .ipynb: edit one side, then run "
                        f"`python scripts/execute_notebooks.py {source.relative_to(ROOT)}`")
    assert len(script) == len(notebook), f"{source.name} has {len(script)} cells, its .ipynb {len(notebook)}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_test_machinery_is_in_tags_not_in_the_code_a_learner_reads(source):
    text = source.read_text(encoding="utf-8")
    assert not re.search(r"#\s*NBVAL_", text), "use the cell tag nbval-check-output, not a comment"
    assert 'tags=["nbval-check-output"]' in text or "nbval-check-output" in text, "no deterministic cell is checked"


def test_no_notebook_is_generated_by_a_script():
    builders = sorted(p.name for p in (ROOT / "scripts").glob("build_*notebook*.py"))
    assert not builders, f"notebooks are edited through their .py sources, not generated: {builders}"


# The lessons keep long experiments in tested course_utils functions: a code cell in the learner's path stays short.
SHORT_CELLS = [p for p in SOURCES if p.stem[:2] in {"00", "01", "02", "03", "04", "05"}]
MAX_CODE_LINES = 21


@pytest.mark.parametrize("source", SHORT_CELLS, ids=lambda p: p.name)
def test_no_code_cell_is_longer_than_about_twenty_lines(source):
    import jupytext

    for i, cell in enumerate(jupytext.read(source).cells):
        if cell.cell_type != "code":
            continue
        code = [line for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#")]
        assert len(code) <= MAX_CODE_LINES, (f"{source.name}, cell {i}: {len(code)} lines of code (at most "
                                             f"{MAX_CODE_LINES}); split it, or move the experiment into course_utils")


@pytest.mark.parametrize("source", SHORT_CELLS[:4], ids=lambda p: p.name)
def test_the_lessons_do_not_point_into_the_benchmarks_or_print_targets(source):
    text = source.read_text(encoding="utf-8")
    assert "benchmarks/" not in text, f"{source.name} points into benchmarks/: say it in a 'Going further' note"
    assert not re.search(r"target met|meets the target", text, flags=re.I), f"{source.name} prints a target check"
