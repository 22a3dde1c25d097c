# pomelo_twisted developer commands (GNU make).  `make` alone lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY = $(VENV)/bin/python
PYTHON3 ?= python3
STAMP = $(VENV)/.installed
RUN_ARGS ?= --app example_game --type all
START_ARGS ?=
SUITE_ARGS ?=
FUZZ_SECONDS ?= 10
FUZZ_TARGETS ?=

# Trees to lint; ones that do not exist (yet) are left out.
LINT_PATHS := $(wildcard pomelo_twisted tests bench twisted example_game fuzz)
# mypy gets the plugin as a *file*: twisted/plugins has no __init__.py, so mypy names the
# module `pomelo_plugin` (its directory is the module's base) and never treats the local
# twisted/ directory as a package that would shadow the installed Twisted.
MYPY_PATHS := pomelo_twisted $(wildcard twisted/plugins/*.py)

.PHONY: help install services test test-interop test-conformance lint fuzz run run-standalone bench bench-suite clean libpitaya

help:
	@echo "pomelo_twisted targets:"
	@echo "  make install       create $(VENV) and install the package editable with [test] extras"
	@echo "  make test          unit and integration tests, under pytest and under trial"
	@echo "  make services      install etcd, redis-server and chromium (Debian) for the tests that use them"
	@echo "  make test-interop  interoperability tests against the pinus peer (needs node and npm)"
	@echo "  make test-conformance  the Autobahn TestSuite (kosoku) against our WebSocket echo"
	@echo "  make lint          ruff check, ruff format --check, mypy"
	@echo "  make libpitaya     build libpitaya's C core + tests/clients/libpitaya/driver.c (optional)"
	@echo "  make fuzz          every atheris target FUZZ_SECONDS each (default $(FUZZ_SECONDS)); see fuzz/README.md"
	@echo "  make run           the example game as a cluster (pomelo-twisted start --app example_game)"
	@echo "  make run-standalone  twistd -n pomelo \$$RUN_ARGS (default: $(RUN_ARGS))"
	@echo "  make bench         codec, runtime, cluster RPC benchmarks, then the suite against pinus"
	@echo "  make bench-suite   bench/suite.py: ours vs pinus vs the bare floors (SUITE_ARGS=...)"
	@echo "  make clean         remove $(VENV), caches and _trial_temp"

# Editable install.  twistd finds the `pomelo` plugin because setup.cfg's `package_dir = =.`
# makes setuptools write a static .pth putting this directory on sys.path, and Twisted scans
# <every sys.path entry>/twisted/plugins/ (see setup.cfg).  Edits to the plugin and to
# pomelo_twisted are seen without reinstalling; the stamp reinstalls when packaging changes.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

# Real services some tests start on free loopback ports (Debian packages; `make test` runs as
# root on CI and on a fresh machine).  Without apt-get or root the tests that need them skip.
# chromium: the headless browser of tests/e2e/test_dashboard.py (Playwright drives it; no
# browser is ever downloaded).
SERVICES := etcd:etcd-server redis-server:redis-server chromium:chromium

services:
	@missing=""; for pair in $(SERVICES); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing$$missing (Debian packages)"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing \
	      || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	          --no-install-recommends $$missing)) >/dev/null; \
	  else echo "   (not root or no apt-get: the tests that need$$missing will skip)"; fi; \
	fi

test: $(STAMP) services
	@echo "==> pytest: tests (not interop)"
	$(PY) -m pytest -q -m "not interop" tests
	@echo "==> trial: tests (interop tests skip themselves unless POMELO_INTEROP=1)"
	$(PY) -m twisted.trial tests

# A missing tests/interop, or pytest's exit 5 (nothing collected), is not a failure.
test-interop: $(STAMP)
	@if [ ! -d tests/interop ]; then \
	  echo "test-interop: no tests/interop yet, nothing to run"; exit 0; \
	fi; \
	echo "==> pytest: tests/interop (interop)"; \
	rc=0; POMELO_INTEROP=1 $(PY) -m pytest -q -m interop tests/interop || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "test-interop: no interop test collected"; rc=0; fi; \
	exit $$rc

# tests/conformance: the production WebSocket acceptor with an echo hook on a free
# 127.0.0.1 port, every Autobahn case run through kosoku; fails unless each case is OK,
# NON-STRICT or INFORMATIONAL (UNIMPLEMENTED for the declined permessage-deflate).
test-conformance: $(STAMP)
	$(PY) -m tests.conformance.run

# libpitaya (pitaya's C client) for tests/clients/test_libpitaya.py, which skips without it.
# Needs cmake, cc and Debian's libssl-dev (libpitaya builds its own libuv and zlib); the
# source is cloned at LIBPITAYA_REF unless LIBPITAYA_SRC already holds a checkout.
LIBPITAYA_URL ?= https://github.com/topfreegames/libpitaya
LIBPITAYA_REF ?= v4.6.3
LIBPITAYA_SRC ?= build/libpitaya/src

libpitaya:
	@if [ ! -f "$(LIBPITAYA_SRC)/include/pitaya.h" ]; then \
	  echo "==> cloning libpitaya $(LIBPITAYA_REF) into $(LIBPITAYA_SRC)"; \
	  git clone -q --depth 1 --branch "$(LIBPITAYA_REF)" "$(LIBPITAYA_URL)" "$(LIBPITAYA_SRC)" \
	    || { echo "libpitaya: no source (set LIBPITAYA_SRC to a libpitaya checkout)"; exit 1; }; \
	fi
	tests/clients/libpitaya/build.sh "$(LIBPITAYA_SRC)" build/libpitaya

lint: $(STAMP)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)
	$(PY) -m mypy $(MYPY_PATHS)

# atheris comes with the [fuzz] extra (a manylinux wheel, no compiler needed); the table of
# executions and findings per target is printed at the end, findings in fuzz/build/findings/.
FUZZ_STAMP = $(VENV)/.installed-fuzz
$(FUZZ_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,fuzz]'
	touch $@

fuzz: $(FUZZ_STAMP)
	$(PY) -m fuzz.run --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

run: $(STAMP)
	@echo "pomelo_twisted: the example chat game as a cluster: master + 2 connectors + 2 chat servers."
	@echo "  clients connect to tcp:127.0.0.1:3010 or ws://127.0.0.1:3010/ (connector-server-1),"
	@echo "  and port 3011 (connector-server-2); server logs in example_game/logs/<id>.log."
	@echo "  pomelo-twisted list / stop --app example_game operate it; Ctrl-C stops it in order."
	@echo "  the live dashboard's address is printed below (master.json's dashboardPort)."
	$(VENV)/bin/pomelo-twisted start --app example_game $(START_ARGS)

# Every server of the example game in one process (in-process RPC, no master).
run-standalone: $(STAMP)
	@echo "pomelo_twisted: the example chat game, every server in one process."
	@echo "  connect clients to tcp:127.0.0.1:3010 or ws://127.0.0.1:3010/ (see README)"
	$(VENV)/bin/twistd -n --pidfile= pomelo $(RUN_ARGS)

bench: $(STAMP)
	$(PY) bench/codec.py
	$(PY) bench/wsframe.py
	$(PY) bench/runtime.py
	$(PY) bench/rpc.py
	@mkdir -p bench/results
	ulimit -n 20000 2>/dev/null || true; $(PY) bench/suite.py --json bench/results/suite.json

# The comparison with pinus alone: make bench-suite SUITE_ARGS="--scenarios broadcast --rounds 1"
bench-suite: $(STAMP)
	@mkdir -p bench/results
	ulimit -n 20000 2>/dev/null || true; $(PY) bench/suite.py --json bench/results/suite.json $(SUITE_ARGS)

clean:
	rm -rf $(VENV) fuzz/build .mypy_cache .ruff_cache .pytest_cache .hypothesis _trial_temp _trial_temp.lock build dist
	rm -rf *.egg-info twisted/plugins/dropin.cache
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
