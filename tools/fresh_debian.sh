#!/usr/bin/env bash
# Run one of the README's two commands on a bare Debian: a minimal Debian 12
# (debootstrap --variant=minbase) with only this machine's Node and npm
# copied in, a fresh clone of this repository, no Deno, no caches, no apt
# packages beyond the base system. It checks the README's promise ("on a
# fresh Debian/Ubuntu machine that has only Node ≥ 20 and npm") end to end:
# tools/setup.sh's apt-get and npm steps as well as the job itself.
#
#   sudo bash tools/fresh_debian.sh DIR [experiment|test]   (default: experiment)
#
# DIR: an empty or missing folder for the system (about 1.5 GB with Chromium
# and the npm cache). Needs root, `debootstrap` (apt-get install debootstrap),
# and the Debian mirror and npm registry reachable. Behind a TLS-intercepting
# proxy, the CA bundle named by NODE_EXTRA_CA_CERTS or SSL_CERT_FILE here is
# copied in and named the same way inside (nothing else of this machine is).
# Prints the job's output, then `fresh_debian: <command> exited N in S s`.
# The system is left in DIR for inspection; `--clean DIR` unmounts and
# removes it.
set -euo pipefail

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}
case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
  --clean)
    dir=${2:?"--clean needs the folder"}
    for m in dev sys proc; do umount -R "$dir/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$dir"
    exit 0
    ;;
  "")
    echo "fresh_debian: give the folder for the system (see --help)" >&2
    exit 2
    ;;
esac
dir=$(realpath -m "$1")
job=${2:-experiment}
case "$job" in
  experiment | test) ;;
  *)
    echo "fresh_debian: the job must be experiment or test, got '$job'" >&2
    exit 2
    ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "fresh_debian: needs root (debootstrap, chroot, mounts)" >&2
  exit 2
fi
if ! command -v debootstrap >/dev/null; then
  echo "fresh_debian: needs debootstrap (apt-get install debootstrap)" >&2
  exit 2
fi
node=$(command -v node) || {
  echo "fresh_debian: needs node on this machine (it is copied in)" >&2
  exit 2
}
npm_root=$(npm root -g)/npm
if [ ! -d "$npm_root" ]; then
  echo "fresh_debian: no npm at $npm_root" >&2
  exit 2
fi
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  echo "fresh_debian: $dir is not empty (remove it with --clean $dir)" >&2
  exit 2
fi
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)

mkdir -p "$dir"
echo "fresh_debian: debootstrap bookworm (minbase) into $dir"
debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian \
  >"$dir.debootstrap.log" 2>&1 || {
  echo "fresh_debian: debootstrap failed; see $dir.debootstrap.log" >&2
  exit 1
}
cp "$node" "$dir/usr/bin/node"
mkdir -p "$dir/usr/lib/node_modules"
cp -a "$npm_root" "$dir/usr/lib/node_modules/"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/bin/npx"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
env=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
ca=${NODE_EXTRA_CA_CERTS:-${SSL_CERT_FILE:-}}
if [ -n "$ca" ] && [ -f "$ca" ]; then
  mkdir -p "$dir/etc/ssl/certs"
  cp "$ca" "$dir/etc/ssl/certs/extra-ca.crt"
  env+=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/extra-ca.crt SSL_CERT_FILE=/etc/ssl/certs/extra-ca.crt)
fi
# HEAD of this repository, committed work only, as a fresh clone has it.
git clone -q "$repo" "$dir/root/d3pm"
# The mounts go with this script, however it ends (a kill or Ctrl-C mid-run
# left /dev, /sys and /proc bound in DIR until --clean). Slaves of the host's
# mounts: unmounting them never propagates back to the host.
unmount() { for m in dev sys proc; do umount -R "$dir/$m" 2>/dev/null || true; done; }
trap unmount EXIT
mount -t proc proc "$dir/proc"
mount --rbind /sys "$dir/sys"
mount --make-rslave "$dir/sys"
mount --rbind /dev "$dir/dev"
mount --make-rslave "$dir/dev"
echo "fresh_debian: bash tools/setup.sh && npx -y deno@2.9.6 task $job (Node $("$node" --version), HEAD $(git -C "$repo" rev-parse --short HEAD))"
start=$(date +%s)
set +e
# In its own session, waited on in the background: a signal to this script
# stops the whole job at once (bash runs a trap only after a foreground
# child ends), then the EXIT trap unmounts.
child=
# $! covers a signal between the job's start and `child=$!` (no earlier
# background job sets it).
stop() {
  local c=${child:-$!}
  if [ -n "$c" ]; then kill -TERM -- "-$c" 2>/dev/null; wait "$c"; fi
  exit "$1"
}
trap 'stop 130' INT
trap 'stop 143' TERM
setsid chroot "$dir" /usr/bin/env -i "${env[@]}" /bin/bash -c \
  "cd /root/d3pm && bash tools/setup.sh && npx -y deno@2.9.6 task $job" &
child=$!
wait "$child"
status=$?
trap - INT TERM
set -e
unmount
echo "fresh_debian: $job exited $status in $(($(date +%s) - start)) s"
exit "$status"
