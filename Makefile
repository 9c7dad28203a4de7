# Two commands from a fresh clone: `make run` and `make test`. Both use .venv/ at the repo root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: install data models run test bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel on these machines; any other version drags in CUDA
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

data: install
	$(BIN)/cineagent data fetch

# train only when there is no valid artifact for the current data
models: data
	$(BIN)/cineagent train --if-missing

run: models
	$(BIN)/cineagent serve --host $(HOST) --port $(PORT)

test: install
	bash tests/prepare.sh
	$(BIN)/python -m pytest

bench: models
	$(BIN)/cineagent bench score --json bench-score.json

clean-venv:
	rm -rf $(VENV)
