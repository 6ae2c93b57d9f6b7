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

# Four stages: the core, the real agent CLIs from npm, the dashboard in a headless Chromium, README's first
# screen on a fresh clone.
test: install
	$(BIN)/python -m pytest -q -m "not agents and not browser and not firstscreen"
	$(BIN)/python -m pytest -q -m agents
	$(BIN)/python -m pytest -q -m browser
	$(BIN)/python -m pytest -q -m firstscreen

bench: install
	$(BIN)/python bench/bench_plugin.py

clean:
	rm -rf $(VENV) build *.egg-info
