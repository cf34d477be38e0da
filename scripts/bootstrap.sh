# Sourced by ./run.sh and ./test.sh: make .venv and install the project (again only when
# pyproject.toml changed). $1: the extras to install ("" or "[dev]").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "creating virtual environment in .venv ..."
  "$PYTHON" -m venv .venv
fi
extras="${1:-}"
stamp=".venv/.trlgate-install${extras//[^a-z]/-}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing trlgate${extras} into .venv ..."
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
  echo "$want" > "$stamp"
fi
