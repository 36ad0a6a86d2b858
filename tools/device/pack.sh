#!/usr/bin/env bash
# tools/device/pack.sh: builds the device kit, .device-kit/ (git-ignored), everything the GPU
# check (bench/gpu/check.sh) needs on this workplace's GPU machine, which has PyTorch, nvcc and
# cmake but no Node.js and no network:
#   node.xz               this machine's node binary (official build: needs only glibc and
#                         libstdc++), xz-compressed
#   growlm.node.xz        the addon, built here by nvcc for sm_90 (H100/H200) with the CUDA
#                         runtime linked statically (cuBLAS/NCCL are loaded at run time)
#   node_modules.tar.xz   the packages the check runs: vitest, tsx (runs the TypeScript as is)
#                         @huggingface/tokenizers (imported by the CLI) and benchmark (bench/
#                         common.ts, imported through bench/train.bench.ts), with their run-time
#                         dependencies (tools/device/node-closure.mjs)
#   MANIFEST              versions, git commit, sizes and the addon's GPU code
# tools/device/check-on-device.sh unpacks it there and runs the check; tools/device/README.md
# has the exact call. Fails when the working tree plus the kit exceed KIT_LIMIT_MIB (the device
# call carries at most 64 MiB).
#
# usage: tools/device/pack.sh [--skip-build]    (--skip-build reuses .device-kit-build/)
set -euo pipefail

KIT_LIMIT_MIB=${KIT_LIMIT_MIB:-55}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
kit=.device-kit
build=.device-kit-build
skip_build=0
for arg in "$@"; do
  case "$arg" in
    --skip-build) skip_build=1 ;;
    *) echo "usage: tools/device/pack.sh [--skip-build]" >&2; exit 2 ;;
  esac
done

rm -rf "$kit"
mkdir -p "$kit"
step() { echo "pack: $*"; }

# 1. The addon, in its own build folder so that build/ (the developer's) is untouched.
if [[ $skip_build == 0 || ! -f $build/Release/growlm.node ]]; then
  step "building the addon with nvcc for sm_90 in $build/"
  command -v nvcc >/dev/null || { echo "pack: nvcc not found: the kit's addon must contain sm_90 code" >&2; exit 1; }
  npx cmake-js compile --out "$build" --CDGROWLM_CUDA=ON --CDGROWLM_CUDA_ARCHITECTURES=90 >"$build.log" 2>&1 ||
    { tail -40 "$build.log" >&2; echo "pack: addon build failed (log: $build.log)" >&2; exit 1; }
fi
addon=$build/Release/growlm.node
if ldd "$addon" | grep -q 'libcudart'; then
  echo "pack: $addon links libcudart dynamically; the kit needs the static CUDA runtime" >&2
  exit 1
fi
python3 tools/device/fatbin_archs.py "$addon" --require-elf 90 >"$kit/fatbin.txt"
step "$(tail -1 "$kit/fatbin.txt")"
xz -9 -T0 -c "$addon" >"$kit/growlm.node.xz"

# 2. Node.js.
node_bin=$(command -v node)
node_version=$(node --version)
[[ ${node_version#v} =~ ^(2[0-9]|[3-9][0-9])\. ]] || { echo "pack: node $node_version is older than 20" >&2; exit 1; }
step "compressing $node_bin ($node_version)"
xz -9 -T0 -c "$node_bin" >"$kit/node.xz"

# 3. The packages the check runs, from the project's node_modules.
modules=$(realpath node_modules)
mapfile -t packages < <(node tools/device/node-closure.mjs "$modules" vitest tsx @huggingface/tokenizers benchmark | grep -v '^@types/')
step "packing ${#packages[@]} packages from $modules"
tar -C "$modules" --transform 's,^,node_modules/,' -cf - "${packages[@]}" | xz -6 -T0 >"$kit/node_modules.tar.xz"

# 4. Manifest and size.
tree_bytes=$(git ls-files -co --exclude-standard -z | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
kit_bytes=$(du -cb "$kit"/* | tail -1 | cut -f1)
total_mib=$(( (tree_bytes + kit_bytes + 1048575) / 1048576 ))
{
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD && echo '' || echo ' (plus uncommitted changes)')"
  echo "built: $(date -u +%FT%TZ) on $(uname -srm), $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "node: $node_version ($node_bin)"
  echo "nvcc: $(nvcc --version | tail -1)"
  echo "addon GPU code: $(tail -1 "$kit/fatbin.txt" | cut -d: -f2-)"
  echo "addon links: $(ldd "$addon" | awk '{print $1}' | tr '\n' ' ')"
  echo "packages: ${packages[*]}"
  echo "sizes (bytes):"
  (cd "$kit" && du -b node.xz growlm.node.xz node_modules.tar.xz)
  echo "working tree (tracked + untracked, not ignored): $tree_bytes"
  echo "working tree + kit: $((tree_bytes + kit_bytes)) (~$total_mib MiB; limit $KIT_LIMIT_MIB MiB, a device call carries 64)"
} >"$kit/MANIFEST"
cat "$kit/MANIFEST"
if (( total_mib > KIT_LIMIT_MIB )); then
  echo "pack: the working tree plus the kit is $total_mib MiB, over $KIT_LIMIT_MIB MiB" >&2
  exit 1
fi
step "done: $kit/ ($((kit_bytes / 1048576)) MiB), run tools/device/check-on-device.sh on the GPU machine"
