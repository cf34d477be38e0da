#!/usr/bin/env bash
# Quick start, part one: the whole trlgate stack on embedded defaults (Temporal dev server with
# its Web UI, worker, API, SQLite). Ctrl-C stops everything. Options: ./run.sh --help
set -euo pipefail
source "$(dirname "$0")/scripts/bootstrap.sh" ""
exec .venv/bin/trlgate up "$@"
