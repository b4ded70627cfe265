# One-command setup: `make demo` (the whole course cycle on lab 1), `make test` (the whole test suite, as CI)
# and `make check` (all but the slow tests, for developers).
# All create or refresh .venv and install everything the project needs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-deps

.PHONY: all setup system-deps demo test check verify bench clean

all: test

setup: $(STAMP) $(SYSTEM_STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "Python >= 3.10 is needed (found $$($(PYTHON) --version)); run: make PYTHON=python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[instructor,test]'
	touch $@

# Debian packages: bubblewrap (grading sandbox), the Fashion-MNIST files (offline data for lab 5),
# PostgreSQL (the test of a non-SQLite gradebook), chromium (the headless check of `course report`'s page).
$(SYSTEM_STAMP): scripts/install_system_deps.sh | $(STAMP)
	bash scripts/install_system_deps.sh
	touch $@

system-deps:
	bash scripts/install_system_deps.sh

demo: setup
	$(BIN)/course demo

test: setup
	$(BIN)/python -m pytest -q tests

# the fast loop while developing: everything but the tests marked slow (lab gradings, attack corpus, ...)
check: setup
	$(BIN)/python -m pytest -q -m "not slow" -n auto tests

verify: setup
	$(BIN)/course verify

bench: setup
	$(BIN)/python bench/micrograd_moons.py
	$(BIN)/python bench/grading_throughput.py
	$(BIN)/python bench/gpt_shakespeare.py

clean:
	rm -rf $(VENV) demo-course .pytest_cache
