#!/usr/bin/env bash
# Quick start, part two: the whole test suite. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/scripts/bootstrap.sh" "[dev]"
source "$(dirname "$0")/scripts/chromium.sh"
# --deep: the deep tier (README "Tests"): the stress and fuzz tests at full size, and the tests that
# run only there.
if [ "${1:-}" = "--deep" ]; then
  shift
  export TRLGATE_TIER=deep
  set -- -m "stress or deep_only" "$@"
fi
exec .venv/bin/python -m pytest "$@"
