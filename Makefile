# The two commands: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed-stamp
AXE = tests/browser/node_modules/axe-core/axe.min.js
MO = portal/translations/fr/LC_MESSAGES/messages.mo
CHROMIUM = /usr/bin/chromium
# Where `make run` serves: `make run PORT=8000`, or PORT in the environment. HOST only on the
# command line (`make run HOST=0.0.0.0`): some shells set HOST to the machine's name, and the
# demo's admin password is in the README.
PORT ?= 5000
HOST = 127.0.0.1
export FLASK_APP = portal

.PHONY: run test install translations extract-messages bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

$(MO): portal/translations/fr/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -d portal/translations

translations: $(MO)

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the accessibility checks: apt-get install npm"; exit 1; }
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $(AXE)

# The browser tests drive Debian's chromium (Playwright's own download does not work here).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "The browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi

## Set up and serve the portal at http://$(HOST):$(PORT) on SQLite with demo data.
# The demo's emails link to where it is served, unless PORTAL_BASE_URL says otherwise.
run: export PORTAL_BASE_URL ?= http://$(HOST):$(PORT)
run: $(STAMP) $(MO)
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	$(BIN)/flask run-dev --host $(HOST) --port $(PORT)

## Set up and run the whole test suite.
test: $(STAMP) $(MO) $(AXE) $(CHROMIUM)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

extract-messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k lazy_pgettext:1c,2 -o portal/translations/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update -i portal/translations/messages.pot -d portal/translations --no-fuzzy-matching --ignore-obsolete

bench: $(STAMP)
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/register.py
	$(BIN)/python bench/register_cpu.py --postgres

clean:
	rm -rf $(VENV) instance/*.sqlite3 instance/mailbox tests/browser/node_modules
