"""The package installs whole: the wheel holds every module, and a non-editable install (Colab's first cell) works.

Editable installs (``course.py``, Binder's ``postBuild``, CI's environment) read the source tree and would hide a
module missing from the wheel; these tests install the way a Colab learner does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "course_utils").rglob("*.py"))


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def first_cell_install_command() -> str:
    """The code of notebook 00's first cell, which installs the package where it is missing (Colab)."""
    import jupytext

    return jupytext.read(ROOT / "notebooks" / "00_background.py").cells[1].source


def test_the_wheel_holds_every_module(tmp_path):
    source = tmp_path / "src"  # a copy, so that the build leaves nothing behind in the repository
    shutil.copytree(ROOT / "course_utils", source / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist",
         source])
    (wheel,) = (tmp_path / "dist").glob("course_utils-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [m for m in MODULES if m not in names]
    assert not missing, f"modules missing from the wheel: {missing}"
    assert "course_utils/checks/__init__.py" in names


def _environment_with_pytorch(tmp_path: Path) -> Path:
    """A fresh virtual environment that already has PyTorch and the other dependencies (as Colab does), but not
    the course package: the test environment's packages are linked in, without any trace of course_utils."""
    venv = tmp_path / "colab"
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"])  # Colab's pip is recent; 23.x rejects file URLs
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    shared = tmp_path / "preinstalled"
    shared.mkdir()
    for entry in ours.iterdir():
        if "course_utils" in entry.name or "course-utils" in entry.name or entry.suffix == ".pth":
            continue
        (shared / entry.name).symlink_to(entry)
    (site / "preinstalled.pth").write_text(f"{shared}\n")
    return python


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to install from a git+file:// URL")
def test_a_colab_style_install_has_every_module_and_a_working_check(tmp_path):
    inside = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-inside-work-tree"], capture_output=True,
                            text=True).stdout.strip()
    if inside != "true":
        pytest.skip("not a git clone")
    python = _environment_with_pytorch(tmp_path)
    cell = first_cell_install_command()
    url = "git+https://github.com/nn-compression-course/nn-compression-course"
    assert url in cell, "the first cell installs the course from its repository"
    cell = cell.replace(url, f"git+file://{ROOT}")  # the committed state of this clone, as Colab gets main
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    run([python, "-c", cell], env=env, cwd=tmp_path)
    probe = """
import importlib, json, pkgutil
import course_utils as cu
names = [m.name for m in pkgutil.walk_packages(cu.__path__, "course_utils.")]
for name in names:
    importlib.import_module(name)
ok = bool(cu.checks.background.article_net_parameters(784 * 128 + 128 + 128 * 10 + 10))
print(json.dumps({"file": cu.__file__, "modules": names, "check": ok}))
"""
    found = json.loads(run([python, "-c", probe], env=env, cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert found["check"]
    assert str(tmp_path / "colab") in found["file"], f"imported from {found['file']}, not from the installed package"
    committed = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", "HEAD", "course_utils"],
                               capture_output=True, text=True, check=True).stdout.split()  # what pip installs
    wanted = sorted(m[:-3].replace("/", ".").removesuffix(".__init__") for m in committed
                    if m.endswith(".py") and m != "course_utils/__init__.py")
    assert sorted(found["modules"]) == wanted

    # Every exercise's solution passes its check, and every untouched exercise fails it, from that install.
    exercises = f"""
import sys, pytest, course_utils
assert "{tmp_path / 'colab'}" in course_utils.__file__, course_utils.__file__
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-c", "{tmp_path / 'pytest.ini'}", "--rootdir", "{tmp_path}",
                      "{ROOT / 'tests' / 'test_exercises.py'}"]))
"""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    run([python, "-c", exercises], env=env, cwd=tmp_path)
    # Notebook 00, top to bottom, in a kernel of that environment (its first cell sees the package and goes on).
    report = tmp_path / "notebook00.json"
    run([python, ROOT / "scripts" / "execute_notebooks.py", "--no-write", "--json", report,
         ROOT / "notebooks" / "00_background.py"], env={**env, "COURSE_CACHE_DIR": str(tmp_path / "cache")},
        cwd=tmp_path)
    assert [r["notebook"] for r in json.loads(report.read_text())["results"]] == ["00_background.ipynb"]
