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
REPO="$(pwd)"
: "${SHARED:=$REPO/../shared/data}"
: "${WORKDIR:=$REPO/work/mbart_cpu}"
: "${NMT:=$REPO/.venv/bin/nmt}"
: "${PRETRAIN_MINUTES:=25}"
: "${FT_UPDATES:=3000}"
: "${LANGS:=de_DE ja_XX ko_KR ru_RU}"
stage=1; stop_stage=99
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    *) echo "mbart_cpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -d "$SHARED/ml50-mini/raw" ] || { echo "mbart_cpu.sh: no ml50-mini data under $SHARED (set SHARED)" >&2; exit 1; }
[ -x "$NMT" ] || { echo "mbart_cpu.sh: $NMT not found: run recipes/install.sh" >&2; exit 1; }
want() { [ "$1" -ge "$stage" ] && [ "$1" -le "$stop_stage" ]; }
pairs=""
for l in $LANGS; do pairs="$pairs${pairs:+,}$l-en_XX,en_XX-$l"; done

if want 1; then
  "$NMT" prepare --raw "$SHARED/ml50-mini/raw" --eval-set "$SHARED/flores200/devtest" --pairs "$pairs" \
    --out "$WORKDIR/data" --vocab-size 16000
fi
if want 2; then
  "$NMT" pretrain --data "$WORKDIR/data" --output "$WORKDIR/mbart" --preset tiny \
    --set training.max_time_minutes="$PRETRAIN_MINUTES" --set training.max_updates=1000000 \
    --set training.max_tokens=4096 --set training.lr=0.002 --set training.warmup_updates=500
fi
if want 3; then
  "$NMT" prepare --raw "$SHARED/ml50-mini/raw" --eval-set "$SHARED/flores200/devtest" --pairs "$pairs" \
    --out "$WORKDIR/data-mbart" --spm-model "$WORKDIR/mbart/sentence.bpe.model" --dict "$WORKDIR/mbart/dict.txt" \
    --lang-list "$WORKDIR/mbart/ML50_langs.txt" --lang-tok-style mbart
fi
if want 4; then
  "$NMT" finetune --pretrained "$WORKDIR/mbart" --data "$WORKDIR/data-mbart" --output "$WORKDIR/finetuned" \
    --set training.max_updates="$FT_UPDATES" --set training.lr=0.002 --set training.warmup_updates=500 \
    --set training.max_tokens=4096 --set training.update_freq=1 --set model.dropout=0.1 \
    --set training.label_smoothing=0.1 --set training.sampling_temperature=5
fi
if want 5; then
  "$NMT" evaluate --model "$WORKDIR/finetuned" --directions all --testset flores200 \
    --flores-dir "$SHARED/flores200/devtest" --out-dir "$WORKDIR/eval"
fi
