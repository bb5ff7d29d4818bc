# The two commands for a fresh machine: `make run` (the app with demo data) and `make test`.
.PHONY: install run test check

install:
	@scripts/ensure-uv
	@uv sync --frozen --compile-bytecode --quiet

run: install
	@scripts/run-local

test: install
	@scripts/test $(PYTEST_ARGS)

check: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python manage.py makemigrations --check --dry-run
