#!/usr/bin/env bash
# What a bare, air-gapped x86-64 Linux machine needs to run the project,
# beside the working tree that travels with it: one folder (default
# dist/gpu-bundle) for tools/gpu_run.sh, which unpacks it on the machine.
#
#   bash tools/offline_bundle.sh [OUT_DIR]      # default dist/gpu-bundle
#
# It holds:
#   runtime.tar.xz  the Deno binary that runs here and a DENO_DIR with every
#                   npm dependency exactly as locked in deno.lock (`deno
#                   install --frozen`; source maps dropped);
#   busybox         a static busybox (Debian's busybox-static) for machines
#                   without xz, tar or dpkg: xz, tar, dpkg-deb, sha256sum;
#   debs/           the Vulkan loader (libvulkan1) and libglvnd (libGLdispatch,
#                   which NVIDIA's EGL driver needs), unpacked by gpu_run.sh
#                   into a private folder, never over /;
#   SHA256SUMS, VERSIONS.
#
# Deno: DENO (a command), else `deno` on PATH, else `npx -y deno@2.9.6`.
# The .debs come from apt (`apt-get download`, amd64; Debian's or Ubuntu's
# archive, whichever this machine uses), or from GPU_BUNDLE_DEBS=DIR holding
# busybox-static, libvulkan1, libglvnd0, libegl1 and libglx0 .debs. The
# machine that runs it needs glibc ≥ 2.34 (Deno and the loader).
# Prints the folder; warns when it and the tracked tree exceed 60 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
# -h/--help prints the comment above; an option is refused, not taken for
# the folder (`deno task gpu:bundle --help` built into a folder named --help).
case "${1:-}" in
  -h | --help)
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
    exit 0
    ;;
  -*)
    echo "offline_bundle: unknown option $1 (accepted: OUT_DIR, or -h/--help)" >&2
    exit 2
    ;;
esac
if [ $# -gt 1 ]; then
  echo "offline_bundle: one argument at most, OUT_DIR (given: $*)" >&2
  exit 2
fi
ROOT=$PWD
DENO_VERSION=2.9.6
OUT=${1:-dist/gpu-bundle}
log() { echo "offline_bundle: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if [ -n "${DENO:-}" ]; then
  read -r -a DENO_CMD <<<"$DENO"
elif command -v deno >/dev/null; then
  DENO_CMD=(deno)
elif command -v npx >/dev/null; then
  DENO_CMD=(npx -y "deno@$DENO_VERSION")
else
  die "no Deno: put deno on PATH, set DENO, or install Node (npx -y deno@$DENO_VERSION)"
fi
DENO_BIN=$("${DENO_CMD[@]}" eval 'console.log(Deno.execPath())') ||
  die "could not run ${DENO_CMD[*]}"
[ -x "$DENO_BIN" ] || die "Deno.execPath() gave $DENO_BIN, not an executable"
[ "$(uname -m)" = x86_64 ] ||
  log "warning: this machine is $(uname -m); the bundle's deno runs only on $(uname -m)"
command -v xz >/dev/null || die "xz is needed here to compress the bundle (apt-get install xz-utils)"

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
R="$STAGE/d3pm-runtime"
mkdir -p "$R/bin" "$R/deno_dir" "$STAGE/out/debs" "$STAGE/project"
cp "$DENO_BIN" "$R/bin/deno"
DENO_LINE=$("$R/bin/deno" --version | head -n 1)
log "$DENO_LINE from $DENO_BIN"

# Cache the locked npm packages from a copy of the project's files (as git
# sees them), so that nothing here changes.
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - -cf - | tar -xf - -C "$STAGE/project"
log "caching the locked npm dependencies into a private DENO_DIR"
(cd "$STAGE/project" && DENO_DIR="$R/deno_dir" DENO_NO_UPDATE_CHECK=1 \
  NO_COLOR=1 "$R/bin/deno" install --frozen >"$STAGE/install.log" 2>&1) || {
  tail -n 5 "$STAGE/install.log" >&2
  die "deno install --frozen failed (is the npm registry reachable?)"
}
find "$R/deno_dir/npm" -name '*.map' -delete
rm -rf "$STAGE/project"

log "compressing the runtime (xz -9)"
tar -C "$STAGE" -cf - d3pm-runtime | xz -T0 -9 >"$STAGE/out/runtime.tar.xz"

# The .debs: busybox-static (for its binary) and the loader's packages.
PKGS=(busybox-static libvulkan1 libglvnd0 libegl1 libglx0)
DEBS="$STAGE/debs"
mkdir -p "$DEBS"
if [ -n "${GPU_BUNDLE_DEBS:-}" ]; then
  cp "$GPU_BUNDLE_DEBS"/*.deb "$DEBS/"
else
  command -v apt-get >/dev/null ||
    die "no apt-get: put the .debs of ${PKGS[*]} (amd64) in a folder and set GPU_BUNDLE_DEBS"
  # A private list folder, so that nothing of the system's apt state changes.
  LISTS="$STAGE/apt-lists"
  mkdir -p "$LISTS/partial"
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$LISTS")
  apt-get "${o[@]}" update >/dev/null 2>&1 ||
    log "warning: apt-get update failed; using the system's package lists"
  (cd "$DEBS" && { apt-get "${o[@]}" download "${PKGS[@]}" >/dev/null 2>&1 ||
    apt-get -oAPT::Architecture=amd64 download "${PKGS[@]}" >/dev/null; }) ||
    die "apt-get download ${PKGS[*]} failed (set GPU_BUNDLE_DEBS to a folder of them)"
fi
for p in "${PKGS[@]}"; do
  ls "$DEBS/${p}_"*_amd64.deb >/dev/null 2>&1 || die "no ${p}_*_amd64.deb"
done
dpkg-deb -x "$DEBS"/busybox-static_*_amd64.deb "$STAGE/bb" 2>/dev/null ||
  (cd "$STAGE" && mkdir -p bb && ar p "$DEBS"/busybox-static_*_amd64.deb data.tar.xz |
    xz -dc | tar -xf - -C bb) ||
  die "could not unpack busybox-static"
cp "$STAGE/bb/bin/busybox" "$STAGE/out/busybox"
chmod 755 "$STAGE/out/busybox"
"$STAGE/out/busybox" xz --help >/dev/null 2>&1 || die "busybox has no xz applet"
for p in "${PKGS[@]:1}"; do cp "$DEBS/${p}_"*_amd64.deb "$STAGE/out/debs/"; done

{
  echo "$DENO_LINE"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes')"
  for f in "$DEBS"/*.deb; do basename "$f"; done
} >"$STAGE/out/VERSIONS"
(cd "$STAGE/out" && find . -type f ! -name SHA256SUMS | sort | sed 's|^\./||' |
  xargs sha256sum >SHA256SUMS)

rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
cp -r "$STAGE/out" "$OUT"
OUT=$(cd "$OUT" && pwd)
BUNDLE_B=$(du -sb "$OUT" | cut -f1)
TREE_B=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')
MIB() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
log "wrote $OUT: $(MIB "$BUNDLE_B") MiB (runtime $(MIB "$(stat -c %s "$OUT/runtime.tar.xz")") MiB); tracked tree $(MIB "$TREE_B") MiB; together $(MIB $((BUNDLE_B + TREE_B))) MiB"
if [ $((BUNDLE_B + TREE_B)) -gt $((60 * 1048576)) ]; then
  log "warning: the bundle and the tracked tree exceed 60 MiB"
fi
cd "$ROOT"
echo "$OUT"
