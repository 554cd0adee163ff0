#!/usr/bin/env bash
# Create ./.venv and install nmt with the pins that let fairseq, COMET and
# CTranslate2 share one environment. Idempotent: a second run only checks.
#   bash recipes/install.sh            # venv in ./.venv
#   VENV=/path/to/venv bash recipes/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' \
  || { echo "install.sh: Python >= 3.11 is required ($PYTHON is $("$PYTHON" -V 2>&1))" >&2; exit 1; }

stamp="$VENV/.nmt-install-stamp"
want="$(cat setup.cfg recipes/install.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/nmt" --version >/dev/null 2>&1; then
  echo "install.sh: $VENV is up to date"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install -U pip
# 1. torch first and pinned (an unpinned torch pulls a multi-GB CUDA build on a CPU box),
#    with the build tools fairseq's C/Cython extensions compile against.
"${pip[@]}" install 'torch==2.13.0' 'numpy<2' 'setuptools<81' cython wheel
# 2. fairseq-fixed builds from source against that torch: no build isolation,
#    or the isolated build may fetch another torch.
"${pip[@]}" install --no-build-isolation 'fairseq-fixed==0.12.3.1'
# 3. nmt and the rest of its pinned dependencies (COMET, sacrebleu, CTranslate2, ...).
"${pip[@]}" install --no-build-isolation -e '.[test]'
"$VENV/bin/python" -m pip check
echo "$want" > "$stamp"
echo "install.sh: installed nmt into $VENV ($("$VENV/bin/nmt" --version))"
