#!/usr/bin/env bash
# Set up the project in .venv and run a job:  bash run.sh test | bash run.sh setup
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # The CPU build of torch, unless a torch (e.g. your CUDA build) is already installed.
  .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[dev]"
}

case "${1:-}" in
  setup) setup ;;
  test) setup; shift; .venv/bin/python -m pytest -q "$@" ;;
  *) echo "usage: bash run.sh {setup|test [pytest args]}" >&2; exit 2 ;;
esac
