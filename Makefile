# One entry point per job; each installs what it needs into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint format demo demo-smoke bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check speechllm tests benchmarks recipes
	$(VENV)/bin/ruff format --check speechllm tests benchmarks recipes

format: $(STAMP)
	$(VENV)/bin/ruff format speechllm tests benchmarks recipes
	$(VENV)/bin/ruff check --fix speechllm tests benchmarks recipes

demo: $(STAMP)
	$(PY) recipes/synthetic_tiny/run_demo.py --preset full

demo-smoke: $(STAMP)
	$(PY) recipes/synthetic_tiny/run_demo.py --preset smoke

bench: $(STAMP)
	$(PY) benchmarks/step_overhead.py
	$(PY) benchmarks/data_loading.py
	$(PY) benchmarks/generation_throughput.py

clean:
	rm -rf $(VENV) outputs runs lightning_logs .pytest_cache
