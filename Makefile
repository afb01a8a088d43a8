# The few commands a person runs.  `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo serve test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependencies change.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[test]'
	@touch $@

install: $(VENV)/.installed

# The demo charges its cards at the demo bank (dunning.gateways.demo) unless told otherwise.
demo: export DUNNING_GATEWAY ?= demo
# Links in its emails lead to the pages it serves, whatever HOST and PORT are
# (this machine's loopback address when it listens on every address).
PUBLIC_HOST = $(if $(filter 0.0.0.0 :: [::],$(HOST)),127.0.0.1,$(if $(findstring :,$(subst [,,$(HOST))),[$(subst [,,$(subst ],,$(HOST)))],$(HOST)))
demo: export DUNNING_PUBLIC_URL ?= http://$(PUBLIC_HOST):$(PORT)
demo: install
	$(BIN)/dunning migrate --no-input --verbosity 0
	$(BIN)/dunning demo --load --if-empty
	$(BIN)/dunning demo --operator --url $$DUNNING_PUBLIC_URL
	$(BIN)/dunning serve --host $(HOST) --port $(PORT) --with-worker

serve: install
	$(BIN)/dunning migrate --no-input --verbosity 0
	$(BIN)/dunning serve --host $(HOST) --port $(PORT) --with-worker

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/import.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/retries.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
