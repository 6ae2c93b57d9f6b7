PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test bench clean

install: $(BIN)/supervisor-sessions

$(BIN)/supervisor-sessions: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/supervisor-sessions serve

# Three stages: the core, the real agent CLIs from npm, the dashboard in a headless Chromium.
test: install
	$(BIN)/python -m pytest -q -m "not agents and not browser"
	$(BIN)/python -m pytest -q -m agents
	$(BIN)/python -m pytest -q -m browser

bench: install
	$(BIN)/python bench/bench_plugin.py

clean:
	rm -rf $(VENV) build *.egg-info
