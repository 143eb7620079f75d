# The two set-up commands of the README: `make demo` and `make test`.
# Each works alone on a fresh machine: it creates .venv, installs torch
# (TORCH_SPEC, the CPU build), then ebmlab with its dev extras.
TORCH_SPEC ?= torch==2.13.0
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ebmlab-installed
# Passing TORCH_SPEC again with the package keeps pip from swapping torch
# for a newer (CUDA) build while resolving ebmlab's "torch>=..." requirement.
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: demo test lint typecheck install clean bench dist fuzz reliability docs docs-check

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH_SPEC)"
	$(PIP) -e ".[dev]" "$(TORCH_SPEC)"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ebmlab train --out runs/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples tools tutorials
	$(VENV)/bin/ruff format --check src tests benchmarks examples tools tutorials
	$(VENV)/bin/mypy

# One BLAS/OpenMP thread per test process: the tests use small tensors, where a
# second thread costs more than it gives (and stalls badly on a busy machine).
test: $(STAMP) lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q --durations=15

# Fuzz every file reader under atheris for FUZZ_BUDGET seconds each (tests/fuzz/run.py;
# `make test` runs a seeded Hypothesis slice of the same targets).
FUZZ_BUDGET ?= 60
fuzz: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) tests/fuzz/run.py --budget $(FUZZ_BUDGET)

# The full fault-injection run: 100 SIGKILLs (`make test` runs 4); docs/reliability.md.
reliability: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 EBMLAB_RELIABILITY_KILLS=100 \
		$(PY) -m pytest -q -s tests/reliability

# The sdist and, built from it, the wheel (offline: hatchling, build and twine
# come with the dev extra), then their metadata (twine) and contents
# (tools/check_dist.py: every module and data file, LICENSE, py.typed; no tests).
dist: $(STAMP)
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist .
	$(PY) -m twine check --strict dist/*
	$(PY) tools/check_dist.py dist

# The documentation site (mkdocs.yml): MkDocs Material, the API and configuration
# references generated from the code (tools/mkdocs_hooks.py), tutorials/ and examples/
# run by mkdocs-gallery. Strict: any warning fails. Output: site/.
# EBMLAB_DOCS_RUN=false skips running the scripts (a quick look at the pages).
DOCS_STAMP := $(VENV)/.ebmlab-docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PIP) -e ".[dev,docs]" "$(TORCH_SPEC)"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=agg \
		$(VENV)/bin/mkdocs build --strict

# The built site in a real browser: Debian's headless Chromium (installed if missing)
# loads the index and an API page from a local server; console errors fail.
docs-check: docs
	test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium) \
		|| sudo apt-get install -y -q chromium
	$(PY) tools/check_site.py site

bench: $(STAMP)
	$(PY) benchmarks/sampling.py

clean:
	rm -rf $(VENV) runs dist site docs/generated fuzz-artifacts .pytest_cache .mypy_cache .ruff_cache
