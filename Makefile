# The two commands a fresh machine needs: `make run` and `make test`. Everything else is installed
# from this repository's own files (requirements*.txt, package.json + package-lock.json).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: run test package bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

run: $(STAMP)
	$(PY) -m local.run

test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest

package: $(NODE_STAMP)
	npx serverless package

# Speed and size next to their limits and references, measured in one run (bench/run.py).
bench: $(STAMP) $(NODE_STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules .serverless .pytest_cache .hypothesis
