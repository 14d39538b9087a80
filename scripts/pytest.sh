#!/usr/bin/env bash
# Run pytest from the project's venv, treating "no tests ran" (exit 5) as failure.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest ran no tests: failing" >&2
  exit 1
fi
exit "$rc"
