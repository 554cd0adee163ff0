#!/usr/bin/env bash
# The mBART path at CPU scale: pretrain a small mBART by denoising on ml50-mini text,
# then fine-tune it many-to-many. (benchmarks/bench_mbart.py runs this and compares it
# with training the same architecture from scratch.)
#
#   SHARED=../shared/data WORKDIR=work/mbart_cpu bash recipes/mbart_cpu.sh [--stage N] [--stop-stage N]
#
# Stages: 1 prepare (de/ja/ko/ru <-> en), 2 pretrain (PRETRAIN_MINUTES, default 25),
# 3 prepare with the pretrained vocabulary, 4 fine-tune (FT_UPDATES, default 3000), 5 evaluate.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)" RECIPE=mbart_cpu.sh
: "${SHARED:=$REPO/../shared/data}" "${WORKDIR:=$REPO/work/mbart_cpu}" "${NMT:=$REPO/.venv/bin/nmt}"
: "${PRETRAIN_MINUTES:=25}" "${FT_UPDATES:=3000}" "${LANGS:=de_DE ja_XX ko_KR ru_RU}"
source recipes/common.sh
parse_stages "$@"
need_shared
pairs=""
for l in $LANGS; do pairs="$pairs${pairs:+,}$l-en_XX,en_XX-$l"; done
TRAIN_SETS=(--set training.max_tokens=4096 --set training.lr=0.002 --set training.warmup_updates=500)

run_stage 1 prepare "$NMT" prepare --raw "$SHARED/ml50-mini/raw" --eval-set "$SHARED/flores200/devtest" \
  --pairs "$pairs" --out "$WORKDIR/data" --vocab-size 16000
run_stage 2 pretrain "$NMT" pretrain --data "$WORKDIR/data" --output "$WORKDIR/mbart" --preset tiny \
  --set training.max_time_minutes="$PRETRAIN_MINUTES" --set training.max_updates=1000000 "${TRAIN_SETS[@]}"
run_stage 3 prepare-mbart "$NMT" prepare --raw "$SHARED/ml50-mini/raw" --eval-set "$SHARED/flores200/devtest" \
  --pairs "$pairs" --out "$WORKDIR/data-mbart" --spm-model "$WORKDIR/mbart/sentence.bpe.model" \
  --dict "$WORKDIR/mbart/dict.txt" --lang-list "$WORKDIR/mbart/ML50_langs.txt" --lang-tok-style mbart
run_stage 4 finetune "$NMT" finetune --pretrained "$WORKDIR/mbart" --data "$WORKDIR/data-mbart" \
  --output "$WORKDIR/finetuned" --set training.max_updates="$FT_UPDATES" "${TRAIN_SETS[@]}" \
  --set training.update_freq=1 --set model.dropout=0.1 --set training.label_smoothing=0.1 \
  --set training.sampling_temperature=5
run_stage 5 evaluate "$NMT" evaluate --model "$WORKDIR/finetuned" --directions trained --testset flores200 \
  --flores-dir "$SHARED/flores200/devtest" --out-dir "$WORKDIR/eval"
