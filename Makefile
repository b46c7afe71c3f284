# Two commands from a fresh machine: `make demo` and `make test`.
# Each installs what it needs first (Debian packages, a venv, the package).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := opentracker nginx-light aria2 transmission-cli mktorrent qbittorrent-nox iproute2
DEMO_DIR := demo-data

.PHONY: setup deb venv test test-all lint types pytest demo bench bench-create clean

setup: deb venv

# Debian packages the tests and benchmarks run for real; skipped when present.
deb:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

lint: venv
	$(BIN)/ruff check torrentds tests benchmarks scripts examples
	$(BIN)/ruff format --check torrentds tests benchmarks scripts examples

types: venv
	$(BIN)/mypy

# Two workers: the tests mostly wait on sockets and child processes (README, Dependencies).
pytest: setup
	$(BIN)/pytest -q -n 2

test: setup lint types pytest

test-all: setup lint types
	$(BIN)/pytest -q -n 2 -m ''

# The main job on an embedded default: a generated Tiny-ImageNet-shaped
# dataset, packed into a torrent, seeded and fetched by two peers with every
# shard verified; loopback only, no packet leaves the machine.
demo: setup
	$(BIN)/python scripts/demo.py $(DEMO_DIR)

# Issue 5's swarm benchmark: network namespaces with capped links, torrentds vs aria2c vs
# HTTP vs a web seed; writes benchmarks/swarm.png and prints the tables. Needs root.
bench: setup
	$(BIN)/pip install -q -e '.[dev,bench]'
	@SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	$$SUDO $(BIN)/python benchmarks/swarm.py

bench-create: setup
	$(BIN)/python benchmarks/create.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info
