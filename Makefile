PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test bench clean

# Extras to install with the package: test (the default), ray (the ray backend), or both (EXTRAS=test,ray).
EXTRAS ?= test
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

run: install
	$(BIN)/supervisor-sessions serve

# Five stages: the core, the real agent CLIs from npm, the dashboard in a headless Chromium, README's first
# screen on a fresh clone, and the ray backend on a real local Ray cluster (in a network namespace of its own,
# see tests/own_network.py), where the API contract tests run once more on Ray, and (as root, where ../shared
# is beside the checkout) the shared acceptance checks on the ray backend.
test:
	$(MAKE) install EXTRAS=test,ray
	$(BIN)/python -m pytest -q -m "not agents and not browser and not firstscreen and not ray"
	$(BIN)/python -m pytest -q -m agents
	$(BIN)/python -m pytest -q -m browser
	$(BIN)/python -m pytest -q -m firstscreen
	$(BIN)/python tests/own_network.py $(BIN)/python -m pytest -q -m ray
	SESSIONS_TEST_BACKEND=ray $(BIN)/python -m pytest -q $(RAY_CONTRACT_TESTS)
	@if [ "$$(id -u)" = 0 ] && [ -x ../shared/acceptance/run ]; then \
		echo "the shared acceptance checks on the ray backend"; SESSIONS_BACKEND=ray ../shared/acceptance/run; fi

# The API's contract on the ray backend too (an embedded head of serve's own per test module).
RAY_CONTRACT_TESTS := tests/test_http_api.py tests/test_rpc_contract.py

bench: install
	$(BIN)/python bench/bench_plugin.py

clean:
	rm -rf $(VENV) build *.egg-info
