#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04,
# Python 3.10). It installs the grader's pinned dependencies into a venv made from the
# system Python, so that the unprivileged uid the sandbox runs student code as can run
# the same interpreter and numpy, and makes the grader, rubric and reference root-only.
# No login user is created: the sandbox drops to a uid of its own for every run.
#
# For a local run: GRADER_AUTOGRADER_ROOT relocates /autograder, GRADER_VENV the venv
# (/opt/grader-venv), GRADER_BASE_PYTHON the Python it is made from; relative paths are
# taken from the folder this is started in. run_autograder reads the same variables.
set -euo pipefail

absolute() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

ROOT="$(absolute "${GRADER_AUTOGRADER_ROOT:-/autograder}")"
SOURCE="$ROOT/source"
VENV="$(absolute "${GRADER_VENV:-/opt/grader-venv}")"
BASE_PYTHON="${GRADER_BASE_PYTHON:-/usr/bin/python3}"
case "$BASE_PYTHON" in */*) BASE_PYTHON="$(absolute "$BASE_PYTHON")" ;; esac
FALLBACK="$SOURCE/grader/frontends/gradescope/fallback_results.json"

satisfied() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -s - <<'PY'
import re
import sys
from importlib.metadata import version

least = {"numpy": (1, 23), "PyYAML": (6, 0), "jsonschema": (4, 18)}
try:
    import jsonschema, numpy, yaml  # noqa: F401
    found = {name: tuple(int(n) for n in re.match(r"(\d+)\.(\d+)", version(name)).groups()) for name in least}
except Exception:
    sys.exit(1)
sys.exit(0 if sys.version_info >= (3, 10) and all(found[n] >= least[n] for n in least) else 1)
PY
}

if satisfied; then
  echo "setup.sh: $VENV already has what the grader needs; skipping the installation"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends python3 python3-venv python3-pip
  "$BASE_PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check --only-binary=:all: \
    -r "$SOURCE/requirements.txt"
  chmod -R a+rX "$VENV"
fi
# Fail the build now, not on the first submission: the grader imports, and the fallback
# results run_autograder copies when Python can't start are there.
(cd "$SOURCE" && "$VENV/bin/python" -s -c "import grader.frontends.gradescope.runner")
[ -s "$FALLBACK" ] || { echo "setup.sh: $FALLBACK is missing; rebuild the zip" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
  chown -R root:root "$SOURCE"
fi
chmod -R go-rwx "$SOURCE"
mkdir -p "$ROOT/results"
chmod 0755 "$ROOT/results"
echo "setup.sh: done"
