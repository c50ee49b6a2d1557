# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

WEB := src/ossdrop/appserver/web
WEB_STAMP := $(WEB)/node_modules/.installed

# The upload page's browser dependency (hash-wasm), from the lock file; re-run only when the lock file changes.
$(WEB_STAMP): $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --no-audit --no-fund --ignore-scripts
	touch $(WEB_STAMP)

install: $(STAMP) $(WEB_STAMP)

run: install
	$(BIN)/ossdrop serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

# One benchmark at a time on a quiet machine (2 cores): each prints its figures next to its baselines.
bench: install
	$(BIN)/python bench/store_throughput.py --wait-idle 300
	$(BIN)/python bench/listing.py
	$(BIN)/python bench/post_object.py
	$(BIN)/python bench/app_server.py
	$(BIN)/python bench/thumbnails.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules
