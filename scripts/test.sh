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
# A fresh test database each run, so that no earlier run's rows can leak into this one.
test_db_url="${REA_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/rea_test}"
psql "${test_db_url%/*}/postgres" -q -c "DROP DATABASE IF EXISTS ${test_db_url##*/} WITH (FORCE)"
files=$(find dist/test -name '*.test.js' -not -path 'dist/test/chaos/*' | sort)
node --test --test-concurrency=1 --test-timeout=600000 --enable-source-maps $files
