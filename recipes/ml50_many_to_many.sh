#!/usr/bin/env bash
# Many-to-many from scratch, ML50 style (by default the 20 languages of ml50-mini <-> English).
#
#   WORKDIR=work/ml50 bash recipes/ml50_many_to_many.sh [--stage N] [--stop-stage N]
#
# Stages: 0 get the bitext (nmt data get: corpora from recipes/data/ml50.yaml through mtdata,
# resumable; DATA_LANGS=de_DE,ja_XX,... or all; GET_ARGS="--max-pairs 1000000" to cap each
# corpus), 1 prepare, 2 train (resumable: rerun to continue), 3 average + export,
# 4 evaluate on FLORES-200 devtest (lines 501-1012; 1-500 are kept for development).
# Offline: RAW=DIR (an ML50 raw directory) or the ../shared copy (SHARED=../shared/data, used
# when present unless FETCH=1) skip the download. FLORES=DIR: FLORES-200 devtest.
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
choose_raw

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

run_stage 0 get get_data
run_stage 1 prepare "$NMT" prepare --raw "$RAW" "${EVAL_SET[@]}" --out "$WORKDIR/data" --vocab-size 32000
# shellcheck disable=SC2086
run_stage 2 train "$NMT" train --config "$REPO/recipes/configs/ml50_many_to_many.yaml" --data "$WORKDIR/data" \
  --output "$WORKDIR/model" $TRAIN_ARGS
run_stage 3 average+export average_and_export
run_stage 4 evaluate need_flores_then "$NMT" evaluate --model "$WORKDIR/model" --directions trained --testset flores200 \
  --flores-dir "$FLORES" --lines 501-1012 --out-dir "$WORKDIR/eval"
