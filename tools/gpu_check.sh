#!/usr/bin/env bash
# The whole GPU check in one run (budget: under 8 minutes), so that one
# session on a GPU machine yields every figure of the WebGPU engine:
#   1. the adapter: description, features, limits;
#   2. bench:webgpu at the reference size (plain, and time-conditioned) and
#      the paper size (tiny on a software adapter such as lavapipe, where it
#      is a smoke test); each bench also times the same step on tfjs-webgpu,
#      and the plain ones time generation at batch 4 (AR with the KV cache,
#      the D3PM at 16, 64 and 256 steps; batches/s is a rate, measured here
#      on 16 batches at the reference size and 4 at the paper size);
#   3. the engine's tests (parity with tfjs on cpu) on that adapter.
# Every step has its own timeout; a failing step is reported and the rest
# still run. JSON lines and logs go to the output directory (first argument,
# default runs/gpu_check-<UTC time>); the exit status is non-zero when any
# step failed.
#
#   deno task gpu:check [OUT_DIR]
#   GPU_CHECK_SIZES="reference" deno task gpu:check   # choose the bench sizes
set -uo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
OUT=${1:-runs/gpu_check-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
START=$(date +%s)
FAILED=()

log() { echo "gpu_check: $*" >&2; }

# run NAME SECONDS CMD...: stdout → $OUT/NAME.jsonl, stderr → $OUT/NAME.log
run() {
  local name=$1 limit=$2
  shift 2
  log "$name (≤ ${limit}s): $*"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" >"$OUT/$name.jsonl" 2>"$OUT/$name.log"
  local rc=$?
  log "$name: exit $rc after $(($(date +%s) - t0))s"
  if [ $rc -ne 0 ]; then
    FAILED+=("$name(exit $rc)")
    tail -n 5 "$OUT/$name.log" >&2
  fi
  grep '^{' "$OUT/$name.jsonl" || true
}

{
  "$DENO" --version | head -n 1
  command -v nvidia-smi >/dev/null &&
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  true
} >"$OUT/machine.txt" 2>&1
log "machine: $(tr '\n' ';' <"$OUT/machine.txt")"
run adapter 30 "$DENO" run -A bench/webgpu.ts --adapter
if grep -q '"software":true' "$OUT/adapter.jsonl"; then
  SIZES=${GPU_CHECK_SIZES:-tiny tiny-time}
else
  SIZES=${GPU_CHECK_SIZES:-reference reference-time paper}
fi
for size in $SIZES; do
  case $size in
    paper) limit=200 gen=(--gen-tokens 16384 --gen-steps 16,64,256) ;;
    reference) limit=90 gen=(--gen-tokens 8192 --gen-steps 16,64,256) ;;
    *) limit=60 gen=() ;;
  esac
  flags=(--size "${size%-time}" --profile "${gen[@]}")
  [ "$size" != "${size%-time}" ] && flags+=(--time --no-matmul --no-tfjs --no-generate)
  run "bench_$size" "$limit" "$DENO" run -A bench/webgpu.ts "${flags[@]}"
done
run tests 100 "$DENO" test -A webgpu/
grep -E "(passed|failed).*\|" "$OUT/tests.jsonl" | tail -n 1 >&2

log "done in $(($(date +%s) - START))s; output in $OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
  log "failed: ${FAILED[*]}"
  exit 1
fi
