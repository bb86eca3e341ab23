# The two set-up commands: `make up` and `make test`. Both install first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install up down test lint bench fuzz contract clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev extra

up: $(STAMP) ## bring the whole stack up (embedded backend), Ctrl-C to stop
	$(BIN)/query-harness up $(UP_ARGS)

down: $(STAMP) ## stop a stack started with `query-harness up --detach`
	$(BIN)/query-harness down

test: $(STAMP) ## run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check service lambdas harness tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .harness .pytest_cache build *.egg-info
