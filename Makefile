# The README's two commands: `make demo` and `make test`. Both set up the venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench tutorials docs docs-setup clean

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
	$(BIN)/python -m pytest -q -rs  # -rs: every skip with its reason

bench: setup
	$(BIN)/python -m benchmarks.speed --force  # replaces an earlier run in benchmarks/out/
	$(BIN)/python -m benchmarks.train_speed --force

tutorials: setup
	$(BIN)/python tutorials/run.py  # executes the four notebooks with the solutions filled in, in a temporary folder

# The documentation site, into site/ (open site/index.html; no server, nothing fetched). The docs
# set-up adds the docs extra, KaTeX from npm (docs/vendor, pinned by its lock file) and, as root,
# Debian's chromium for the browser test (tests/repo/test_docs_site.py).
docs-setup: $(VENV)/.docs-installed

$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml docs/vendor/package-lock.json
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[docs]'
	npm ci --prefix docs/vendor --no-audit --no-fund --loglevel=error
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "note: the browser test needs Debian's chromium (apt-get install -y chromium, as root); without it, it skips"
	touch $@

docs: docs-setup
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --clean --site-dir site

clean:
	rm -rf $(VENV) inti-demo benchmarks/out site docs/vendor/node_modules
