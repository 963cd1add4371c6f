# tenantry.msp — the two README commands (`make lab`, `make test`) and their set-up.
# Set-up steps leave stamps in .lab/stamps and are skipped when their inputs did not change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMPS := .lab/stamps
ANSIBLE_VERSION := 12.3.0
WHEEL := .lab/wheels/ansible-$(ANSIBLE_VERSION)-py3-none-any.whl

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
# What Ansible, ansible-lint and molecule write for themselves (local temporary files, caches, connection
# sockets) stays in the project, and `make clean` removes it; ~/.ansible is left alone.
export ANSIBLE_HOME := $(CURDIR)/.ansible
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# This tree's sources first, also when the virtualenv's editable install points at another checkout.
export PYTHONPATH := $(CURDIR)/src$(if $(PYTHONPATH),:$(PYTHONPATH))

VCSIM_SOURCES := $(wildcard lab/vcsim/*.go)

# The lab instance (src/tenantry/lab/instance.py): `make lab LAB_INSTANCE=ci` runs a second lab next to the
# default one, with its own state directory, namespaces, podman network, containers and ports.
LAB_INSTANCE ?= $(or $(TENANTRY_LAB_INSTANCE),default)
export TENANTRY_LAB_INSTANCE := $(LAB_INSTANCE)
LAB_PREFIX := $(if $(filter default,$(LAB_INSTANCE)),tenantry-lab,tlab-$(LAB_INSTANCE))
LAB_LABEL := $(if $(filter default,$(LAB_INSTANCE)),tenantry-lab,tenantry-lab-instance=$(LAB_INSTANCE))

.PHONY: help setup lab lab-down lab-e2e test lint sanity pytest pytest-vsphere pytest-rest clean molecule

help:
	@echo "make lab       set up, start the embedded lab and run playbooks/site.yml against it"
	@echo "make lab-down  stop everything the lab started (and say what it keeps)"
	@echo "               both with LAB_INSTANCE=NAME: another lab next to the default one"
	@echo "make lab-e2e   the main job end to end on a lab instance of its own, then an audit of vCenter"
	@echo "make test      every check CI runs: ruff, mypy, ansible-lint, ansible-test sanity, pytest, molecule"

setup: $(STAMPS)/apt $(STAMPS)/venv $(STAMPS)/collections $(STAMPS)/vcsim

$(STAMPS)/apt: lab/apt-packages.txt
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $$(grep -v '^#' $<); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "apt: installing $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

$(STAMPS)/venv: pyproject.toml requirements.txt
	@mkdir -p $(STAMPS)
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -e '.[dev]'
	@touch $@

$(WHEEL):
	@mkdir -p $(@D)
	$(BIN)/python -m pip download -q --no-deps ansible==$(ANSIBLE_VERSION) -d $(@D)

# The repository is the collection: .collections/ansible_collections/tenantry/msp points back here.
$(STAMPS)/collections: lab/collections.txt $(WHEEL) $(STAMPS)/venv $(STAMPS)/apt
	rm -rf .collections && mkdir -p .collections/ansible_collections/tenantry
	cd .collections && unzip -q $(CURDIR)/$(WHEEL) \
	    $$(grep -v '^#' $(CURDIR)/lab/collections.txt | sed 's,\.,/,; s,.*,ansible_collections/&/*,')
	ln -sfn ../../.. .collections/ansible_collections/tenantry/msp
	@touch $@

$(STAMPS)/vcsim: $(VCSIM_SOURCES) $(STAMPS)/apt $(STAMPS)/venv
	$(BIN)/python -m tenantry.lab build
	@touch $@

lab: setup
	$(BIN)/python -m tenantry.lab up
	. lab/containers/podman-env.sh && $(BIN)/ansible-playbook playbooks/lab.yml

lab-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m tenantry.lab down; fi
	@if command -v podman >/dev/null; then . lab/containers/podman-env.sh; \
	    gone=$$(podman ps -aq --filter label=$(LAB_LABEL) | xargs -r podman rm -f -t 2 | wc -l); \
	    podman network rm -f $(LAB_PREFIX) >/dev/null 2>&1 || true; \
	    echo "lab instance $(LAB_INSTANCE): removed $$gone containers and the podman network $(LAB_PREFIX);" \
	         "kept the container image and .lab/bin, .lab/wheels, .lab/stamps (make clean removes .lab)"; fi

# The main job end to end on the lab instance "e2e" (tests/lab-e2e.sh): bring-up, site.yml, leases, locks,
# enrollment, test failover, offboarding and onboarding a tenant, then an audit of vCenter (pyVmomi).
lab-e2e: setup
	tests/lab-e2e.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	MYPYPATH=$(CURDIR)/.collections $(BIN)/mypy -p ansible_collections.tenantry.msp.plugins
	$(BIN)/ansible-lint -q
	shellcheck -S warning -x $$(git ls-files '*.sh')
	$(BIN)/python docs/gen_role_variables.py --check

sanity: setup
	tests/sanity.sh

pytest: setup
	$(BIN)/pytest

# make test runs pytest in two halves at once (each with its own simulators): the vSphere-side tests,
# and the rest (services, console, backups, lab, network, unit).
PYTEST_VSPHERE := tests/integration/failover tests/integration/plugins tests/integration/roles
pytest-vsphere: setup
	$(BIN)/pytest $(PYTEST_VSPHERE)

pytest-rest: setup
	$(BIN)/pytest $(foreach d,$(PYTEST_VSPHERE),--ignore=$(d))

# The suites run at the same time (their logs: tests/output/suites/); molecule runs two scenarios
# at once, and lab-e2e the main job end to end on a lab instance of its own. Much of each suite waits on
# simulators, containers and sockets, not on the CPU.
test: setup
	MOLECULE_JOBS=$${MOLECULE_JOBS:-2} tests/run-suites.sh lint sanity pytest-vsphere pytest-rest molecule lab-e2e

# Role scenarios (molecule, podman, systemd as PID 1): builds the container image when missing, runs
# every scenario under molecule/, and removes their containers even when one fails.
molecule: setup
	lab/containers/molecule.sh

# --one-file-system: never into a lab tenant's NFS filesystem still mounted (another instance kept up:
# make lab-down LAB_INSTANCE=NAME first).
clean: lab-down
	rm -rf --one-file-system .lab .collections .ansible .mypy_cache .ruff_cache .pytest_cache tests/output
