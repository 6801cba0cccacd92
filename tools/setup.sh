#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine that has Node ≥ 20 and npm:
#  - Deno 2.9.6 from npm (npx caches it),
#  - OpenBLAS (the fast `blas` backend calls cblas_sgemm through Deno FFI),
#  - the software Vulkan driver (lets the WebGPU path run and be tested without a GPU),
#  - Chromium (the dashboard's end-to-end test runs in it, headless),
#  - the project's npm dependencies, exactly as locked in deno.lock, and the
#    dashboard's bundled page script (deno task bundle).
# Idempotent: installs only what is missing. Set D3PM_SKIP_APT=1 to skip system packages.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup: $*" >&2; }
# Under CI (CI=true) what cannot be installed is an error, not a warning: the
# tests then require the backends these packages provide (@d3pm/core/testing).
warn() {
  if [ "${CI:-}" = true ]; then log "error: $*"; exit 1; fi
  log "warning: $*"
}

if ! command -v node >/dev/null || ! command -v npx >/dev/null; then
  log "error: Node ≥ 20 and npm are needed (https://nodejs.org); install them and rerun"
  exit 1
fi

missing=()
ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so' || missing+=(libopenblas0-pthread)
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || missing+=(libvulkan1)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
# Debian's Chromium: the dashboard's browser test drives it headless (WebGPU
# through its own SwiftShader); D3PM_CHROMIUM names another browser.
[ -x "${D3PM_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)

if [ "${#missing[@]}" -gt 0 ] && [ "${D3PM_SKIP_APT:-0}" != 1 ]; then
  if ! command -v apt-get >/dev/null; then
    warn "no apt-get; install ${missing[*]} (or your system's equivalents) by hand"
  else
    sudo=""
    if [ "$(id -u)" != 0 ]; then
      if command -v sudo >/dev/null; then sudo="sudo"; else
        warn "not root and no sudo; cannot install ${missing[*]}; the blas/webgpu backends may be unavailable"
        missing=()
      fi
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
      log "installing ${missing[*]}"
      $sudo apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
  fi
fi

log "fetching Deno 2.9.6 and the locked npm dependencies"
npx -y deno@2.9.6 --version >/dev/null
npx -y deno@2.9.6 install --frozen >/dev/null 2>&1 || npx -y deno@2.9.6 install --frozen
# The dashboard's page script (deno bundle fetches its esbuild from npm once).
npx -y deno@2.9.6 task bundle >/dev/null 2>&1 || npx -y deno@2.9.6 task bundle
log "ready"
