#!/usr/bin/env bash
# The fused WebGPU engine's whole GPU check in one command, for a bare,
# air-gapped x86-64 Linux machine with an NVIDIA driver — no network, Deno,
# Node, Vulkan loader or xz needed there — given the working tree and the
# bundle that tools/offline_bundle.sh builds (dist/gpu-bundle, carried
# beside the tree):
#
#   bash tools/gpu_run.sh OUT_DIR [--bundle DIR|none] [--rehearsal]
#
#  1. unpacks the bundle (Deno and the locked npm packages) into a private
#     work folder, with xz or else the bundle's static busybox;
#  2. unpacks the Vulkan loader from the bundle's .debs there (never over /)
#     and puts it first on LD_LIBRARY_PATH;
#  3. NVIDIA's ICD: the manifest that VK_DRIVER_FILES / VK_ICD_FILENAMES
#     names, else the first nvidia*.json in /usr/local/nvidia/share/vulkan/
#     icd.d, /usr/share/vulkan/icd.d, /etc/vulkan/icd.d, …; one naming the
#     X-only libGLX_nvidia is rewritten for the headless libEGL_nvidia (as
#     backend/vulkan_env.ts does); with no manifest but the library, one is
#     written. Sets DENO_WEBGPU_BACKEND=vulkan (so no OpenGL adapter);
#  4. probes the adapter (≤ 30 s) and stops (exit 2) unless it is a hardware
#     GPU on Vulkan: lavapipe/llvmpipe, SwiftShader and fallback adapters are
#     refused;
#  5. runs the steps below, each under its own timeout and all within
#     GPU_RUN_BUDGET_S (default 330 s from the start, so ≤ 6 min in all):
#       tests           deno test webgpu/ (D3PM_REQUIRE=webgpu: no adapter
#                       is a failure); refused when any test is ignored
#       reference       bench:webgpu --size reference (4 × d 256, MLP 1024,
#                       T 128, batch 8), kernel profile, tfjs-webgpu's step,
#                       generation (8,192 tokens; D3PM 16, 64, 256 steps)
#                       and its kernel profile (one AR batch, one D3PM
#                       batch at 16 steps)
#       paper           --size paper step (GPT-2 small, batch 4 × 1024, or 2
#                       where the binding limit halves it), profile, matmul
#                       GFLOP/s at GPT-2 shapes, the attention kernels alone
#                       (forward, backward-q, backward-kv at batch 2, 12
#                       heads × 64, T 1024, causal and bidirectional: ms and
#                       TFLOP/s), the tiled and the wide attention set
#                       side by side; no tfjs. Estimate, not yet timed: a
#                       set costs 2 one-layer engines, 2 × 6 profiled steps
#                       and 6 pipelines, ≈ 3–4 s on the H100, so the wide
#                       lines add ≈ 4 s to the step (cap 90 s; it took 14 s
#                       in the first run, before any attention lines)
#       generate        generation at the paper size on its own: one batch
#                       of 4 × 1024 (after one warm-up batch), AR with the
#                       tiled decoding matmul and the single-workgroup
#                       attention (~12 s a batch on the H100), D3PM at 16
#                       and 64 steps (256 steps would be ~512 forward
#                       passes of ~1.2 TFLOP: over a minute), then AR with
#                       the skinny matmul, and with the skinny matmul and
#                       the split-key attention (--decode-matmul both
#                       --decode-attention both; these two warm up on 2
#                       positions, not a batch); then one D3PM batch at 16
#                       steps and one more AR batch (skinny, split) with
#                       every kernel timed (GPU ms per kernel per decoding
#                       pass). Budget: the first run's generate step took
#                       58 s (AR 2 batches, D3PM 16 and 64 steps twice,
#                       start-up); the two later AR lines add one batch
#                       each, ≤ 12 s at the tiled kernel's 11.3 ms a pass
#                       (less as far as the new kernels are faster), and
#                       the AR profile ~1 batch, two more engines ~5 s
#                       each: ≤ ~110 s under its 150 s cap; the whole run
#                       ~300 s of 330 (first run 229 s, + ~25 s of profiles
#                       and attention lines, ≈ 4 s of wide attention lines,
#                       ≤ ~35 s for the two later AR lines and their
#                       engines, a few s of new tests)
#       reference-time  the reference step time-conditioned (adaLN)
#     A step that fails or times out is reported and the rest still run.
#
# --rehearsal accepts a software adapter (lavapipe's ICD is used unless
# VK_DRIVER_FILES names one) with small sizes, and labels everything
# REHEARSAL; tools/gpu_rehearse.sh runs it offline in a bare environment.
# --bundle none uses `deno` on PATH (or GPU_RUN_DENO) and the system's
# loader (deno task gpu:check).
#
# OUT_DIR gets five files (a device tool that returns ≤ 8 files gets them
# all): summary.txt, results.jsonl (every JSON line, tagged with its step),
# steps.log (each step's stderr), tests.log, machine.txt. Exit status: 0
# when every step passed, 1 when one failed, 2 when the machine or the
# adapter was refused (or bad usage). GPU_RUN_KEEP=1 keeps the work folder.
# Relative paths are the caller's; the default bundle is the tree's.
#
# With this workplace's device tool, after `deno task gpu:bundle` here:
#   run(command: "bash tools/gpu_run.sh $OUT", carry: ["dist/gpu-bundle"],
#       timeout_s: 420)
set -uo pipefail
CALLER=$PWD
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
START=$(date +%s)

usage() {
  echo "usage: bash tools/gpu_run.sh OUT_DIR [--bundle DIR|none] [--rehearsal]" >&2
  exit 2
}

# --- The test summary rule, callable on its own (tests/gpu_run_test.ts). ---
# Reads a `deno test` log: accepts "ok | N passed … | 0 failed" with no
# ignored test; prints one line saying what it found.
check_test_log() {
  local line passed failed ignored
  line=$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
  if [ -z "$line" ]; then
    echo "no test summary in the log"
    return 1
  fi
  passed=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$line")
  failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$line")
  ignored=0
  if grep -qE '[0-9]+ ignored' <<<"$line"; then
    ignored=$(sed -E 's/.*\| ([0-9]+) ignored.*/\1/' <<<"$line")
  fi
  echo "$passed passed, $failed failed, $ignored ignored"
  [ "$failed" = 0 ] && [ "$ignored" = 0 ] && [ "${line%% *}" = ok ]
}
if [ "${1:-}" = --check-test-log ]; then
  [ $# -eq 2 ] || usage
  check_test_log "$2"
  exit $?
fi

OUT=""
BUNDLE=$ROOT/dist/gpu-bundle
REHEARSAL=0
ICD_ONLY=0
while [ $# -gt 0 ]; do
  case $1 in
    --bundle)
      [ $# -ge 2 ] || usage
      BUNDLE=$2
      shift 2
      ;;
    --rehearsal)
      REHEARSAL=1
      shift
      ;;
    --icd-only) # steps 3 alone, printing the variables (for tests)
      ICD_ONLY=1
      shift
      ;;
    -h | --help) usage ;;
    -*)
      echo "gpu_run: unknown option $1 (accepted: --bundle DIR|none, --rehearsal)" >&2
      exit 2
      ;;
    *)
      [ -z "$OUT" ] || usage
      OUT=$1
      shift
      ;;
  esac
done
[ -n "$OUT" ] || usage
# Paths given are the caller's.
[[ "$OUT" == /* ]] || OUT="$CALLER/$OUT"
[[ "$BUNDLE" == /* || "$BUNDLE" == none ]] || BUNDLE="$CALLER/$BUNDLE"
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
if [ "$ICD_ONLY" = 0 ]; then
  : >"$OUT/steps.log"
  : >"$OUT/results.jsonl"
  : >"$OUT/summary.txt"
  : >"$OUT/machine.txt"
fi
if [ "$REHEARSAL" = 1 ]; then
  BUDGET=${GPU_RUN_BUDGET_S:-1800}
  TAG="REHEARSAL "
else
  BUDGET=${GPU_RUN_BUDGET_S:-330}
  TAG=""
fi
DEADLINE=$((START + BUDGET))
FAILED=()

say() {
  local line
  line="gpu_run: [$(($(date +%s) - START))s] ${TAG}$*"
  echo "$line" >&2
  [ "$ICD_ONLY" = 1 ] || echo "$line" >>"$OUT/steps.log"
}
summary() {
  echo "${TAG}$*" >&2
  echo "${TAG}$*" >>"$OUT/summary.txt"
}
refuse() { # refuse WHY: one line, exit 2
  if [ "$ICD_ONLY" = 1 ]; then
    echo "gpu_run: refused: $*" >&2
  else
    say "REFUSED: $*"
    summary "REFUSED: $*"
  fi
  exit 2
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_run.XXXXXX") || exit 2
cleanup() { [ "${GPU_RUN_KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

# coreutils' timeout, or the bundle's busybox one (no --kill-after there).
BB=""
with_timeout() { # with_timeout SECONDS CMD...
  local s=$1
  shift
  if timeout --version >/dev/null 2>&1; then
    timeout --kill-after=5 "$s" "$@"
  elif [ -n "$BB" ]; then
    "$BB" timeout "$s" "$@"
  else
    "$@"
  fi
}

# --- 1. The bundle: Deno and the npm cache; 2. the Vulkan loader. ---
setup_bundle() {
  if [ "$BUNDLE" = none ]; then
    DENO=${GPU_RUN_DENO:-deno}
    command -v "$DENO" >/dev/null ||
      refuse "--bundle none needs deno on PATH (or GPU_RUN_DENO); got none"
    LOADER="system"
    return
  fi
  [ -f "$BUNDLE/runtime.tar.xz" ] ||
    refuse "no bundle at $BUNDLE (runtime.tar.xz missing): build it with bash tools/offline_bundle.sh and carry dist/gpu-bundle"
  BB="$WORK/busybox"
  cp "$BUNDLE/busybox" "$BB" && chmod 755 "$BB" && "$BB" true ||
    refuse "the bundle's busybox does not run here ($(uname -m))"
  local sum=sha256sum
  command -v sha256sum >/dev/null || sum="$BB sha256sum"
  (cd "$BUNDLE" && $sum -c --quiet SHA256SUMS >/dev/null 2>&1 ||
    $sum -c SHA256SUMS >/dev/null) ||
    refuse "the bundle at $BUNDLE fails its SHA256SUMS (damaged in transit?)"
  local unxz="xz -dc" untar="tar -xf -" how="xz"
  command -v xz >/dev/null || {
    unxz="$BB xz -dc"
    how="the bundle's busybox xz (no xz here)"
  }
  command -v tar >/dev/null || {
    untar="$BB tar -xf -"
    how="$how and busybox tar (no tar here)"
  }
  say "unpacking the runtime with $how"
  $unxz <"$BUNDLE/runtime.tar.xz" | (cd "$WORK" && $untar) ||
    refuse "unpacking $BUNDLE/runtime.tar.xz failed"
  DENO="$WORK/d3pm-runtime/bin/deno"
  export DENO_DIR="$WORK/d3pm-runtime/deno_dir"
  "$DENO" --version >/dev/null 2>&1 ||
    refuse "the bundled deno does not run here (glibc ≥ 2.34 and x86-64 needed): $("$DENO" --version 2>&1 | head -n 1)"
  # The loader's packages, unpacked privately.
  mkdir -p "$WORK/vk"
  local deb
  for deb in "$BUNDLE"/debs/*.deb; do
    [ -f "$deb" ] || refuse "no .debs in $BUNDLE/debs"
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$deb" "$WORK/vk"
    else
      "$BB" dpkg-deb -x "$deb" "$WORK/vk"
    fi || refuse "unpacking $deb failed"
  done
  local lib="$WORK/vk/usr/lib/x86_64-linux-gnu"
  [ -e "$lib/libvulkan.so.1" ] || refuse "the bundle's libvulkan1 holds no libvulkan.so.1"
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  LOADER="$(basename "$(readlink -f "$lib/libvulkan.so.1")") from the bundle ($(ls "$BUNDLE"/debs | tr '\n' ' '))"
}

# --- 3. The ICD manifest. ---
ICD_DIRS=${GPU_RUN_ICD_DIRS:-/usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/nvidia/etc/vulkan/icd.d}
LIB_DIRS=${GPU_RUN_LIB_DIRS:-/usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib /usr/lib /lib}
json_field() { # json_field FILE KEY: a string field of a small JSON file
  tr -d '\n' <"$1" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p"
}
find_egl() { # find_egl [DIR]: libEGL_nvidia.so.0 beside DIR, in LIB_DIRS, or in ld's cache
  local d
  for d in "$@" $LIB_DIRS; do
    [ -f "$d/libEGL_nvidia.so.0" ] && {
      echo "$d/libEGL_nvidia.so.0"
      return
    }
  done
  if [ -z "${GPU_RUN_LIB_DIRS:-}" ] && command -v ldconfig >/dev/null; then
    ldconfig -p 2>/dev/null | sed -n 's/.*libEGL_nvidia\.so\.0 .*=> \(.*\)/\1/p' | head -n 1
  fi
}
write_icd() { # write_icd LIBRARY API_VERSION: sets MANIFEST to the written file
  mkdir -p "$WORK/icd"
  MANIFEST="$WORK/icd/nvidia_egl_icd.json"
  printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"%s"}}\n' \
    "$1" "$2" >"$MANIFEST"
}
# use_manifest M: MANIFEST = M, or (it names the X-only GLX library and there
# is no display) an EGL manifest written into the work folder.
use_manifest() {
  local m=$1 lib egl
  MANIFEST=$m
  lib=$(json_field "$m" library_path)
  [[ "$lib" == /* ]] && DRIVER_LIB=$lib
  if [[ "$lib" == *libGLX_nvidia* ]] && [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    egl=$(find_egl "$([[ $lib == /* ]] && dirname "$lib")")
    if [ -n "$egl" ]; then
      DRIVER_LIB=$egl
      write_icd "$egl" "$(json_field "$m" api_version | grep . || echo 1.3.0)"
      ICD_NOTE="$m names the X-only $lib: wrote an EGL manifest for $egl"
    else
      ICD_NOTE="$m names the X-only $lib and no libEGL_nvidia.so.0 was found: kept"
    fi
  fi
}
setup_icd() {
  ICD_NOTE=""
  DRIVER_LIB=""
  local list="" m d
  if [ "$REHEARSAL" = 1 ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    for d in $ICD_DIRS; do
      for m in "$d"/lvp_icd*.json; do [ -f "$m" ] && [ -z "$list" ] && list=$m; done
    done
    [ -n "$list" ] || refuse "rehearsal: no lavapipe manifest (lvp_icd*.json) in $ICD_DIRS"
    ICD_NOTE="rehearsal: lavapipe's manifest"
  elif [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    # The manifests in use (the loader reads VK_DRIVER_FILES first).
    local var=VK_ICD_FILENAMES given
    [ -n "${VK_DRIVER_FILES:-}" ] && var=VK_DRIVER_FILES
    given=${!var}
    local entries=()
    IFS=: read -r -a entries <<<"$given"
    for m in "${entries[@]}"; do
      [ -n "$m" ] || continue
      [ -f "$m" ] || refuse "$var names $m, which is not a file"
      use_manifest "$m"
      list="${list:+$list:}$MANIFEST"
    done
    [ -n "$list" ] || refuse "$var is set but names no manifest"
    [ -n "$ICD_NOTE" ] || ICD_NOTE="as $var gave it"
  else
    for d in $ICD_DIRS; do
      for m in "$d"/nvidia*.json; do [ -f "$m" ] && [ -z "$list" ] && list=$m; done
    done
    if [ -n "$list" ]; then
      use_manifest "$list"
      [ -n "$ICD_NOTE" ] || ICD_NOTE="found $list"
      list=$MANIFEST
    else
      DRIVER_LIB=$(find_egl)
      [ -n "$DRIVER_LIB" ] ||
        refuse "no NVIDIA Vulkan driver: no nvidia*.json in $ICD_DIRS and no libEGL_nvidia.so.0 in $LIB_DIRS or ld's cache"
      write_icd "$DRIVER_LIB" 1.3.0
      list=$MANIFEST
      ICD_NOTE="no NVIDIA manifest found: wrote one for $DRIVER_LIB"
    fi
  fi
  export VK_DRIVER_FILES=$list VK_ICD_FILENAMES=$list
  # The driver's own libraries (libnvidia-eglcore.so.*) sit beside it.
  if [ -n "$DRIVER_LIB" ]; then
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(dirname "$DRIVER_LIB")"
  fi
  export DENO_WEBGPU_BACKEND=vulkan
}

if [ "$ICD_ONLY" = 1 ]; then
  setup_icd
  echo "VK_DRIVER_FILES=$VK_DRIVER_FILES"
  echo "ICD_NOTE=$ICD_NOTE"
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  for m in ${VK_DRIVER_FILES//:/ }; do echo "MANIFEST $m $(tr -d '\n' <"$m")"; done
  exit 0
fi

[ "$REHEARSAL" = 1 ] &&
  say "mode: a software adapter is accepted and the sizes are small; nothing here is a GPU figure"
setup_icd # first: refusing a machine without a driver takes no unpacking
setup_bundle
export NO_COLOR=1 DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1 D3PM_REQUIRE=webgpu
export HOME=${HOME:-$WORK/home}
mkdir -p "$HOME"
DENO_RUN=("$DENO" run -A --no-check --cached-only)

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm); $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"'); $(nproc 2>/dev/null || echo '?') cores"
  echo "deno: $("$DENO" --version 2>&1 | head -n 1)"
  echo "loader: $LOADER"
  echo "icd: $VK_DRIVER_FILES ($ICD_NOTE)"
  for m in ${VK_DRIVER_FILES//:/ }; do echo "  $(tr -d '\n' <"$m")"; done
  [ -n "$DRIVER_LIB" ] && command -v ldd >/dev/null &&
    echo "ldd $DRIVER_LIB (missing): $(ldd "$DRIVER_LIB" 2>&1 | grep 'not found' | tr -s ' \t\n' ' ')"
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  [ "$BUNDLE" != none ] && echo "bundle: $(tr '\n' ';' <"$BUNDLE/VERSIONS")"
  echo "tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv 2>&1
  else
    echo "nvidia-smi: not found"
  fi
} >"$OUT/machine.txt" 2>&1
say "machine: $(head -n 4 "$OUT/machine.txt" | tail -n 3 | tr '\n' ';')"
say "icd: $VK_DRIVER_FILES ($ICD_NOTE)"

# --- 4. The adapter probe. ---
say "probing the adapter (≤ 30 s)"
with_timeout 30 "${DENO_RUN[@]}" bench/webgpu.ts --adapter >"$WORK/adapter.out" 2>>"$OUT/steps.log"
PROBE_RC=$?
ADAPTER=$(grep '^{"bench":"webgpu.adapter"' "$WORK/adapter.out" | head -n 1)
sed 's/^{/{"step":"adapter",/' <<<"$ADAPTER" | grep . >>"$OUT/results.jsonl"
[ -n "$ADAPTER" ] ||
  refuse "no WebGPU adapter on Vulkan (probe exit $PROBE_RC): $(grep -v '^\s*$' "$OUT/steps.log" | tail -n 2 | tr '\n' ' ')"
field() { sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[a-z0-9]*\).*/\1/p" <<<"$ADAPTER" | tr -d '"'; }
NAME=$(field adapter)
VENDOR=$(field vendor)
SOFTWARE=""
[ "$(field software)" = true ] && SOFTWARE="the engine marks it software"
[ "$(field fallback)" = true ] && SOFTWARE="it is a fallback adapter"
grep -qiE 'llvmpipe|lavapipe|swiftshader|softpipe' <<<"$NAME" && SOFTWARE="its name says so"
case $VENDOR in 65541 | 6880) SOFTWARE="vendor $VENDOR is a software driver's (Mesa, SwiftShader)" ;; esac
[ "$(field backend)" = vulkan ] || refuse "the probe did not run with DENO_WEBGPU_BACKEND=vulkan"
if [ -n "$SOFTWARE" ]; then
  if [ "$REHEARSAL" = 1 ]; then
    say "accepting the software adapter '$NAME' ($SOFTWARE) for the rehearsal"
  else
    refuse "'$NAME' is a software adapter ($SOFTWARE), not a GPU on Vulkan"
  fi
fi
say "adapter: $NAME (vendor $VENDOR) on Vulkan, after $(($(date +%s) - START))s"

# --- 5. The steps. ---
run_step() { # run_step NAME CAP CMD...
  local name=$1 cap=$2 left limit rc t0
  shift 2
  left=$((DEADLINE - $(date +%s)))
  if [ "$left" -lt 15 ]; then
    say "$name: skipped, ${left}s of the ${BUDGET}s budget left"
    FAILED+=("$name(no time left)")
    return
  fi
  limit=$((cap < left ? cap : left))
  say "== $name (≤ ${limit}s): ${*#"$DENO"}"
  echo "=== $name" >>"$OUT/steps.log"
  t0=$(date +%s)
  if [ "$name" = tests ]; then
    with_timeout "$limit" "$@" >"$OUT/tests.log" 2>&1
  else
    with_timeout "$limit" "$@" >"$WORK/$name.out" 2>>"$OUT/steps.log"
  fi
  rc=$?
  local rtag=""
  [ "$REHEARSAL" = 1 ] && rtag='"rehearsal":true,'
  if [ "$name" != tests ]; then
    grep '^{' "$WORK/$name.out" | sed "s/^{/{\"step\":\"$name\",$rtag/" >>"$OUT/results.jsonl"
  fi
  say "$name: exit $rc after $(($(date +%s) - t0))s"
  if [ "$rc" -ne 0 ]; then
    FAILED+=("$name(exit $rc$([ "$rc" -ge 124 ] && echo ', timed out?'))")
  fi
  return "$rc"
}

# The attention lines run in the paper step only; generation is profiled
# wherever --profile meets generation (reference, generate).
if [ "$REHEARSAL" = 1 ]; then
  REF=(--size tiny --steps 2 --profile --no-attention --gen-tokens 256 --gen-steps 16)
  PAPER=(--size tiny --steps 2 --profile --no-tfjs --no-generate)
  GEN=(--size tiny --no-step --no-matmul --no-attention --no-tfjs --profile --decode-matmul both --decode-attention both --gen-tokens 128 --gen-steps 16,64)
  TIME=(--size tiny --time --steps 2 --no-matmul --no-attention --no-tfjs --no-generate)
  CAPS=(1200 240 240 120 120)
else
  REF=(--size reference --profile --no-attention --gen-tokens 8192 --gen-steps 16,64,256)
  PAPER=(--size paper --profile --no-tfjs --no-generate)
  GEN=(--size paper --no-step --no-matmul --no-attention --no-tfjs --profile --decode-matmul both --decode-attention both --gen-tokens 4096 --gen-steps 16,64)
  TIME=(--size reference --time --profile --no-matmul --no-attention --no-tfjs --no-generate)
  CAPS=(150 75 90 150 40)
fi

run_step tests "${CAPS[0]}" "$DENO" test -A --no-check --cached-only webgpu/
TESTS=$(check_test_log "$OUT/tests.log")
TESTS_OK=$?
say "tests: $TESTS"
if [ "$TESTS_OK" -ne 0 ] && [[ " ${FAILED[*]} " != *" tests("* ]]; then
  FAILED+=("tests($TESTS)")
fi
run_step reference "${CAPS[1]}" "${DENO_RUN[@]}" bench/webgpu.ts "${REF[@]}"
run_step paper "${CAPS[2]}" "${DENO_RUN[@]}" bench/webgpu.ts "${PAPER[@]}"
run_step generate "${CAPS[3]}" "${DENO_RUN[@]}" bench/webgpu.ts "${GEN[@]}"
run_step reference-time "${CAPS[4]}" "${DENO_RUN[@]}" bench/webgpu.ts "${TIME[@]}"

# --- The summary. ---
summary "adapter: $NAME (vendor $VENDOR), Vulkan; icd $VK_DRIVER_FILES"
summary "tests: $TESTS"
with_timeout 30 "${DENO_RUN[@]}" tools/gpu_summary.ts "$OUT/results.jsonl" >"$WORK/summary.out" 2>>"$OUT/steps.log"
while IFS= read -r line; do summary "$line"; done <"$WORK/summary.out"
ELAPSED=$(($(date +%s) - START))
if [ ${#FAILED[@]} -gt 0 ]; then
  summary "FAILED after ${ELAPSED}s: ${FAILED[*]} (logs: $OUT/steps.log, $OUT/tests.log)"
  exit 1
fi
summary "all steps passed in ${ELAPSED}s; output in $OUT"
exit 0
