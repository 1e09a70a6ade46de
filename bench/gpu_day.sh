#!/usr/bin/env bash
# Issue 3's GPU checks and benchmarks as one prepared command, for the day a CUDA machine is lent.
#
#   bash bench/gpu_day.sh prepare              # here, with network: fills .gpu/ (git-ignored)
#   bash bench/gpu_day.sh run OUT [STAGE...]   # there, with .gpu carried: results land in OUT
#
# Stages, in order (default: all): env tests rasterizer step ict.
#   env         nvidia-smi, Python, torch and gsplat versions
#   tests       pytest -m gpu (gsplat against the torch rasterizer, CUDA mesh render, a CUDA fit);
#               fails if any GPU test skips
#   rasterizer  bench/bench_rasterizer.py --device cuda
#   step        bench/bench_fit_step.py, standard preset, 8 views at 512 px (the <= 2x target)
#   ict         bench/bench_fit_ict.py, standard preset, 24 seq x 8 views x 25 frames at 512 px
#               (the < 10 min and >= 80% targets), then bench/diagnose_registration.py
#
# The lent machine has no network and its own Python (3.12, with torch, numpy, scipy, pillow,
# imageio, safetensors, scikit-image, pytest, ninja, jaxtyping): gsplat, trimesh and imageio-ffmpeg travel as wheels,
# the package runs from backend/src, and the ICT head travels in .gpu/ because ../shared does not.
# gsplat compiles its CUDA code on first use (about 90 s), inside the first stage that needs it.
#
# With the device tool: run(command="bash bench/gpu_day.sh run $OUT", carry=[".gpu"], timeout_s=600);
# stages write their output into OUT as they finish, so a run stopped at its limit still returns the
# stages it completed. T2BS_GPU_DAY_DEVICE=cpu runs the same commands on the CPU at toy sizes, to
# check the plumbing here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
gpu_dir=$root/.gpu

prepare() {
  local python=${PYTHON:-python3}
  mkdir -p "$gpu_dir/wheels"
  # gsplat is the version the issue names; trimesh and imageio-ffmpeg (the export stage writes an mp4)
  # within backend/pyproject.toml's ranges: imageio-ffmpeg 0.7.0, the first to take a Fraction frame
  # rate, because 0.8's wheel alone is 68 MB of the 64 MiB a run may carry.
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$gpu_dir/wheels" gsplat==1.5.3 "trimesh>=4,<5" imageio-ffmpeg==0.7.0
  local ict=${T2BS_ICT_HEAD:-$root/../shared/data/ict_facekit/ict_head.npz}
  [ -f "$ict" ] || { echo "The ICT head is not at $ict; set T2BS_ICT_HEAD." >&2; exit 2; }
  install -m 0644 "$ict" "$gpu_dir/ict_head.npz"
  du -sh "$gpu_dir"
  echo "Ready: carry .gpu with the run (it must stay under the 64 MiB the working tree may take)."
}

run() {
  local out=${1:?usage: bash bench/gpu_day.sh run OUT [STAGE...]}
  shift
  local stages=("$@")
  [ ${#stages[@]} -gt 0 ] || stages=(env tests rasterizer step ict)
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  local python=${PYTHON:-python3}
  local device=${T2BS_GPU_DAY_DEVICE:-cuda}
  local site=${TMPDIR:-/tmp}/t2bs-gpu-site

  if [ -d "$gpu_dir/wheels" ] && ! "$python" -c "import gsplat, trimesh, imageio_ffmpeg" 2>/dev/null; then
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --target "$site" "$gpu_dir"/wheels/*.whl
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
  fi
  export PYTHONPATH=$root/backend/src:$root${PYTHONPATH:+:$PYTHONPATH}
  [ -f "$gpu_dir/ict_head.npz" ] && export T2BS_ICT_HEAD=${T2BS_ICT_HEAD:-$gpu_dir/ict_head.npz}
  export PYTHONUNBUFFERED=1

  # Toy sizes for a plumbing check on the CPU; the issue's sizes on the GPU.
  local step_args=(--preset standard --device cuda --views 8 --size 512)
  local ict_args=(--preset standard --device cuda --sequences 24 --views 8 --frames 25 --size 512)
  local raster_args=(--device cuda)
  if [ "$device" = cpu ]; then
    step_args=(--preset preview --device cpu --views 2 --size 32 --runs 2 --warmup 1)
    ict_args=(--preset preview --device cpu --sequences 1 --views 2 --frames 3 --size 32 --fit-steps 5)
    raster_args=(--device cpu --sizes 1x1000x64 --runs 2 --warmup 1)
  fi

  local stage status=0
  for stage in "${stages[@]}"; do
    local started=$SECONDS
    echo "== $stage ($(date -u +%H:%M:%S))"
    case $stage in
      env)
        { date -u; nvidia-smi || true; "$python" -c "
import sys, torch
print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)
print('device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')
try:
    import gsplat; print('gsplat', gsplat.__version__)
except Exception as error:
    print('gsplat not importable:', error)
"; } 2>&1 | tee "$out/env.txt"
        ;;
      tests)
        local marker=(-m gpu)
        [ "$device" = cpu ] && marker=(-m "not gpu" -k "cuda_request or one_frame")
        if "$python" -m pytest -p no:cacheprovider -q -rs "${marker[@]}" \
          tests/backend/test_render.py tests/backend/test_meshrender.py tests/backend/test_fit.py \
          tests/backend/test_bench_fit_step.py 2>&1 | tee "$out/gpu_tests.log"; then
          if grep -q "skipped" "$out/gpu_tests.log"; then
            echo "Some GPU tests skipped on this machine (see above)." | tee -a "$out/gpu_tests.log"
            status=1
          fi
        else
          status=1
        fi
        ;;
      rasterizer)
        "$python" bench/bench_rasterizer.py "${raster_args[@]}" 2>&1 | tee "$out/rasterizer.txt" || status=1
        ;;
      step)
        "$python" bench/bench_fit_step.py "${step_args[@]}" 2>&1 | tee "$out/fit_step.txt" || status=1
        ;;
      ict)
        local work=${TMPDIR:-/tmp}/t2bs-ict-standard
        rm -rf "$work"
        if "$python" bench/bench_fit_ict.py "${ict_args[@]}" --progress --work "$work" 2>&1 | tee "$out/ict.txt"; then
          "$python" bench/diagnose_registration.py --work "$work" --map "$out/ict_errors.png" 2>&1 \
            | tee "$out/ict_diagnosis.txt" || status=1
        else
          status=1
        fi
        ;;
      *)
        echo "Unknown stage '$stage'; choose from: env tests rasterizer step ict." >&2
        exit 2
        ;;
    esac
    echo "== $stage took $((SECONDS - started)) s"
  done
  return $status
}

case ${1:-} in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *)
    echo "usage: bash bench/gpu_day.sh prepare | run OUT [env|tests|rasterizer|step|ict ...]" >&2
    exit 2
    ;;
esac
