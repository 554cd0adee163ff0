#!/usr/bin/env bash
# Sequence-level knowledge distillation (Kim & Rush 2016): a teacher bundle translates the
# training sources of chosen directions, its output is filtered, and small students learn from it.
#
#   TEACHER=work/ml50/model TEACHER_DATA=work/ml50/data DIRECTIONS=de_DE-en_XX,en_XX-de_DE \
#   WORKDIR=work/distill bash recipes/distill.sh [--stage N] [--stop-stage N]
#
# Stages: 1 the real training pairs of DIRECTIONS from the teacher's prepared data (TEACHER_DATA/clean;
# MAX_LINES=N takes the first N pairs of each pair), 2 the teacher translates their sources (beam
# BEAM, nmt translate-corpus: resumable chunks, per-line scores; the teacher is exported to
# CTranslate2 int8 first when it has no export), 3 filter (DROP_WORST share of the lowest teacher
# scores, length ratio above MAX_RATIO), 4 prepare the students' data (the teacher's vocabulary;
# the distilled pairs replace the real ones, whose validation split stays), 5 train the students
# (STUDENTS=multilingual: one student for all DIRECTIONS; bilingual: one per direction; settings in
# STUDENT_ARGS, default the tiny preset), 6 export them (CTranslate2 int8 + vocabulary shortlists),
# 7 one report: nmt evaluate --compare teacher vs students on FLORES-200 devtest (FLORES=DIR,
# LINES=501-1012 by default): BLEU/chrF/COMET per direction with paired significance, size and speed.
# BASELINE=1 also trains the same student(s) on the original pairs with the same settings
# (student-original), so the report shows what distillation changed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)" RECIPE=distill.sh
: "${SHARED:=$REPO/../shared/data}" "${WORKDIR:=$REPO/work/distill}" "${NMT:=$REPO/.venv/bin/nmt}"
: "${TEACHER:?set TEACHER=BUNDLE (the teacher model)}" "${TEACHER_DATA:?set TEACHER_DATA=DIR (its prepared data)}"
: "${DIRECTIONS:?set DIRECTIONS=src-tgt,... (e.g. de_DE-en_XX,en_XX-de_DE)}"
: "${MAX_LINES:=0}" "${BEAM:=5}" "${DROP_WORST:=0.05}" "${MAX_RATIO:=2.5}" "${STUDENTS:=multilingual}"
: "${STUDENT_ARGS:=--preset tiny --set training.max_time_minutes=0 --set training.max_updates=2000}" "${BASELINE:=0}" "${THREADS:=0}" "${LINES:=501-1012}" "${EVAL_ARGS:=}"
: "${FLORES:=$SHARED/flores200/devtest}"
source recipes/common.sh
parse_stages "$@"
[ -f "$TEACHER/bundle.json" ] || { echo "$RECIPE: TEACHER=$TEACHER is not a model bundle" >&2; exit 1; }
[ -f "$TEACHER_DATA/manifest.json" ] || { echo "$RECIPE: TEACHER_DATA=$TEACHER_DATA is not prepared data" >&2; exit 1; }
case "$STUDENTS" in multilingual|bilingual) ;; *) echo "$RECIPE: STUDENTS must be multilingual or bilingual" >&2; exit 2 ;; esac
IFS=, read -r -a DIRS <<< "$DIRECTIONS"

pair_of() {  # pair_of SRC-TGT: the name of the pair's files in TEACHER_DATA/clean
  local src="${1%-*}" tgt="${1#*-}"
  if [ -f "$TEACHER_DATA/clean/train.$src-$tgt.$src" ]; then echo "$src-$tgt"
  elif [ -f "$TEACHER_DATA/clean/train.$tgt-$src.$src" ]; then echo "$tgt-$src"
  else echo "$RECIPE: no training text for $1 in $TEACHER_DATA/clean" >&2; return 1
  fi
}

real_pairs() {
  rm -rf "$WORKDIR/real" && mkdir -p "$WORKDIR/real"
  local d pair lang split file
  for d in "${DIRS[@]}"; do
    pair=$(pair_of "$d")
    for lang in ${pair//-/ }; do
      file="$TEACHER_DATA/clean/train.$pair.$lang"
      [ -f "$WORKDIR/real/train.$pair.$lang" ] && continue
      if [ "$MAX_LINES" -gt 0 ]; then head -n "$MAX_LINES" "$file" > "$WORKDIR/real/train.$pair.$lang"
      else cp "$file" "$WORKDIR/real/train.$pair.$lang"; fi
      for split in valid test; do
        [ -f "$TEACHER_DATA/clean/$split.$pair.$lang" ] && cp "$TEACHER_DATA/clean/$split.$pair.$lang" "$WORKDIR/real/"
      done
    done
  done
  wc -l "$WORKDIR"/real/train.*
}

teacher_translates() {
  if ! ls -d "$TEACHER"/ctranslate2* >/dev/null 2>&1; then
    "$NMT" export --model "$TEACHER" --quantization int8
  fi
  mkdir -p "$WORKDIR/distill"
  local d src tgt pair
  for d in "${DIRS[@]}"; do
    src="${d%-*}" tgt="${d#*-}" pair=$(pair_of "$d")
    "$NMT" translate-corpus --model "$TEACHER" --src "$src" --tgt "$tgt" --input "$WORKDIR/real/train.$pair.$src" \
      --output "$WORKDIR/distill/$d.$tgt" --scores --beam "$BEAM" --threads "$THREADS"
  done
}

filter_outputs() {
  local d src tgt pair
  for d in "${DIRS[@]}"; do
    src="${d%-*}" tgt="${d#*-}" pair=$(pair_of "$d")
    "$NMT" data filter-translations --src "$WORKDIR/real/train.$pair.$src" --hyp "$WORKDIR/distill/$d.$tgt" \
      --scores "$WORKDIR/distill/$d.$tgt.scores" --drop-worst "$DROP_WORST" --max-ratio "$MAX_RATIO" \
      --src-lang "$src" --tgt-lang "$tgt" --out "$WORKDIR/distill/$d.kept"
  done
}

write_manifest() {  # write_manifest FILE WITH_SYNTHETIC(0|1)
  local out="$1" synthetic="$2" d pair split seen=" "
  {
    echo "pairs:"
    for d in "${DIRS[@]}"; do
      pair=$(pair_of "$d")
      case "$seen" in *" $pair "*) continue ;; esac
      seen="$seen$pair "
      echo "  $pair:"
      echo "    train: [real/train.$pair]"
      for split in valid test; do
        [ -f "$WORKDIR/real/$split.$pair.${pair%-*}" ] && echo "    $split: [real/$split.$pair]"
      done
    done
    if [ "$synthetic" = 1 ]; then
      echo "synthetic:"
      for d in "${DIRS[@]}"; do
        echo "  $d: [{corpus: distill/$d.kept, kind: forward-translation, replace_real: true}]"
      done
    fi
  } > "$out"
}

prepare_students() {
  local data kind
  for kind in student $([ "$BASELINE" = 1 ] && echo original); do
    write_manifest "$WORKDIR/$kind.yaml" "$([ "$kind" = student ] && echo 1 || echo 0)"
    "$NMT" prepare --manifest "$WORKDIR/$kind.yaml" --out "$WORKDIR/data-$kind" --pairs "$DIRECTIONS" \
      --spm-model "$TEACHER/spm.model" --dict "$TEACHER/dict.txt" --eval-set "$FLORES"
  done
}

students() {  # students: KIND:RUN_DIR[:DIRECTION], one per line
  local kind run d
  for kind in student $([ "$BASELINE" = 1 ] && echo original); do
    run="$WORKDIR/student$([ "$kind" = original ] && echo -original)"
    if [ "$STUDENTS" = multilingual ]; then echo "$kind:$run"
    else for d in "${DIRS[@]}"; do echo "$kind:$run-$d:$d"; done; fi
  done
}

train_students() {
  local item kind run d
  for item in $(students); do
    IFS=: read -r kind run d <<< "$item"
    # shellcheck disable=SC2086
    "$NMT" train --config "$REPO/recipes/configs/quickstart.yaml" --data "$WORKDIR/data-$kind" --output "$run" \
      ${d:+--set "directions=[$d]"} $STUDENT_ARGS
  done
}

export_students() {
  local item kind run d
  for item in $(students); do
    IFS=: read -r kind run d <<< "$item"
    "$NMT" export --model "$run" --quantization int8 --force --shortlist "$WORKDIR/data-$kind"
  done
}

compare() {  # compare OUT DIRECTIONS SYSTEM...
  local out="$1" directions="$2"
  shift 2
  # shellcheck disable=SC2086
  "$NMT" evaluate --compare "$@" --testset flores200 --flores-dir "$FLORES" --lines "$LINES" \
    --directions "$directions" --threads "$THREADS" -o "$out" $EVAL_ARGS
  echo "report: $out/report.md"
}

report() {  # one report (multilingual students), or one per direction (bilingual students)
  local item kind run d want systems
  for want in $([ "$STUDENTS" = multilingual ] && echo all || echo "${DIRS[@]}"); do
    systems=("teacher=$TEACHER")
    for item in $(students); do
      IFS=: read -r kind run d <<< "$item"
      [ "$want" = all ] || [ "$d" = "$want" ] && systems+=("$(basename "$run")=$run")
    done
    if [ "$want" = all ]; then compare "$WORKDIR/report" "$DIRECTIONS" "${systems[@]}"
    else compare "$WORKDIR/report/$want" "$want" "${systems[@]}"; fi
  done
}

run_stage 1 real-pairs real_pairs
run_stage 2 teacher-translates teacher_translates
run_stage 3 filter filter_outputs
run_stage 4 prepare prepare_students
run_stage 5 train train_students
run_stage 6 export export_students
run_stage 7 report report
