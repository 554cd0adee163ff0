#!/usr/bin/env bash
# Fine-tune the official mBART-50 on many directions at once (ML50 recipe), on a GPU.
#
#   SHARED=../shared/data WORKDIR=work/mbart50 bash recipes/mbart50_finetune.sh [--stage N] [--stop-stage N]
#
# 1 download mbart50 (~2.3 GB tarball; resumable, checksummed) -> 2 prepare with its
# sentencepiece model, dictionary and 52-language list -> 3 fine-tune (ML50 defaults:
# lr 3e-5, warmup 2500, label smoothing 0.2, dropout 0.3, temperature 1.5, 40k updates)
# -> 4 export (CTranslate2 int8_float16) -> 5 evaluate on FLORES-200 devtest 501-1012.
# MODE=many-to-many|one-to-many|many-to-one (default many-to-many). Needs a GPU for stage 3.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
: "${SHARED:=$REPO/../shared/data}"
: "${WORKDIR:=$REPO/work/mbart50}"
: "${NMT:=$REPO/.venv/bin/nmt}"
: "${MODE:=many-to-many}"
: "${FT_ARGS:=--set training.precision=fp16}"
stage=1; stop_stage=99
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    *) echo "mbart50_finetune.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$NMT" ] || { echo "mbart50_finetune.sh: $NMT not found: run recipes/install.sh" >&2; exit 1; }
want() { [ "$1" -ge "$stage" ] && [ "$1" -le "$stop_stage" ]; }
PRE="$WORKDIR/mbart50.pretrained"

if want 1; then
  echo "== 1 download"
  [ -f "$PRE/bundle.json" ] || "$NMT" download mbart50 --dest "$PRE"
fi
if want 2; then
  echo "== 2 prepare with the mBART-50 vocabulary"
  "$NMT" prepare --raw "$SHARED/ml50-mini/raw" --eval-set "$SHARED/flores200/devtest" --out "$WORKDIR/data" \
    --spm-model "$PRE/sentence.bpe.model" --dict "$PRE/dict.txt" --lang-list "$PRE/ML50_langs.txt" \
    --lang-tok-style mbart
fi
if want 3; then
  echo "== 3 fine-tune ($MODE)"
  # shellcheck disable=SC2086
  "$NMT" finetune --pretrained "$PRE" --data "$WORKDIR/data" --output "$WORKDIR/model" --mode "$MODE" $FT_ARGS
fi
if want 4; then
  echo "== 4 export"
  "$NMT" export --model "$WORKDIR/model" --quantization int8_float16 --force
fi
if want 5; then
  echo "== 5 evaluate"
  "$NMT" evaluate --model "$WORKDIR/model" --directions all --testset flores200 \
    --flores-dir "$SHARED/flores200/devtest" --lines 501-1012 --out-dir "$WORKDIR/eval" --device cuda
fi
