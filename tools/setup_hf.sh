#!/usr/bin/env bash
# The Python peer of the Hugging Face interop tests: a virtual environment in
# .cache/venv-hf (D3PM_HF_VENV to move it) with CPU PyTorch, transformers and
# safetensors as pinned in tools/requirements-hf.txt, from the package index
# pip is configured with (`pip config list`). .ci/run calls it; the tests
# find the environment there (or take D3PM_PYTHON) and skip without it.
# Idempotent: an environment built from the same requirements is kept. Built
# in a temporary folder and renamed into place, so a killed install leaves
# no half environment under the real name.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup_hf: $*" >&2; }

venv=${D3PM_HF_VENV:-.cache/venv-hf}
req=tools/requirements-hf.txt
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/requirements-hf.txt"; then
  log "ready ($venv)"
  exit 0
fi
if ! command -v python3 >/dev/null; then
  log "error: python3 is needed (with its venv module) for the Hugging Face interop tests"
  exit 1
fi
start=$(date +%s)
mkdir -p "$(dirname "$venv")"
tmp="$venv.partial-$$"
trap 'rm -rf "$tmp"' EXIT
log "creating $venv from tools/requirements-hf.txt (pip's configured index)"
python3 -m venv "$tmp"
# --retries 0: an index that cannot be reached (the default one on an
# air-gapped machine with a local index configured) fails at once instead
# of after minutes of back-off.
"$tmp/bin/python" -m pip install --quiet --disable-pip-version-check \
  --retries 0 -r "$req" 2>&1 | grep -vE "^WARNING: (Location|Retrying)" >&2 || true
"$tmp/bin/python" -c "import torch, transformers, safetensors" || {
  log "error: the environment cannot import torch, transformers and safetensors"
  exit 1
}
cp "$req" "$tmp/requirements-hf.txt"
rm -rf "$venv"
mv "$tmp" "$venv"
trap - EXIT
log "ready ($venv, $(( $(date +%s) - start )) s)"
