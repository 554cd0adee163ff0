#!/usr/bin/env bash
# Every benchmark, one after the other (about 4 hours on 2 CPU cores). Each one
# replaces its own section of benchmarks/RESULTS.md. Needs ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY benchmarks/bench_prepare.py
$PY benchmarks/bench_train.py --preset tiny --updates 400 --repeats 3
$PY benchmarks/bench_presets.py --preset tiny --minutes 6 --data sample
$PY benchmarks/bench_presets.py --preset small --minutes 60 --data ml50-4
$PY benchmarks/bench_translate.py --small-model work/bench_presets/small --small-data work/bench_presets/data-ml50-4
$PY benchmarks/bench_translate_repeat.py --data work/bench_presets/data-ml50-4 --bundle work/bench_translate/base --rounds 3 --shortlist
$PY benchmarks/bench_shortlist.py --bundle work/bench_presets/small --data work/bench_presets/data-ml50-4
$PY benchmarks/bench_ct2_batch.py --model small=work/bench_presets/small --model base=work/bench_translate/base --lines 150
$PY benchmarks/bench_mbart.py --pretrain-minutes 25 --updates 3000
