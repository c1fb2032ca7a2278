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

.PHONY: all build venv tools test demo bench load fuzz fmt clean release release-toolchain

all: build

# Host tools the warden CPI and its fake need (ext4 disks on loop devices).
# Ruby renders the release job templates in the tests (ERB, as BOSH does).
tools:
	@command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null && command -v resize2fs >/dev/null \
	  || { apt-get update -qq && apt-get install -y -qq e2fsprogs mount util-linux >/dev/null; }
	@command -v ruby >/dev/null || { apt-get update -qq && apt-get install -y -qq ruby >/dev/null; }

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

# An incumbent binary built outside this repo can be timed beside ours in the
# same runs: BASELINE_OPENSTACK=path/to/go/openstack/cpi (the Go OpenStack
# CPI; its waits are made instant, as it polls every 10 s) and
# BASELINE_WARDEN=path/to/go/warden/cpi (it takes the -configPath= argument
# ours does). The table then gives the ratio per call.
# CPI_DIR=$(RELEASE_BIN_DIR) times the shipped static binaries (after make release).
BENCH_RUNS ?= 15
CPI_DIR ?= $(BIN_DIR)
bench_baseline_openstack = $(if $(BASELINE_OPENSTACK),--baseline-cpi $(BASELINE_OPENSTACK) --baseline-argv go --instant-transitions)
bench_baseline_warden = $(if $(BASELINE_WARDEN),--baseline-cpi $(BASELINE_WARDEN) --baseline-argv same)
bench: build venv tools
	$(BIN_DIR)/cpi-bench --bin-dir $(BIN_DIR)
	$(BIN_DIR)/conformance bench --cloud warden --cpi $(CPI_DIR)/cpi-warden --runs $(BENCH_RUNS) $(bench_baseline_warden)
	$(BIN_DIR)/conformance bench --cloud openstack --cpi $(CPI_DIR)/cpi-openstack --runs $(BENCH_RUNS) $(bench_baseline_openstack)
	$(BIN_DIR)/conformance bench --cloud softlayer --cpi $(CPI_DIR)/cpi-softlayer --runs $(BENCH_RUNS)
	$(BIN_DIR)/conformance bench --cloud aws --cpi $(CPI_DIR)/cpi-aws --runs $(BENCH_RUNS)

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

# The four BOSH releases (releases/): each CPI built as a static musl
# executable for x86_64 Linux (it runs on any stemcell or operator machine
# whatever its libc: BOSH compiles packages without a toolchain or a
# network), added as its package's blob, and a dev release tarball per CPI in
# target/releases/ when `bosh` is on PATH. musl rather than static glibc:
# glibc's start-up reads the CPU's cache geometry with a few hundred CPUID
# instructions, each a trap to the hypervisor on a VM (0.4-0.5 ms of every
# CPI call here, more than the rest of `info`), and a static glibc still
# loads the host's NSS libraries to resolve a name. The musl target and its
# C compiler (for aws-lc) are installed when missing (release-toolchain).
# relocation-model=static makes a fixed-address executable, as Go's linker
# does by default (the Go CPIs are built so): a static PIE relocates its
# 13,000 pointers at every start, writing to ~50 pages, 0.13 ms of a 0.45 ms
# `info` here. The stack, heap and mappings stay randomised.
RELEASE_CLOUDS  ?= aws openstack softlayer warden
RELEASE_TARGET  := x86_64-unknown-linux-musl
RELEASE_BIN_DIR := target/$(RELEASE_TARGET)/release
release-toolchain:
	@rustup target list --installed 2>/dev/null | grep -qx $(RELEASE_TARGET) || rustup target add $(RELEASE_TARGET)
	@command -v x86_64-linux-musl-gcc >/dev/null \
	  || { apt-get update -qq && apt-get install -y -qq musl-tools >/dev/null; }
release: release-toolchain
	RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
	  $(CARGO) build --release --target $(RELEASE_TARGET) \
	  $(foreach c,$(RELEASE_CLOUDS),-p cpi-$(c))
	@mkdir -p target/releases; missing=""; \
	for c in $(RELEASE_CLOUDS); do \
	  bin=$(RELEASE_BIN_DIR)/cpi-$$c; dir=releases/bosh-$$c-cpi; \
	  ldd $$bin 2>&1 | grep -qE 'statically linked|not a dynamic executable' \
	    || { echo "$$bin is not statically linked"; exit 1; }; \
	  if command -v bosh >/dev/null; then \
	    (cd $$dir && { [ -f config/blobs.yml ] || echo '--- {}' > config/blobs.yml; } \
	      && bosh add-blob ../../$$bin cpi-$$c/cpi-linux-amd64 >/dev/null \
	      && bosh create-release --force --tarball=../../target/releases/bosh-$$c-cpi-dev.tgz) || exit 1; \
	  else \
	    mkdir -p $$dir/blobs/cpi-$$c && cp $$bin $$dir/blobs/cpi-$$c/cpi-linux-amd64; \
	    missing="$$missing bosh-$$c-cpi"; \
	  fi; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make release: bosh is not on PATH: the static binaries are in releases/*/blobs/, but NO release tarball was made for:$$missing"; \
	  echo "  install bosh-cli, then run \`make release\` again (or \`bosh add-blob\` + \`bosh create-release --force --tarball\` in each releases/<name>)"; \
	else \
	  ls -l target/releases/*.tgz; \
	fi

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV)
