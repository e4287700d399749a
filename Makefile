# Formflow: `make run` serves the app on http://127.0.0.1:8000, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ASSETS := web/static/vendor/.built
PORT ?= 8000

.PHONY: run test lint typecheck unit assets install migrate seed lock messages clean

install: $(INSTALLED)

$(INSTALLED): requirements-dev.lock pyproject.toml examples/step-plugin-sample/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Formflow needs Python 3.11 or newer; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip install --quiet --no-deps -e examples/step-plugin-sample
	touch $@

assets: $(ASSETS)

$(ASSETS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p web/static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/sortablejs/Sortable.min.js web/static/vendor/
	touch $@

migrate: install
	$(BIN)/formflow migrate

seed: migrate
	$(BIN)/formflow seed-demo

run: install assets seed
	$(BIN)/formflow serve --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: install assets lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Regenerate the lock files after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements-dev.lock -q
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -c requirements-dev.lock -o requirements.lock -q

# Refresh the message catalogs from the msgids in code and templates.
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -o var/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i var/messages.pot -d web/locale -l zh_CN --no-fuzzy-matching
	sed -i '/Report-Msgid-Bugs-To/d; /PO-Revision-Date/d; /Last-Translator/d; /Language-Team/d' web/locale/zh_CN/LC_MESSAGES/messages.po
	@echo "now translate the empty msgstr entries in web/locale/zh_CN/LC_MESSAGES/messages.po"

clean:
	rm -rf $(VENV) node_modules web/static/vendor .pytest_cache .ruff_cache .mypy_cache
