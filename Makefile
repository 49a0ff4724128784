# The two commands a newcomer needs: `make run` and `make test` (see README.md).
.PHONY: run test setup test-postgres bench

setup:
	scripts/setup.sh

run:
	scripts/run.sh

test: setup
	.venv/bin/python -m pytest $(PYTEST_ARGS)

bench: setup
	for b in bench/*.py; do .venv/bin/python $$b; done
