#!/usr/bin/env bash
# One check of the CUDA path on a fresh machine with an NVIDIA GPU, its driver and the CUDA 12 and
# cuDNN 9 runtime libraries (issue 16, criterion 5; docs/architecture.md, decision 21): installs
# what it needs, runs `npm run bench:gpu` and the pipeline tests with EXECUTION_PROVIDER=cuda, and
# ends with a short report, all within a time budget (8 minutes by default).
#   scripts/gpu-check.sh [--dry-run] [--budget SECONDS] [--model-dir DIR] [--ort-cuda-dir DIR]
#                        [--skip-install] [--out DIR]
# What it fetches: Node.js 24 and the dependencies from the npm registry (scripts/node24.sh, npm ci);
# onnxruntime-node's CUDA execution provider, which the npm package does not carry, through that
# package's own install script, from the Microsoft.ML.OnnxRuntime.Gpu.Linux NuGet package of the
# same version (as Dockerfile.runner does). A machine that reaches neither takes the provider's two
# libraries from --ort-cuda-dir, and a node_modules already in place with --skip-install.
# --dry-run checks the arguments and what it can without a GPU, and prints the steps it would run.
# Exit codes: 0 all passed, 1 a step failed, 2 bad arguments, 3 no GPU or CUDA libraries missing.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^# Exit codes/{s/^# \{0,1\}//;p}' "$0"; }
die_usage() { echo "gpu-check: $*" >&2; usage >&2; exit 2; }

dry_run=0 budget=480 model_dir="" ort_cuda_dir="" skip_install=0 out="${OUT:-}"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --budget) [ "$#" -ge 2 ] || die_usage "--budget needs a value"; budget=$2; shift ;;
    --model-dir) [ "$#" -ge 2 ] || die_usage "--model-dir needs a value"; model_dir=$2; shift ;;
    --ort-cuda-dir) [ "$#" -ge 2 ] || die_usage "--ort-cuda-dir needs a value"; ort_cuda_dir=$2; shift ;;
    --skip-install) skip_install=1 ;;
    --out) [ "$#" -ge 2 ] || die_usage "--out needs a value"; out=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die_usage "unknown argument: $1" ;;
  esac
  shift
done
[[ "$budget" =~ ^[0-9]+$ ]] && [ "$budget" -ge 60 ] && [ "$budget" -le 3600 ] || die_usage "--budget must be a whole number of seconds in [60, 3600], got $budget"
if [ -n "$ort_cuda_dir" ]; then
  for lib in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
    [ -s "$ort_cuda_dir/$lib" ] || die_usage "--ort-cuda-dir $ort_cuda_dir has no $lib"
  done
fi
[ -n "$out" ] || out=$(mktemp -d -t itemgen-gpu-check-XXXXXX)
mkdir -p "$out" || die_usage "cannot create --out $out"

deadline=$((SECONDS + budget))
ort_bin=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
report=()
note() { report+=("$*"); echo "gpu-check: $*"; }
left() { echo $((deadline - SECONDS)); }

# A step: its name, then the command. Timed, bounded by what is left of the budget, logged to $out.
step() {
  local name=$1 started=$SECONDS rc
  shift
  if [ "$dry_run" = 1 ]; then note "would run ($name): $*"; return 0; fi
  if [ "$(left)" -le 0 ]; then note "$name: not run, the ${budget} s budget is spent"; return 124; fi
  timeout --kill-after=10 "$(left)" "$@" >"$out/$name.log" 2>&1
  rc=$?
  note "$name: $([ "$rc" = 0 ] && echo ok || echo "failed (exit $rc, $out/$name.log)") in $((SECONDS - started)) s"
  return "$rc"
}

finish() {
  echo
  echo "=== gpu-check report ==="
  printf '%s\n' "${report[@]}"
  exit "$1"
}

# The GPU, as the driver reports it.
if command -v nvidia-smi >/dev/null 2>&1 && gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader --id=0 2>/dev/null); then
  note "GPU: $gpu; $(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -n 1)"
elif [ "$dry_run" = 1 ]; then
  note "GPU: none (nvidia-smi absent or no device); a real run stops here"
else
  note "GPU: none (nvidia-smi absent or no device)"
  finish 3
fi

# Node.js 24 and the dependencies, from the npm registry.
if [ "$dry_run" = 1 ]; then
  note "would run (node): bash scripts/node24.sh"
else
  node24=$(bash scripts/node24.sh) || { note "node: no Node.js 24 (scripts/node24.sh failed)"; finish 1; }
  PATH="$(dirname "$node24"):$PATH"
  note "node: $(node --version)"
fi
if [ "$skip_install" = 0 ]; then
  step deps npm ci --ignore-scripts --no-audit --no-fund || finish 1
fi

# onnxruntime-node's CUDA execution provider beside its binding.
if [ -s "$ort_bin/libonnxruntime_providers_cuda.so" ]; then
  note "CUDA provider: already installed"
elif [ -n "$ort_cuda_dir" ]; then
  step cuda-provider cp "$ort_cuda_dir/libonnxruntime_providers_cuda.so" "$ort_cuda_dir/libonnxruntime_providers_shared.so" "$ort_bin/" || finish 1
else
  step cuda-provider env ONNXRUNTIME_NODE_INSTALL=true node node_modules/onnxruntime-node/script/install.js || finish 1
fi

# The CUDA and cuDNN libraries the provider links against, found by the loader or not.
if [ "$dry_run" = 0 ]; then
  missing=$(ldd "$ort_bin/libonnxruntime_providers_cuda.so" 2>&1 | awk '/not found/ {print $1}' | tr '\n' ' ')
  if [ -n "$missing" ]; then
    note "CUDA libraries missing: $missing(install the CUDA 12 and cuDNN 9 runtime, or add their folder to LD_LIBRARY_PATH)"
    finish 3
  fi
  note "CUDA libraries: all found ($(ldd "$ort_bin/libonnxruntime_providers_cuda.so" | grep -o 'libcudnn\.so\.[0-9]*' | head -n 1))"
else
  note "would check: ldd $ort_bin/libonnxruntime_providers_cuda.so finds CUDA 12 and cuDNN 9"
fi

status=0
bench_args=(--provider cuda)
[ -n "$model_dir" ] && bench_args+=(--model-dir "$model_dir")
step bench env MALLOC_ARENA_MAX=2 node --import tsx scripts/bench/gpu.ts "${bench_args[@]}" || status=1
if [ "$dry_run" = 0 ] && [ -s "$out/bench.log" ]; then
  while IFS= read -r line; do report+=("  $line"); done < <(grep -E '^(gpu bench|model |batch|[0-9]+ |GPU memory|reference|PASS|MISS)' "$out/bench.log")
fi
step tests env EXECUTION_PROVIDER=cuda node --import tsx node_modules/uvu/bin.js test/runner/pipeline '(txt2img|denoise-graph)\.test\.ts$' || status=1
if [ "$dry_run" = 0 ] && [ -s "$out/tests.log" ]; then
  note "tests: $(sed 's/\x1b\[[0-9;]*m//g' "$out/tests.log" | grep -E 'Total:|Passed:' | tr -s ' ' | tr '\n' ' ')"
fi
note "logs: $out; $((SECONDS)) s of the ${budget} s budget"
finish "$status"
