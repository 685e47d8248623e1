# Two commands on a fresh machine:  `make run`  and  `make test`.
# The virtual environment lives outside the clone (torch is several GB) and is reused between runs;
# a stamp keyed by the requirements' hash decides when pip has to run again.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= $(HOME)/.cache/cnndash/venv
PY := $(VENV)/bin/python
PORT ?= 8501
RUN_HASH := $(shell cat requirements.txt | sha256sum | cut -c1-16)
DEV_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast lint e2e bench soak venv dev-deps browser clean-venv i18n

run: $(VENV)/.run-$(RUN_HASH)
	$(PY) -m streamlit run app.py --server.port $(PORT)

# The full suite, as CI runs it: lint, formatting, engine + AppTest + browser tests.
test: $(VENV)/.dev-$(DEV_HASH) browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

# The inner loop: engine and AppTest page tests, no browser (a few minutes instead of the full suite).
test-fast: $(VENV)/.dev-$(DEV_HASH)
	$(PY) -m pytest -m "not e2e"

lint: $(VENV)/.dev-$(DEV_HASH)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

e2e: $(VENV)/.dev-$(DEV_HASH) browser
	$(PY) -m pytest -m e2e

# The fault-injection state machines at length (~10 min each): random concurrent commands and kill -9,
# every invariant checked after every step; prints operations, kills and violations (docs/reliability.md).
# A short run of each is part of `make test`.
SOAK_EXAMPLES ?= 60
SOAK_STEPS ?= 25
soak: $(VENV)/.dev-$(DEV_HASH)
	CNNDASH_SOAK=1 $(PY) -m pytest -q -s tests/engine/jobs/test_fault_injection_runs.py
	CNNDASH_SOAK_EXAMPLES=$(SOAK_EXAMPLES) CNNDASH_SOAK_STEPS=$(SOAK_STEPS) $(PY) -m pytest -s --timeout 1800 tests/engine/store/test_fault_injection.py

bench: $(VENV)/.dev-$(DEV_HASH)
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-$(RUN_HASH): requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-$(DEV_HASH): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# Browser tests drive Debian's chromium through Playwright (Playwright's own browser download
# does not work offline), so install the distribution package when it is missing.
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "Installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi
	@# A CJK font, so that the 简体中文 screenshots (tests/e2e/test_i18n.py) show characters, not boxes.
	@if ! fc-list :lang=zh | grep -q .; then \
		echo "Installing a CJK font for the browser tests"; \
		( $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-wqy-microhei ) \
			|| echo "No CJK font installed: 简体中文 screenshots will show boxes (the tests read the DOM, not pixels)."; \
	fi

clean-venv:
	rm -rf $(VENV)

# Translations (docs/i18n.md): extract every domain's message ids with Babel and update
# locales/zh_CN/LC_MESSAGES/<domain>.po (new ids untranslated, unused ids dropped, translations kept).
i18n: $(VENV)/.dev-$(DEV_HASH)
	$(PY) -m ui.catalogs
