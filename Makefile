# The two commands a newcomer needs: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ENV := . scripts/env.sh &&
PY := .venv/bin/python

.PHONY: setup services-up services-down services-status lint typecheck test test-unit demo bench bench-accuracy clean

setup:            ## Debian packages + orchestration and compute venvs (idempotent, wheels cached)
	bash scripts/setup.sh all

services-up:      ## PostGIS, sshd, munge, SLURM, Airflow metadata + connections (idempotent)
	bash scripts/services.sh up

services-down:    ## stop what services-up started
	bash scripts/services.sh down

services-status:
	bash scripts/services.sh status

lint:
	$(ENV) .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports --no-cache

typecheck:
	$(ENV) .venv/bin/mypy

test-unit:        ## the pure-function tests only, no services needed
	$(ENV) $(PY) -m pytest tests/unit

test: setup services-up lint typecheck   ## everything, against the real services
	$(ENV) EO_REQUIRE_SERVICES=1 $(PY) -m pytest -v tests --ignore=tests/compute
	$(ENV) .venv-compute/bin/python -m pytest -v tests/compute   # models + training, compute environment

demo: setup services-up   ## simulated AOI (aois/demo.yaml) through every DAG to yearly maps; DEMO_ARGS=--large for more
	$(ENV) bash scripts/demo.sh $(DEMO_ARGS)

bench:            ## benchmarks against what a user would otherwise use (results in benchmarks/results/)
	.venv/bin/python -m pip install -q -r requirements/bench.in -c requirements/orchestration.lock
	$(ENV) .venv/bin/python benchmarks/preprocess/run.py --out benchmarks/results/preprocess.json
	$(ENV) .venv-compute/bin/python benchmarks/infer/run.py --out benchmarks/results/infer.json
	$(ENV) .venv/bin/python benchmarks/scale/run.py --out benchmarks/results/scale.json
	$(ENV) .venv/bin/python benchmarks/accuracy/run.py --size 128 --out benchmarks/results/accuracy_128px.json \
		--scenarios alpine_valley lowland_agriculture forest_hills mediterranean_dry wetland_coast

bench-accuracy:   ## the accuracy suite at full size (fifteen scenarios, 256 x 256 px, three years; about 3 h 10 min on 2 cores)
	$(ENV) .venv/bin/python benchmarks/accuracy/run.py --out benchmarks/results/accuracy.json

clean: services-down
	rm -rf .run
