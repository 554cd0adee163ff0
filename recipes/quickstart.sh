#!/usr/bin/env bash
# The whole loop on the embedded sample, on CPU, in about 12 minutes:
# prepare -> train (tiny preset) -> export (CTranslate2 int8) -> evaluate -> translate -> package.
#
#   bash recipes/quickstart.sh [--stage N] [--stop-stage N]
#
# Stages write a marker when they finish, so a rerun resumes where it stopped
# (delete $WORKDIR or pass --stage to redo). WORKDIR defaults to work/quickstart;
# TRAIN_MINUTES (default 6) is the training budget.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)" RECIPE=quickstart.sh
: "${WORKDIR:=$REPO/work/quickstart}" "${NMT:=$REPO/.venv/bin/nmt}"
SAMPLE="$REPO/data_prep/sample"
source recipes/common.sh
parse_stages "$@"

# 1. Clean, deduplicate, drop FLORES overlap, hold out validation, shared sentencepiece, binarize.
run_stage 1 prepare "$NMT" prepare --raw "$SAMPLE/ml50/raw" --eval-set "$SAMPLE/flores200/devtest" \
  --out "$WORKDIR/data" --vocab-size 4000

# 2. One shared model for all 8 directions, tiny preset, 6 minutes of CPU (see the config).
run_stage 2 train "$NMT" train --config "$REPO/recipes/configs/quickstart.yaml" \
  --data "$WORKDIR/data" --output "$WORKDIR/model" --set training.max_time_minutes="${TRAIN_MINUTES:-6}"

# 3. Convert to CTranslate2 int8 (written into the bundle; translate then uses it).
run_stage 3 export "$NMT" export --model "$WORKDIR/model" --quantization int8 --force

# 4. Evaluate every direction: the held-out in-domain test split (200 lines) and the first
#    200 lines of FLORES-200 devtest (a much harder, out-of-domain test). COMET needs a model
#    that cannot be downloaded here: its column says n/a and the report says why.
evaluate() {
  "$NMT" evaluate --model "$WORKDIR/model" --testset ml50 --ml50-dir "$SAMPLE/ml50/raw" \
    --out-dir "$WORKDIR/eval-indomain"
  "$NMT" evaluate --model "$WORKDIR/model" --testset flores200 --flores-dir "$SAMPLE/flores200/devtest" \
    --lines 1-200 --out-dir "$WORKDIR/eval-flores"
}
run_stage 4 evaluate evaluate

# 5. Translate: a few sentences in every direction the model knows.
demo() {
  printf 'I would like a cup of tea.\nWhere is the station?\nTom is reading a book.\n' > "$WORKDIR/demo.en_XX"
  for tgt in de_DE ru_RU ja_XX ko_KR; do
    "$NMT" translate --model "$WORKDIR/model" --src en_XX --tgt "$tgt" -i "$WORKDIR/demo.en_XX" \
      -o "$WORKDIR/demo.$tgt"
    paste "$WORKDIR/demo.en_XX" "$WORKDIR/demo.$tgt" | sed "s/^/en_XX -> $tgt | /"
  done
}
run_stage 5 translate demo

# 6. Package a WMT-style submission for the WMT24 en-de and en-ja samples (txt + document ids).
run_stage 6 package "$NMT" package --model "$WORKDIR/model" --team quickstart --system tiny-m2m \
  --constrained --output "$WORKDIR/submission.tar.gz" --force \
  "$SAMPLE/wmt/wmt24-general/sources/en-de.txt" "$SAMPLE/wmt/wmt24-general/sources/en-ja.txt"

echo
echo "Done. Model bundle: $WORKDIR/model (training log: $WORKDIR/model/train.log)."
echo "Reports: $WORKDIR/eval-indomain/report.md, $WORKDIR/eval-flores/report.md; submission: $WORKDIR/submission.tar.gz"
echo "The tiny preset after a few CPU minutes is a smoke test, not a translation system:"
echo "real quality needs the small/base presets, more data and hours of CPU or a GPU."
