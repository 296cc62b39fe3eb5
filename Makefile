# xatmodist developer commands. `make demo` and `make test` install first when .venv is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.14.1 is the build torch-harmonics 0.9.3 (the `sim` extra) is compiled against
TORCH ?= torch==2.14.1
# the torchvision of that torch, for the LPIPS row of `make bench` (the `bench` extra)
TORCHVISION ?= torchvision==0.29.1

.PHONY: install demo test test-isa lint docs bench clean

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

# the tests that compare numbers across chunkings, batch sizes, schedulers and clusters,
# again under the instruction sets oneDNN would pick on other x86-64 CPUs (AVX2: e.g. AMD
# EPYC before Zen 4; AVX512_CORE where this CPU has it): docs/reliability.md
INVARIANCE_TESTS := tests/test_api.py tests/test_faults.py tests/test_distributed.py \
	tests/test_properties.py tests/test_real_data.py tests/test_inpaint.py \
	tests/test_downscale.py tests/test_first_contact.py tests/test_analogs.py tests/test_devices.py \
	tests/test_ensembles.py
test-isa: $(BIN)/python
	ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m pytest -q -p no:cacheprovider $(INVARIANCE_TESTS)
	if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then \
		ONEDNN_MAX_CPU_ISA=AVX512_CORE $(BIN)/python -m pytest -q -p no:cacheprovider $(INVARIANCE_TESTS); \
	else echo "no AVX-512 on this CPU: AVX512_CORE run skipped"; fi

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
