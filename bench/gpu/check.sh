#!/usr/bin/env bash
# bench/gpu/check.sh: the GPU check of issue 8. On a machine with an NVIDIA GPU, Node >= 20
# and (unless GROWLM_PREBUILT=1) npm, nvcc and cmake, from the repository root or anywhere:
#
#   bench/gpu/check.sh
#
# Stages, each time-boxed; a failing stage is reported and the next one runs; the exit status
# is 1 when any failed:
#   env        versions of everything involved, the GPU (nvidia-smi), this commit
#   build      npm ci (fresh checkout) or cmake-js compile; skipped when GROWLM_PREBUILT=1 and
#              build/Release/growlm.node exists (the device kit, tools/device/); lists the
#              addon's GPU code (cuobjdump --list-elf, or tools/device/fatbin_archs.py)
#   libraries  cuBLAS and NCCL: the system's when the dynamic loader finds them, else PyTorch's
#              pip packages (nvidia.cublas, nvidia.nccl) through GROWLM_CUBLAS_PATH/GROWLM_NCCL_PATH
#   info       growlm info --json: the CUDA backend is compiled and cuda:0 is usable
#   tests      vitest test/cuda with GROWLM_CUDA_EMULATE=0: every CUDA kernel against the CPU
#              backend on random inputs, outputs poisoned; fails if none ran
#   train      bench/gpu/train-check.ts: config M trained 5 steps on cuda and on cpu, fp32 and
#              bf16 products, losses and gradient norms compared (tolerances stated there)
#   bench-*    bench/gpu/run.ts SUITE: timings against PyTorch on the same GPU (attention,
#              adamw, train, kernels), alternated, medians, the issue's targets
# Results: bench/results/gpu-<device>.txt (everything printed, then a summary) and .json
# (stages, growlm info, test counts, training comparison, benchmark records and targets),
# copied to $OUT when OUT is set. Finishes within about 8 minutes on an H100 after the build
# (the stages' time boxes are cut to fit GROWLM_CHECK_BUDGET seconds, default 470).
#
# GROWLM_CHECK_ONLY=tests,bench-attention runs only the stages named (env, build, libraries,
# info and the results always run). With OUT set, the log is written to $OUT/gpu-check.log as
# the check goes (it comes back even when the run is cut off).
#
# GROWLM_CUDA_EMULATE=1 runs every stage on the CPU emulator instead (tiny sizes, PyTorch
# skipped, time boxes scaled by GROWLM_CHECK_SCALE, default 6): a dry run of the check itself.
set -uo pipefail

cd "$(dirname "$0")/../.."
export GROWLM_CUDA_EMULATE=${GROWLM_CUDA_EMULATE:-0}
emulated=$([[ $GROWLM_CUDA_EMULATE == 1 ]] && echo 1 || echo 0)
scale=${GROWLM_CHECK_SCALE:-$([[ $emulated == 1 ]] && echo 6 || echo 1)}
budget=$(( ${GROWLM_CHECK_BUDGET:-470} * scale ))
work=$(mktemp -d "${TMPDIR:-/tmp}/growlm-gpu-check.XXXXXX")
[[ -n ${OUT:-} ]] && mkdir -p "$OUT"
log=${OUT:+$OUT/gpu-check.log}
log=${log:-$work/check.log}
: >"$work/stages.tsv"
failed=0
deadline=$(( SECONDS + budget ))

# Node runs the TypeScript as is (tsx); vitest from node_modules (no npx: the device kit has no
# npm), without colours (the log is a results file).
ts() { node --import tsx "$@"; }
export -f ts

say() { echo "$*" | tee -a "$log"; }

# stage NAME BOX_SECONDS COMMAND: runs COMMAND (a shell snippet) under `timeout`, its output to
# the terminal and the log, and records the outcome. The box is cut to what the budget leaves.
stage() {
  local name=$1 box=$(( $2 * scale )) command=$3 counted=${4:-1}
  if [[ -n ${GROWLM_CHECK_ONLY:-} && ! ,$GROWLM_CHECK_ONLY,env,build,info, =~ ,$name, ]]; then
    printf '%s\t%s\t%s\t%s\n' "$name" "not selected (GROWLM_CHECK_ONLY)" 0 0 >>"$work/stages.tsv"
    return
  fi
  if [[ $counted == 1 ]]; then
    local left=$(( deadline - SECONDS - 10 ))
    if (( left < 15 )); then
      say "=== stage $name: SKIPPED, out of time (budget ${budget}s)"
      printf '%s\t%s\t%s\t%s\n' "$name" "failed: out of time" 0 0 >>"$work/stages.tsv"
      failed=1
      return
    fi
    (( box > left )) && box=$left
  fi
  say ""
  say "=== stage $name (time box ${box}s)"
  local t0=$SECONDS
  timeout -k 10 "$box" bash -c "$command" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]} status
  case $rc in
    0) status=ok ;;
    124 | 137) status="failed: timed out after ${box}s" ;;
    *) status="failed: exit status $rc" ;;
  esac
  [[ $rc == 0 ]] || failed=1
  say "=== stage $name: $status ($(( SECONDS - t0 ))s)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" $(( SECONDS - t0 )) "$box" >>"$work/stages.tsv"
}

say "growlm GPU check: $(date -u +%FT%TZ), $(uname -n), work folder $work"
[[ $emulated == 1 ]] && say "GROWLM_CUDA_EMULATE=1: every stage on the CPU emulator (tiny sizes, no PyTorch): a dry run, not a GPU result"

# ---- env ----
stage env 20 '
  if commit=$(git rev-parse HEAD 2>/dev/null); then
    echo "commit: $commit$(git diff --quiet HEAD || echo " (plus uncommitted changes)")"
  else
    echo "commit: not a git checkout (the device kit'"'"'s MANIFEST names the commit it was packed from)"
  fi
  echo "os: $(uname -srm); $( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null)"
  echo "cpu: $(nproc) cores, $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2-)"
  echo "node: $(node --version) ($(command -v node))"
  echo "npm: $(npm --version 2>/dev/null || echo "not installed")"
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -1 || true)"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,compute_cap,driver_version,memory.total,clocks.max.sm --format=csv
  else
    echo "nvidia-smi: not found"
  fi
  echo "python3: $(python3 --version 2>&1) ($(command -v python3))"
  python3 -c "import torch; print(\"torch:\", torch.__version__, \"CUDA\", torch.version.cuda, \"available:\", torch.cuda.is_available())" 2>&1 | tail -1
  env | grep -E "^(GROWLM_|CUDA_VISIBLE_DEVICES)" | sort
  node --version | grep -Eq "^v(2[0-9]|[3-9][0-9])\." || { echo "Node >= 20 is needed"; exit 1; }
'
deadline=$(( SECONDS + budget ))

# ---- build ----
if [[ ${GROWLM_PREBUILT:-0} == 1 && -f build/Release/growlm.node ]]; then
  build_command='echo "GROWLM_PREBUILT=1: using build/Release/growlm.node as it is"'
elif [[ ${GROWLM_PREBUILT:-0} == 1 ]]; then
  build_command='echo "GROWLM_PREBUILT=1 but build/Release/growlm.node is missing"; exit 1'
elif [[ ! -d node_modules ]]; then
  build_command='npm ci'  # its install script builds the addon (cmake-js compile --out build)
else
  build_command='npx cmake-js compile --out build'
fi
stage build 900 "$build_command"'
  if command -v cuobjdump >/dev/null; then
    echo "cuobjdump --list-elf:"; cuobjdump --list-elf build/Release/growlm.node | sed "s/^/  /" | sort | uniq -c | head -20
  fi
  python3 tools/device/fatbin_archs.py build/Release/growlm.node | tail -1
' 0
deadline=$(( SECONDS + budget ))

# ---- libraries (in this shell: the variables it sets are for every later stage) ----
say ""
say "=== stage libraries"
lib_status=ok
find_pip_library() {  # directory of the first file named $1 under the nvidia pip packages
  timeout 20 python3 - "$1" <<'PY' 2>/dev/null
import os, sys
import nvidia
for base in nvidia.__path__:
    for dirpath, _, files in os.walk(base):
        if sys.argv[1] in files:
            print(dirpath)
            raise SystemExit(0)
raise SystemExit(1)
PY
}
for spec in "cuBLAS GROWLM_CUBLAS_PATH libcublas.so.13 libcublas.so.12" "NCCL GROWLM_NCCL_PATH libnccl.so.2"; do
  read -r lib var sonames <<<"$spec"
  if [[ -n ${!var:-} ]]; then
    say "$lib: $var=${!var} (set by the caller)"
    continue
  fi
  found=""
  for soname in $sonames; do
    if ldconfig -p 2>/dev/null | grep -Eq "^[[:space:]]*${soname//./\\.} "; then found="system ($soname in the ld.so cache)"; break; fi
    if dir=$(find_pip_library "$soname"); then
      export "$var=$dir"
      export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      found="PyTorch's pip package: $var=$dir"
      break
    fi
  done
  if [[ -n $found ]]; then
    say "$lib: $found"
  elif [[ $emulated == 1 ]]; then
    say "$lib: not found (not needed on the emulator)"
  else
    say "$lib: NOT FOUND (neither where the dynamic loader looks nor in python3's nvidia packages)"
    [[ $lib == cuBLAS ]] && lib_status="failed: cuBLAS not found"
  fi
done
[[ $lib_status == ok ]] || failed=1
say "=== stage libraries: $lib_status"
printf '%s\t%s\t%s\t%s\n' libraries "$lib_status" 0 0 >>"$work/stages.tsv"

# ---- info ----
stage info 40 "ts src/cli/index.ts info --json >'$work/info.json' && cat '$work/info.json' && ts bench/gpu/verify.ts info '$work/info.json'"

# ---- tests ----
stage tests 110 "
  NO_COLOR=1 node node_modules/vitest/vitest.mjs run test/cuda --reporter=default --reporter=json --outputFile='$work/tests.json'
  rc=\$?
  ts bench/gpu/verify.ts tests '$work/tests.json' && exit \$rc
"

# ---- training ----
stage train 80 "ts bench/gpu/train-check.ts --json '$work/train.json'"

# ---- timings ----
stage bench-attention 45 "ts bench/gpu/run.ts attention --json '$work/bench-attention.json'"
stage bench-adamw 40 "ts bench/gpu/run.ts adamw --json '$work/bench-adamw.json'"
stage bench-train 70 "ts bench/gpu/run.ts train --json '$work/bench-train.json'"
stage bench-kernels 60 "ts bench/gpu/run.ts kernels --json '$work/bench-kernels.json'"

# ---- results ----
say ""
say "=== results"
if ! ts bench/gpu/report.ts "$work" "$log" "$failed" 2>&1 | tee -a "$log"; then
  # The report needs Node and the stage files; keep at least the log.
  mkdir -p bench/results
  cp "$log" "bench/results/gpu-check-failed-report.txt"
  failed=1
fi
exit $failed
