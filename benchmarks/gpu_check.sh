#!/usr/bin/env bash
# GPU checks, one short run (about 5 minutes on one H100):
#   1. `nmt train` at transformer-base size for the same number of updates in fp32, fp16 and
#      bf16 (fairseq's --fp16 / --bf16): updates/s, final training loss, validation chrF;
#   2. `nmt translate --device cuda` (fairseq backend) against `--device cpu` on the first LINES
#      lines of FLORES-200 devtest with the fp16-trained bundle, and the outputs' agreement.
# Usage: benchmarks/gpu_check.sh PREPARED_DATA OUT_DIR [UPDATES [LINES]]
#   PREPARED_DATA: a directory made by `nmt prepare` (recipes/quickstart.sh makes work/quickstart/data).
#   PY selects the interpreter (default .venv/bin/python); the log is OUT_DIR/gpu_check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=$1
OUT=$2
UPDATES=${3:-400}
LINES=${4:-300}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
nmt() { "$PY" -m nmt "$@"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" - <<'EOF'
import fairseq, torch
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), fairseq {fairseq.__version__}, "
      f"{torch.cuda.get_device_name(0)}, bf16 supported: {torch.cuda.is_bf16_supported()}")
EOF

for precision in fp32 fp16 bf16; do
  start=$(date +%s.%N)
  nmt train --data "$DATA" --output "$OUT/$precision" --preset base \
    --set training.device=cuda --set training.precision=$precision \
    --set training.max_updates=$UPDATES --set training.max_tokens=8192 --set training.lr=0.0007 \
    --set training.warmup_updates=200 --set validation.every_updates=$UPDATES \
    --set validation.max_sentences=200 --set checkpoint.every_updates=$UPDATES > "$OUT/train-$precision.log" 2>&1 \
    || { echo "train $precision FAILED"; tail -30 "$OUT/train-$precision.log"; continue; }
  end=$(date +%s.%N)
  "$PY" - "$OUT/$precision" "$precision" "$start" "$end" <<'EOF'
import json, sys
from pathlib import Path
run, precision, start, end = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
info = json.loads((run / "training.json").read_text())
last = (info.get("validations") or [{}])[-1]
losses = [l for l in (run / "train.log").read_text().splitlines() if "| loss " in l and "validation" not in l]
seconds = info.get("training_seconds") or 0
print(f"{precision}: device {info.get('device')}, {info.get('updates')} updates, {seconds:.0f} s training "
      f"({info.get('updates', 0) / max(seconds, 1e-9):.2f} updates/s), {end - start:.0f} s wall with start-up; "
      f"valid loss {last.get('valid_loss')}, avg chrF {last.get('avg_chrf')}; stop: {info.get('stop_reason')}")
print(f"  last training log line: {losses[-1].split('nmt.train | ')[-1] if losses else 'none'}")
EOF
done

FLORES=data_prep/sample/flores200/devtest
head -n "$LINES" $FLORES/eng_Latn.devtest > "$OUT/flores.en"
head -n "$LINES" $FLORES/deu_Latn.devtest > "$OUT/flores.de"
if [ -d "$OUT/fp16" ]; then
  for device in cuda cpu; do
    start=$(date +%s.%N)
    nmt translate -m "$OUT/fp16" --backend fairseq --device $device -s en_XX -t de_DE \
      -i "$OUT/flores.en" -o "$OUT/flores.$device.de" 2> "$OUT/translate-$device.log" \
      || { echo "translate $device FAILED"; tail -20 "$OUT/translate-$device.log"; continue; }
    end=$(date +%s.%N)
    "$PY" -c "import sys; s, e = float(sys.argv[1]), float(sys.argv[2]); print(f'translate --device $device: $LINES lines in {e - s:.1f} s ({$LINES / (e - s):.1f} sentences/s, start-up included)')" "$start" "$end"
  done
  if [ -f "$OUT/flores.cuda.de" ] && [ -f "$OUT/flores.cpu.de" ]; then
    "$PY" - "$OUT" <<'EOF'
import sys
from pathlib import Path
out = Path(sys.argv[1])
a = (out / "flores.cuda.de").read_text().splitlines()
b = (out / "flores.cpu.de").read_text().splitlines()
same = sum(x == y for x, y in zip(a, b))
print(f"cuda vs cpu outputs: {len(a)} and {len(b)} lines, {same} identical")
from nmt import metrics
refs = (out / "flores.de").read_text().splitlines()
for name, hyps in (("cuda", a), ("cpu", b)):
    print(f"  {name}: BLEU {metrics.bleu(hyps, refs, 'de_DE').score:.1f}, chrF {metrics.chrf(hyps, refs).score:.1f}")
EOF
  fi
fi
echo "gpu_check done"
