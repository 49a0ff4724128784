# The two commands a newcomer needs: `make run` and `make test` (see README.md).
.PHONY: run test lint setup test-postgres bench

setup:
	scripts/setup.sh

run:
	scripts/run.sh

# `make test` lints first: ruff's rules, then mypy with django-stubs (both configured in pyproject.toml).
lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

test: lint
	.venv/bin/python -m pytest $(PYTEST_ARGS)

# The scale-out pass of .ci/run, locally: throw-away PostgreSQL + Redis, then the whole suite.
test-postgres: setup
	scripts/services.sh start
	DATABASE_URL=postgres://connector:connector@127.0.0.1:5432/connector REDIS_URL=redis://127.0.0.1:6379/0 \
		.venv/bin/python -m pytest $(PYTEST_ARGS)

bench: setup
	for b in bench/*.py; do .venv/bin/python $$b; done
