# The two commands of the README: `make demo` and `make test`. Both run `make setup` first.
SHELL := /bin/bash
DIFFREG_CACHE ?= $(HOME)/.cache/diffreg-nf
export DIFFREG_CACHE
VENV := .venv
PY := $(VENV)/bin/python
# Use your own Nextflow (>= 24.10) with: make demo NEXTFLOW=nextflow
NEXTFLOW ?= $(VENV)/bin/nextflow
OUTDIR ?= results
PROFILE ?= test

.PHONY: setup demo test test-unit test-pipeline test-slurm container report bench clean

setup:
	@bash envs/setup.sh

demo: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(NEXTFLOW) run main.nf -profile $(PROFILE) --outdir $(OUTDIR) -ansi-log false
	@echo "Report: $(abspath $(OUTDIR))/report/index.html"

# over the cores (at most 4 workers), a test file per worker (tests/conftest.py); the ten slowest
# are printed, so a regression shows
test: setup
	$(PY) -m pytest tests -q --durations=10 -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

test-unit: setup
	$(PY) -m pytest tests/unit -q

test-pipeline: setup
	$(PY) -m pytest tests/pipeline -q

# a one-node Slurm (installs slurm-wlm and munge as root where missing) running -profile test,slurm
test-slurm: setup
	$(PY) -m pytest tests/slurm -q

# the Charliecloud directory image (debootstrap + containers/recipe.sh), under $(DIFFREG_CACHE)/images,
# keyed by the pinned versions; its `pip freeze` is checked against envs/requirements.txt
container:
	@img=$$(bash containers/build-chimage.sh) && bash containers/check-image.sh "$$img" && echo "image: $$img"

# Re-render tables, figures and the HTML report from an existing results folder, without training:
# the main table again from the published metrics, every claim judged again from the per-pair
# values its experiment folder holds (<artifact>.values.csv), provenance from pipeline_info/.
report: setup
	@test -d "$(OUTDIR)/tables" || { echo "make report: $(OUTDIR)/tables not found (run make demo first, or give OUTDIR=)" >&2; exit 1; }
	@if ls "$(OUTDIR)"/metrics/*.csv >/dev/null 2>&1; then \
	  bin/diffreg tabulate --metrics "$(OUTDIR)"/metrics/*.csv --out-dir "$(OUTDIR)/tables" >/dev/null; fi
	bin/diffreg report --results "$(OUTDIR)" --out "$(OUTDIR)/report/index.html"

bench: setup
	$(PY) benchmarks/core.py
	$(PY) benchmarks/baselines.py

clean:
	rm -rf work .nextflow .nextflow.log* $(OUTDIR)
