# Fresh-machine entry points. `make run` and `make test` create .venv, install the CPU
# torch wheel first (a plain `torch` requirement would pull a multi-GB CUDA build), then the project.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN ?= torch==2.13.0

.PHONY: setup run test lint benchmarks clean

$(BIN)/pmrfusion: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[dev,ot]"
	touch $(BIN)/pmrfusion

setup: $(BIN)/pmrfusion

run: setup
	$(BIN)/pmrfusion bench --resume

test: setup
	$(BIN)/python -m pytest

# BENCHMARKS.md from the committed records of the experiment files (headline tables, every verdict),
# with links to the pages made before experiment files.
SUPERSEDED := results/suite-all/README.md results/comparison/README.md results/analyses/README.md results/speed/README.md results/dynamic/README.md results/pmr-family/README.md results/pmr_fidelity/README.md results/missing_variants/README.md results/avmnist/README.md results/mosi/README.md results/rcml/README.md
benchmarks: setup
	$(BIN)/pmrfusion verdicts experiments/claims.toml --out results/verdicts
	$(BIN)/pmrfusion verdicts experiments/decisions.toml --out results/decisions
	$(BIN)/pmrfusion benchmarks experiments --out BENCHMARKS.md $(foreach p,$(SUPERSEDED),--superseded $(p))

lint: setup
	$(BIN)/ruff check src tests scripts

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
