#!/usr/bin/env bash
# Score hypothesis files on a WMT test set kept as plain text files.
#   WMT_DIR=wmt/newstest2021 WMT_NAME=newstest2021 eval/wmt.sh HYP_DIR OUT_DIR [extra options]
# Expects $WMT_DIR/{src_iso}-{tgt_iso}.{src_iso} and .{tgt_iso} files (e.g.
# de-en.de, de-en.en) and HYP_DIR/{src}-{tgt}.hyp (ML50 codes, e.g.
# de_DE-en_XX.hyp). Directions default to every hypothesis file; pass
# --directions to restrict. WMT XML must be converted to plain text first.
set -euo pipefail
if [[ $# -lt 2 || -z ${WMT_DIR:-} ]]; then
    sed -n '2,7p' "$0" >&2
    exit 2
fi
hyp=$1 out=$2
shift 2
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec nmt evaluate --hyp "$hyp" --out-dir "$out" --testset-name "${WMT_NAME:-wmt}" \
    --src "$WMT_DIR/{src_iso}-{tgt_iso}.{src_iso}" --ref "$WMT_DIR/{src_iso}-{tgt_iso}.{tgt_iso}" "$@"
