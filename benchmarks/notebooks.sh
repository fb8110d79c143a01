#!/usr/bin/env bash
# Wall time and peak memory of executing every notebook headless, as CI does: first with an empty model cache
# (each notebook trains what it needs; later notebooks reuse what earlier ones cached), then again with the
# cache warm (a learner re-running a notebook, or a workshop prepared with `python3 course.py lab --headless`).
# The notebooks are executed without being rewritten. Run from the virtual environment:
#
#   .venv/bin/python -c pass && PATH=.venv/bin:$PATH bash benchmarks/notebooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cache="$(mktemp -d)"
trap 'rm -rf "$cache"' EXIT
export COURSE_CACHE_DIR="$cache"
python scripts/execute_notebooks.py --no-write --json benchmarks/results/notebooks_cold.json
python scripts/execute_notebooks.py --no-write --json benchmarks/results/notebooks_warm.json
