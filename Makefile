# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
HTMX_VERSION := 2.0.11
BOOTSTRAP_VERSION := 5.3.9

.PHONY: run test chromium vendor lint dev clean

## dev: everything, including the benchmark and lint tools
dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

## run: the portal on SQLite in instance/, demo data when empty, inline provisioning agent
run: $(VENV)/.installed
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi seed demo --if-empty
	PORTAL_AGENT=$${PORTAL_AGENT:-inline} $(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT)

## test: the whole suite (unit, SQLite, PostgreSQL, Playwright)
test: $(VENV)/.installed-test chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## chromium: Playwright drives Debian's Chromium; install it (and a CJK font, so that
## screenshots of Chinese names are legible) when absent and we are root
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/wqy ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's chromium and fonts-wqy-zenhei for the browser tests…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; \
	  elif [ -x /usr/bin/chromium ]; then \
	    echo "Note: no CJK font installed; screenshots will show Chinese text as boxes." >&2; \
	  else \
	    echo "The browser tests need Chromium at /usr/bin/chromium. Install it with" >&2; \
	    echo "  sudo apt-get install chromium" >&2; \
	    echo "and run make test again." >&2; exit 1; \
	  fi; \
	fi

## vendor: refresh the pinned front-end files from the npm registry
vendor:
	rm -f static/vendor/htmx-*.js static/vendor/bootstrap-*
	set -e; tmp=$$(mktemp -d); cd $$tmp; \
	npm pack --silent htmx.org@$(HTMX_VERSION) bootstrap@$(BOOTSTRAP_VERSION) >/dev/null; \
	tar xzf htmx.org-$(HTMX_VERSION).tgz; \
	cp package/dist/htmx.min.js $(CURDIR)/static/vendor/htmx-$(HTMX_VERSION).min.js; \
	rm -rf package; tar xzf bootstrap-$(BOOTSTRAP_VERSION).tgz; \
	cp package/dist/css/bootstrap.min.css $(CURDIR)/static/vendor/bootstrap-$(BOOTSTRAP_VERSION).min.css; \
	cp package/dist/js/bootstrap.bundle.min.js $(CURDIR)/static/vendor/bootstrap-$(BOOTSTRAP_VERSION).bundle.min.js; \
	rm -rf $$tmp
	@echo "Vendored htmx $(HTMX_VERSION) and Bootstrap $(BOOTSTRAP_VERSION); update templates/base.html if the versions changed."

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check portal tests bench migrations

clean:
	rm -rf $(VENV) instance .pytest_cache
