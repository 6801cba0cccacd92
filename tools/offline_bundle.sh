#!/usr/bin/env bash
# Carry the project to a GPU machine without network: one archive holding the
# Deno binary that runs here, the project's files, and every npm dependency
# exactly as locked in deno.lock (a private DENO_DIR, filled here with
# `deno install --frozen`).
#
#   bash tools/offline_bundle.sh [OUT.tar.xz]     # default dist/d3pm-offline.tar.xz
#
# On the target (same OS and CPU architecture as this machine; needs its own
# GPU driver and libvulkan1):
#
#   tar xf d3pm-offline.tar.xz && cd d3pm-offline
#   ./run.sh task gpu:check        # or: ./run.sh task bench:webgpu --size reference
#
# run.sh puts the bundled deno first on PATH (so `deno task` children use it)
# and points DENO_DIR at the bundled cache. `D3PM_BUNDLE_CHECK=1` makes this
# script unpack the archive into a temporary directory and run the engine's
# tests from it with every network connection refused (HTTPS_PROXY and
# HTTP_PROXY set to a closed local port), as on an air-gapped machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-dist/d3pm-offline.tar.xz}
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
DENO_BIN=$(deno eval 'console.log(Deno.execPath())')
log() { echo "offline_bundle: $*" >&2; }

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
NAME=d3pm-offline
B="$STAGE/$NAME"
mkdir -p "$B/bin" "$B/deno_dir"
cp "$DENO_BIN" "$B/bin/deno"
log "deno $("$B/bin/deno" --version | head -n 1) from $DENO_BIN"

# The project's files as git sees them (tracked and untracked, not ignored).
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - -cf - | tar -xf - -C "$B"

log "caching the locked npm dependencies into a private DENO_DIR"
(cd "$B" && DENO_DIR="$B/deno_dir" "$B/bin/deno" install --frozen >/dev/null)
# Source maps are more than half of the packages and never read at run time.
find "$B/deno_dir/npm" -name '*.map' -delete

cat >"$B/run.sh" <<'RUN'
#!/usr/bin/env bash
# Run the bundled deno offline: ./run.sh task gpu:check, ./run.sh test -A webgpu/, …
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PATH="$HERE/bin:$PATH"
export DENO_DIR="$HERE/deno_dir"
export DENO_NO_UPDATE_CHECK=1
cd "$HERE"
exec deno "$@"
RUN
chmod +x "$B/run.sh"

log "compressing (xz)"
tar -C "$STAGE" -cf - "$NAME" | xz -T0 -9 >"$OUT"
SIZE=$(du -m "$OUT" | cut -f1)
log "wrote $OUT (${SIZE} MB)"
if [ "$SIZE" -gt 60 ]; then
  log "warning: over the 60 MB target"
fi

if [ "${D3PM_BUNDLE_CHECK:-0}" = 1 ]; then
  CHECK=$(mktemp -d)
  tar -C "$CHECK" -xf "$OUT"
  log "checking the unpacked bundle offline: deno test -A webgpu/"
  # A clean PATH: the bundled deno only, no npx wrapper.
  env -i HOME="$CHECK" PATH=/usr/bin:/bin HTTPS_PROXY=http://127.0.0.1:9 \
    HTTP_PROXY=http://127.0.0.1:9 "$CHECK/$NAME/run.sh" test -A webgpu/ 2>&1 |
    grep -E "(passed|failed).*\||rror" | tail -n 3
  rm -rf "$CHECK"
fi
echo "$OUT"
