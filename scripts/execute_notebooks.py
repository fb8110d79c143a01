"""Re-execute notebooks from their paired sources, top to bottom, each in a fresh kernel; report time and memory.

    python scripts/execute_notebooks.py                          # every notebook in notebooks/, in order
    python scripts/execute_notebooks.py notebooks/01_hard_pruning.py
    python scripts/execute_notebooks.py --no-write --json benchmarks/results/notebooks.json
    python scripts/execute_notebooks.py --slowest 5 notebooks/03_distillation.py   # where the time goes
    python scripts/execute_notebooks.py --sync-only              # update the .ipynb cells from the .py, no execution
    python scripts/execute_notebooks.py --parameters params.json # run with other parameters (never written back)

The source of each notebook is its jupytext percent-format script ``notebooks/NN_name.py``; the ``.ipynb`` beside it
holds what readers see. Cells whose text did not change keep their cell ids (jupytext matches them), so a diff of
the ``.ipynb`` shows only what changed. Outputs are stored without widget state and progress bars are off
(``COURSE_PROGRESS=0``). Each notebook runs in its own child process, whose peak resident memory (the kernel's,
measured with ``getrusage(RUSAGE_CHILDREN)``) is reported beside the wall time.

``--parameters FILE`` runs the notebooks the way papermill does: a cell tagged ``injected-parameters`` is inserted
after the cell tagged ``parameters``, assigning the values in FILE, a JSON object ``{"*": {...}, "NN_name": {...}}``
whose values are Python expressions as text (``{"*": {"DATASET": "'fashion-mnist'"}, "00_background":
{"DEMO_EPOCHS": "1"}}``); ``"*"`` applies to every notebook. Such runs never write the ``.ipynb`` beside the
source; ``--output-dir DIR`` keeps the executed notebooks there instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MACHINE_PATH = re.compile(r"(/root/|/home/[a-z]|/tmp/|/work/|C:\\\\Users)")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def cell_seconds(cell) -> float | None:
    """Wall time of one executed cell, from the timestamps nbclient records in its metadata."""
    from datetime import datetime

    times = cell.metadata.get("execution", {})
    start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
    if not (start and end):
        return None
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def from_source(py: Path):
    """The notebook made from ``py``, with the cell ids and outputs of the paired ``.ipynb`` where cells match."""
    import jupytext
    import nbformat
    from jupytext.combine import combine_inputs_with_outputs

    nb = jupytext.read(py)
    ipynb = py.with_suffix(".ipynb")
    if ipynb.exists():
        nb = combine_inputs_with_outputs(nb, nbformat.read(ipynb, as_version=4))
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": nb.metadata.get("language_info", {"name": "python"})}
    nb.nbformat, nb.nbformat_minor = 4, 5
    for cell in nb.cells:  # keep only what the source defines (tags); drop jupytext's and JupyterLab's extras
        cell.metadata = {"tags": cell.metadata["tags"]} if cell.metadata.get("tags") else {}
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    return nb


def write(nb, path: Path) -> None:
    import nbformat

    text = nbformat.writes(nb)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def inject(nb, assignments: dict[str, str]) -> None:
    """Insert, after the cell tagged ``parameters``, a cell tagged ``injected-parameters`` with ``assignments``."""
    import nbformat

    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise SystemExit(f"expected one cell tagged 'parameters', found {len(tagged)}")
    source = "# Injected parameters\n" + "\n".join(f"{name} = {value}" for name, value in assignments.items())
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))


def run_one(py: Path, write_back: bool, timeout: int, parameters: dict | None = None,
            output_dir: Path | None = None) -> dict:
    import resource

    from nbclient import NotebookClient

    nb = from_source(py)
    if parameters is not None:
        inject(nb, {**parameters.get("*", {}), **parameters.get(py.stem, {})})
        write_back = False
    # store_widget_state=True: nbclient needs it to route output into Output widgets; the state is dropped below
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(py.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (took := cell_seconds(cell)) is not None:
            cells.append({"cell": index, "seconds": round(took, 1), "starts": cell.source.strip()[:60]})
        cell.metadata.pop("execution", None)
    leaks = sorted(set(MACHINE_PATH.findall(json.dumps(nb))))
    if write_back:
        write(nb, py.with_suffix(".ipynb"))
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        write(nb, output_dir / py.with_suffix(".ipynb").name)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {"notebook": py.with_suffix(".ipynb").name, "seconds": round(seconds, 1),
            "peak_rss_mib": round(peak_kib / 1024), "machine_paths": leaks,
            "cells": sorted(cells, key=lambda c: -c["seconds"])}


def sources(paths: list[Path]) -> list[Path]:
    """The .py sources of the given notebooks (either file of a pair may be named), or of all of them."""
    if not paths:
        return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    out = []
    for p in paths:
        py = p.with_suffix(".py")
        if not py.exists():
            raise SystemExit(f"{py}: no paired source; create it with `jupytext --to py:percent {p}`")
        out.append(py)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--no-write", action="store_true", help="execute and measure, leave the files as they are")
    parser.add_argument("--sync-only", action="store_true",
                        help="rewrite each .ipynb from its .py, keeping outputs of unchanged cells; do not execute")
    parser.add_argument("--json", type=Path, help="write the measurements to this file")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--slowest", type=int, default=0, metavar="N", help="also list the N slowest cells")
    parser.add_argument("--parameters", type=Path, help="JSON file of parameters to inject (see above)")
    parser.add_argument("--output-dir", type=Path, help="also write the executed notebooks into this folder")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: run in this process
    args = parser.parse_args()
    os.environ.setdefault("COURSE_PROGRESS", "0")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    if args.one:
        parameters = json.loads(args.parameters.read_text()) if args.parameters else None
        print(json.dumps(run_one(args.notebooks[0].resolve(), not args.no_write, args.timeout, parameters,
                                 args.output_dir)))
        return 0
    paths = sources([p.resolve() for p in args.notebooks])
    if args.sync_only:
        for py in paths:
            write(from_source(py), py.with_suffix(".ipynb"))
            print(f"{py.with_suffix('.ipynb').name}: cells updated from {py.name} (not executed)")
        return 0

    results, failed = [], False
    for py in paths:
        cmd = [sys.executable, __file__, "--one", "--timeout", str(args.timeout), str(py)]
        if args.no_write:
            cmd.append("--no-write")
        if args.parameters:
            cmd += ["--parameters", str(args.parameters.resolve())]
        if args.output_dir:
            cmd += ["--output-dir", str(args.output_dir.resolve())]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            failed = True
            print(f"{py.stem}: FAILED\n{proc.stderr[-3000:]}", file=sys.stderr)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        cells = row.pop("cells")
        results.append(row)
        note = f"  machine paths in outputs: {row['machine_paths']}" if row["machine_paths"] else ""
        print(f"{row['notebook']}: {row['seconds']:.0f} s, peak memory {row['peak_rss_mib']} MiB{note}", flush=True)
        for cell in cells[:args.slowest]:
            print(f"    cell {cell['cell']:>3}: {cell['seconds']:6.1f} s  {cell['starts']!r}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        info = {"threads": os.cpu_count(), "python": sys.version.split()[0], "results": results}
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(tmp, args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
