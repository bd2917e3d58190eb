#!/usr/bin/env bash
# Regenerates docs/results.md from real sweeps on CIFAR-10 (the shared JPEG copy by default):
#   bash scripts/results_doc.sh [DATA_ROOT]          EPOCHS=3 by default (about 25 min on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/cifar10-jpg}
EPOCHS=${EPOCHS:-3}
PY=${PY:-python}
OUT=outputs/docs
COMMON=(data=folder "data.root=$DATA" "trainer.max_epochs=$EPOCHS" trainer.enable_progress_bar=false)
rm -rf "$OUT"

$PY train.py -m sweep=heads_x_pools "${COMMON[@]}" "hydra.sweep.dir=$OUT/heads_x_pools"
for job in "$OUT"/heads_x_pools/*/; do   # kNN accuracy of each net's embedding (best checkpoint)
  ckpt=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["best_checkpoint"])' "$job/results.json")
  $PY scripts/embed.py "ckpt_path=$ckpt" data=folder "data.root=$DATA"
done
$PY train.py -m sweep=seed_nets "${COMMON[@]}" "hydra.sweep.dir=$OUT/seed_nets"

cat > "$OUT/preface.md" <<DOC
# Results: pooling on CIFAR-10

Real runs on CIFAR-10 (the JPEG copy of all 60,000 images; 45k train / 5k val / 10k test), each
trained for **$EPOCHS epochs** with poolbench's defaults (AdamW, cosine schedule, crop + flip
augmentation, batch 128) on $(nproc) CPU cores: a budget chosen so that both sweeps fit in one
working session, so absolute accuracies are below what 20 epochs give (see README, Performance).
Test accuracy is measured on the checkpoint with the best validation accuracy. kNN accuracy:
10-nearest-neighbour (cosine) classification of test images by the head's embedding, with the
training images as the index (\`scripts/embed.py\`).

Regenerate with:

    bash scripts/results_doc.sh $DATA     # EPOCHS=$EPOCHS

DOC
$PY scripts/report.py "$OUT/heads_x_pools" "$OUT/seed_nets" --doc docs/results.md --preface "$OUT/preface.md"
