# The front door. `make up` runs the stack, `make test` runs the tests; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
# Where the CPU build of torch comes from; empty: the configured package index.
TORCH_INDEX_URL ?=
DATA_DIR ?= ../shared/data/movielens-small

.PHONY: install test unit migrate up down ps logs demo bench eval train clean images-offline test-docker chaos

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to its CPU build: otherwise sentence-transformers pulls a multi-GB CUDA one
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PY) -m pip install -q -e '.[embedder,dev]'
	# The ONNX copies of the model (the embedder's default backend), exported here once
	$(PY) -m services.embedder.onnx_export
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

# The stack: containers where a Docker engine answers, else the native stack (tools/stack.py:
# embedded PostgreSQL, the local RabbitMQ, services in the background, state under RUN_DIR).
# STACK_MODE=docker|native overrides; `make up` and `make ps` say which mode and why first.
ifneq ($(filter environment command line,$(origin STACK_MODE)),)
STACK_MODE_WHY := STACK_MODE=$(STACK_MODE) was given
else
STACK_MODE := $(shell docker info >/dev/null 2>&1 && echo docker || echo native)
STACK_MODE_WHY := $(if $(filter docker,$(STACK_MODE)),a Docker engine answers docker info (STACK_MODE=native picks the native stack),no Docker engine answers docker info (STACK_MODE=docker needs one))
endif
ifeq ($(filter docker native,$(STACK_MODE)),)
$(error STACK_MODE is "$(STACK_MODE)": use docker or native)
endif
COMPOSE ?= docker compose
STACK_SAYS = @echo "make $@: $(STACK_MODE) mode: $(STACK_MODE_WHY)"

up: $(STAMP)
	$(STACK_SAYS)
ifeq ($(STACK_MODE),docker)
	@COMPOSE="$(COMPOSE)" $(PY) -m tools.dockerstack up
else
	$(PY) -m tools.stack up
	@if $(PY) -m tools.stack empty; then env $$($(PY) -m tools.stack env) $(MAKE) --no-print-directory demo; fi
endif

down:
ifeq ($(STACK_MODE),docker)
	$(COMPOSE) down
else
	$(PY) -m tools.stack down
endif

ps:
	$(STACK_SAYS)
ifeq ($(STACK_MODE),docker)
	@$(COMPOSE) ps
else
	@$(PY) -m tools.stack ps
endif

logs:
ifeq ($(STACK_MODE),docker)
	$(COMPOSE) logs -f --tail=100
else
	@$(PY) -m tools.stack logs
endif

# Local stand-ins for the upstream images the compose file and Dockerfiles name, built from Debian
# packages, for machines that cannot reach Docker Hub (tools/dockerhost.py, deploy/offline/).
images-offline: $(STAMP)
	$(PY) -m tools.dockerhost images

# The Docker stack for real, on its own project name and ports: builds, make up, scale, a killed
# worker, make down and up again (tests/docker/stack_check.py). Not part of `make test`.
test-docker: $(STAMP)
	$(PY) -m tests.docker.stack_check

# The demo catalogue (about 100 films, a few users) through the running ingest service; idempotent.
demo: $(STAMP)
	$(PY) -m tools.demo

# The benchmarks (tools/bench/): PART=embed|gateway|trainer (several: PART="embed gateway"; default
# all), BENCH_ARGS for a part's options (python -m tools.bench --help). Each part prints tables; the
# run writes bench.json and BENCHMARKS.md here.
PART ?=
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m tools.bench $(foreach part,$(PART),--part $(part)) $(BENCH_ARGS)

# Train the collaborative model now, on the native stack's database (the stack's trainer also
# retrains on its own: after TRAIN_AFTER_INTERACTIONS new interactions or every TRAIN_EVERY_S).
train: $(STAMP)
	env $$($(PY) -m tools.stack env) $(PY) -m services.trainer --once

# The offline evaluation through the running stack; prints the table and writes EVAL.md.
eval: up
	env $$($(PY) -m tools.stack env) $(PY) -m tools.eval --grid --movies $(DATA_DIR)/movies.csv --ratings $(DATA_DIR)/ratings.csv

# Faults while loading: PRODUCTS products through HTTP while embedder workers are SIGKILLed, RabbitMQ
# and PostgreSQL restarted (a private node and database under .chaos/, never the stack's or the
# shared broker). Prints the table, writes chaos.json; fails unless lost = duplicated = dead-lettered = 0.
PRODUCTS ?= 10000
chaos: $(STAMP)
	$(PY) -m tools.chaos --products $(PRODUCTS)
