# torch.nn, step by step. Needs only Python 3.11+ and pip: every target
# creates the virtual environment .venv on first use and installs the pinned
# versions from pyproject.toml into it; later runs reuse it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Two workers (pytest-xdist), each file on one of them: a file's module fixtures (a graded class,
# a cluster) are built once. PYTEST_ARGS="-n 0" runs everything in this process.
PYTEST_ARGS ?= -n 2 --dist loadfile
LAB_ARGS ?=
# Tools that nbgrader calls by name (alembic) must come from the venv.
export PATH := $(abspath $(BIN)):$(PATH)
# The venv's python3 kernel (the one with torch) wins over a python3 kernel installed for
# the user elsewhere, even where the venv is not owned by whoever runs make.
export JUPYTER_PREFER_ENV_PATH := 1

.PHONY: help install lab check test release student-pack bench clean grade demo-grade bench-grade hub hub-instructor hub-clean

help:
	@echo "make lab       open the course in JupyterLab (students, self-paced learners, instructors)"
	@echo "make check     check your notebooks in my-work/ as grading would (one notebook: make check NB=path/to/notebook.ipynb;"
	@echo "               STRICT=1: exit with an error status unless everything passes, for CI)"
	@echo "make test      run every test of the course and its autograder"
	@echo "make release   regenerate notebooks/ (student release) from solutions/ (instructor source)"
	@echo "make student-pack  write dist/torchnn-student/ and .zip: the release and public checks, without answers"
	@echo "               (ASSIGNMENTS=\"01 02\" for only some)"
	@echo "make bench     time each solution notebook top to bottom, and the series (NOTEBOOKS=\"08 09\" for some)"
	@echo "make grade ASSIGNMENT=02_manual_model SUBMISSIONS=path/to/class[.zip] [JOBS=N] [STUDENT=id] [FORCE=1] [NO_SANDBOX=1]"
	@echo "               [CLUSTER=N | SCHEDULER=tcp://host:8786]"
	@echo "               grade a class with nbgrader (gradebook, grades.csv, per-exercise CSV, feedback, report),"
	@echo "               here or on Dask workers (CLUSTER: N local workers; SCHEDULER: an existing cluster)"
	@echo "make demo-grade  generate a sample class (good work, mistakes, broken files) into build/ and grade it"
	@echo "make bench-grade time 'autograder grade' (here and on 1, 2 Dask workers) against sequential 'nbgrader autograde' on a 40-notebook class, and the coordinator alone"
	@echo "make hub       a local classroom on JupyterHub: an instructor, students, nbgrader's exchange (HUB_ARGS=\"--port 8000 --students 3\")"
	@echo "make hub-instructor CMD=\"nbgrader collect 01_tensors\"  run a command as the classroom's instructor, in its course folder"
	@echo "make hub-clean remove the classroom: its accounts and build/hub"
	@echo "make clean     remove the virtual environment and everything tests or grading left behind"

install: $(INSTALLED)

# Reinstalls only when pyproject.toml (where every version is pinned) changes.
$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "This course needs Python 3.11 or newer; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# Learners work in my-work/, their own copies, which `make release` and `git pull` never overwrite.
# JupyterLab reads the course's own settings in jupyter-config/ (before the user's own): nbgrader's
# pages that need an exchange are off, and nothing is fetched from the internet. The root is the
# course directory, so formgrader finds nbgrader_config.py. LAB_ARGS adds options (e.g. --port=8890).
# JupyterLab stops as root ("Running as root is not recommended. Use --allow-root to bypass."), after a
# screen of log. `make lab` says so first, in one line, before installing anything, and passes
# --allow-root only when asked (a container where root is all there is). The course's Makefile has the same.
USER_ID ?= $(shell id -u 2>/dev/null)
ALLOW_ROOT ?=
ifneq ($(filter lab,$(MAKECMDGOALS)),)
ifeq ($(USER_ID)$(ALLOW_ROOT),0)
$(error make lab: JupyterLab will not run as root. Run make lab as your own user, or, in a container where root is all there is, as: make lab ALLOW_ROOT=1)
endif
endif

lab: $(INSTALLED)
	$(BIN)/autograder workspace
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config" $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/my-work $(if $(ALLOW_ROOT),--allow-root) $(LAB_ARGS)

# Runs your notebooks as grading does and says, per exercise, what passes and what to fix.
# Without NB: a table of every notebook in my-work/ (set up first when missing), and my-work/progress.png
# and progress.html. Unfinished work is a report, not an error, unless STRICT=1 (for CI).
check: $(INSTALLED)
	@$(BIN)/autograder check $(if $(STRICT),--strict) $(NB)

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

release: $(INSTALLED)
	$(BIN)/autograder release

# Instructors of a graded class: what students get instead of this repository (README, "Teaching a class").
# ASSIGNMENTS="01 02" releases only those (by number or name), so that a class gets each when it is assigned.
student-pack: $(INSTALLED)
	$(BIN)/autograder pack --to dist $(if $(ASSIGNMENTS),--assignments $(ASSIGNMENTS))

# Prints how long each notebook in solutions/ takes to run, as grading runs it; a measurement, not a test.
bench: $(INSTALLED)
	$(BIN)/python benchmarks/notebooks.py $(NOTEBOOKS)

# Instructors: grade a class into this course's gradebook (see README, "Grading a class").
grade: $(INSTALLED)
	@test -n "$(ASSIGNMENT)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade ASSIGNMENT=02_manual_model SUBMISSIONS=path/to/class[.zip] [JOBS=N] [STUDENT=id] [FORCE=1] [NO_SANDBOX=1] [CLUSTER=N | SCHEDULER=tcp://host:8786]"; exit 2; }
	$(BIN)/autograder grade $(ASSIGNMENT) --submissions "$(SUBMISSIONS)" $(if $(JOBS),--jobs $(JOBS)) $(if $(STUDENT),--student $(STUDENT)) $(if $(FORCE),--force) $(if $(NO_SANDBOX),--no-sandbox) $(if $(CLUSTER),--cluster $(CLUSTER)) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

# A walkthrough on a fresh clone: a throwaway course in build/demo-grade (never the real gradebook),
# a synthetic class with every kind of submission, graded, then graded again (nothing is redone).
DEMO := build/demo-grade
DEMO_ASSIGNMENT ?= 02_manual_model
demo-grade: $(INSTALLED)
	rm -rf $(DEMO)
	$(BIN)/python -c 'from autograder.course import Course; Course.here().copy("$(DEMO)/course")'
	$(BIN)/autograder sample-class $(DEMO_ASSIGNMENT) --to $(DEMO)/class.zip --layout zip
	@echo "--- grading (cells are stopped after 20 s here, instead of the course's 60, to keep the demo short)"
	$(BIN)/autograder grade $(DEMO_ASSIGNMENT) --course $(DEMO)/course --submissions $(DEMO)/class.zip --timeout 20
	@echo "--- grading again: unchanged submissions are not regraded"
	$(BIN)/autograder grade $(DEMO_ASSIGNMENT) --course $(DEMO)/course --submissions $(DEMO)/class.zip --timeout 20 --no-progress
	@echo "--- open $(DEMO)/course/exports/$(DEMO_ASSIGNMENT)/report.md, or formgrader with: cd $(DEMO)/course && ../../../$(BIN)/jupyter lab"

# autograder grade against plain sequential nbgrader autograde on the same 40 submissions.
bench-grade: $(INSTALLED)
	$(BIN)/python benchmarks/bench_grade.py $(BENCH_ARGS)

# A class on JupyterHub through nbgrader's exchange, on this machine (README, "A class on JupyterHub").
# Run as root (sudo make hub), each user gets a system account; hub/classroom.py says what it does.
HUB_ARGS ?=
hub: $(INSTALLED)
	$(BIN)/python hub/classroom.py start $(HUB_ARGS)

hub-instructor: $(INSTALLED)
	@test -n "$(CMD)" || { echo 'usage: make hub-instructor CMD="nbgrader collect 01_tensors"'; exit 2; }
	$(BIN)/python hub/classroom.py instructor -- $(CMD)

# Needs only the standard library: it also runs after the virtual environment is gone.
hub-clean:
	$(PYTHON) hub/classroom.py remove

clean: hub-clean
	rm -rf $(VENV) build dist .pytest_cache gradebook.db submitted autograded feedback exports
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
