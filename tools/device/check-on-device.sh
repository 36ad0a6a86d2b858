#!/usr/bin/env bash
# tools/device/check-on-device.sh: the one command to run on this workplace's GPU machine (no
# Node.js there): unpacks the device kit that tools/device/pack.sh built here (.device-kit/,
# carried with the call) into the copy of the working tree, then runs bench/gpu/check.sh with
# GROWLM_PREBUILT=1. Arguments and the environment (OUT, GROWLM_*) pass through to check.sh;
# its exit status is this script's. tools/device/README.md has the exact call.
#
# It refuses to run in a checkout whose node_modules it did not unpack (a developer's), so it
# never replaces a real node_modules or build/.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
kit=$root/.device-kit
marker=node_modules/.growlm-device-kit
for f in node.xz growlm.node.xz node_modules.tar.xz; do
  [[ -f $kit/$f ]] || { echo "check-on-device: $kit/$f is missing: run tools/device/pack.sh and carry .device-kit" >&2; exit 2; }
done
if [[ -e node_modules && ! -e $marker ]]; then
  echo "check-on-device: $root/node_modules exists and is not the kit's: this is not a device machine's copy" >&2
  exit 2
fi
cat "$kit/MANIFEST" 2>/dev/null | sed 's/^/kit: /' | grep -v '^kit: packages:'

# xz, or Python's lzma where the xz tool is missing.
unxz_to() {
  if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi
}
bin=${TMPDIR:-/tmp}/growlm-device-kit/bin
mkdir -p "$bin" build/Release
t0=$SECONDS
unxz_to "$kit/node.xz" >"$bin/node" && chmod +x "$bin/node" || { echo "check-on-device: cannot unpack node" >&2; exit 2; }
rm -rf node_modules
unxz_to "$kit/node_modules.tar.xz" | tar -xf - || { echo "check-on-device: cannot unpack node_modules" >&2; exit 2; }
touch "$marker"
unxz_to "$kit/growlm.node.xz" >build/Release/growlm.node || { echo "check-on-device: cannot unpack the addon" >&2; exit 2; }
echo "check-on-device: unpacked node $("$bin/node" --version), node_modules and the addon in $(( SECONDS - t0 ))s"

export PATH=$bin:$PATH
export GROWLM_PREBUILT=1
exec bench/gpu/check.sh "$@"
