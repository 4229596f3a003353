#!/usr/bin/env bash
# PrairieLearn's entrypoint for a question built by `grade prairielearn build`, run in the
# grading container (as root) with the question's tests/ folder at /grade/tests. It
# grades the file in /grade/student and always leaves /grade/results/results.json: when
# the grader can't write one (Python itself can't start), it copies the fallback result
# shipped with the grader, the same document the grader writes when it fails.
#
# For a local run: GRADER_PL_ROOT relocates /grade, GRADER_PYTHON names the interpreter
# (default: python3 on the image's PATH); a relative root is taken from the folder this
# is started in.
set -u

absolute() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

ROOT="$(absolute "${GRADER_PL_ROOT:-/grade}")"
PYTHON="${GRADER_PYTHON:-python3}"
case "$PYTHON" in */*) PYTHON="$(absolute "$PYTHON")" ;; esac
RESULTS="$ROOT/results/results.json"
FALLBACK="$ROOT/tests/grader/frontends/prairielearn/fallback_results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
# The image may put its own folders on PYTHONPATH (grader-python adds serverFilesCourse): the grader is the one in tests/.
cd "$ROOT/tests" && PYTHONPATH="$ROOT/tests" "$PYTHON" -s -m grader prairielearn run --root "$ROOT"
status=$?
if [ ! -s "$RESULTS" ]; then
  echo "run.sh: the grader stopped with status $status before writing results.json; writing a fallback"
  tmp="$RESULTS.partial.$$"
  cp "$FALLBACK" "$tmp" && mv -f "$tmp" "$RESULTS" || echo "run.sh: cannot copy $FALLBACK either" >&2
fi
exit 0
