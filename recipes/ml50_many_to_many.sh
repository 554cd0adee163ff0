#!/usr/bin/env bash
# Many-to-many from scratch on ml50-mini (20 languages <-> English), ML50 style.
#
#   SHARED=../shared/data WORKDIR=work/ml50 bash recipes/ml50_many_to_many.sh [--stage N] [--stop-stage N]
#
# Stages: 1 prepare, 2 train (resumable: rerun to continue), 3 average + export,
# 4 evaluate on FLORES-200 devtest (lines 501-1012; 1-500 are kept for development).
# Extra training settings: TRAIN_ARGS="--set model.preset=base --set training.precision=fp16".
# Extra export settings: EXPORT_ARGS="--shortlist work/ml50/data" (per-language vocabulary
# shortlists: faster CPU decoding, see README "Translate").
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)" RECIPE=ml50_many_to_many.sh
: "${SHARED:=$REPO/../shared/data}" "${WORKDIR:=$REPO/work/ml50}" "${NMT:=$REPO/.venv/bin/nmt}" "${TRAIN_ARGS:=}"
: "${EXPORT_ARGS:=}"
source recipes/common.sh
parse_stages "$@"
need_shared

average_and_export() {
  local n
  n=$(find "$WORKDIR/model/checkpoints" -name 'checkpoint_[0-9]*.pt' | wc -l)
  if [ "$n" -ge 5 ]; then
    "$NMT" average --model "$WORKDIR/model" --last 5 --make-default
  else
    echo "(only $n numbered checkpoints: not averaged)"
  fi
  # shellcheck disable=SC2086
  "$NMT" export --model "$WORKDIR/model" --quantization int8 --force $EXPORT_ARGS
}

run_stage 1 prepare "$NMT" prepare --raw "$SHARED/ml50-mini/raw" --eval-set "$SHARED/flores200/devtest" \
  --out "$WORKDIR/data" --vocab-size 32000
# shellcheck disable=SC2086
run_stage 2 train "$NMT" train --config "$REPO/recipes/configs/ml50_many_to_many.yaml" --data "$WORKDIR/data" \
  --output "$WORKDIR/model" $TRAIN_ARGS
run_stage 3 average+export average_and_export
run_stage 4 evaluate "$NMT" evaluate --model "$WORKDIR/model" --directions trained --testset flores200 \
  --flores-dir "$SHARED/flores200/devtest" --lines 501-1012 --out-dir "$WORKDIR/eval"
