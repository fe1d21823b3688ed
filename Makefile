# The two commands of the README. Each installs what it needs first (scripts/setup.sh).
.PHONY: demo test lint setup

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/pgcontext demo

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check src tests migrations benchmarks
	.venv/bin/ruff format --check src tests migrations benchmarks
	.venv/bin/mypy
