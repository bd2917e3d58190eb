#!/usr/bin/env bash
# Regenerates docs/results.md from a real sweep on CIFAR-10 (the shared JPEG copy by default), on
# a machine with a CUDA GPU:
#   bash scripts/results_doc.sh [DATA_ROOT]     sweep=lecture_grid (36 jobs x EPOCHS=20), then the doc
#   SWEEP_DIR=DIR bash scripts/results_doc.sh   the doc alone, from a finished sweep folder
#                                               (WALL=seconds from command to report, if measured;
#                                               NOTE=a line on how that sweep was run)
# JOBS_PER_GPU=12 jobs share each GPU at once (placement.jobs_per_gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/cifar10-jpg}
EPOCHS=${EPOCHS:-20}
JOBS_PER_GPU=${JOBS_PER_GPU:-12}
PY=${PY:-python}
SWEEP_CMD=(train.py -m sweep=lecture_grid hydra/launcher=joblib_gpus
  "placement.jobs_per_gpu=$JOBS_PER_GPU" data=folder "data.root=$DATA"
  "trainer.max_epochs=$EPOCHS" trainer.enable_progress_bar=false)

if [ -z "${SWEEP_DIR:-}" ]; then
  SWEEP_DIR=outputs/docs/lecture_grid
  rm -rf "$SWEEP_DIR"
  start=$(date +%s)
  $PY "${SWEEP_CMD[@]}" "hydra.sweep.dir=$SWEEP_DIR"
  $PY scripts/report.py "$SWEEP_DIR" >/dev/null
  WALL=$(($(date +%s) - start))
else
  $PY scripts/report.py "$SWEEP_DIR" >/dev/null
fi

# What the jobs themselves recorded: the card, the host's cores, the epochs, the fast path.
read -r DEVICE RAN_EPOCHS FAST < <($PY - "$SWEEP_DIR" <<'PY'
import json, sys
from pathlib import Path
r = json.loads(next(Path(sys.argv[1]).glob("*/results.json")).read_text())
fast = r.get("fast_path") or {}
graph = fast.get("cuda_graph")
path = f"stacks of {fast.get('stack')} steps, each a CUDA graph replay" if graph else "eager steps"
print(r["device"]["name"].replace(" ", "_"), r["epochs"], path.replace(" ", "_"))
PY
)
WALL_TEXT=${WALL:+", $WALL s from the command to its report ($(((WALL + 30) / 60)) min)"}
preface=$(mktemp)
cat >"$preface" <<DOC
# Results: pooling on CIFAR-10

Real runs on CIFAR-10 (the JPEG copy of all 60,000 images; 45k train / 5k val / 10k test): the
lecture's comparisons — max vs. average pooling vs. a strided convolution, under the flatten head
and three global heads (\`global\` = avg‖max, \`avg\`, \`max\`) — each trained for **$RAN_EPOCHS
epochs** with 3 seeds and poolbench's defaults (AdamW, cosine schedule, crop + flip augmentation,
label smoothing, batch 128; ${FAST//_/ }). Test accuracy is measured on the
checkpoint with the best validation accuracy, with the six-view test-time augmentation. The
confidence intervals are Welch's t-intervals over seeds for the difference of the two means.

Hardware: one ${DEVICE//_/ }, $JOBS_PER_GPU jobs at once on it$WALL_TEXT.
${NOTE:-}

Regenerate with (the sweep, its report, this page):

    bash scripts/results_doc.sh ../shared/data/cifar10-jpg     # EPOCHS=$EPOCHS JOBS_PER_GPU=$JOBS_PER_GPU

which runs \`python ${SWEEP_CMD[*]}\` and \`python scripts/report.py\`.
DOC
$PY scripts/report.py "$SWEEP_DIR" --doc docs/results.md --preface "$preface" >/dev/null
rm -f "$preface"
echo "wrote docs/results.md from $SWEEP_DIR"
