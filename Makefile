# Two commands on a fresh machine:  make run  (the full study)  and  make test.
# Optional: make install-slurm (SLURM executor plugin), make slurm-test (live test, root, Debian).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# Snakemake's scheduler wakes at every opening of its job rate limit (default 100/1s) and then
# stats the inputs of every ready job; a wider window lets it sleep between job ends instead.
# Jobs still start as soon as a core frees; only the final exit can wait up to the window.
SCHEDULE := --max-jobs-per-timespan 1000/10s

.PHONY: run test quick report venv clean-venv install-slurm slurm-venv slurm-test

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-compile --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-compile --no-deps -e .
	@# Byte-compile on every core (pip compiles on one). Not left to the first imports: where
	@# PYTHONDONTWRITEBYTECODE is set (it is on these machines) nothing would ever be cached, and
	@# every job would compile torch again. As pip does, files that do not compile are skipped:
	@# torch ships test helpers in Python 3.12 syntax.
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake -c $(CORES) $(SCHEDULE)
	$(BIN)/snakemake --report results/report.html

quick: $(STAMP)
	$(BIN)/snakemake -c $(CORES) $(SCHEDULE) --configfile config.yaml workflow/configs/quick.yaml

# Two workers, whole files each, end-to-end files first (tests/conftest.py): the study runs
# on one worker while the unit tests run on the other. The slowest tests are listed at the
# end, so that the suite's time budget stays visible.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

# The SLURM executor plugin (requirements-slurm.txt) into .venv: not part of run or test.
SLURM_STAMP := $(VENV)/.installed-slurm
$(SLURM_STAMP): $(STAMP) requirements-slurm.txt
	$(BIN)/python -m pip install --quiet -r requirements-slurm.txt
	touch $(SLURM_STAMP)

install-slurm slurm-venv: $(SLURM_STAMP)

# Live test of workflow/profiles/slurm on a throw-away one-node cluster (root, Debian; installs
# slurm-wlm and munge if missing; ~10 minutes on 2 cores). See tools/slurm_live_test.sh.
slurm-test: $(SLURM_STAMP)
	PYTHON=$(abspath $(BIN))/python tools/slurm_live_test.sh

clean-venv:
	rm -rf $(VENV)
