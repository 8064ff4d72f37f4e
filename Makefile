# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
HTMX_VERSION := 2.0.11
BOOTSTRAP_VERSION := 5.3.9
# axe-core: the accessibility rules the browser tests run (tests/e2e/test_accessibility.py);
# never served to users.
AXE_VERSION := 4.14.1

.PHONY: run test system vendor lint dev clean translations extract protos

## dev: everything, including the benchmark and lint tools
dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | system $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-dev: pyproject.toml | system $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

## run: the portal on SQLite in instance/, demo data when empty, inline provisioning agent and controller
run: $(VENV)/.installed translations
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi seed demo --if-empty
	PORTAL_AGENT=$${PORTAL_AGENT:-inline} PORTAL_CONTROLLER=$${PORTAL_CONTROLLER:-inline} \
		$(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT)

## test: the whole suite (unit, SQLite, PostgreSQL, Playwright)
test: system $(VENV)/.installed-test translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## system: the Debian packages the test suite runs for real, installed when missing and we
## are root (CI); otherwise it names what to install. One line per package and its reason:
##   chromium, fonts-wqy-zenhei   Playwright drives Debian's Chromium; a CJK font makes
##                                screenshots of Chinese text legible
##   libvirt-dev, pkg-config      the libvirt driver's Python binding (libvirt-python) is
##                                built against them; its tests run libvirt's built-in
##                                test hypervisor (test:///default) from libvirt0
##   pgbouncer                    the deployment topology test runs the portal behind
##                                PgBouncer in transaction mode (tests/deploy)
##   prometheus                   the Prometheus metrics source is tested against a real
##                                server the tests start on their own port (tests/metrics)
SYSTEM_PACKAGES := chromium fonts-wqy-zenhei
SYSTEM_PACKAGES += libvirt-dev pkg-config
SYSTEM_PACKAGES += pgbouncer
SYSTEM_PACKAGES += prometheus
system:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages for the test suite:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "The test suite needs these Debian packages:" $$missing >&2; \
	    echo "  sudo apt-get install" $$missing >&2; exit 1; \
	  fi; \
	fi

## translations: compile the catalogs (the app also compiles a stale one when it starts)
translations: $(VENV)/.installed
	$(BIN)/pybabel -q compile -d portal/translations

## extract: after changing interface strings, refresh the template and the zh-TW catalog,
## then translate what it reports as missing (docs/glossary.zh-TW.md has the terms)
extract: $(VENV)/.installed
	$(BIN)/python -m portal.i18n_catalog update

## vendor: refresh the pinned front-end files from the npm registry
vendor:
	rm -f static/vendor/htmx-*.js static/vendor/bootstrap-* static/vendor/axe-*.js
	set -e; tmp=$$(mktemp -d); cd $$tmp; \
	npm pack --silent htmx.org@$(HTMX_VERSION) bootstrap@$(BOOTSTRAP_VERSION) axe-core@$(AXE_VERSION) >/dev/null; \
	tar xzf htmx.org-$(HTMX_VERSION).tgz; \
	cp package/dist/htmx.min.js $(CURDIR)/static/vendor/htmx-$(HTMX_VERSION).min.js; \
	rm -rf package; tar xzf bootstrap-$(BOOTSTRAP_VERSION).tgz; \
	cp package/dist/css/bootstrap.min.css $(CURDIR)/static/vendor/bootstrap-$(BOOTSTRAP_VERSION).min.css; \
	cp package/dist/js/bootstrap.bundle.min.js $(CURDIR)/static/vendor/bootstrap-$(BOOTSTRAP_VERSION).bundle.min.js; \
	rm -rf package; tar xzf axe-core-$(AXE_VERSION).tgz; \
	cp package/axe.min.js $(CURDIR)/static/vendor/axe-$(AXE_VERSION).min.js; \
	rm -rf $$tmp
	@echo "Vendored htmx $(HTMX_VERSION), Bootstrap $(BOOTSTRAP_VERSION) and axe-core $(AXE_VERSION); update templates/base.html (and tests/e2e/test_accessibility.py) if the versions changed."

## protos: regenerate the committed Python modules of cluster-autoscaler's externalgrpc
## protocol (portal/autoscaling/protos/*.proto). They are committed so that installing the
## portal needs grpcio and protobuf only, not the code generator; a test regenerates them
## and fails when they drift from the .proto files.
PROTOS := portal/autoscaling/protos
protos: $(VENV)/.installed-test
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
	  --grpc_python_out=. $(PROTOS)/externalgrpc.proto
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. $(PROTOS)/k8s_node.proto

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check portal tests bench migrations

clean:
	rm -rf $(VENV) instance .pytest_cache
