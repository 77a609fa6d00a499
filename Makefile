# etagwatch: `make demo` runs the main job on the shipped captures, `make test` runs everything.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
DEMO_DB ?= demo.sqlite

.PHONY: demo test lint unit e2e bench bench-deps clean notebook

# setuptools warns on every editable install that analysis/ in the checkout shadows the
# installed package: that is what an editable install is for, so the warning is filtered.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -e '.[test,bench,notebook]'
	$(BIN)/python -m analysis.notebook_server --register-kernel
	touch $(STAMP)

demo: $(STAMP)
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	$(BIN)/etagwatch analyze sample_captures --db $(DEMO_DB) --json demo-report.json
	@echo "JSON report: demo-report.json   store: $(DEMO_DB)"

# JupyterLab on 127.0.0.1 with notebooks/explore.ipynb on the demo store (built first when
# missing); prints the URL with its token. The kernel is this venv's, named "etagwatch".
notebook: $(STAMP)
	@test -f $(DEMO_DB) || $(MAKE) --no-print-directory demo
	$(BIN)/python -m analysis.notebook_server notebooks/explore.ipynb --db $(DEMO_DB)

lint: $(STAMP)
	$(BIN)/ruff check analysis addons tests bench

test: lint
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q -m "not e2e"

e2e: $(STAMP)
	$(BIN)/pytest -q -m e2e

# bench/proxy.py's load generator (wrk) and its instruction counter (valgrind), from Debian.
bench-deps:
	command -v wrk >/dev/null && command -v valgrind >/dev/null || \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q --no-install-recommends wrk valgrind

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/detect.py
	$(BIN)/python bench/proxy.py

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm demo-report.json .pytest_cache
