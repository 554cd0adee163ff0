#!/usr/bin/env bash
# Fine-tune the official mBART-50 on many directions at once (ML50 recipe), on a GPU.
#
#   WORKDIR=work/mbart50 bash recipes/mbart50_finetune.sh [--stage N] [--stop-stage N]
#
# 0 get the bitext (nmt data get, as in ml50_many_to_many.sh: DATA_LANGS, GET_ARGS; RAW=DIR or
# the ../shared copy skip it) -> 1 download mbart50 (~2.3 GB tarball; resumable, checksummed) -> 2 prepare with its
# sentencepiece model, dictionary and 52-language list -> 3 fine-tune (ML50 defaults:
# lr 3e-5, warmup 2500, label smoothing 0.2, dropout 0.3, temperature 1.5, 40k updates)
# -> 4 export (CTranslate2 int8_float16) -> 5 evaluate on FLORES-200 devtest 501-1012.
# MODE=many-to-many|one-to-many|many-to-one (default many-to-many). Stage 3 wants a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)" RECIPE=mbart50_finetune.sh
: "${SHARED:=$REPO/../shared/data}" "${WORKDIR:=$REPO/work/mbart50}" "${NMT:=$REPO/.venv/bin/nmt}"
: "${MODE:=many-to-many}" "${FT_ARGS:=--set training.precision=fp16}"
source recipes/common.sh
parse_stages "$@"
choose_raw
PRE="$WORKDIR/mbart50.pretrained"

run_stage 0 get get_data
run_stage 1 download "$NMT" download mbart50 --dest "$PRE" --force
run_stage 2 prepare "$NMT" prepare --raw "$RAW" "${EVAL_SET[@]}" \
  --out "$WORKDIR/data" --spm-model "$PRE/sentence.bpe.model" --dict "$PRE/dict.txt" \
  --lang-list "$PRE/ML50_langs.txt" --lang-tok-style mbart
# shellcheck disable=SC2086
run_stage 3 finetune "$NMT" finetune --pretrained "$PRE" --data "$WORKDIR/data" --output "$WORKDIR/model" \
  --mode "$MODE" $FT_ARGS
run_stage 4 export "$NMT" export --model "$WORKDIR/model" --quantization int8_float16 --force
run_stage 5 evaluate need_flores_then "$NMT" evaluate --model "$WORKDIR/model" --directions trained --testset flores200 \
  --flores-dir "$FLORES" --lines 501-1012 --out-dir "$WORKDIR/eval" --device cuda
