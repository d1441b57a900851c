# Entry points: `make reproduce` (the pipeline), `make test` (the test suite), `make lint`, and
# `make check-results` (a rerun of a scale compared with its committed outputs). Each creates .venv on
# first use and installs the pinned dependencies into it: requirements.lock's hashed lines (Snakemake and
# the wheels the Nix flake shares) in pip's hash-checking mode, then the rest by version.
PYTHON ?= python3
VENV ?= .venv
SCALE ?= full
CORES ?= all
# TARGETS: outputs to make (default: rule all); CONFIG: more KEY=VALUE pairs for the one --config
# (a second --config in EXTRA would replace scale=$(SCALE), not add to it).
TARGETS ?=
CONFIG ?=
# TORCH_INDEX: a package index to take torch from before the rest (e.g. PyTorch's CPU-only wheels,
# https://download.pytorch.org/whl/cpu; PyPI's Linux wheel is the CUDA build, several GB); empty: PyPI
TORCH_INDEX ?=
# bench-baselines times our methods also with the torch.compile'd forward (the fast path)
BASELINE_ARGS ?= --compiled
# make test: pytest-xdist workers, one test file each at a time (0: one process, no workers); the
# smoke pipeline, the longest file, starts first (tests/conftest.py)
PYTEST_WORKERS ?= 2
BIN := $(VENV)/bin

.PHONY: reproduce test test-oldest-torch bench lint clean-results gpu-check check-results expected-outputs

$(VENV)/.installed: requirements.txt requirements.lock requirements-slurm.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "setuptools>=68"
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --quiet --index-url $(TORCH_INDEX) "$$(grep '^torch==' requirements.txt)")
	grep -E '^[^#].* --hash=sha256:' requirements.lock > $(VENV)/hashed.txt
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r $(VENV)/hashed.txt
	sed 's/ --hash=[^ ]*//' requirements.lock > $(VENV)/constraints.txt
	$(BIN)/python -m pip install --quiet -r requirements.txt -c $(VENV)/constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-slurm.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

reproduce: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" snakemake --cores $(CORES) $(TARGETS) $(EXTRA) --config scale=$(SCALE) $(CONFIG)

test: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		$(PYTEST_ARGS)

# The engine's exactness and fast-path tests under the oldest torch the project claims (pyproject.toml's
# lower bound; requirements-torch-oldest.txt), in a venv of their own with only torch, numpy and pytest.
OLDEST_VENV ?= .venv-torch-oldest
ENGINE_TESTS ?= tests/test_hypergrad_exact.py tests/test_hypergrad_approximate.py tests/test_hypergrad_methods.py \
	tests/test_hypergrad_memory_and_errors.py tests/test_hypergrad_modules.py tests/test_onednn_products.py tests/test_gradient_step.py
$(OLDEST_VENV)/.installed: requirements-torch-oldest.txt
	test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet -r requirements-torch-oldest.txt
	touch $@

test-oldest-torch: $(OLDEST_VENV)/.installed
	PYTHONPATH=src $(OLDEST_VENV)/bin/python -m pytest -p no:cacheprovider $(ENGINE_TESTS)

bench: $(VENV)/.installed
	$(BIN)/python -m truncback bench-methods $(BENCH_ARGS)
	$(BIN)/python -m truncback bench-baselines $(BASELINE_ARGS)
	$(BIN)/python -m truncback bench-products $(PRODUCTS_ARGS)
	$(BIN)/python -m truncback bench-batched $(BATCHED_ARGS)

# Needs only torch, numpy, pandas, matplotlib and pyyaml (a CUDA machine's own Python): no venv, no Snakemake.
# Uses .venv's Python where it exists, else $(PYTHON).
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-check:
	PYTHONPATH=src $(GPU_PYTHON) -m truncback gpu-check --output gpu_check.md

lint: $(VENV)/.installed
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples
	$(BIN)/mypy -p truncback
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m truncback lint-workflow
	$(BIN)/snakefmt --check Snakefile rules

# A rerun of SCALE (default quick) in .check/SCALE/, every number compared with the committed outputs
# within the measured cross-machine spread; exits 1 on a DIFFERENT line. Never writes the committed files.
check-results: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m truncback check-results --scale $(if $(filter full,$(SCALE)),quick,$(SCALE)) --cores $(CORES) $(if $(CONFIG),--config $(CONFIG))

# Maintainers: remake the committed expected outputs of SCALE from a clean export of HEAD (.expected/SCALE/);
# RESUME=1 continues a killed run of the same commit, REUSE=1 keeps an earlier commit's run and reruns what changed.
expected-outputs: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m truncback expected-outputs --scale $(SCALE) --cores $(CORES) $(if $(RESUME),--resume) $(if $(REUSE),--reuse) $(if $(TARGETS),--targets $(TARGETS)) $(if $(CONFIG),--config $(CONFIG))

# Removes what runs made and nothing committed (git restores the expected outputs they overwrote).
clean-results:
	rm -rf results logs benchmarks figures/smoke paper_tables/smoke .snakemake .check .expected
	git checkout -- figures paper_tables 2>/dev/null || true
