# vfbot developer commands. Each target creates .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck unit image lock demo run sandbox bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy bot

# One test worker per core (pytest-xdist): every test owns its ports, files and schemas.
unit: $(STAMP)
	$(BIN)/pytest -n auto

test: lint typecheck unit image

# Build the image and check it where a Docker engine runs; elsewhere it says it skipped.
image:
	.ci/image-check

# Refresh requirements.lock (what the image installs, with hashes) from pyproject.toml.
lock: $(STAMP)
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --upgrade --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

demo: $(STAMP)
	$(BIN)/python -m bot.demo

run: $(STAMP)
	$(BIN)/vfbot serve

sandbox: $(STAMP)
	$(BIN)/vfbot sandbox --port 8080

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
