# underspec: `make sweep` runs the main job, `make test` the test suite. Both set themselves up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)
MLFLOW_EXPERIMENT_NAME ?= underspec
export MLFLOW_EXPERIMENT_NAME

.PHONY: setup data test test-fast test-containers test-eight-workers lint sweep demo train bench ui-screenshots study-sources study-width study-stability

setup: $(VENV)/.installed  ## create .venv and install the project with its test extras

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

data: setup  ## fetch and verify MNIST into ./data (or $$UNDERSPEC_DATA_DIR)
	$(PY) entrypoints/fetch_data.py

lint: setup
	$(PY) -m ruff check underspec entrypoints tests benchmarks docs
	$(VENV)/bin/lint-imports

test: setup data lint  ## the whole suite, slow end-to-end tests included
	$(PY) -m pytest -q

test-fast: setup data
	$(PY) -m pytest -q -m "not slow"

test-containers: setup data  ## opt-in: build the image, run compose on CPU with a worker killed (needs Docker)
	UNDERSPEC_CONTAINER_TESTS=1 $(PY) -m pytest -q -m containers tests/test_containers.py

test-eight-workers: setup data  ## opt-in: 8 sweep workers at once on PostgreSQL + mlflow server, exactly once
	UNDERSPEC_EIGHT_WORKERS=1 $(PY) -m pytest -q tests/test_eight_workers.py

sweep: setup data  ## THE MAIN JOB: the paper's 378-run grid (resumable), then the analysis
	mlflow run . -e sweep --env-manager local --experiment-name $(MLFLOW_EXPERIMENT_NAME)

demo: setup data  ## a 27-run, 5-epoch grid for a first look (about 30 s once set up)
	mlflow run . -e sweep --env-manager local --experiment-name $(MLFLOW_EXPERIMENT_NAME) \
	    -P name=demo -P seeds=0,1,2 -P lambdas=0.0,0.001,0.01 -P classes=2,5,10 -P epochs=5

study-sources: setup data  ## where the spread comes from: 5 init x 5 order seeds x jitter {0,1}, 3 lambdas, C {2,10} (resumable)
	mlflow run . -e sweep --env-manager local --experiment-name $(MLFLOW_EXPERIMENT_NAME) \
	    -P name=sources -P init_seeds=0,1,2,3,4 -P order_seeds=0,1,2,3,4 -P jitters=0,1 \
	    -P lambdas=0.0,0.001,0.01 -P classes=2,10 -P epochs=50

study-width: setup data  ## the spread against width: hidden {8,16,32,64}, 7 seeds, lambda {0,0.001}, C 10 (resumable)
	mlflow run . -e sweep --env-manager local --experiment-name $(MLFLOW_EXPERIMENT_NAME) \
	    -P name=width -P seeds=0,42,1337,3213,9999,5783,1023 -P hidden=8,16,32,64 \
	    -P lambdas=0.0,0.001 -P classes=10 -P epochs=50

study-stability: setup data  ## when is the basin decided: 3 parents x branch epochs {0..20} x 3 post-branch seeds, lambda {0,0.001,0.01}, C {2,5,10} (resumable)
	mlflow run . -e sweep --env-manager local --experiment-name $(MLFLOW_EXPERIMENT_NAME) \
	    -P name=stability -P init_seeds=0,1,2 -P order_seeds=0 -P branch_epochs=0,1,2,3,5,8,13,20 \
	    -P branch_order_seeds=10,11,12 -P lambdas=0.0,0.001,0.01 -P classes=2,5,10 -P epochs=50

train: setup data  ## one run with the paper's defaults (seed 0, lambda 0.001, 10 classes, 50 epochs)
	mlflow run . -e train --env-manager local --experiment-name $(MLFLOW_EXPERIMENT_NAME)

bench: setup data  ## engine vs plain loop, appends to BENCHMARKS.md's raw log
	$(PY) benchmarks/engine_vs_plain.py

ui-screenshots: setup data  ## the MLflow UI in headless chromium on a fresh demo: checks and docs/ui_*.png
	$(PY) -m pip install --quiet -e '.[ui]'
	$(PY) docs/ui_screenshots.py
