#!/usr/bin/env bash
# Many-to-many from scratch on ml50-mini (20 languages <-> English), ML50 style.
#
#   SHARED=../shared/data WORKDIR=work/ml50 bash recipes/ml50_many_to_many.sh [--stage N] [--stop-stage N]
#
# Stages: 1 prepare, 2 train (resumable: rerun to continue), 3 average + export,
# 4 evaluate on FLORES-200 devtest (lines 501-1012; 1-500 are kept for development).
# Extra training settings: TRAIN_ARGS="--set model.preset=base --set training.precision=fp16".
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
: "${SHARED:=$REPO/../shared/data}"
: "${WORKDIR:=$REPO/work/ml50}"
: "${NMT:=$REPO/.venv/bin/nmt}"
: "${TRAIN_ARGS:=}"
stage=1; stop_stage=99
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    *) echo "ml50_many_to_many.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -d "$SHARED/ml50-mini/raw" ] || { echo "ml50_many_to_many.sh: no ml50-mini data under $SHARED (set SHARED)" >&2; exit 1; }
[ -x "$NMT" ] || { echo "ml50_many_to_many.sh: $NMT not found: run recipes/install.sh" >&2; exit 1; }
mkdir -p "$WORKDIR"

want() { [ "$1" -ge "$stage" ] && [ "$1" -le "$stop_stage" ]; }

if want 1; then
  echo "== 1 prepare"
  "$NMT" prepare --raw "$SHARED/ml50-mini/raw" --eval-set "$SHARED/flores200/devtest" \
    --out "$WORKDIR/data" --vocab-size 32000
fi
if want 2; then
  echo "== 2 train (rerun to resume)"
  # shellcheck disable=SC2086
  "$NMT" train --config "$REPO/recipes/configs/ml50_many_to_many.yaml" --data "$WORKDIR/data" \
    --output "$WORKDIR/model" $TRAIN_ARGS
fi
if want 3; then
  echo "== 3 average + export"
  "$NMT" average --model "$WORKDIR/model" --last 5 --make-default || echo "(fewer than 5 checkpoints: not averaged)"
  "$NMT" export --model "$WORKDIR/model" --quantization int8 --force
fi
if want 4; then
  echo "== 4 evaluate (FLORES-200 devtest lines 501-1012)"
  "$NMT" evaluate --model "$WORKDIR/model" --directions all --testset flores200 \
    --flores-dir "$SHARED/flores200/devtest" --lines 501-1012 --out-dir "$WORKDIR/eval"
fi
