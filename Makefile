# airflow_ha — every entry point a user or CI needs. Each target installs what it
# needs itself (the venv, apt packages for the lab): a fresh machine has none of it.
SHELL        := /bin/bash
PYTHON       ?= python3
VENV         ?= .venv
SALT_VERSION ?= 3008.5
BIN          := $(VENV)/bin
STAMP        := $(VENV)/.stamp-$(SALT_VERSION)-$(shell cat test/requirements.txt test/constraints.txt | md5sum | cut -c1-8)
LABCTL       := test/lab/labctl

.PHONY: help venv lint unit render factories functional rules test-fast test test-cluster test-cluster-ci test-cluster-ci-both demo demo-down bench drills clean

help:
	@echo "make demo        build the 3-node lab, apply the formula, print the URLs"
	@echo "make demo-down   tear the lab down"
	@echo "make test-fast   lint + alert rules (promtool) + unit + render + salt-factories tiers"
	@echo "make test        everything CI runs (.ci/run)"
	@echo "make test-cluster lab tier: up, apply, verify, re-apply (0 changes), down"
	@echo "make bench       performance figures, one per line"
	@echo "make drills      failure drills on a fresh lab (partition, leader kill), figures per line"

venv: $(STAMP)

$(STAMP): test/requirements.txt test/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel
	$(BIN)/pip install -q -r test/requirements.txt -c test/constraints.txt
	$(BIN)/pip install -q --no-deps salt==$(SALT_VERSION)
	rm -f $(VENV)/.stamp-*
	touch $@

PY_DIRS   := $(wildcard _modules _states _runners _utils test)
YAML_PURE := $(wildcard pillar.example kitchen.yml airflow_ha/parameters test/lab/pillar)

lint: venv
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/yamllint -s $(YAML_PURE)
	find airflow_ha -name '*.sls' -print0 | xargs -0 $(BIN)/salt-lint

unit: venv
	$(BIN)/pytest -q -n auto test/unit

render: venv
	$(BIN)/pytest -q -n auto test/render

factories: venv
	$(BIN)/pytest -q test/factories

# Airflow module/states against a real Airflow venv (built from the formula's
# constraints, cached) and a PostgreSQL on loopback the tests start themselves.
functional: venv
	$(BIN)/pytest -q test/functional

# The alert rules through promtool (Debian's prometheus package, fetched and
# unpacked under ~/.cache by the script when promtool is not on PATH).
rules: venv
	$(BIN)/python test/tools/promtool_rules.py

test-fast: venv
	$(MAKE) lint
	$(MAKE) rules
	$(BIN)/pytest -q -n auto test/unit test/render
	$(BIN)/pytest -q test/factories

# CI (.ci/run): the fast tiers, Airflow against a real PostgreSQL, then the lab
# tier in a lab of its own (LAB_ID=ci, own bridge and subnet), so it never
# meets a developer's lab on the same machine; a CI lab left by a killed run
# is taken down first. The lab tier runs on Debian 12 (bookworm).
# test-cluster-ci-both is the two-release tier meant to replace it: bookworm,
# then trixie, one after the other (two labs at once overload a 2-core host),
# each converging, running every component check and re-applying with 0
# changes, the four destructive rounds (~13 min) shared out
# (LAB_SUITE_ELSEWHERE; the two that found trixie-only bugs on trixie) so
# `make test` stays under 45 minutes (41 min 21 s measured). It is not in
# `test` yet: its one run had a csync2 check fail on trixie (README).
CI_LAB := LAB_ID=ci LAB_BRIDGE=ahbrci LAB_SUBNET=10.77.8.0/24
ON_BOOKWORM := test_zz_db_failover test_zz_partition
ON_TRIXIE   := test_zz_node_replace test_zz_task_recovery

test: test-fast functional
	$(MAKE) test-cluster-ci

test-cluster-ci: venv
	$(CI_LAB) $(LABCTL) down
	$(CI_LAB) LAB_DISTRO=bookworm $(LABCTL) test-cluster

test-cluster-ci-both: venv
	$(CI_LAB) $(LABCTL) down
	$(CI_LAB) LAB_DISTRO=bookworm LAB_SUITE_ELSEWHERE="$(ON_TRIXIE)" $(LABCTL) test-cluster
	$(CI_LAB) LAB_DISTRO=trixie LAB_SUITE_ELSEWHERE="$(ON_BOOKWORM)" $(LABCTL) test-cluster

test-cluster: venv
	$(LABCTL) test-cluster

demo: venv
	$(LABCTL) demo

demo-down:
	$(LABCTL) down

bench: venv
	$(LABCTL) bench

drills: venv
	$(LABCTL) drills

clean:
	rm -rf $(VENV) .pytest_cache
