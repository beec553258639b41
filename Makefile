# The two commands a fresh machine needs: `make run` and `make test`. Everything else is installed
# from this repository's own files (requirements*.txt, package.json + package-lock.json).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Each target installs only what it needs (requirements-*.txt say why): the local stack's stamp,
# then the test tools and the official SDK (a 440 MB test oracle) for test and bench only.
LOCAL_STAMP := $(VENV)/.installed-local
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
EVENT  ?= {}

FZLEE  := .venv-fzlee

.PHONY: run demo reconcile invoke test package deploy remove bench clean fzlee browser

# Debian's headless browser for the checkout's browser tests: installed when missing (as root, with
# apt-get; otherwise the command to run is printed and those tests skip). Nothing is downloaded at
# test time: Selenium is handed /usr/bin/chromedriver.
BROWSER_PACKAGES := chromium chromium-driver fonts-wqy-zenhei

$(PY):
	$(PYTHON) -m venv $(VENV)

$(LOCAL_STAMP): requirements.txt requirements-local.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-local.txt
	touch $(LOCAL_STAMP)

$(STAMP): $(LOCAL_STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# fzlee's python-alipay-sdk (dev-only oracle for certificate SNs) in a virtualenv of its own: it
# installs a package named `alipay` like the official SDK. tests/dev creates the same on first use.
$(FZLEE)/.installed: requirements-fzlee.txt
	$(PYTHON) -m venv --clear $(FZLEE)
	$(FZLEE)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-fzlee.txt
	cp requirements-fzlee.txt $(FZLEE)/.installed

fzlee: $(FZLEE)/.installed

# The whole backend on 127.0.0.1:$(PORT) (default 3000): routes, moto DynamoDB, Alipay emulator.
run: $(LOCAL_STAMP)
	$(PY) -m local.run

# The curl walk-through, run against a stack started with `make run` (same PORT).
demo: $(LOCAL_STAMP)
	@$(PY) -m local.demo

# One reconciliation pass now over every shard, in the stack started with `make run` (same PORT),
# and its report (`make invoke FUNCTION=reconcile` runs the scheduled fan-out instead).
reconcile: $(LOCAL_STAMP)
	@$(PY) -m local.invoke reconcile_worker

# Any function of serverless.yml, directly: make invoke FUNCTION=refund EVENT='{"outTradeNo": ...}'
invoke: $(LOCAL_STAMP)
	@$(PY) -m local.invoke '$(FUNCTION)' '$(EVENT)'

browser:
	@if dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(BROWSER_PACKAGES) (Debian packages) for the browser tests"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES); \
	else echo "browser tests will skip: run  sudo apt-get install $(BROWSER_PACKAGES)"; fi

test: $(STAMP) $(NODE_STAMP) browser
	$(PY) -m pytest

# Offline: function zips, the layer (built for Lambda by deploy/build_layer.py) and the
# CloudFormation template land in .serverless/. No AWS account or credentials needed; the layer
# is fetched by the venv's own pip, so the venv needs nothing installed.
package: $(NODE_STAMP) | $(PY)
	npx serverless package

# Deploy a stage to AWS (README, "Deploy"): make deploy STAGE=prod REGION=ap-southeast-1. The
# deployer's environment tunes it (LAMBDA_ARCH, API_THROTTLE_*, JWT_*, PUBLIC_BASE_URL, ALARM_*).
deploy: $(NODE_STAMP) | $(PY)
	@test -n "$(STAGE)" -a -n "$(REGION)" || { echo "make deploy needs STAGE and REGION, e.g. make deploy STAGE=prod REGION=ap-southeast-1 (README, \"Deploy\")"; exit 2; }
	npx serverless deploy --stage $(STAGE) --region $(REGION)

# Remove a stage's stack; the Order table is retained (README, "Deploy": removing it on purpose).
remove: $(NODE_STAMP)
	@test -n "$(STAGE)" -a -n "$(REGION)" || { echo "make remove needs STAGE and REGION, e.g. make remove STAGE=prod REGION=ap-southeast-1"; exit 2; }
	npx serverless remove --stage $(STAGE) --region $(REGION)

# Speed and size next to their limits and references, measured in one run (bench/run.py).
bench: $(STAMP) $(NODE_STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(FZLEE) node_modules .serverless .build .pytest_cache .hypothesis
