# Two entry points (see README): `make demo` runs the example pipeline, `make test` runs everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# One interpreter for cargo and maturin, so pyo3 is not rebuilt when they alternate.
export PYO3_PYTHON := $(abspath $(PY))

.PHONY: venv install demo test lint rust-test py-test tools browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(PY)
	$(PIP) install --quiet -e '.[dev]'

demo: install
	$(VENV)/bin/python examples/run_demo.py

lint: install
	$(VENV)/bin/ruff format --check python tests benchmarks
	$(VENV)/bin/ruff check python tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest pivot._native
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	$(PY) .ci/check_layers.py

rust-test: $(PY)
	cargo test

# tmux runs the TUI for real in tests/tui (Debian's package; CI runs as root).
tools:
	command -v tmux >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux)

# Headless Chromium for the screenshot test of `pivot plots` (tests/results/test_plots.py),
# from Debian's package when missing (CI and developers run as root here).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

py-test: install tools browser
	$(VENV)/bin/pytest -n 2 -q tests

test: install tools lint rust-test py-test

clean:
	rm -rf $(VENV) target
