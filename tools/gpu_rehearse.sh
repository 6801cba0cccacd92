#!/usr/bin/env bash
# Rehearse the first GPU run here, on lavapipe, as a bare air-gapped GPU
# machine will see it:
#  1. builds the bundle (tools/offline_bundle.sh → dist/gpu-bundle), unless
#     GPU_REHEARSE_BUNDLE names one already built;
#  2. copies what travels to such a machine — the files git tracks or would
#     track (not ignored) and the bundle — into a fresh folder under /tmp;
#  3. runs tools/gpu_run.sh from that copy in a sandbox: a new network
#     namespace (unshare -n: no network at all), a mount namespace hiding
#     /work, /root (the npm and Deno caches), the system's Vulkan loader and
#     the xz, node, npx, dpkg, ar and python3 binaries, an empty HOME, and a
#     PATH of basic tools only (bash, coreutils, tar, gzip, grep, sed, find);
#     three runs:
#       a. no --rehearsal and no VK_* variable: no NVIDIA driver here, so it
#          must be refused (exit 2) in seconds;
#       b. no --rehearsal, VK_DRIVER_FILES naming lavapipe: the software
#          adapter must be refused (exit 2) in seconds;
#       c. --rehearsal: lavapipe accepted (labelled REHEARSAL), small sizes,
#          every step must pass with no ignored test;
#  4. checks the outputs and prints the summary. The sandboxed runs' output
#     folders are copied to OUT_DIR (default runs/gpu_rehearse-<UTC time>).
#
#   deno task gpu:rehearse [OUT_DIR]
#
# Needs unshare and mount (util-linux), and root or unprivileged user
# namespaces; lavapipe (mesa-vulkan-drivers) and apt for the bundle's .debs.
set -uo pipefail
cd "$(dirname "$0")/.."
# -h/--help prints the comment above; an option is refused, not taken for
# the folder (`deno task gpu:rehearse --help` built into a folder named --help).
case "${1:-}" in
  -h | --help)
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
    exit 0
    ;;
  -*)
    echo "gpu_rehearse: unknown option $1 (accepted: OUT_DIR, or -h/--help)" >&2
    exit 2
    ;;
esac
if [ $# -gt 1 ]; then
  echo "gpu_rehearse: one argument at most, OUT_DIR (given: $*)" >&2
  exit 2
fi
ROOT=$PWD
OUT=${1:-runs/gpu_rehearse-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
log() { echo "gpu_rehearse: $*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}
command -v unshare >/dev/null || die "unshare (util-linux) is needed"

BUNDLE=${GPU_REHEARSE_BUNDLE:-}
if [ -z "$BUNDLE" ]; then
  log "building the bundle"
  BUNDLE=$(bash tools/offline_bundle.sh dist/gpu-bundle) || die "offline_bundle.sh failed"
fi
[ -f "$BUNDLE/runtime.tar.xz" ] || die "no bundle at $BUNDLE"

# What travels: the tree as git sees it, and the bundle (as `carry`).
SANDBOX=$(mktemp -d /tmp/gpu_rehearse.XXXXXX)
trap 'rm -rf "$SANDBOX"' EXIT
TREE="$SANDBOX/tree"
mkdir -p "$TREE/dist" "$SANDBOX/bin" "$SANDBOX/home" "$SANDBOX/out"
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - -cf - | tar -xf - -C "$TREE"
cp -r "$BUNDLE" "$TREE/dist/gpu-bundle"
log "tree $(du -sm --exclude=dist "$TREE" | cut -f1) MiB + bundle $(du -sm "$TREE/dist/gpu-bundle" | cut -f1) MiB copied to $TREE"

# A PATH of what any Linux box has.
for tool in bash sh env cat cp mv rm mkdir ls ln chmod dirname basename \
  readlink date sleep tail head grep sed tr cut wc sort tee timeout mktemp \
  find tar gzip id uname nproc du stat sha256sum printf true false touch; do
  p=$(command -v "$tool") || die "no $tool here to put on the sandbox's PATH"
  ln -s "$p" "$SANDBOX/bin/$tool"
done
for tool in ldconfig ldd; do
  p=$(PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v "$tool") &&
    ln -s "$p" "$SANDBOX/bin/$tool"
done

# sandbox NAME ENV... -- ARGS...: gpu_run.sh in the bare, offline namespace.
userns=()
[ "$(id -u)" = 0 ] || userns=(-r)
sandbox() {
  local name=$1
  shift
  local envs=()
  while [ "$1" != -- ]; do
    envs+=("$1")
    shift
  done
  shift
  unshare "${userns[@]}" -n -m --propagation private -- bash -c '
    set -e
    cd /
    for d in /work /root; do [ -d "$d" ] && mount -t tmpfs tmpfs "$d"; done
    for f in /usr/lib/x86_64-linux-gnu/libvulkan.so.1* /usr/bin/xz /usr/bin/unxz \
      /usr/bin/node /usr/bin/npx /usr/bin/npm /usr/bin/dpkg /usr/bin/dpkg-deb \
      /usr/bin/ar /usr/bin/python3 /usr/local/bin/deno; do
      [ -e "$f" ] && mount --bind /dev/null "$f"
    done
    exec "$@"' sandbox env -i HOME="$SANDBOX/home" PATH="$SANDBOX/bin" \
    TMPDIR=/tmp LANG=C.UTF-8 "${envs[@]}" \
    bash "$TREE/tools/gpu_run.sh" "$SANDBOX/out/$name" "$@"
}

# The sandbox really is offline and bare.
unshare "${userns[@]}" -n -- bash -c \
  'exec 3<>/dev/tcp/registry.npmjs.org/443' 2>/dev/null &&
  die "the network namespace still reaches registry.npmjs.org"

log "a. no --rehearsal, no NVIDIA driver: must be refused"
t0=$(date +%s)
sandbox no-driver -- >/dev/null 2>&1
rc=$?
ta=$(($(date +%s) - t0))
grep -h "REFUSED" "$SANDBOX/out/no-driver/summary.txt" >&2
[ "$rc" = 2 ] || die "a: exit $rc, not 2"
log "a. refused (exit 2) in ${ta}s"

log "b. no --rehearsal, lavapipe named by VK_DRIVER_FILES: must be refused"
LVP=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n 1)
[ -n "$LVP" ] || die "no lavapipe manifest in /usr/share/vulkan/icd.d (apt-get install mesa-vulkan-drivers)"
t0=$(date +%s)
sandbox software VK_DRIVER_FILES="$LVP" -- >/dev/null 2>&1
rc=$?
tb=$(($(date +%s) - t0))
grep -h "REFUSED" "$SANDBOX/out/software/summary.txt" >&2
[ "$rc" = 2 ] || die "b: exit $rc, not 2"
grep -q "software adapter" "$SANDBOX/out/software/summary.txt" ||
  die "b: refused, but not for the software adapter"
log "b. refused (exit 2) in ${tb}s, the bundle's unpacking included"

log "c. --rehearsal on lavapipe (small sizes)"
t0=$(date +%s)
sandbox rehearsal -- --rehearsal 2>&1 | sed -u 's/^/  | /' >&2
rc=${PIPESTATUS[0]}
tc=$(($(date +%s) - t0))
cp -r "$SANDBOX/out/." "$OUT/"
R="$OUT/rehearsal"
log "c. exit $rc after ${tc}s; outputs in $R"
problems=()
[ "$rc" = 0 ] || problems+=("exit $rc")
grep -q "^REHEARSAL tests: [0-9]* passed, 0 failed, 0 ignored" "$R/summary.txt" ||
  problems+=("tests did not pass with 0 ignored")
for want in '"step":"reference","rehearsal":true,"bench":"webgpu.step"' \
  '"step":"reference","rehearsal":true,"bench":"webgpu.profile"' \
  '"step":"reference","rehearsal":true,"bench":"tfjs-webgpu.step"' \
  '"step":"paper","rehearsal":true,"bench":"webgpu.matmul"' \
  '"step":"generate","rehearsal":true,"bench":"webgpu.generate"' \
  '"step":"reference-time","rehearsal":true,"bench":"webgpu.step"'; do
  grep -qF "$want" "$R/results.jsonl" || problems+=("no line $want")
done
grep -q "unpacking the runtime with the bundle's busybox xz" "$R/steps.log" ||
  problems+=("the runtime was not unpacked with the bundle's busybox")
grep -q "^loader: libvulkan.so.1.* from the bundle" "$R/machine.txt" ||
  problems+=("the loader did not come from the bundle")
if [ ${#problems[@]} -gt 0 ]; then
  die "c: ${problems[*]}"
fi
log "REHEARSAL PASSED: refused without a driver in ${ta}s and on a software adapter in ${tb}s; the rehearsal run passed every step in ${tc}s (lavapipe, small sizes: not GPU figures)"
