# The two quick-start commands (README): `make run` and `make test`. Both work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck unit integration bench system-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Editable install in strict mode (mypy resolves imports); re-run when the package list changes.
$(STAMP): $(BIN)/python pyproject.toml build.py $(wildcard proto/regsync/v1/*.proto)
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=strict
	touch $(STAMP)

install: $(STAMP)
	@# strict editable installs link files one by one: relink so new modules are importable
	@$(BIN)/pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=strict >/dev/null
	@# bytecode now, as `pip install .` does: with PYTHONDONTWRITEBYTECODE set, every
	@# `regsyncd once` would otherwise compile regsync from source (~0.2 s of its start-up)
	@$(BIN)/python -m compileall -q "$$($(BIN)/python -c 'import regsync; print(regsync.__path__[0])')" >/dev/null

# Debian packages the integration tests run for real, installed in one apt-get: the registry and
# skopeo (the peer), Chromium for the panel, PostgreSQL for the store (a throwaway cluster,
# tests/support/postgres.py), e2fsprogs (test_store_failure.py's ext4 image), Prometheus and
# promtool (scraping /metrics, checking the alert rules).
system-deps:
	@missing=""; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	command -v skopeo >/dev/null || missing="$$missing skopeo"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v mkfs.ext4 >/dev/null || missing="$$missing e2fsprogs"; \
	command -v prometheus >/dev/null && command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

run: install
	$(BIN)/regsyncd serve --config configs/sync.example.yaml

test: system-deps install
	$(BIN)/ruff check common daemon ctl ui tests bench build.py
	$(BIN)/mypy common daemon ctl ui build.py
	$(BIN)/mypy tests bench --exclude '^tests/ui/'
	MYPYPATH=tests/ui $(BIN)/mypy tests/ui  # its own conftest.py: a module name of its own
	$(BIN)/pytest -q $(PYTEST_ARGS)

unit: install
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

bench: system-deps install
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf build dist *.egg-info $(VENV) .pytest_cache .mypy_cache
