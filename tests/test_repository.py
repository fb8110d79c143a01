"""The repository's promises: consistent dependencies, the README's commands, clean committed notebooks."""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CONDA_NAMES = {"torch": "pytorch-cpu"}  # pyproject name -> conda-forge name


def _pyproject():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(requirements):
    return {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    project = _pyproject()["project"]
    wanted = _names(project["dependencies"]) | _names(project["optional-dependencies"]["dev"])
    wanted = {CONDA_NAMES.get(n, n) for n in wanted}
    text = (ROOT / "environment.yml").read_text()
    lines = text[text.index("dependencies:"):].splitlines()
    listed = {re.split(r"[<>=! ]", line.strip()[2:], maxsplit=1)[0].lower()
              for line in lines if line.strip().startswith("- ") and not line.strip().startswith("- pip:")}
    listed -= {"python", "pip"}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"


def test_users_get_ranges_and_ci_pins_pytorch():
    deps = _pyproject()["project"]["dependencies"]
    assert not any("==" in d for d in deps), "pin versions in .ci/constraints.txt, not for users"
    constraints = (ROOT / ".ci" / "constraints.txt").read_text()
    assert "torch==2.14.1" in constraints and "torchvision==0.29.1" in constraints


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["python3 course.py lab", "python3 course.py test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^python3 course\.py test$", ci, flags=re.M)
    assert "prepare_offline_data.sh" in ci and "PIP_CONSTRAINT" in ci


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text()
    for nb in NOTEBOOKS:
        assert nb.name in readme, f"{nb.name} is missing from the README's notebook table"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_are_executed_clean_and_portable(path):
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, "commit the notebook executed"
    assert counts == list(range(1, len(counts) + 1)), "execute top to bottom from a fresh kernel"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"stored error output: {errors[0].get('ename')}"
    assert not re.search(r"(/root/|/home/[a-z]|/tmp/|/work/|C:\\\\Users)", text), "a machine path is stored"
    assert "widgets" not in nb.get("metadata", {}), "strip the widget state"
    stderr = [c["source"] for c in code for o in c.get("outputs", [])
              if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not stderr, f"stderr output (warnings or progress bars) in: {''.join(stderr[0])[:80]}"
    first = "".join(code[0]["source"])
    assert 'find_spec("course_utils")' in first and '"pip", "install"' in first, "first cell: install on Colab"
    assert "parameters" in code[1].get("metadata", {}).get("tags", []), "second code cell: tagged 'parameters'"
    assert any("nbval-check-output" in c.get("metadata", {}).get("tags", []) for c in code), \
        "no deterministic cell is checked (tag nbval-check-output)"


def test_binder_postbuild_installs_the_package_and_fills_the_data_and_model_caches():
    """Binder (repo2docker) runs postBuild once when it builds the image: a session must start ready."""
    lines = [line.strip() for line in (ROOT / "postBuild").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "set -euo pipefail"
    install = [line for line in lines if "pip install" in line]
    assert install and " ." in install[0] or install[0].endswith(" ."), install
    assert any("-m course_utils prepare" in line for line in lines)
    warm = [line for line in lines if "-m course_utils warm" in line]
    assert warm and "||" not in warm[0], "a failed model cache must fail the Binder build, not pass silently"
