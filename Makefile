# make run   - set everything up and serve the portal on 127.0.0.1:8000
# make test  - set everything up and run every test (lint, types, JS vectors, unit, browser)
# make setup - the set-up alone; make bench - the benchmarks

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
ASSETS := static/dist/manifest.json
JS_SOURCES := $(shell find static/src static/css -type f 2>/dev/null) build.mjs esbuild.options.mjs

.PHONY: setup run test lint typecheck jstest pytest vectors bench load audit messages clean system-node system-browser system-postgres

setup: $(PY_STAMP) $(ASSETS)

system-node:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "installing Node.js and npm (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }

# Chromium (driven through ChromeDriver) and Firefox ESR, what Tor Browser is built on
# (driven over Marionette by marionette-driver from PyPI: Debian ships no geckodriver).
# The Noto fonts are the ones Tor Browser ships for Arabic script and Burmese: the
# browser tests check that Persian and Burmese are drawn with them.
system-browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v firefox-esr >/dev/null \
	  && fc-list 2>/dev/null | grep -q "Noto Sans Myanmar" || { \
	  echo "installing Chromium, ChromeDriver, Firefox ESR and Noto fonts (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver firefox-esr fonts-noto-core; }

$(PY_STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(NPM_STAMP): package.json package-lock.json | system-node
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(ASSETS): $(NPM_STAMP) $(JS_SOURCES)
	node build.mjs

# The public portal on 127.0.0.1:8000 and, on a listener of its own, the relay
# staff's pages on 127.0.0.1:8001 (stopped together with Ctrl+C).
run: setup
	@PORTAL_DEMO=1 PORTAL_BIND=$${PORTAL_RELAY_BIND:-127.0.0.1:8001} PORTAL_WORKERS=1 \
	  $(BIN)/gunicorn 'portal:create_relay_app()' & relay=$$!; \
	  trap 'kill $$relay 2>/dev/null' EXIT INT TERM; \
	  PORTAL_DEMO=1 $(BIN)/gunicorn 'portal:create_app()'

lint: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/ruff check .
	npx --no-install eslint .

# The browser's protocol modules against the shared known answers (tests/vectors/).
jstest: $(NPM_STAMP)
	node --test tests/js/

# Rewrite the known answers from the Python protocol (only when it changes on purpose).
vectors: $(PY_STAMP)
	$(BIN)/python -m tests.vectors.make

typecheck: $(PY_STAMP)
	$(BIN)/mypy

# PostgreSQL's server binaries, for the tests' throwaway clusters (tests/harness/postgres.py).
system-postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# Everything but the browsers runs on both cores (pytest-xdist), on SQLite and
# then, for every test that stores through the portal, on a PostgreSQL server
# the run starts. The browser tests run two files at a time (each file's
# portal stays with one worker; the two-host test on PostgreSQL among them),
# then those marked `alone`, which time failures or load the portal, by
# themselves. PYTEST_ARGS (e.g. a -k filter) goes to every run; a filter that
# leaves no test marked `alone` is not a failure (pytest's exit status 5).
pytest: setup system-browser system-postgres
	$(BIN)/pytest -n 2 --ignore=tests/e2e $(PYTEST_ARGS)
	PORTAL_TEST_DATABASE=postgres $(BIN)/pytest -n 2 --ignore=tests/e2e $(PYTEST_ARGS)
	$(BIN)/pytest -n 2 --dist loadfile -m "not alone" tests/e2e $(PYTEST_ARGS)
	$(BIN)/pytest -m alone tests/e2e $(PYTEST_ARGS) || [ $$? -eq 5 ]

test: lint typecheck jstest pytest

bench: setup system-browser
	$(BIN)/python -m bench

load: setup
	$(BIN)/python -m bench.load --seconds $${LOAD_SECONDS:-30} --clients $${CLIENTS:-8}

audit: setup
	$(BIN)/pip install --quiet --disable-pip-version-check pip-audit
	$(BIN)/pip-audit --skip-editable
	npm audit --omit=dev

clean:
	rm -rf $(VENV) node_modules static/dist

# Re-read every translatable string and merge it into the catalogs; new strings
# arrive untranslated, and the suite fails until someone translates them.
messages: $(PY_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k plural_variants:1,2 --no-location --sort-output --project reporting-portal -o portal/common/translations/messages.pot .
	$(BIN)/pybabel update -i portal/common/translations/messages.pot -d portal/common/translations --width 100 --no-fuzzy-matching --ignore-obsolete
