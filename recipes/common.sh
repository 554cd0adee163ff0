# Sourced by the recipes. Before sourcing, set RECIPE (a name for messages), REPO,
# WORKDIR and NMT; then call `parse_stages "$@"` and run each step with
#   run_stage N NAME command args...
# A finished stage leaves $WORKDIR/.done.N, so a rerun skips it (and resumes an
# interrupted one); --stage N redoes N and every later stage, --stop-stage M stops after M.

parse_stages() {
  stage=1
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
