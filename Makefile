# AutoCall: `make demo` sets everything up and shows a call and a campaign; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SYSTEM_TOOLS := espeak-ng ffmpeg dot
SYSTEM_PKGS := espeak-ng ffmpeg graphviz
# What only the tests need: a real headless browser for the HTML report's test, and PostgreSQL (below).
TEST_TOOLS := chromium
TEST_PKGS := chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test sysdeps testdeps venv bench clean

demo: venv
	$(BIN)/autocall demo

# The database tests run on SQLite and on PostgreSQL: TEST_POSTGRESQL_URL if it answers, else a throwaway
# cluster (tests/postgres.py) made for the run and removed after it.
test: venv testdeps
	$(BIN)/python -m tests.postgres -- $(BIN)/python -m pytest -n 2 -q

bench: venv
	@for b in benchmarks/*_bench.py benchmarks/agi_load.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

sysdeps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages ($(SYSTEM_PKGS)); missing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PKGS) >/dev/null; \
	fi

testdeps:
	@missing=""; for t in $(TEST_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing what the tests need ($(TEST_PKGS)); missing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(TEST_PKGS) >/dev/null; \
	fi
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  echo "Installing PostgreSQL (the tests start a throwaway cluster of their own)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; \
	fi

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "Installing python3-venv"; rm -rf $(VENV); \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV); }

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	@touch $@

venv: sysdeps $(VENV)/.installed

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis demo-out
