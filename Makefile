# The two commands a newcomer needs: `make run` and `make test` (see README.md).
.PHONY: run test lint setup test-postgres bench bench-small

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

# Full-size benchmarks (README "Benchmarks"); bench/standin.py is the outgoing benches' Intercom.
BENCHES = hull_notifications outgoing outgoing_rate incoming intercom_client load company_scroll twins

bench: setup
	set -e; for b in $(BENCHES); do .venv/bin/python bench/$$b.py; done

# The small pass CI runs after the tests: every bench stays alive, and the outgoing rate bench
# fails when a ratio against its baseline leg (same run) is worse than bench/expected_ratios.json.
bench-small: setup
	set -e; \
	.venv/bin/python bench/hull_notifications.py --messages 1000 --repeat 1 --check; \
	.venv/bin/python bench/outgoing.py --entities 10 --messages 200; \
	.venv/bin/python bench/outgoing_rate.py --messages 400 --notifications 2 --limit 166 --window 1 --check bench/expected_ratios.json; \
	.venv/bin/python bench/outgoing_rate.py --messages 400 --notifications 2 --limit 166 --window 1 --enter-segment --check bench/expected_ratios.json; \
	.venv/bin/python bench/incoming.py --contacts 2000 --small 500 --sandbox-contacts 200 --webhooks 200; \
	.venv/bin/python bench/intercom_client.py --contacts 4 --rounds 1; \
	.venv/bin/python bench/load.py --duration 5 --rate 4; \
	.venv/bin/python bench/company_scroll.py --companies 500; \
	.venv/bin/python bench/twins.py --leads 10 --notifications 4 --workers 4
