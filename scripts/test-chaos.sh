#!/usr/bin/env bash
# The full chaos suite (test/chaos/): real campaigns through process, service, LLM and input faults,
# on private PostgreSQL, Redis and Temporal instances. Writes the figures to docs/reliability.md.
# Expects scripts/setup.sh to have run. REA_CHAOS_SEED picks other random moments.
set -uo pipefail
cd "$(dirname "$0")/.."
export REA_CHAOS_FIGURES="$PWD/.rea/chaos/figures.jsonl"
mkdir -p .rea/chaos && rm -f "$REA_CHAOS_FIGURES"
node --test --test-concurrency=1 --test-timeout=3600000 --enable-source-maps dist/test/chaos/*.test.js
status=$?
node dist/test/chaos/render.js && npx prettier --log-level warn --write docs/reliability.md || status=1
exit $status
