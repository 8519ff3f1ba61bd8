#!/usr/bin/env bash
# Idempotent set-up for a fresh clone: Node packages, the Python venv (Temporal CLI + trainer
# packages), the embedded LLM (server + pinned weights; REA_LLM=off skips it), PostgreSQL and Redis
# started if down, the TypeScript build, and SQL migrations. A second run only checks, and is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "setup: $*"; }

# 1. Node packages, reinstalled only when package-lock.json changes.
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat node_modules/.rea-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  say "installing Node packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.rea-lock-hash
fi

# 2. Python venv with the Temporal CLI and the trainers' packages (torch pinned to the CPU build),
#    and the packages that carry the real click data (MovieLens-100K, Open Bandit), installed without
#    their dependencies: the trainer only reads their data files. Their licences forbid
#    redistribution, so the data is installed here and never committed.
req_hash=$(cat trainers/requirements.txt trainers/requirements-data.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv/.rea-req-hash 2>/dev/null)" != "$req_hash" ] || [ ! -x .venv/bin/python ]; then
  say "installing the Python venv (.venv)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r trainers/requirements.txt
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps -r trainers/requirements-data.txt
  echo "$req_hash" > .venv/.rea-req-hash
fi

# 2b. The embedded LLM (llama.cpp's server and the pinned, hash-checked weights); see docs/llm.md.
bash scripts/install-llm.sh

# 3. Services: PostgreSQL and Redis, started when they do not answer.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "starting PostgreSQL"
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "setup: PostgreSQL did not start" >&2; exit 1; }
fi
if [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" != "PONG" ]; then
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do [ "$(redis-cli ping 2>/dev/null)" = "PONG" ] && break; sleep 0.5; done
  [ "$(redis-cli ping 2>/dev/null)" = "PONG" ] || { echo "setup: Redis did not start" >&2; exit 1; }
fi

# 4. Build (incremental) and migrate.
npx tsc -p .
node bin/rea migrate

# 5. A single-node Slurm cluster for the Slurm adapter and its tests (quick when it is up). A failure
#    leaves the rest of the set-up usable; the Slurm tests run scripts/slurm.sh again and fail clearly.
if ! scripts/slurm.sh; then
  echo "setup: the Slurm cluster did not start (see the lines above); only the Slurm adapter and its tests need it: fix that and run scripts/slurm.sh as root" >&2
fi
