#!/usr/bin/env bash
# Refresh requirements.lock, the hashed pins the application image installs (Dockerfile: pip
# install --require-hashes): every runtime dependency of pyproject.toml and the build backend, for
# the image's Python (3.11, Linux). Run after changing pyproject.toml's dependencies, then commit
# the lock (tests/test_compose.py fails while it misses a dependency). Needs the dev extras
# (pip-tools) and PyPI; this machine's own pip settings (local wheel folders) are left out so the
# lock names only what PyPI serves.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= .venv/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras \
  --build-deps-for wheel --index-url https://pypi.org/simple --no-emit-index-url --no-emit-find-links \
  --output-file requirements.lock pyproject.toml
