# Two commands from a fresh clone: `make run` and `make test`. Both use .venv/ at the repo root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell sha1sum pyproject.toml | cut -c1-12)
RUN_STAMP := $(VENV)/.installed-run-$(HASH)
TEST_STAMP := $(VENV)/.installed-test-$(HASH)
HOST ?= 127.0.0.1
PORT ?= 7860
# test processes: modules are spread over them whole (--dist loadfile), so each module's app server,
# browser and LLM server stay in one process; 2 suits these 2-core machines
TEST_WORKERS ?= 2

.PHONY: install data models run test clean-venv

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel on these machines; any other version drags in CUDA
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	rm -f $(VENV)/.installed-run-*
	touch $(RUN_STAMP)

# the test extra adds llama-cpp-python's server (it compiles for ~8 min once; pip caches the wheel),
# Playwright, schemathesis and pytest: only `make test` pays for them
$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-test-*
	touch $(TEST_STAMP)

install: $(RUN_STAMP)

data: install
	$(BIN)/cineagent data fetch

# train only when there is no valid artifact for the current data
models: data
	$(BIN)/cineagent train --if-missing

run: models
	$(BIN)/cineagent serve --host $(HOST) --port $(PORT)

test: $(TEST_STAMP)
	bash tests/prepare.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

clean-venv:
	rm -rf $(VENV)
