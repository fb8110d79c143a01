"""Build the course's static site (HTML, for readers without Jupyter) from the executed notebooks, offline.

    .venv/bin/python scripts/build_site.py                 # -> build/site/index.html
    .venv/bin/python scripts/build_site.py --out /tmp/site
    .venv/bin/python scripts/build_site.py --jupyterhub-url https://hub.example.org   # + "launch on our hub" buttons

The tool is Jupyter Book 1.x (Sphinx + MyST-NB; the ``dev`` extras install it). Nothing is executed and nothing is
downloaded: each page renders the outputs committed in ``notebooks/NN_name.ipynb``. The configuration lives in
``docs/site/`` (``_config.yml``, the front page ``index.md``); this script stages a temporary book that mirrors the
repository's layout (``notebooks/*.ipynb``, ``docs/*.md``, ``deploy/``), so that the links the notebooks and guides
hold between each other (``[notebook 01](01_hard_pruning.ipynb)``, ``../notebooks/00_background.ipynb#anchor``)
resolve to pages; it writes the table of contents from the notebooks it finds (every ``NN_*.ipynb``, in order), and
replaces each ipywidgets output, whose state the committed notebooks do not store, by a short note. Warnings fail
the build (``--allow-warnings`` to see the site anyway); ``tests/test_site.py`` builds it and checks every link.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docs" / "site"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ('<p class="widget-note"><em>An interactive control (ipywidgets) is drawn here when the notebook runs; '
               'open the notebook in JupyterLab, Binder or Colab (buttons at the top of the page) to use it. '
               'The static version follows.</em></p>')


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def guides(root: Path = ROOT) -> list[Path]:
    """Markdown pages beside the notebooks: the guides in docs/ and deploy/ (relative to the repository)."""
    pages = sorted((root / "docs").glob("*.md")) + sorted((root / "deploy").glob("*.md"))
    return [p.relative_to(root) for p in pages]


def toc(nbs: list[Path], pages: list[Path]) -> str:
    lines = ["format: jb-book", "root: index", "parts:", "  - caption: Notebooks", "    chapters:"]
    lines += [f"      - file: notebooks/{nb.stem}" for nb in nbs]
    if pages:
        lines += ["  - caption: Teaching the course", "    chapters:"]
        lines += [f"      - file: {p.with_suffix('').as_posix()}" for p in pages]
    return "\n".join(lines) + "\n"


def stage_notebook(src: Path, dst: Path) -> None:
    """Copy a notebook, each widget output replaced by a note (its state is not stored, so it cannot be drawn)."""
    nb = json.loads(src.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if WIDGET_MIME in out.get("data", {}):
                out["data"] = {"text/html": WIDGET_NOTE}
    dst.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")


def stage(book: Path, root: Path = ROOT, jupyterhub_url: str = "") -> list[Path]:
    """Lay out the book to build in ``book``; return the notebooks staged."""
    shutil.copytree(CONFIG, book, ignore=shutil.ignore_patterns("_build", "__pycache__", "*.py"))
    if jupyterhub_url:
        config = (book / "_config.yml").read_text(encoding="utf-8")
        config = config.replace('jupyterhub_url: ""', f'jupyterhub_url: "{jupyterhub_url}"')
        (book / "_config.yml").write_text(config, encoding="utf-8")
    nbs = notebooks(root)
    if not nbs:
        raise SystemExit(f"no notebooks in {root / 'notebooks'}")
    (book / "notebooks").mkdir()
    for nb in nbs:
        stage_notebook(nb, book / "notebooks" / nb.name)
    pages = guides(root)
    for folder in {p.parts[0] for p in pages}:  # the guides and what they link to (config files in deploy/)
        shutil.copytree(root / folder, book / folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("site", "__pycache__"))
    (book / "_toc.yml").write_text(toc(nbs, pages), encoding="utf-8")
    return nbs


def jupyter_book() -> str:
    exe = Path(sys.executable).parent / ("jupyter-book.exe" if os.name == "nt" else "jupyter-book")
    found = str(exe) if exe.exists() else shutil.which("jupyter-book")
    if not found:
        raise SystemExit("jupyter-book is not installed: `.venv/bin/pip install -e '.[dev]'` (or `python3 course.py setup`)")
    return found


def build(out: Path, root: Path = ROOT, allow_warnings: bool = False, jupyterhub_url: str = "",
          quiet: bool = True) -> list[str]:
    """Build the site into ``out`` (replaced); return the warnings. Raise ``RuntimeError`` when the build fails."""
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="course-site-") as tmp:
        book = Path(tmp) / "book"
        stage(book, root, jupyterhub_url)
        cmd = [jupyter_book(), "build", str(book), "--path-output", tmp, "--builder", "html", "--all"]
        if not allow_warnings:
            cmd += ["-W", "--keep-going"]
        if quiet:
            cmd.append("-q")
        env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        log = proc.stdout + proc.stderr
        log = re.sub(r"\x1b\[[0-9;]*m", "", log)  # Sphinx's colours
        warnings = [line.replace(str(book) + os.sep, "") for line in log.splitlines()
                    if "WARNING" in line or "ERROR" in line]
        html = Path(tmp) / "_build" / "html"
        if proc.returncode != 0 or not (html / "index.html").exists():
            raise RuntimeError(f"jupyter-book failed (exit {proc.returncode}):\n" + "\n".join(warnings or [log[-4000:]]))
        for junk in (".buildinfo", ".doctrees", "reports"):
            shutil.rmtree(html / junk, ignore_errors=True) if (html / junk).is_dir() else (html / junk).unlink(missing_ok=True)
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(html, out)
    return warnings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="output folder (replaced)")
    parser.add_argument("--allow-warnings", action="store_true", help="do not fail on Sphinx warnings")
    parser.add_argument("--jupyterhub-url", default="",
                        help="add a launch button per notebook that opens it on this JupyterHub (via nbgitpuller)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Sphinx's progress")
    args = parser.parse_args()
    try:
        warnings = build(args.out, allow_warnings=args.allow_warnings, jupyterhub_url=args.jupyterhub_url,
                         quiet=not args.verbose)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    for line in warnings:
        print(line, file=sys.stderr)
    print(f"site: {args.out / 'index.html'} ({len(notebooks())} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
