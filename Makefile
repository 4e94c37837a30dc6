# Confidant: `make run` installs and starts the app, `make test` installs and runs every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1

.PHONY: run test soak install install-test chromium clean

run: $(VENV)/.installed
	$(VENV)/bin/confidant serve

test: $(VENV)/.installed-test chromium
	$(PY) -m pytest

# The long reliability runs (issue 6), not part of `make test` or CI; figures in docs/reliability.md:
# 50+ SIGKILLs over 300+ chat turns, then 8 sessions at once through the web API.
soak: $(VENV)/.installed-test
	$(PY) -m tests.crash_harness --kills 50 --turns 300 --seed 1 --out docs/results/reliability/soak.json
	$(PY) -m tests.concurrency_bench --sessions 8 --turns 3 --max-tokens 32 --out docs/results/reliability/concurrency.json

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first and pinned: 2.13.0 is a CPU build on local disk; an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[test]'
	touch $@

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`).
chromium:
	@command -v chromium >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) *.egg-info
