# The README's two commands: `make demo` and `make test`. Both set up the venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench tutorials clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned, so that nothing later pulls in another build.
	$(BIN)/python -m pip install -q -c constraints.txt torch torchvision
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all]'
	touch $@

demo: setup
	$(BIN)/inti demo --force  # replaces the figures of an earlier make demo in inti-demo/

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m benchmarks.speed --force  # replaces an earlier run in benchmarks/out/
	$(BIN)/python -m benchmarks.train_speed --force

tutorials: setup
	$(BIN)/python tutorials/run.py  # executes the four notebooks with the solutions filled in, in a temporary folder

clean:
	rm -rf $(VENV) inti-demo benchmarks/out
