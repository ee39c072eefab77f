# The two commands a newcomer needs: `make serve` and `make test`.
# Both create .venv (and install everything) when it is missing or stale.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUF := node_modules/.bin/buf
ADDRESS ?= 127.0.0.1:50051
DATA_DIR ?= ./forge-data
# The torch pin of pyproject.toml (the one place it is written).
TORCH := $(shell grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')

.PHONY: serve test test-postgres test-sdks bench venv generate lint format breaking check-generated api-checks clean

venv: $(STAMP)

# Reinstall when either project's dependency list changes.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# PyTorch first, on its own: when the resolver later backtracks (over s3fs and botocore
	# releases) it may swap a CPU build for another 2.13.0 build (CUDA: several GB, and a
	# triton that crashed the test processes); an installed build that satisfies the pin stays.
	$(PY) -m pip install --quiet '$(TORCH)'
	$(PY) -m pip install --quiet -e './clients/python[plot]' -e '.[dev]'
	# A venv made before the SDK owned the forge-training script loses it when pip removes the
	# server's old copy after installing the SDK's: put it back.
	test -x $(VENV)/bin/forge-training || $(PY) -m pip install --quiet --no-deps --force-reinstall -e ./clients/python
	touch $@

serve: $(STAMP)
	$(VENV)/bin/forge-training serve --address $(ADDRESS) --data-dir $(DATA_DIR)

# Two workers, whole files each (module fixtures stay in one process): most tests wait on a
# server or a worker process, so two share the 2 cores well (15 min -> 10.5 min here).
PYTEST_PARALLEL := -n 2 --dist loadfile

# $(BUF) stands for the npm tools of package.json: buf, and Azurite for the Azure storage tests.
test: $(STAMP) $(BUF)
	$(PY) -m pytest $(PYTEST_PARALLEL)

# Speed against the frameworks themselves and raw gRPC (bench/README.md): results in
# bench/results/<name>.json and a summary table; exit 1 when a target is missed.
bench: $(STAMP)
	$(PY) bench/run.py

# The TypeScript and Go SDKs against the real server (their targets: clients/*/sdk.mk).
test-sdks: test-typescript test-go

# The server-level suites again with every test server's metadata in PostgreSQL rather than
# SQLite. Needs FORGE_TEST_POSTGRES_URL (`. .ci/postgres.sh; start_postgres`; .ci/run does it).
# One process: its run on two workers is not yet checked (CI's time allows ~8 min serially).
test-postgres: $(STAMP) $(BUF)
	FORGE_TEST_DATABASE=postgresql $(PY) -m pytest tests/integration tests/faults tests/load

$(BUF): package.json
	npm install --no-audit --no-fund --silent
	touch $@

# Regenerate the committed Python code from proto/: messages and type stubs
# through buf (buf.gen.yaml), gRPC stubs through grpc_tools (no standalone
# protoc plugin exists for them).
generate: $(STAMP) $(BUF) generate-typescript generate-go
	rm -f clients/python/forge/training/v1/*_pb2.py clients/python/forge/training/v1/*_pb2.pyi clients/python/forge/training/v1/*_pb2_grpc.py
	$(BUF) generate --path proto/forge
	$(PY) -m grpc_tools.protoc -Iproto -Ithird_party/googleapis \
		--grpc_python_out=clients/python proto/forge/training/v1/*_service.proto
	$(PY) tools/gen_api_docs.py
	$(PY) tools/gen_config_docs.py

# The TypeScript and Go SDKs bring their own targets (generate-typescript, test-typescript,
# generate-go, test-go).
include clients/typescript/sdk.mk
include clients/go/sdk.mk

lint: $(BUF)
	$(BUF) lint

format: $(BUF)
	$(BUF) format -w

# Breaking changes against main (override AGAINST to compare with another ref).
AGAINST ?= .git\#branch=main
breaking: $(BUF)
	$(BUF) breaking --against '$(AGAINST)'

# Fails when `make generate` would change anything that is committed.
GENERATED := clients/python/forge clients/typescript/src/gen clients/go/forge/training/v1 docs/api docs/configuration.md
check-generated: generate
	git diff --exit-code -- $(GENERATED)
	test -z "$$(git status --porcelain --untracked-files=all -- $(GENERATED))"

api-checks: lint check-generated
	$(BUF) format -d --exit-code

clean:
	rm -rf $(VENV) node_modules clients/typescript/node_modules clients/typescript/dist clients/go/.offline
