# xatmodist developer commands. `make demo` and `make test` install first when .venv is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.14.1 is the build torch-harmonics 0.9.3 (the `sim` extra) is compiled against
TORCH ?= torch==2.14.1
# the torchvision of that torch, for the LPIPS row of `make bench` (the `bench` extra)
TORCHVISION ?= torchvision==0.29.1

.PHONY: install demo test lint docs bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[sim,train,dev,docs]"

install: $(BIN)/python

demo: $(BIN)/python
	$(BIN)/xatmodist demo --out demo-output

test: $(BIN)/python
	$(BIN)/python -m pytest -q

lint: $(BIN)/python
	$(BIN)/ruff check xatmodist tests benchmarks scripts

# the site with executed tutorials, warnings as errors (XATMODIST_DOCS_EXECUTE=cache reuses outputs)
docs: $(BIN)/python
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

# the benchmark table (benchmarks/README.md); LPIPS needs torchvision, not a core dependency
bench: $(BIN)/python
	$(BIN)/python -m pip install "$(TORCHVISION)" -e ".[bench]"
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) demo-output .pytest_cache build dist *.egg-info
