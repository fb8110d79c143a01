"""What every benchmark script does last: write its report as JSON, without ever leaving half a file.

The scripts run as ``python benchmarks/<name>.py``, so this module is imported by its name, ``_report``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(report: dict, path: Path) -> None:
    """Write ``report`` to ``path`` as indented JSON: to a temporary name beside it, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)
