#!/usr/bin/env python3
"""Set up the course and open it, execute it, or test it. Needs only Python 3.10+.

    python3 course.py lab              # set up (.venv, package, data), then open JupyterLab on the notebooks
    python3 course.py lab --headless   # set up, then execute every notebook in place (instructors, before a workshop)
    python3 course.py test             # set up, then run all tests: unit tests, every notebook (pytest --nbval-lax),
                                       #   then JupyterLab in a real browser (tests_browser/)
    python3 course.py site             # set up, then build the static site from the executed notebooks (build/site/)
    python3 course.py setup            # only the set-up step

Set-up is idempotent: it creates ``.venv`` with this Python, installs the
package with its development extras (again only when pyproject.toml changed),
and makes sure MNIST and Fashion-MNIST can be loaded: from ``$COURSE_DATA_DIR``
(default ``~/.cache/course_utils/data``), Debian's ``dataset-fashion-mnist``, or
torchvision's download. Offline, run ``bash scripts/prepare_offline_data.sh``
first (see the README).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def run(cmd: list, **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def setup() -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"Python 3.10 or newer is needed, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        run([sys.executable, "-m", "venv", VENV])
    stamp = VENV / ".course-installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != wanted:
        run([PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]"])
        stamp.write_text(wanted)
    try:
        run([PYTHON, "-m", "course_utils", "prepare"])
    except subprocess.CalledProcessError:
        sys.exit("The datasets are not available (see the message above). Offline or behind a firewall, run:\n"
                 "    bash scripts/prepare_offline_data.sh\nthen this command again.")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("setup", "lab", "test", "site"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    setup()
    env = dict(os.environ)
    if command == "lab":
        if "--headless" in rest:
            env["COURSE_PROGRESS"] = "0"
            run([PYTHON, "scripts/execute_notebooks.py"], env=env)
        else:
            run([BIN / "jupyter", "lab", "notebooks/"] + rest, env=env)
    elif command == "site":
        run([PYTHON, "scripts/build_site.py"] + rest, env=env)
    elif command == "test":
        env["COURSE_PROGRESS"] = "0"
        run([PYTHON, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=1800",
             "tests", "notebooks", "tests_browser"] + rest, env=env)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
