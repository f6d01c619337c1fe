# Commands for a fresh machine with Python 3.11+, git and make (see README.md, CONTRIBUTING.md):
#   make demo       bake the default project and run it against a local S3 server
#   make check      lint and the fast tests (about a minute)
#   make test       lint and the whole test suite
#   make instance   render the default project into build/instance, a repository of its own
# Each creates its own environment in .venv/ from the pinned requirements/dev.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export ITERATIVE_DO_NOT_TRACK := 1

.PHONY: demo check test lint bench instance lock clean rsync

demo: $(VENV)/.installed node_modules/.installed rsync
	$(BIN)/python -m tools.demo

# Fast tests: everything not marked `slow` (slow ones run a baked project's pipeline or CI).
check: lint node_modules/.installed
	$(BIN)/python -m pytest -n 2 -m "not slow" tests

test: lint node_modules/.installed rsync
	$(BIN)/python -m pytest -n 2 --durations=12 tests

OWN_CODE := hooks harness tests tools benchmarks local_extensions.py
lint: $(VENV)/.installed
	$(BIN)/ruff check $(OWN_CODE)
	$(BIN)/ruff format --check $(OWN_CODE)
	$(BIN)/python -m tools.lint

instance: $(VENV)/.installed
	$(BIN)/python -m tools.instance render build/instance $(if $(TEMPLATE_URL),--template-url "$(TEMPLATE_URL)")

bench: $(VENV)/.installed node_modules/.installed rsync
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.ci_pipeline --template-commit 6a20f9e
	$(BIN)/python -m benchmarks.latency_budget
	$(BIN)/python -m benchmarks.sweep
	$(BIN)/python -m benchmarks.data_size
	$(BIN)/python -m benchmarks.estimators
	$(BIN)/python -m benchmarks.report_intervals
	$(BIN)/python -m benchmarks.predict_rows
	$(BIN)/python -m benchmarks.forest_size

# uv installs the locked stack in seconds where pip takes over a minute. Bytecode is compiled at
# install time because every pipeline stage is a new process that imports scikit-learn, pandas
# and matplotlib: from source that costs ~7 s a process, from .pyc ~2 s (and machines that set
# PYTHONDONTWRITEBYTECODE would never write the .pyc files themselves).
$(VENV)/.installed: requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$$(grep '^uv==' requirements/dev.txt)"
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements/dev.txt
	touch $@

# gitlab-ci-local, pinned in package-lock.json, runs the generated pipeline in the tests.
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# gitlab-ci-local copies job workspaces with rsync, even in shell mode.
rsync:
	@command -v rsync >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq rsync >/dev/null; } \
		|| { echo "error: rsync is missing: install it (Debian/Ubuntu: sudo apt-get install rsync)." >&2; exit 1; }

# Re-pin both lock files after editing requirements/*.in.
# The project's lock starts at cookiecutter.json's _min_python, which becomes its requires-python.
lock: $(VENV)/.installed
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements/dev.in -o requirements/dev.txt
	$(BIN)/uv pip compile --quiet --universal --no-header \
		--python-version "$$($(BIN)/python -c 'import json; print(json.load(open("cookiecutter.json"))["_min_python"])')" \
		requirements/project.in \
		-o '{{cookiecutter.project_slug}}/requirements.lock'

clean:
	rm -rf $(VENV) node_modules .pytest_cache build
