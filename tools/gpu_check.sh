#!/usr/bin/env bash
# The GPU check on a machine that has Deno and a Vulkan loader: the steps of
# tools/gpu_run.sh (adapter probe, the engine's tests, bench:webgpu at the
# reference and paper sizes, generation, the time-conditioned step) with
# `deno` from PATH instead of the bundle. For a bare, air-gapped machine use
# tools/gpu_run.sh with the bundle of tools/offline_bundle.sh.
#
#   deno task gpu:check [OUT_DIR]     # default runs/gpu_check-<UTC time>
set -uo pipefail
cd "$(dirname "$0")/.."
# -h/--help prints the comment above; an option is refused, not taken for
# the folder (`deno task gpu:check --help` built into a folder named --help).
case "${1:-}" in
  -h | --help)
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
    exit 0
    ;;
  -*)
    echo "gpu_check: unknown option $1 (accepted: OUT_DIR, then gpu_run.sh options --bundle DIR|none, --rehearsal, or -h/--help)" >&2
    exit 2
    ;;
esac
exec bash tools/gpu_run.sh "${1:-runs/gpu_check-$(date -u +%Y%m%dT%H%M%SZ)}" --bundle none "${@:2}"
