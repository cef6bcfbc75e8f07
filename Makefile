# VitalStream: two commands do everything on a fresh machine.
#   make paper                  set up (venv, Maven jars, TeX) and run `snakemake --cores all`
#   make paper PROFILE=quick    the same with config/profiles/quick.yaml (small, fast)
#   make test                   set up and run every test (unit + Kafka/Spark/workflow integration)
# Each set-up step is skipped when done (stamp files), so a second `make paper` only asks
# Snakemake, which finds nothing to do.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
JARS := $(CURDIR)/.cache/jars
PROFILE ?=
CORES ?= all
# Last on every Snakemake command line: --configfile takes every word after it as a file.
CONFIG_ARGS := $(if $(PROFILE),--configfile config/profiles/$(PROFILE).yaml,)
SNAKEMAKE_ARGS ?=

# Tools the workflow's shell jobs call (python, papermill) come from the venv; Spark and the
# Kafka broker need Java 17 and loopback networking.
export PATH := $(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR)/scripts
export SPARK_LOCAL_IP := 127.0.0.1
JAVA17 := /usr/lib/jvm/java-17-openjdk-amd64
ifneq ($(wildcard $(JAVA17)),)
export JAVA_HOME ?= $(JAVA17)
endif

TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-latex-extra \
	texlive-science texlive-fonts-recommended lmodern

.PHONY: help setup venv jars tex browser paper test test-fast lint format clean clean-all \
	archive paper-from-archive report readme-map readme-figures status up

help:
	@echo "make paper [PROFILE=quick]   build results/paper.pdf (sets everything up first)"
	@echo "make test                    set up and run all tests (unit + integration)"
	@echo "make test-fast               unit tests only (no Kafka, Spark or workflow)"
	@echo "make archive [PROFILE=quick] pack the paper's small result files: $(ARCHIVE_OUT)"
	@echo "make paper-from-archive ARCHIVE=file.tar.gz   verify, unpack into $(ARCHIVE_WORK)/,"
	@echo "                             rebuild figures, tables, macros and PDF (no Kafka/Spark)"
	@echo "make report [PROFILE=quick]  HTML report of every figure: results/report.html"
	@echo "make status                  what a running workflow does: jobs, progress, time left"
	@echo "make up [UP_ARGS=...]        run the live monitor until Ctrl-C (docs/runbook.md)"
	@echo "make lint                    ruff, snakefmt --check, snakemake --lint"
	@echo "make clean                   remove results/ and data/cohorts (keeps the venv and jars)"

setup: venv jars tex browser

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt envs/constraints.txt
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "Installing pinned Python packages (pyspark builds from its source archive: ~1 min)"
	$(PY) -m pip install --quiet -r requirements.txt -c envs/constraints.txt
	@touch $@

jars: $(JARS)/kafka/.resolved $(JARS)/spark/.resolved $(JARS)/opensearch/.resolved \
	$(JARS)/kafka-tools/.resolved
$(JARS)/kafka/.resolved: envs/kafka/pom.xml
	mvn -q -f envs/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory=$(JARS)/kafka
	@touch $@
# Kafka's own tools (the console producer) for the live monitor's runbook and client test.
$(JARS)/kafka-tools/.resolved: envs/kafka-tools/pom.xml
	mvn -q -f envs/kafka-tools/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory=$(JARS)/kafka-tools
	@touch $@
$(JARS)/spark/.resolved: envs/spark/pom.xml
	mvn -q -f envs/spark/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory=$(JARS)/spark
	@touch $@
# OpenSearch: the node's jars plus its launcher class, compiled against them (searchnode.py
# recompiles it only when the source differs from the copy kept beside the classes).
$(JARS)/opensearch/.resolved: envs/opensearch/pom.xml envs/opensearch/VitalStreamNode.java
	mvn -q -f envs/opensearch/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory=$(JARS)/opensearch
	rm -rf $(JARS)/opensearch/launcher
	$(if $(JAVA_HOME),$(JAVA_HOME)/bin/)javac -d $(JARS)/opensearch/launcher \
		-cp '$(JARS)/opensearch/*' envs/opensearch/VitalStreamNode.java
	cp envs/opensearch/VitalStreamNode.java $(JARS)/opensearch/launcher/
	@touch $@

# TeX from Debian's packages: installed when missing and we are root, otherwise a clear message.
tex:
	@if command -v latexmk >/dev/null && kpsewhich siunitx.sty >/dev/null \
		&& kpsewhich lmodern.sty >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing TeX from Debian packages: $(TEX_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(TEX_PACKAGES) >/dev/null; \
	else \
		echo "TeX is missing. Install these Debian packages, then re-run:" >&2; \
		echo "  sudo apt-get install $(TEX_PACKAGES)" >&2; exit 1; \
	fi

# Headless Chromium for the dashboard's rendering test (tests/integration/test_dashboard_browser.py),
# from Debian's package (~11 s as root). Only that test needs it, so a missing browser that we
# cannot install is a warning, not a failed set-up: the test then skips and says why.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| command -v google-chrome >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing headless Chromium from Debian packages: chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium >/dev/null; \
	else \
		echo "Chromium is missing (the dashboard rendering test will skip). To run it:" >&2; \
		echo "  sudo apt-get install --no-install-recommends chromium" >&2; \
	fi

paper: setup
	$(VENV)/bin/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS) $(CONFIG_ARGS)

# Results archive (workflow/rules/archive.smk): the small files the figures, tables and macros
# are computed from, with a sha256 manifest and the commit, machine and date they come from.
ARCHIVE_OUT := results/archive/vitalstream-results.tar.gz
ARCHIVE ?= $(ARCHIVE_OUT)
ARCHIVE_WORK ?= results-from-archive

archive: setup
	$(VENV)/bin/snakemake $(ARCHIVE_OUT) --cores $(CORES) $(SNAKEMAKE_ARGS) $(CONFIG_ARGS)
	@echo "Archive: $(ARCHIVE_OUT)"

# Verify (a bad checksum or a missing file stops here), unpack into $(ARCHIVE_WORK)/ (never into
# results/), rebuild with only the paper rules (no Kafka, Spark or raw data), then check that the
# rebuilt macros, tables and values are byte-identical to the archived ones.
paper-from-archive: venv tex
	@if [ -f "$(ARCHIVE_WORK)/archived/SHA256SUMS" ]; then rm -rf "$(ARCHIVE_WORK)"; fi
	$(PY) -m vitalstream archive unpack "$(ARCHIVE)" --work "$(ARCHIVE_WORK)" --checkout .
	$(VENV)/bin/snakemake results/paper.pdf --cores $(CORES) --snakefile $(CURDIR)/Snakefile \
		--directory "$(ARCHIVE_WORK)" $(SNAKEMAKE_ARGS) --config from_archive=archived \
		--allowed-rules $$($(PY) -m vitalstream archive rules --work "$(ARCHIVE_WORK)")
	$(PY) -m vitalstream archive compare --work "$(ARCHIVE_WORK)"
	@echo "Rebuilt from $(ARCHIVE): $(ARCHIVE_WORK)/results/paper.pdf"

# The live monitor (docs/runbook.md): broker, search node, streaming job, dashboard, webhooks,
# until Ctrl-C. UP_ARGS adds options, e.g. make up UP_ARGS="--simulate 200".
UP_ARGS ?=
up: setup
	$(PY) -m vitalstream up $(UP_ARGS)

# What a running `make paper` does (from another terminal): running jobs and their progress,
# steps done, time left. Only reads files: no venv target, so it never installs while a run runs.
status:
	$(PY) -m vitalstream status

# Snakemake's HTML report: every figure, by research question (captions: workflow/report/).
report: venv
	$(VENV)/bin/snakemake --report results/report.html --cores 1 $(CONFIG_ARGS)

# The README's figure/table → rule map, from the same map as the paper's appendix table.
readme-map: venv
	$(VENV)/bin/snakemake results/paper/paper_map.json --cores 1 $(CONFIG_ARGS)
	$(PY) -m vitalstream paper-map --rows-file results/paper/paper_map.json --readme README.md

# After `make paper`: the README's measured figures from that run's macros and commit.
readme-figures: venv
	$(PY) -m vitalstream readme-figures --macros results/paper/macros.json \
		--origin results/paper/origin.tex --profile $(or $(PROFILE),full) --readme README.md

test: setup
	$(PY) -m pytest -p no:cacheprovider tests

test-fast: venv
	$(PY) -m pytest -p no:cacheprovider -m "not integration" tests

lint: venv
	$(VENV)/bin/ruff check scripts tests workflow notebooks
	$(VENV)/bin/ruff format --check scripts tests
	$(VENV)/bin/snakefmt --check Snakefile workflow
	$(VENV)/bin/snakemake --lint --cores 1

format: venv
	$(VENV)/bin/ruff format scripts tests
	$(VENV)/bin/ruff check --fix scripts tests
	$(VENV)/bin/snakefmt Snakefile workflow

clean:
	rm -rf results results-from-archive data/cohorts data/physionet .snakemake/incomplete

clean-all: clean
	rm -rf $(VENV) .cache .snakemake
