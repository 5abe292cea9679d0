# Pillarbox — common tasks. `make run` starts a local instance, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check lint typecheck bench clean venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## run: start a local-only instance (loopback, ports +1000, account you@localhost)
run: $(STAMP)
	$(BIN)/pillarbox localserve

## test: run the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q tests

## check: lint, strict type check and the layering test
check: $(STAMP)
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests
	$(BIN)/mypy app
	$(BIN)/python -m pytest -q tests/test_layering.py

## bench: benchmarks, results printed as JSON
bench: $(STAMP)
	$(BIN)/python -m tests.bench.run

clean:
	rm -rf $(VENV) dist build/work .pytest_cache .mypy_cache .ruff_cache
