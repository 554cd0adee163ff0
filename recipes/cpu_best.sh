#!/usr/bin/env bash
# The best model nmt trains on CPUs in a given budget: prepare, train, export, evaluate.
#
#   BUDGET_MINUTES=120 PAIRS=de_DE,ko_KR WORKDIR=work/cpu bash recipes/cpu_best.sh [--stage N] [--stop-stage N]
#
# BUDGET_MINUTES: CPU minutes of training (all threads counted: on 2 cores, 120 CPU minutes take
# about an hour). PAIRS: languages paired with English (both directions of each). THREADS: CPU
# threads (default: all cores). RAW: an ML50 raw directory (default: ../shared/data/ml50-mini/raw).
#
# Nothing here is tuned by hand: nmt train's defaults choose the schedule (warm-up, a held peak and a
# decay fitted to the budget) and the precision (bfloat16 autocast on CPUs with native bf16); the
# preset (tiny) and the vocabulary size (nmt prepare's) are the defaults, the best measured so far
# at 30 CPU-minutes (benchmarks/RESULTS.md, "CPU training defaults" and "Quality per CPU budget").
# Stages: 1 prepare (FLORES-200 devtest removed from training), 2 train, 3 export (CTranslate2 int8),
# 4 evaluate (FLORES-200 devtest and, when RAW has test.* files, the in-domain test split).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)" RECIPE=cpu_best.sh
: "${SHARED:=$REPO/../shared/data}" "${WORKDIR:=$REPO/work/cpu_best}" "${NMT:=$REPO/.venv/bin/nmt}"
: "${BUDGET_MINUTES:=60}" "${PAIRS:=de_DE,ko_KR}" "${THREADS:=0}" "${TRAIN_ARGS:=}"
source recipes/common.sh
parse_stages "$@"
: "${RAW:=$SHARED/ml50-mini/raw}"
: "${FLORES:=$SHARED/flores200/devtest}"
[ -d "$RAW" ] || { echo "$RECIPE: RAW=$RAW is not a directory" >&2; exit 1; }
case "$BUDGET_MINUTES" in ''|*[!0-9.]*) echo "$RECIPE: BUDGET_MINUTES must be a number of minutes" >&2; exit 2 ;; esac

directions=""
for lang in ${PAIRS//,/ }; do
  directions="$directions,$lang-en_XX,en_XX-$lang"
done
directions="${directions#,}"
eval_set=()
[ -d "$FLORES" ] && eval_set=(--eval-set "$FLORES")

run_stage 1 prepare "$NMT" prepare --raw "$RAW" --pairs "$directions" "${eval_set[@]}" --out "$WORKDIR/data"
# shellcheck disable=SC2086
run_stage 2 train "$NMT" train --data "$WORKDIR/data" --output "$WORKDIR/model" \
  --set training.max_cpu_minutes="$BUDGET_MINUTES" --set training.threads="$THREADS" $TRAIN_ARGS
run_stage 3 export "$NMT" export --model "$WORKDIR/model" --quantization int8 --force

evaluate() {
  if [ -d "$FLORES" ]; then
    "$NMT" evaluate -m "$WORKDIR/model" -d trained --flores-dir "$FLORES" --no-comet -o "$WORKDIR/report-flores"
  fi
  if ls "$RAW"/test.* >/dev/null 2>&1; then
    "$NMT" evaluate -m "$WORKDIR/model" -d trained --testset ml50 --ml50-dir "$RAW" --no-comet \
      -o "$WORKDIR/report-indomain"
  fi
}
run_stage 4 evaluate evaluate
echo "$RECIPE: model in $WORKDIR/model, reports in $WORKDIR/report-*"
