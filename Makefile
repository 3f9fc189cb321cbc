# One entry point per job; each installs what it needs into .venv first, from the lock.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
UV_VERSION := 0.13.8

.PHONY: install lock test chromium lint format demo demo-smoke bench clean

# Every package at the exact version and hash in the lock, then speechllm itself with nothing
# resolved again (a new release on the registry cannot change what a fresh clone installs).
$(STAMP): pyproject.toml $(LOCK)
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Re-resolve pyproject.toml's ranges (with the dev extra and the build backend) for every
# platform and Python >= 3.10; uv runs from a throwaway venv so it never enters the lock.
lock:
	python3 -m venv .lock-venv
	.lock-venv/bin/pip install -q uv==$(UV_VERSION)
	echo "setuptools>=68" | .lock-venv/bin/uv pip compile pyproject.toml - --all-extras \
	  --universal --python-version 3.10 --generate-hashes --no-header -o $(LOCK)
	rm -rf .lock-venv

install: $(STAMP)

test: $(STAMP) chromium
	$(PY) -m pytest -q

# The playground's browser test drives Debian's chromium through Playwright (no browser
# download from Playwright's CDN): installed from apt when missing, non-interactively.
chromium:
	@test -x /usr/bin/chromium || { \
	  sudo=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$sudo apt-get update -q && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

lint: $(STAMP)
	$(VENV)/bin/ruff check speechllm tests benchmarks recipes
	$(VENV)/bin/ruff format --check speechllm tests benchmarks recipes

format: $(STAMP)
	$(VENV)/bin/ruff format speechllm tests benchmarks recipes
	$(VENV)/bin/ruff check --fix speechllm tests benchmarks recipes

demo: $(STAMP)
	$(PY) recipes/synthetic_real/run_demo.py --preset full

demo-smoke: $(STAMP)
	$(PY) recipes/synthetic_real/run_demo.py --preset smoke

bench: $(STAMP)
	$(PY) benchmarks/step_overhead.py
	$(PY) benchmarks/data_loading.py
	$(PY) benchmarks/generation_throughput.py
	$(PY) benchmarks/soak.py

clean:
	rm -rf $(VENV) .lock-venv outputs runs lightning_logs .pytest_cache
