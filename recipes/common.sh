# Sourced by the recipes. Before sourcing, set RECIPE (a name for messages), REPO,
# WORKDIR and NMT; then call `parse_stages "$@"` and run each step with
#   run_stage N NAME command args...
# A finished stage leaves $WORKDIR/.done.N, so a rerun skips it (and resumes an
# interrupted one); --stage N redoes N and every later stage, --stop-stage M stops after M.
# Stage 0 (where a recipe has one) gets the data; --stage 1 starts after it.

parse_stages() {
  stage=0
  stop_stage=99
  local explicit=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --stage) stage="$2"; explicit=1; shift 2 ;;
      --stop-stage) stop_stage="$2"; shift 2 ;;
      *) echo "$RECIPE: unknown option $1 (use --stage N / --stop-stage N)" >&2; exit 2 ;;
    esac
  done
  case "$stage$stop_stage" in *[!0-9]*) echo "$RECIPE: --stage and --stop-stage take numbers" >&2; exit 2 ;; esac
  [ -x "$NMT" ] || { echo "$RECIPE: $NMT not found: run 'bash recipes/install.sh' first" >&2; exit 1; }
  mkdir -p "$WORKDIR"
  if [ "$explicit" = 1 ]; then  # redo from $stage on: what came after it is out of date
    local marker
    for marker in "$WORKDIR"/.done.*; do
      [ -e "$marker" ] && [ "${marker##*.}" -ge "$stage" ] && rm -f "$marker"
    done
  fi
  export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
  return 0
}

run_stage() {  # run_stage N NAME command args...
  local n="$1" name="$2"
  shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 0; fi
  if [ -f "$WORKDIR/.done.$n" ]; then
    echo "== stage $n ($name): done before, skipped"
    return 0
  fi
  echo "== stage $n ($name)"
  local t0=$SECONDS
  "$@"
  touch "$WORKDIR/.done.$n"
  echo "== stage $n ($name) finished in $((SECONDS - t0)) s"
}

need_shared() {  # need_shared: the ml50-mini data must be there
  [ -d "$SHARED/ml50-mini/raw" ] || { echo "$RECIPE: no ml50-mini data under $SHARED (set SHARED=...)" >&2; exit 1; }
}

# The ML50 languages of ml50-mini (and of FLORES-200 devtest under ../shared): the default
# for downloads; DATA_LANGS=all fetches every language of recipes/data/ml50.yaml.
ML50_MINI_LANGS=ar_AR,cs_CZ,de_DE,es_XX,fa_IR,fi_FI,fr_XX,he_IL,hi_IN,it_IT,ja_XX,ko_KR,pt_XX,ru_RU,tr_TR,uk_UA,vi_VN,zh_CN,bn_IN,et_EE

choose_raw() {  # sets RAW (the ML50 raw bitext) and FETCH (1: stage 0 downloads it)
  if [ -n "${RAW:-}" ]; then
    [ -d "$RAW" ] || { echo "$RECIPE: RAW=$RAW is not a directory" >&2; exit 1; }
    FETCH=0
  elif [ -d "$SHARED/ml50-mini/raw" ] && [ "${FETCH:-0}" != 1 ]; then
    RAW="$SHARED/ml50-mini/raw" FETCH=0  # the offline copy
  else
    RAW="$WORKDIR/raw" FETCH=1
  fi
  : "${FLORES:=$SHARED/flores200/devtest}"
  EVAL_SET=()
  if [ -d "$FLORES" ]; then
    EVAL_SET=(--eval-set "$FLORES")
  else
    echo "$RECIPE: no FLORES-200 devtest at $FLORES (set FLORES=DIR): training data is not filtered against it," \
      "and the FLORES evaluation stage will stop" >&2
  fi
}

get_data() {  # stage 0: download the bitext with nmt data get unless a local copy is used
  if [ "$FETCH" != 1 ]; then
    echo "(local bitext $RAW: nothing to download; FETCH=1 downloads it into $WORKDIR/raw instead)"
    return 0
  fi
  # shellcheck disable=SC2086
  "$NMT" data get --out "$RAW" --langs "${DATA_LANGS:-$ML50_MINI_LANGS}" ${GET_ARGS:-}
}

need_flores_then() {  # need_flores_then command args...: run it only when FLORES is there
  [ -d "$FLORES" ] || { echo "$RECIPE: no FLORES-200 devtest at $FLORES (set FLORES=DIR)" >&2; exit 1; }
  "$@"
}
