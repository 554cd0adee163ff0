#!/usr/bin/env bash
# Tagged back-translation (Sennrich et al. 2016; tags: Caswell et al. 2019): monolingual text in
# the target language is translated into the source language by a reverse-direction model, and
# the synthetic pairs, tagged, join the real ones.
#
#   MODEL=work/ml50/model DATA=work/ml50/data DIRECTION=bn_IN-en_XX MONO=news.en \
#   WORKDIR=work/bt bash recipes/back_translation.sh [--stage N] [--stop-stage N]
#
# MODEL translates TGT -> SRC (a multilingual model that knows both directions, or a reverse
# bilingual one); DATA is prepared data holding the real SRC-TGT pairs (its clean/ text and
# vocabulary are reused); MONO is a file of TGT-language text, one sentence a line (MONO_LINES=N
# takes the first N lines).
# Stages: 1 back-translate MONO (nmt translate-corpus, beam BEAM, resumable, per-line scores; MODEL
# is exported to CTranslate2 int8 first when it has no export), 2 filter (DROP_WORST share of the
# lowest scores, length ratio above MAX_RATIO), 3 prepare: the real pairs plus the synthetic ones
# tagged (at most SYNTHETIC_RATIO synthetic pairs per real pair, default all), 4 train DIRECTION
# (settings in TRAIN_ARGS, default the tiny preset for 2000 updates), 5 export, 6 nmt evaluate on
# FLORES-200 devtest (FLORES=DIR, LINES=501-1012). BASELINE=1 also trains the same model on the
# real pairs alone, and the report compares the two with paired significance.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)" RECIPE=back_translation.sh
: "${SHARED:=$REPO/../shared/data}" "${WORKDIR:=$REPO/work/bt}" "${NMT:=$REPO/.venv/bin/nmt}"
: "${MODEL:?set MODEL=BUNDLE (translates the target language into the source language)}"
: "${DATA:?set DATA=DIR (prepared data with the real pairs)}" "${DIRECTION:?set DIRECTION=src-tgt, e.g. bn_IN-en_XX}"
: "${MONO:?set MONO=FILE (target-language text)}"
: "${MONO_LINES:=0}" "${BEAM:=5}" "${DROP_WORST:=0.05}" "${MAX_RATIO:=2.5}" "${SYNTHETIC_RATIO:=}"
: "${TRAIN_ARGS:=--preset tiny --set training.max_time_minutes=0 --set training.max_updates=2000}"
: "${BASELINE:=0}" "${THREADS:=0}" "${LINES:=501-1012}" "${EVAL_ARGS:=}" "${FLORES:=$SHARED/flores200/devtest}"
source recipes/common.sh
parse_stages "$@"
[ -f "$MODEL/bundle.json" ] || { echo "$RECIPE: MODEL=$MODEL is not a model bundle" >&2; exit 1; }
[ -f "$DATA/manifest.json" ] || { echo "$RECIPE: DATA=$DATA is not prepared data" >&2; exit 1; }
[ -f "$MONO" ] || { echo "$RECIPE: MONO=$MONO does not exist" >&2; exit 1; }
SRC="${DIRECTION%-*}" TGT="${DIRECTION#*-}"
DATA="$(cd "$DATA" && pwd)" WORKDIR="$(cd "$WORKDIR" && pwd)"  # absolute: the manifests name files by path
if [ -f "$DATA/clean/train.$SRC-$TGT.$SRC" ]; then PAIR="$SRC-$TGT"
elif [ -f "$DATA/clean/train.$TGT-$SRC.$SRC" ]; then PAIR="$TGT-$SRC"
else echo "$RECIPE: no $SRC-$TGT training text in $DATA/clean" >&2; exit 1; fi

back_translate() {
  if ! ls -d "$MODEL"/ctranslate2* >/dev/null 2>&1; then
    "$NMT" export --model "$MODEL" --quantization int8
  fi
  mkdir -p "$WORKDIR/synthetic"
  if [ "$MONO_LINES" -gt 0 ]; then head -n "$MONO_LINES" "$MONO" > "$WORKDIR/synthetic/mono.$TGT"
  else cp "$MONO" "$WORKDIR/synthetic/mono.$TGT"; fi
  "$NMT" translate-corpus --model "$MODEL" --src "$TGT" --tgt "$SRC" --input "$WORKDIR/synthetic/mono.$TGT" \
    --output "$WORKDIR/synthetic/mono.$SRC" --scores --beam "$BEAM" --threads "$THREADS"
}

filter_outputs() {
  "$NMT" data filter-translations --src "$WORKDIR/synthetic/mono.$TGT" --hyp "$WORKDIR/synthetic/mono.$SRC" \
    --scores "$WORKDIR/synthetic/mono.$SRC.scores" --drop-worst "$DROP_WORST" --max-ratio "$MAX_RATIO" \
    --src-lang "$TGT" --tgt-lang "$SRC" --out "$WORKDIR/synthetic/kept"
}

prepare_data() {
  local kind split
  for kind in bt $([ "$BASELINE" = 1 ] && echo baseline); do
    {
      echo "pairs:"
      echo "  $PAIR:"
      echo "    train: [$DATA/clean/train.$PAIR]"
      for split in valid test; do
        [ -f "$DATA/clean/$split.$PAIR.$SRC" ] && echo "    $split: [$DATA/clean/$split.$PAIR]"
      done
      if [ "$kind" = bt ]; then
        [ -n "$SYNTHETIC_RATIO" ] && echo "synthetic_ratio: $SYNTHETIC_RATIO"
        echo "synthetic:"
        echo "  $DIRECTION: [{corpus: $WORKDIR/synthetic/kept, kind: back-translation}]"
      fi
    } > "$WORKDIR/$kind.yaml"
    "$NMT" prepare --manifest "$WORKDIR/$kind.yaml" --out "$WORKDIR/data-$kind" --pairs "$DIRECTION" \
      --spm-model "$DATA/spm/spm.model" --dict "$DATA/spm/dict.txt" --eval-set "$FLORES"
  done
}

systems() { echo bt; [ "$BASELINE" = 1 ] && echo baseline; return 0; }

train_models() {
  local kind
  for kind in $(systems); do
    # shellcheck disable=SC2086
    "$NMT" train --config "$REPO/recipes/configs/quickstart.yaml" --data "$WORKDIR/data-$kind" \
      --output "$WORKDIR/$kind" $TRAIN_ARGS
  done
}

export_models() {
  local kind
  for kind in $(systems); do
    "$NMT" export --model "$WORKDIR/$kind" --quantization int8 --force --shortlist "$WORKDIR/data-$kind"
  done
}

report() {
  local args=(--model "$WORKDIR/bt")
  [ "$BASELINE" = 1 ] && args=(--compare "baseline=$WORKDIR/baseline" "bt=$WORKDIR/bt")
  # shellcheck disable=SC2086
  "$NMT" evaluate "${args[@]}" --testset flores200 --flores-dir "$FLORES" --lines "$LINES" \
    --directions "$DIRECTION" --threads "$THREADS" -o "$WORKDIR/report" $EVAL_ARGS
  echo "report: $WORKDIR/report/report.md"
}

run_stage 1 back-translate back_translate
run_stage 2 filter filter_outputs
run_stage 3 prepare prepare_data
run_stage 4 train train_models
run_stage 5 export export_models
run_stage 6 report report
