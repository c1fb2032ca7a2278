# The two commands of the README: `make demo` (the conformance suite on the
# embedded fakes) and `make test` (every test). One cargo profile (dev, see
# Cargo.toml) serves test, demo and bench, so the workspace builds once.

CARGO    ?= cargo
PYTHON   ?= python3
VENV     := .venv
BIN_DIR  := target/debug
STAMP    := $(VENV)/.installed
export MOTO_SERVER := $(CURDIR)/$(VENV)/bin/moto_server
export SOFTLAYER_FIXTURES_PYTHON := $(CURDIR)/$(VENV)/bin/python
export CARGO_TERM_COLOR := never

.PHONY: all build venv tools test demo bench load fuzz fmt clean

all: build

# Host tools the warden CPI and its fake need (ext4 disks on loop devices).
tools:
	@command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null && command -v resize2fs >/dev/null \
	  || { apt-get update -qq && apt-get install -y -qq e2fsprogs mount util-linux >/dev/null; }

$(STAMP): conformance/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r conformance/requirements.txt
	touch $@

venv: $(STAMP)

build:
	$(CARGO) build --workspace --bins --tests

test: build venv tools
	$(CARGO) test --workspace
	$(BIN_DIR)/conformance demo --bin-dir $(BIN_DIR)

demo: build venv tools
	$(BIN_DIR)/conformance demo --bin-dir $(BIN_DIR)

bench: build venv tools
	$(BIN_DIR)/cpi-bench --bin-dir $(BIN_DIR)
	for cloud in warden openstack softlayer aws; do \
	  $(BIN_DIR)/conformance bench --cloud $$cloud --cpi $(BIN_DIR)/cpi-$$cloud --runs 15 || exit 1; \
	done

# The load mode on every cloud: 16 lifecycles at once, 3 rounds without
# chaos then 3 throttled (the report prints the extra time), then the fault
# soak, 5 rounds. Every run is reported; the total time is printed last.
LOAD_CLOUDS ?= warden openstack softlayer aws
load: build venv tools
	@start=$$(date +%s); failed=""; \
	for cloud in $(LOAD_CLOUDS); do \
	  $(BIN_DIR)/conformance load --cloud $$cloud --cpi $(BIN_DIR)/cpi-$$cloud \
	    --parallel 16 --rounds 3 --chaos throttle || failed="$$failed $$cloud/throttle"; \
	  $(BIN_DIR)/conformance load --cloud $$cloud --cpi $(BIN_DIR)/cpi-$$cloud \
	    --parallel 16 --rounds 5 --chaos soak || failed="$$failed $$cloud/soak"; \
	done; \
	echo "make load: $$(( $$(date +%s) - start )) s in all; not passed:$${failed:- none}"; \
	test -z "$$failed"

# The fuzz targets of `make test` (crates/*/tests/fuzz_*.rs, cpi-*/tests/
# fuzz_config.rs), each run for FUZZ_SECONDS instead of its few hundred
# executions, from a fresh seed (FUZZ_SEED to replay one). Each target
# prints its executions and corpus size; a failing input is saved under
# $$TMPDIR/bosh-fuzz-failures/ to be checked in under tests/regressions/.
FUZZ_SECONDS ?= 60
ifndef FUZZ_SEED
FUZZ_SEED := $(shell date +%s)
endif
FUZZ_PACKAGES := -p bosh-cpi -p bosh-stemcell -p bosh-agent-settings \
                 -p cpi-warden -p cpi-openstack -p cpi-softlayer -p cpi-aws
fuzz: SHELL := /bin/bash
fuzz: build
	@echo "make fuzz: $(FUZZ_SECONDS) s per target, seed $(FUZZ_SEED)"
	BOSH_FUZZ_SECONDS=$(FUZZ_SECONDS) BOSH_FUZZ_SEED=$(FUZZ_SEED) \
	  $(CARGO) test $(FUZZ_PACKAGES) --test 'fuzz_*' -- fuzz_ --nocapture --test-threads=1 2>&1 \
	  | grep -oE 'fuzz [a-z_]+: .*|test result: FAILED.*|panicked at .*|failed: .*|saved to .*' ; \
	  test $${PIPESTATUS[0]} -eq 0

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV)
