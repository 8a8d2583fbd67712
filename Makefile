# neuralcircuits: `make tour` and `make test` do all the set-up on a fresh Debian machine (Python 3.11).
SHELL := /bin/bash
VENV  ?= .venv
BIN   := $(VENV)/bin
PY    := $(BIN)/python
STAMP := $(VENV)/.installed
TORCH ?= torch==2.13.0
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT   := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.PHONY: setup tour test check-export nbtest pytest docs refresh readme lab bench clean

setup: $(STAMP)

# The pinned CPU torch goes in first: a bare `torch` requirement resolved alone pulls a multi-GB CUDA build.
$(STAMP): settings.ini setup.py Makefile
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[all]" $(TORCH)
	@command -v dot >/dev/null || { $(APT) update -qq && $(APT) install -y -qq graphviz; }
	@command -v chromium >/dev/null || { $(APT) update -qq && $(APT) install -y -qq chromium fonts-dejavu-core; }
	@touch $@

tour: $(STAMP)
	$(BIN)/nc tour --out out/tour.html

test: $(STAMP) check-export nbtest pytest

# Notebooks are the single source: exporting must not change the library, cleaning must not change a notebook.
check-export: $(STAMP)
	@rm -rf .check && mkdir -p .check && cp -r neuralcircuits .check/lib && cp -r nbs .check/nbs
	@$(BIN)/nbdev_export && diff -r -x __pycache__ .check/lib neuralcircuits \
	  || { echo "nbdev_export changed neuralcircuits/: export the notebooks and commit"; exit 1; }
	@$(BIN)/nbdev_clean && diff -r --no-dereference -x .ipynb_checkpoints .check/nbs nbs \
	  || { echo "nbdev_clean changed a notebook: run nbdev_clean and commit"; exit 1; }
	@rm -rf .check && echo "library and notebooks are in sync"

nbtest: $(STAMP)
	OMP_NUM_THREADS=1 TRITON_INTERPRET=1 $(BIN)/nbdev_test --n_workers 2 --timing

pytest: $(STAMP)
	OMP_NUM_THREADS=1 TRITON_INTERPRET=1 $(BIN)/pytest -n 2 tests

# The site runs every notebook (two at a time) and writes _docs/; `#| slow` and `#| gpu` cells show their saved outputs.
docs: $(STAMP) readme
	$(BIN)/nc docs

# Bring a notebook's saved outputs up to date: run it, slow cells included, and keep only the outputs the docs build
# does not make itself (those of `#| slow` and `#| gpu` cells). Usage: make refresh NB=nbs/train/compare.ipynb
refresh: $(STAMP)
	@test -n "$(NB)" || { echo "usage: make refresh NB=nbs/path/to/notebook.ipynb"; exit 1; }
	OMP_NUM_THREADS=1 $(PY) -c "import sys; from neuralcircuits.docs_site import refresh_outputs; [print('refreshed', refresh_outputs(p)) for p in sys.argv[1:]]" $(NB)

# README.md is generated from nbs/index.ipynb (run, then written as GitHub markdown); a test checks it is current.
readme: $(STAMP)
	$(PY) -c "from neuralcircuits.docs_site import build_readme; build_readme()"

lab: $(STAMP)
	$(BIN)/jupyter lab nbs $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(BIN)/nc bench all

clean:
	rm -rf _docs _proc out .check .pytest_cache build dist
