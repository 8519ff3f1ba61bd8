#!/usr/bin/env bash
# Runs every test: the trainer's own checks (Python) and rea's unit and integration tests (node:test
# over the compiled TypeScript). Expects scripts/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== trainer tests (python unittest)"
for dir in trainers/*/; do
  out=$(.venv/bin/python -m unittest discover -s "$dir" -t "$dir" -p 'test_*.py' 2>&1) || { echo "$out"; exit 1; }
  echo "$out" | tail -3
  if echo "$out" | grep -q '^Ran 0 tests'; then echo "no trainer tests found in $dir" >&2; exit 1; fi
done
echo "== rea tests (node:test)"
files=$(find dist/test -name '*.test.js' | sort)
node --test --test-concurrency=1 --test-timeout=600000 --enable-source-maps $files
