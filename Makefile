# vmferry: `make demo` and `make test` install what they need (Debian packages, a virtualenv) and run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_STAMP := .venv-system.stamp
SAMPLE ?= tests/data/cot/input.ovf

.PHONY: all system venv demo test lint bench clean

all: test

system:
	@./.ci/install-system

$(STAMP): pyproject.toml .ci/apt-packages.txt
	@./.ci/install-system
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[all,test]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@VENV=$(VENV) ./scripts/demo.sh

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	VMFERRY_CHECK_RULES=1 LIBGUESTFS_BACKEND_SETTINGS=force_tcg $(VENV)/bin/pytest -q -n 2 --dist loadgroup --durations=40

bench: $(STAMP)
	$(PY) bench/inspect.py
	$(PY) bench/disks.py
	$(PY) bench/locator.py
	$(PY) bench/ovfenv.py
	$(PY) bench/plans.py
	$(PY) bench/guest.py
	$(PY) bench/retention.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
