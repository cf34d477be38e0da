#!/usr/bin/env bash
# Quick start, part two: the whole test suite. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/scripts/bootstrap.sh" "[dev]"
source "$(dirname "$0")/scripts/chromium.sh"
exec .venv/bin/python -m pytest "$@"
