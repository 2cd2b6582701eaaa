# The two commands of the README: `make dev` (run) and `make test`.
# Both create .venv and install the project into it on first use (and again when
# setup.cfg changes), so they work on a fresh machine with only Python 3.11.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test lint install migrate bench bench-quick docs uppy clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the API on the embedded default: SQLite + moto's S3 server on loopback.
## Options: `make dev PORT=8100 S3_PORT=9100`, any other in DEV_ARGS (`DEV_ARGS=--no-worker`).
# PORT and S3_PORT count only from make's command line: a PORT exported by the shell for
# another program must not move the dev server.
DEV_PORTS = $(if $(filter command line,$(origin PORT)),--port $(PORT)) \
            $(if $(filter command line,$(origin S3_PORT)),--s3-port $(S3_PORT))
dev: $(STAMP)
	$(BIN)/advanced-notes dev $(strip $(DEV_PORTS) $(DEV_ARGS))

## Run the test suite (PostgreSQL when TEST_DATABASE_URL is set, SQLite otherwise).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Style, types and layering: zero findings expected (run by .ci/run).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy advanced_notes
	$(BIN)/lint-imports

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

## The performance harness (PostgreSQL on 127.0.0.1): full run, writes docs/performance.md.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/perf/run.py $(BENCH_ARGS)

## The harness's smoke check (under a minute); fails on any failed request.
bench-quick: $(BENCH_STAMP)
	$(BIN)/python bench/perf/run.py --quick

DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $(DOCS_STAMP)

## Build the documentation site (docs/ with MkDocs + Material) with warnings as errors.
docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --site-dir $${DOCS_SITE_DIR:-site}

## Migrate the database named by DATABASE_URL (default: the SQLite file in instance/).
migrate: $(STAMP)
	$(BIN)/flask --app wsgi db upgrade

## Rebuild the browser page's bundle (/app, committed) from web/uppy's pinned package-lock.json.
uppy:
	cd web/uppy && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis instance site
