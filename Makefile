# `make train` / `make test` do all set-up on a fresh machine: a .venv with everything installed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
STAMP := $(VENV)/.installed

# Test files run side by side, one per core (pytest-xdist), each whole in one worker so that a
# file's fixtures are made once; XDIST= runs them one after another.
XDIST ?= -n auto --maxprocesses=4 --dist loadfile

.PHONY: install train eval test test-all test-fast lint format report benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,ray]"
	touch $@

install: $(STAMP)

train: $(STAMP)  ## train with overrides: make train ARGS="head=flatten pool=avg"
	$(PY) train.py $(ARGS)

eval: $(STAMP)  ## make eval ARGS="ckpt_path=outputs/train/<run>/checkpoints/last.ckpt"
	$(PY) eval.py $(ARGS)

test: $(STAMP)  ## everything but the heaviest end-to-end runs (marked ci): under 10 minutes
	$(PY) -m pytest -q -m "not ci" $(XDIST) $(ARGS)

test-all: $(STAMP)  ## the whole suite, ci-marked runs included: what CI runs
	$(PY) -m pytest -q --durations=25 $(XDIST) $(ARGS)  # the slowest 25: where suite time goes

test-fast: $(STAMP)  ## the developer's loop: everything but the tests marked slow (under a minute)
	$(PY) -m pytest -q -m "not slow" $(XDIST) $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

report: $(STAMP)  ## make report ARGS=outputs/<sweep dir>
	$(PY) scripts/report.py $(ARGS)

benchmark: $(STAMP)
	$(PY) scripts/benchmark.py $(ARGS)

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
