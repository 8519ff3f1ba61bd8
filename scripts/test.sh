#!/usr/bin/env bash
# Runs every test: the trainer's own checks (Python) and rea's unit and integration tests (node:test
# over the compiled TypeScript). Expects scripts/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== trainer tests (python unittest)"
.venv/bin/python -m unittest discover -s trainers -p 'test_*.py'
echo "== rea tests (node:test)"
files=$(find dist/test -name '*.test.js' | sort)
node --test --test-concurrency=1 --test-timeout=600000 --enable-source-maps $files
