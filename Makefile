# Confidant: `make run` installs and starts the app, `make test` installs and runs every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1

.PHONY: run test soak install install-test lock chromium clean

# Exact versions of every dependency, tested together (tests/test_dependencies.py checks it against
# pyproject.toml and against what is installed). `make lock` regenerates it; pyproject keeps the ranges.
LOCK := requirements.lock
TORCH := torch==2.13.0

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
# Everything else at the lock's versions: the lock constrains, pyproject says what to install.
$(VENV)/.installed: pyproject.toml $(LOCK) | $(VENV)/bin/python
	$(PIP) install $(TORCH)
	$(PIP) install -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(LOCK) $(VENV)/.installed
	$(PIP) install -c $(LOCK) -e '.[test]'
	touch $@

# Resolve the newest versions pyproject allows (runtime and test extras) for this Python; torch stays
# the local CPU build, found through pip's find-links and left out of the lock (installed above).
lock: | $(VENV)/bin/python
	$(PIP) install --quiet uv==0.13.9
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --python $(PY) --constraint <(echo $(TORCH)) \
		$${PIP_FIND_LINKS:+--find-links $$PIP_FIND_LINKS} --no-emit-package torch \
		--custom-compile-command "make lock" --upgrade --quiet -o $(LOCK)

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`).
chromium:
	@command -v chromium >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) *.egg-info
