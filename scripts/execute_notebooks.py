"""Execute notebooks in place, top to bottom, each in a fresh kernel, and report time and memory.

    python scripts/execute_notebooks.py                 # every notebook in notebooks/, in order
    python scripts/execute_notebooks.py notebooks/01_hard_pruning.ipynb
    python scripts/execute_notebooks.py --no-write --json benchmarks/results/notebooks.json
    python scripts/execute_notebooks.py --slowest 5 notebooks/03_distillation.ipynb   # where the time goes

Outputs are stored without widget state (removed from the metadata after execution) and
progress bars are off (``COURSE_PROGRESS=0``), so the committed notebooks hold
plots, tables and printed results only. Each notebook runs in its own child
process, whose peak resident memory (the kernel's, measured with
``getrusage(RUSAGE_CHILDREN)``) is reported beside the wall time.
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


def cell_seconds(cell) -> float | None:
    """Wall time of one executed cell, from the timestamps nbclient records in its metadata."""
    from datetime import datetime

    times = cell.metadata.get("execution", {})
    start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
    if not (start and end):
        return None
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def run_one(path: Path, write: bool, timeout: int) -> dict:
    import resource

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # store_widget_state=True: nbclient needs it to route output into Output widgets; the state is dropped below
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (took := cell_seconds(cell)) is not None:
            cells.append({"cell": index, "seconds": round(took, 1), "starts": cell.source.strip()[:60]})
        cell.metadata.pop("execution", None)
    text = nbformat.writes(nb)
    leaks = sorted(set(MACHINE_PATH.findall(text)))
    if write:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {"notebook": path.name, "seconds": round(seconds, 1), "peak_rss_mib": round(peak_kib / 1024),
            "machine_paths": leaks, "cells": sorted(cells, key=lambda c: -c["seconds"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--no-write", action="store_true", help="execute and measure, leave the files as they are")
    parser.add_argument("--json", type=Path, help="write the measurements to this file")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--slowest", type=int, default=0, metavar="N", help="also list the N slowest cells")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: run in this process
    args = parser.parse_args()
    os.environ.setdefault("COURSE_PROGRESS", "0")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    if args.one:
        print(json.dumps(run_one(args.notebooks[0].resolve(), not args.no_write, args.timeout)))
        return 0

    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    results, failed = [], False
    for path in paths:
        cmd = [sys.executable, __file__, "--one", "--timeout", str(args.timeout), str(path)]
        if args.no_write:
            cmd.append("--no-write")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            failed = True
            print(f"{path.name}: FAILED\n{proc.stderr[-3000:]}", file=sys.stderr)
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
        args.json.write_text(json.dumps(info, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
