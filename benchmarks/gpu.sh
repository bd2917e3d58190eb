#!/usr/bin/env bash
# The GPU figures in docs/performance.md and docs/results.md, from one machine with a CUDA GPU:
#   bash benchmarks/gpu.sh fast DATA_ROOT OUT   # fast path: tests, the lecture's nets at 20 epochs,
#                                               # benchmark.py, eager-vs-fast accuracy over 3 seeds
#   bash benchmarks/gpu.sh grid DATA_ROOT OUT   # sweep=lecture_grid (36 jobs, 20 epochs), timed
#                                               # from the command to its report
#   bash benchmarks/gpu.sh packed DATA_ROOT OUT # hydra/launcher=packed: benchmark row (g), then
#                                               # sweep=lecture_grid packed, timed to its report
#   SEEDS=0,1 bash benchmarks/gpu.sh full DATA_ROOT OUT   # sweep=heads_x_pools x those seeds (30 jobs
#                                               # a seed, 20 epochs); then SEEDS=2 on the same machine:
#                                               # each call adds a part, the report covers all parts
# DATA_ROOT: CIFAR-10 as an ImageFolder tree. OUT gets log.txt and runs.tgz (results, reports,
# plots and metrics; no checkpoints). Each step has a time limit, so one failing step leaves the
# others' figures.
set -uo pipefail
part=$1 DATA=$2 OUT=$3
PY=${PY:-python3}
EPOCHS=${EPOCHS:-20}
# A smoke run of this script on a CPU: TRAINER=cpu EPOCHS=1 SMOKE="trainer.limit_train_batches=3 ..."
TRAINER=${TRAINER:-gpu}
read -ra SMOKE <<<"${SMOKE:-}"
cd "$(dirname "$0")/.."
mkdir -p "$OUT" /tmp/poolbench-gpu
exec > >(tee -a "$OUT/log.txt") 2>&1
RUNS=/tmp/poolbench-gpu
COMMON=("trainer=$TRAINER" "${SMOKE[@]}" data=folder "data.root=$DATA" data.cache_dir=/tmp/poolbench-cache logger=csv
  trainer.enable_progress_bar=false callbacks.progress_bar=null "paths.root_dir=$RUNS")
step() { echo; echo "=== $* ($(date +%T))"; }
pack() { tar czf "$OUT/runs.tgz" -C "$RUNS" --exclude='*.ckpt' --exclude='*.pt' "$@" . ; }
show() {  # the figures of each run folder's results.json
  $PY - "$@" <<'PY'
import json, sys
for f in sys.argv[1:]:
    r = json.load(open(f)); m = r["metrics"]
    print(f"{f}: {r['status']} {r['choices'].get('head')}/{r['choices'].get('pool')} "
          f"test/acc {m.get('test/acc', float('nan')):.4f} seconds {r['seconds']} "
          f"fit {r.get('fit_seconds')} after-fit {r.get('after_fit_seconds')} "
          f"fast {r.get('fast_path')} epochs {r['epochs']}")
PY
}

step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
nproc

warm_cache() {  # decode CIFAR-10 once, before parallel jobs would each decode it
  step "decode CIFAR-10 into the cache (one short run)"
  timeout 120 $PY train.py "${COMMON[@]}" trainer.max_epochs=1 trainer.limit_train_batches=2 \
    trainer.limit_val_batches=1 trainer.limit_test_batches=1 task_name=warm >/dev/null 2>&1
  echo "rc $?"
}

if [ "$part" = fast ]; then
  warm_cache
  step "tests/training/test_fast_path.py (the CUDA graph test runs here)"
  timeout 150 $PY -m pytest -q -x -p no:cacheprovider -p no:warnings tests/training/test_fast_path.py 2>&1 | tail -15
  for head in flatten global; do
    step "train.py trainer=gpu head=$head trainer.max_epochs=$EPOCHS (fast path)"
    start=$(date +%s.%N)
    timeout 100 $PY train.py "${COMMON[@]}" head=$head trainer.max_epochs=$EPOCHS \
      task_name=single_$head >"$RUNS/single_$head.log" 2>&1
    echo "rc $? wall-clock of the command $($PY -c "import time; print(round(time.time() - $start, 1))") s"
    grep -E "fast path|CUDA graph|Error" "$RUNS/single_$head.log"
    show "$RUNS"/outputs/single_$head/*/results.json
  done
  pack
  step "scripts/benchmark.py"
  timeout 150 $PY scripts/benchmark.py --data-root "$DATA" ${BENCH:---repeats 1 --steps 300} 2>&1 |
    grep -E "^\(|^    with|^data:"
  step "accuracy parity: fast path seeds 1,2 (seed 0 above), then eager seeds 0,1,2, 20 epochs"
  timeout 100 $PY train.py -m "${COMMON[@]}" hydra/launcher=joblib hydra.launcher.n_jobs=4 \
    head=flatten,global seed=1,2 trainer.max_epochs=$EPOCHS task_name=parity_fast >/dev/null 2>&1
  echo "rc $?"
  timeout 240 $PY train.py -m "${COMMON[@]}" hydra/launcher=joblib hydra.launcher.n_jobs=6 \
    head=flatten,global seed=0,1,2 fast.enabled=false trainer.max_epochs=$EPOCHS \
    task_name=parity_eager >/dev/null 2>&1
  echo "rc $?"
  show "$RUNS"/outputs/parity_*-sweep/*/*/results.json
fi

lecture_grid() {  # lecture_grid DIR LAUNCHER-ARGS...: the 36 jobs, timed from the command to the report
  local dir=$RUNS/$1; shift
  step "sweep=lecture_grid, 36 jobs x $EPOCHS epochs, $*, then its report"
  start=$(date +%s)
  timeout ${GRID_TIMEOUT:-560} $PY train.py -m sweep=lecture_grid "$@" "${COMMON[@]}" \
    trainer.max_epochs=$EPOCHS "hydra.sweep.dir=$dir" >"$OUT/sweep.log" 2>&1
  echo "sweep rc $?"
  $PY scripts/report.py "$dir" >/dev/null && echo "report written"
  echo "command to report: $(($(date +%s) - start)) s"
  head -40 "$dir/report.md"
  show "$dir"/*/results.json | grep -v " ok " || true
}

if [ "$part" = grid ]; then
  lecture_grid lecture_grid hydra/launcher=joblib_gpus "placement.jobs_per_gpu=${JOBS_PER_GPU:-8}"
fi

if [ "$part" = packed ]; then
  jobs=${JOBS_PER_PROCESS:-12}
  warm_cache
  step "benchmarks/packed.py: row (g), $jobs jobs packed in one process vs one alone"
  timeout 150 $PY benchmarks/packed.py --jobs "$jobs" --data-root "$DATA" --steps 300 2>&1 | tail -3
  lecture_grid lecture_grid_packed hydra/launcher=packed "placement.jobs_per_process=$jobs"
fi

if [ "$part" = full ]; then
  # One device call (10 min) holds about 60 of these jobs, so the 90 go in parts (SEEDS), each a
  # sweep folder under $RUNS/heads_x_pools; report.py reads every part below it.
  seeds=${SEEDS:-0,1,2} jobs=${JOBS_PER_GPU:-12}
  grid=$RUNS/heads_x_pools
  [ -d "$grid" ] || warm_cache  # the first part; the second finds the cache
  step "sweep=heads_x_pools seed=$seeds x $EPOCHS epochs, placement.jobs_per_gpu=$jobs, then the report"
  start=$(date +%s)
  timeout ${GRID_TIMEOUT:-480} $PY train.py -m sweep=heads_x_pools "seed=$seeds" \
    hydra/launcher=joblib_gpus "placement.jobs_per_gpu=$jobs" "${COMMON[@]}" \
    trainer.max_epochs=$EPOCHS "hydra.sweep.dir=$grid/seeds_${seeds//,/_}" >"$OUT/sweep.log" 2>&1
  echo "sweep rc $?"
  $PY scripts/report.py "$grid" >/dev/null && echo "report written"
  echo "seeds $seeds: $(($(date +%s) - start)) s from the command to its report" | tee -a "$grid/wall.txt"
  head -50 "$grid/report.md"
  show "$grid"/*/*/results.json | grep -v " ok " || true
fi

step "pack"
# 90 jobs' per-run pictures would pass the 16 MB a device call returns; their data stays.
pack --exclude=activations.png --exclude=misclassified.png --exclude=confusion_matrix.png &&
  ls -la "$OUT"
