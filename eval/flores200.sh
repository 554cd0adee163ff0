#!/usr/bin/env bash
# Score a model bundle on FLORES-200 devtest, every direction between its languages.
#   eval/flores200.sh BUNDLE OUT_DIR [extra nmt evaluate options]
# Environment: FLORES_DIR (default: the embedded sample), LINES (default: all;
# use 1-500 while tuning and 501-1012 for reporting, see eval/README.md),
# DIRECTIONS (default: all), COMET_MODEL (default: Unbabel/wmt22-comet-da from
# the local Hugging Face cache; n/a when absent).
set -euo pipefail
if [[ $# -lt 2 ]]; then
    sed -n '2,7p' "$0" >&2
    exit 2
fi
bundle=$1 out=$2
shift 2
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
args=(--model "$bundle" --testset flores200 --directions "${DIRECTIONS:-all}" --lines "${LINES:-all}"
      --out-dir "$out" --comet-model "${COMET_MODEL:-Unbabel/wmt22-comet-da}")
if [[ -n ${FLORES_DIR:-} ]]; then
    args+=(--flores-dir "$FLORES_DIR")
fi
exec nmt evaluate "${args[@]}" "$@"
