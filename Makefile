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

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/bench_plugin.py

clean:
	rm -rf $(VENV) build *.egg-info
