# Well: the README's commands. `make demo` runs the product; `make test` runs the checks.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: install system-packages demo demo-reset test audit lint fmt migrate worker bench-sync bench-match bench-post bench-review bench-api bench-scale

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml requirements.lock
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

# axe-core (npm), which the browser tests inject into every page they check for accessibility.
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json
	@./scripts/system-packages.sh
	npm ci --no-audit --no-fund --silent
	@touch $(AXE)

install: $(STAMP) $(AXE)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: install
	$(PY) manage.py migrate

# Chromium and the fonts the tests need, installed when missing if it can (else it says how).
system-packages:
	@./scripts/system-packages.sh

test: install system-packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/well} $(PY) manage.py makemigrations --check --dry-run
	$(BIN)/pytest --ds=tests.settings $(PYTEST_ARGS)

# Known vulnerabilities in the locked dependencies, and Django's deployment check run on production
# settings (throwaway secrets: the check reads the configuration, it serves nothing).
audit: install
	$(PY) .ci/dependency_audit.py
	DEBUG=false ALLOWED_HOSTS=well.example EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	WELL_MASTER_KEYS=mkaudit:$$($(PY) -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())') \
	$(PY) manage.py check --deploy --fail-level WARNING

# The demo keeps its database and sandbox state in var/, the data folder every `python manage.py`
# command reads by default (no DATABASE_URL or WELL_DATA_DIR set), until `make demo-reset`.
demo: install
	$(PY) manage.py demo

demo-reset:
	rm -rf var

worker: install
	$(PY) manage.py qcluster

# Benchmarks: each prints its figures as one JSON line; docs/benchmarks.md records them.
BENCH_DB := DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/well}

bench-sync: install
	$(BENCH_DB) $(PY) -m benchmarks.bench_sync

bench-post: install
	$(BENCH_DB) $(PY) -m benchmarks.bench_post

bench-review: install
	$(BENCH_DB) $(PY) -m benchmarks.bench_review

# Needs Debian's wrk (apt-get install wrk) as the load tool.
bench-api: install
	$(BENCH_DB) $(PY) -m benchmarks.bench_api

# The dispatcher with 1,000 and 10,000 workspaces (simulated hours, no real syncs).
bench-scale: install
	$(BENCH_DB) $(PY) -m benchmarks.bench_scale

bench-match: install
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev,bench]'
	$(PY) -m benchmarks.bench_match
