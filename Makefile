# The two set-up commands: `make up` and `make test`. Both install first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install bytecode up down test test-py312 lint bench bench-record-test soak fuzz contract contract-gates contract-diff consumer lambda-package clean verify checkov-venv

$(STAMP): pyproject.toml setup.py
	@echo "== installing the project and its dev tools into $(VENV) (first time: a minute or more)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "== upgrading pip"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "== pip install -e '.[dev]' (service, Lambdas, harness, test and lint tools)"
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)
	@echo "== installed; '$(BIN)/query-harness --help' lists the commands"

# Our own modules' bytecode, as pip writes it for installed packages: every stack process imports
# them, and where PYTHONDONTWRITEBYTECODE is set (CI images, containers) Python would otherwise
# compile them again in each process. Only changed files are recompiled.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q harness service lambdas

install: $(STAMP) ## create .venv and install the project with its dev extra

up: $(STAMP) bytecode ## bring the whole stack up (embedded backend), Ctrl-C to stop
	$(BIN)/query-harness up $(UP_ARGS)

down: $(STAMP) ## stop a stack started with `query-harness up --detach`
	$(BIN)/query-harness down

test: lint ## lint, type-check, then run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

PYTHON312 ?= python3.12

test-py312: ## the same suite on python3.12 (the service image's Python), in .venv-py312
	@$(PYTHON312) -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null || { \
	    echo "no working python3.12 ($(PYTHON312)); give one: make test-py312 PYTHON312=/path/to/python3.12"; \
	    exit 1; }
	$(MAKE) test PYTHON=$(PYTHON312) VENV=.venv-py312

contract: contract-gates contract-diff ## only the contract gates, then the V2 -> V3 diff; reports in reports/

contract-gates: $(STAMP) ## drift, V2->V3, rename, ap_id, live fuzzing (all part of `make test` too); JUnit in reports/
	mkdir -p reports
	HARNESS_REPORT_DIR=reports $(BIN)/python -m pytest tests/contracts tests/e2e/test_fuzz_e2e.py \
	    tests/e2e/test_rename_e2e.py tests/e2e/test_queries_e2e.py tests/e2e/test_stream_sync_e2e.py \
	    --junitxml=reports/contract-junit.xml $(PYTEST_ARGS)

contract-diff: $(STAMP) ## the V2 -> V3 contract diff (--strict), printed and written to reports/contract-diff.txt
	@mkdir -p reports
	@$(BIN)/query-harness contract diff contracts/openapi-v2.yaml contracts/openapi.yaml --strict \
	    > reports/contract-diff.txt; rc=$$?; cat reports/contract-diff.txt; exit $$rc

consumer: $(STAMP) ## the wheel as another project uses it: fresh venv, plugin fixtures (1-3 min)
	$(BIN)/python -m pytest tests/distribution -m consumer $(PYTEST_ARGS)

fuzz: $(STAMP) ## nightly: schemathesis with >= 1,000 examples per operation against a live stack
	BIN=$(BIN) scripts/fuzz.sh

bench: $(STAMP) bytecode ## one table of every figure beside its baseline; JSON + pictures in reports/bench/ (~20 min: 10 of them idle, for the RSS drift)
	$(BIN)/python bench/report.py $(BENCH_ARGS)

bench-record-test: ## run `make test` once and record its wall time for make bench's table
	@mkdir -p reports/bench
	@start=$$(date +%s); $(MAKE) test || exit 1; end=$$(date +%s); \
	    printf '{"wall_s": %s, "recorded": "%s"}\n' $$((end - start)) "$$(date -u +%FT%TZ)" \
	    > reports/bench/make-test.json; cat reports/bench/make-test.json

# checkov pins an old boto3: it lives in its own environment (with parliament), never in .venv.
# Their versions are pinned in infra/checkov-requirements.txt (checkov>=3.2,<4, parliament>=1.6,<2).
CHECKOV_VENV ?= .venv-checkov
$(CHECKOV_VENV)/.installed: $(STAMP) infra/checkov-requirements.txt
	@echo "== building the tools environment $(CHECKOV_VENV) (checkov, parliament) with uv"
	$(BIN)/uv venv --quiet --allow-existing --python $(PYTHON) $(CHECKOV_VENV)
	VIRTUAL_ENV=$(CHECKOV_VENV) $(BIN)/uv pip install --quiet -r infra/checkov-requirements.txt
	@touch $@

checkov-venv: $(CHECKOV_VENV)/.installed ## the tools environment of `verify` item 8c/9c (checkov, parliament)

verify: $(STAMP) bytecode checkov-venv ## the seed's acceptance checklist on the local stack; report in reports/acceptance
	CHECKOV_VENV=$(CHECKOV_VENV) $(BIN)/query-harness verify $(VERIFY_ARGS)

soak: $(STAMP) bytecode ## 10,000 command records through the stream path under faults, checked exactly (many minutes)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

lambda-package: $(STAMP) ## build/lambdas.zip with its dependencies for python3.12 x86_64 (LocalStack, AWS)
	$(BIN)/python -m pip install --quiet --upgrade --target build/lambda-deps --implementation cp \
	    --python-version 3.12 --platform manylinux2014_x86_64 --only-binary=:all: \
	    "aws-lambda-powertools>=3,<4" "pydantic>=2.7,<3" "jsonschema>=4.21,<5"
	$(BIN)/python -c "from harness.stack.provision import build_lambda_zip, VENDOR_DIR; \
	    open('build/lambdas.zip', 'wb').write(build_lambda_zip(vendor_dir=VENDOR_DIR))"
	@echo "wrote build/lambdas.zip"

lint: $(STAMP) ## ruff and mypy (strict on service, lambdas, harness)
	$(BIN)/ruff check service lambdas harness tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .harness .pytest_cache build *.egg-info
