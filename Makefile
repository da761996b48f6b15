# The front door. `make up` runs the stack, `make test` runs the tests; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
# Where the CPU build of torch comes from; empty: the configured package index.
TORCH_INDEX_URL ?=
DATA_DIR ?= ../shared/data/movielens-small

.PHONY: install test unit migrate up down ps logs demo bench eval train clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to its CPU build: otherwise sentence-transformers pulls a multi-GB CUDA one
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PY) -m pip install -q -e '.[embedder,dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# The browser tests drive Debian's chromium; install it when it is missing and we may.
/usr/bin/chromium:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -q chromium >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	else echo "chromium is missing: install Debian's chromium package for the browser tests"; fi

test: $(STAMP) /usr/bin/chromium
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

migrate: $(STAMP)
	$(PY) -m shared.migrate

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
