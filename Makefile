# The template's tasks. `make demo` bakes and serves the default project; `make test` runs every
# check. Both install what they need first (uv, the test servers), so a fresh clone needs only
# Python 3.11+, make and, for the servers, Debian's packages.

# uv from PATH, else a private copy installed into .tools/ on first use.
UV ?= $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PYTEST_WORKERS ?= 2
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test lint services bench

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==0.13.9

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --quiet
	touch $@

services:  ## Start Redis, PostgreSQL, memcached and DynamoDB Local unless they already answer
	scripts/services.sh

demo: .venv/.synced services  ## Bake the default project into .demo/, install it and serve it
	UV=$(UV) scripts/demo.sh

# mypy leaves out bench/targets.py: it runs inside a baked project, whose environment has
# FastAPI; the template's does not.
lint: .venv/.synced  ## ruff and mypy --strict on the template's own code
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked mypy answer_validation.py text_filters.py hooks tests bench/run.py

test: lint services  ## Everything: the template's lint, then every bake and baked test suite
	$(UV) run --locked pytest -n $(PYTEST_WORKERS)

bench: .venv/.synced services  ## Cached hits vs no work vs fastapi-cache2's quick start (wrk); table + JSON
	$(UV) run --locked python bench/run.py
