"""Every notebook runs with Fashion-MNIST, as an instructor switches it, and within Binder's memory.

The notebooks are executed the way papermill runs them: a cell tagged ``injected-parameters`` after the cell tagged
``parameters`` (``scripts/execute_notebooks.py --parameters``), here ``DATASET = "fashion-mnist"`` with fewer
epochs, seeds and candidates so that the six notebooks take minutes. The model cache is a fresh folder, so every
model a notebook needs is trained in that run, as on a learner's first run. Each notebook runs in a fresh kernel
whose peak resident memory is measured; Binder gives 2 GB, and a notebook must stay under 1.8 GB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
BINDER_LIMIT_MIB = 1.8e9 / 2**20  # 1.8 GB, in the MiB the executor reports

# Python expressions, as they would be typed into the parameters cell.
PARAMETERS = {
    "*": {"DATASET": "'fashion-mnist'"},
    "00_background": {"DEMO_EPOCHS": "1"},
    "01_hard_pruning": {"QUICK_EXAMPLES": "2000", "PLAN_EPOCHS": "1", "MLP_SEEDS": "(0, 1)", "GROUP_L1_EPOCHS": "1"},
    "02_soft_pruning": {"SWEEP": "(0.0, 0.5, 0.9)", "SWEEP_TRAIN_SIZE": "2000", "COMPARE_SEEDS": "(0,)",
                        "COMPARE_TRAIN_SIZE": "3000", "RESTORE_TRAIN_SIZE": "2000", "SFP_EPOCHS": "1",
                        "SFP_TRAIN_SIZE": "2000", "SFP_SEEDS": "(0,)"},
    "03_distillation": {"TEACHER_EPOCHS": "3", "SEEDS": "[0, 1]", "SIZES": "[800, 100, 30]", "EPOCHS_BIG": "1", "EPOCHS_SMALL": "2",
                        "TEMPERATURES": "[2, 4]", "BIG_TEMPERATURES": "[4]", "ALPHAS": "[0.9]", "LABEL_LRS": "[0.004]", "ARTICLE_EPOCHS": "1",
                        "HINT_TRAIN": "2000", "HINT_EPOCHS": "1"},
    "04_quantization": {"BITS": "(8, 6, 3)"},
    "05_comparison": {"FINETUNE_EPOCHS": "1", "SEEDS": "(0, 1)", "LEARNING_RATES": "(4e-3,)"},
}


def test_the_parameters_name_only_variables_of_each_notebooks_parameters_cell():
    """An injected name that the parameters cell does not define would be ignored silently: refuse it here."""
    import jupytext

    for stem in NOTEBOOKS:
        nb = jupytext.read(ROOT / "notebooks" / f"{stem}.py")
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        defined = {line.split("=")[0].strip() for line in cell.source.splitlines()
                   if "=" in line and not line.lstrip().startswith("#")}
        defined |= {n.strip() for line in cell.source.splitlines() if "," in line.split("=")[0]
                    for n in line.split("=")[0].split(",")}
        wanted = set(PARAMETERS["*"]) | set(PARAMETERS.get(stem, {}))
        assert wanted <= defined, f"{stem}: not in its parameters cell: {wanted - defined}"
    assert set(PARAMETERS) - {"*"} <= set(NOTEBOOKS)


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fashion")
    (folder / "parameters.json").write_text(json.dumps(PARAMETERS))
    env = {**os.environ, "COURSE_CACHE_DIR": str(folder / "cache"), "COURSE_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "execute_notebooks.py"), "--no-write",
                           "--parameters", str(folder / "parameters.json"), "--json", str(folder / "run.json")],
                          capture_output=True, text=True, env=env, timeout=40 * 60, check=False)
    results = json.loads((folder / "run.json").read_text())["results"] if (folder / "run.json").exists() else []
    return proc, {row["notebook"]: row for row in results}


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_every_notebook_runs_with_fashion_mnist_within_binders_memory(fashion_run, stem):
    proc, rows = fashion_run
    row = rows.get(f"{stem}.ipynb")
    assert row is not None, f"{stem} did not run to the end with DATASET = 'fashion-mnist':\n{proc.stderr[-4000:]}"
    assert row["peak_rss_mib"] < BINDER_LIMIT_MIB, f"{stem}: peak memory {row['peak_rss_mib']} MiB, over 1.8 GB"
    print(f"{stem}: {row['seconds']} s, peak {row['peak_rss_mib']} MiB (fashion-mnist, fresh model cache)")
