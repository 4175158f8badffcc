# Two commands do everything on a fresh clone:
#   make demo   set up .venv if needed, run the pipeline on data/, serve the pushed model and query it
#   make test   set up .venv if needed, run the whole test suite
# Python 3.10 is required (TFX 1.16 supports >=3.9,<3.11); PYTHON=/path/to/python3.10 overrides the search.

SHELL := /bin/bash
VENV  := .venv
STAMP := $(VENV)/.installed
BIN   := $(VENV)/bin
PYTEST_ARGS ?=
export PYTHON

# Print a Python 3.10 interpreter: $$PYTHON, else python3.10 on PATH if it really
# runs (pyenv's shim fails unless 3.10 is selected), else pyenv's 3.10.x.
define FIND_PYTHON
is310() { "$$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }; \
if [ -n "$${PYTHON:-}" ]; then \
  is310 "$$PYTHON" && echo "$$PYTHON" && exit 0; \
  echo "error: PYTHON=$$PYTHON is not a working Python 3.10 (TFX 1.16 needs >=3.9,<3.11)" >&2; exit 1; \
fi; \
if command -v python3.10 >/dev/null 2>&1 && is310 python3.10; then command -v python3.10; exit 0; fi; \
root="$$(pyenv root 2>/dev/null || echo "$$HOME/.pyenv")"; \
for py in $$(ls -d "$$root"/versions/3.10.*/bin/python3.10 2>/dev/null | sort -V -r); do \
  is310 "$$py" && echo "$$py" && exit 0; \
done; \
echo "error: no Python 3.10 found; TFX 1.16 supports Python >=3.9,<3.11 only." >&2; \
echo "Install one (pyenv install 3.10, or your OS's python3.10), or run: make PYTHON=/path/to/python3.10 ..." >&2; \
exit 1
endef

.PHONY: demo demo-spans demo-loop test bench bench-serving notebook setup clean

setup: $(STAMP)

# Re-installs only when the lock or setup.py changed: a second run skips it.
$(STAMP): requirements.lock setup.py pyproject.toml
	@py="$$( $(FIND_PYTHON) )" || exit 1; \
	echo "Using $$py ($$($$py --version 2>&1))"; \
	if [ ! -x $(BIN)/python ] || ! $(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then \
	  rm -rf $(VENV) && $$py -m venv $(VENV) || exit 1; \
	fi
	$(BIN)/python -m pip install --quiet pip==24.3.1 setuptools==79.0.1 wheel==0.48.0
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tfxp run
	$(BIN)/tfxp report --out outputs/report.html
	$(BIN)/tfxp runs export latest --mlflow sqlite:///$(CURDIR)/outputs/mlflow.db
	$(BIN)/python -m serving.demo

# Data over time: data/data.csv cut into yearly spans; span 1 (2013), then span 2
# (2014), which the drift gate stops (the card share rose); then span 2 again
# in warn mode, trained on both spans. Outputs under outputs/spans/.
demo-spans: $(STAMP)
	@[ -d data/spans ] || $(BIN)/tfxp data spans data/data.csv --by year --out data/spans
	$(BIN)/tfxp run --profile spans --span 1
	@$(BIN)/tfxp run --profile spans --span 2 || echo "(expected: the drift gate stopped span 2; now in warn mode)"
	$(BIN)/tfxp run --profile spans --span 2 --gate-policy warn
	$(BIN)/tfxp report --profile spans --out outputs/spans/report.html

# Lint and type-check first (seconds), then the suite.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The classic notebook UI over notebooks/, where TFMA's widgets draw (see review/notebook_server.py).
# TFXP_OUTPUT_DIR=DIR reviews runs in another output directory.
NOTEBOOK_PORT ?= 8888
NOTEBOOK_TOKEN ?=
notebook: $(STAMP)
	$(BIN)/python -m review.notebook_server --port $(NOTEBOOK_PORT) $(if $(NOTEBOOK_TOKEN),--token $(NOTEBOOK_TOKEN))

clean:
	rm -rf outputs .pytest_cache data/spans

# The production loop: train on span 1, serve with request logging, replay normal
# then shifted rides, monitor (fare flagged), retrain on span 2 through the same
# gates, and watch the server move to the new version. Outputs under outputs/loop/.
demo-loop: $(STAMP)
	rm -rf outputs/loop
	$(BIN)/python -m monitoring.demo

# Benchmarks write JSON under outputs/bench/ (not timed tests: this machine is noisy).
bench: $(STAMP)
	$(BIN)/python -m bench.pipeline --out outputs/bench/pipeline.json

# Needs a pushed model: run `make demo` first.
bench-serving: $(STAMP)
	$(BIN)/python -m serving.bench --model_base_path outputs/serving_model/taxi --out outputs/bench/serving.json
