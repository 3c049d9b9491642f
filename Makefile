# Makefile — a thin wrapper over CMake, so a fresh Debian 12 machine needs
# only `make demo` or `make test`. It installs the missing Debian packages,
# configures a build directory once, builds, and runs. CMake (CMakeLists.txt)
# remains the real build; nothing here compiles anything itself.
#
#   make demo        build, then run `strata demo` (report in ./strata-demo)
#   make test        build, then the whole suite through ctest
#   make test-asan   the suite under AddressSanitizer + UBSan (build-asan/)
#   make test-tsan   the suite under ThreadSanitizer (build-tsan/)
#   make soak        the reader/writer stress test, long (SOAK_COMMITS=2000000)
#   make crash       fork + SIGKILL campaign, CRASH_CYCLES (100000) cycles
#   make fuzz        libFuzzer targets (clang), FUZZ_SECONDS each
#   make bench       Release build (build-rel/), then `strata-bench substrate`
#   make fuzz        libFuzzer targets (clang, build-fuzz/), FUZZ_SECONDS=60 each
#   make install     cmake --install build (PREFIX=/usr/local by default)
#   make deps        only install the missing Debian packages
#   make clean       remove every build directory and the demo output

CMAKE ?= cmake
CTEST ?= ctest
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
DEMO_DIR ?=

BUILD := build
ASAN_BUILD := build-asan
TSAN_BUILD := build-tsan
REL_BUILD := build-rel
FUZZ_BUILD := build-fuzz

# What the build, the tests and the LMDB bench peer need on Debian 12.
DEB_PACKAGES ?= cmake pkg-config gcc g++ make liburcu-dev libjemalloc-dev \
	libcriterion-dev liblmdb-dev

CTEST_FLAGS := --output-on-failure -V
ASAN_SANITIZE := address,undefined
# Sanitizer reports must fail the run, and say where.
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
TSAN_ENV := TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"

.PHONY: all deps fuzz-deps bench-deps build release-check demo test test-asan test-tsan soak bench fuzz install clean

all: build

# ---- Debian packages ------------------------------------------------------
# Asks dpkg which packages are missing and installs only those; apt-get
# update runs only when something is missing, so a ready machine is not
# touched. Not root: sudo if there is one, otherwise say what to install.
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
		echo "deps: no dpkg-query (not Debian?); make sure these are installed: $(DEB_PACKAGES)"; \
		exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q ' installed$$' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	echo "deps: missing Debian packages:$$missing"; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; echo "deps: not root, using sudo"; \
	else \
		echo "deps: not root and no sudo: as root, run" >&2; \
		echo "  apt-get update && apt-get install -y --no-install-recommends$$missing" >&2; \
		exit 1; \
	fi; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

# `make fuzz` alone needs clang, its libFuzzer and sanitizer runtimes, and
# llvm-symbolizer (readable stack traces); the default build does not.
FUZZ_DEB_PACKAGES ?= clang libclang-rt-14-dev llvm
fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(FUZZ_DEB_PACKAGES)"

# The xtree suite's peers (Boost.Geometry, libspatialindex, SQLite R*Tree)
# are bench-only: `make bench` installs them, `make test` never needs them.
BENCH_DEB_PACKAGES ?= libboost-dev libspatialindex-dev libsqlite3-dev
bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(BENCH_DEB_PACKAGES)"

# ---- configure (once per build directory) ---------------------------------
# Keyed on CMakeCache.txt: after the first configure, `cmake --build` re-runs
# CMake by itself when a CMakeLists.txt changes. A failed configure removes
# the cache so the next make tries again instead of building a broken tree.
define configure
	$(CMAKE) -S . -B $(1) $(2) || { rm -f $(1)/CMakeCache.txt; exit 1; }
endef

$(BUILD)/CMakeCache.txt: | deps
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo)

$(ASAN_BUILD)/CMakeCache.txt: | deps
	$(call configure,$(ASAN_BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_SANITIZE=$(ASAN_SANITIZE))

$(TSAN_BUILD)/CMakeCache.txt: | deps
	$(call configure,$(TSAN_BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_SANITIZE=thread)

# The bench needs neither the test suites nor Criterion's build time.
$(REL_BUILD)/CMakeCache.txt: | bench-deps
	$(call configure,$(REL_BUILD),-DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_TESTS=OFF)

# libFuzzer needs clang; STRATA_FUZZ instruments the library as well.
FUZZ_CC ?= clang
FUZZ_CXX ?= clang++
$(FUZZ_BUILD)/CMakeCache.txt: | fuzz-deps
	$(call configure,$(FUZZ_BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=$(FUZZ_CC) \
		-DCMAKE_CXX_COMPILER=$(FUZZ_CXX) -DSTRATA_FUZZ=ON -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_BENCH=OFF)

# ---- build and run ---------------------------------------------------------
build: $(BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j $(JOBS)

# The demo needs only the tool, not the test suites and the bench.
demo: $(BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target strata_cli
	./$(BUILD)/strata demo $(DEMO_DIR)

# The suite runs the RelWithDebInfo build; the Release one (-O3, what the
# bench and most users build) is compiled too: -O3 finds uninitialised-use
# warnings -O2 does not, and -Werror makes them errors.
test: build release-check
	$(CTEST) --test-dir $(BUILD) $(CTEST_FLAGS)

RELCHECK_BUILD := build-relcheck
$(RELCHECK_BUILD)/CMakeCache.txt: | deps
	$(call configure,$(RELCHECK_BUILD),-DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_TESTS=OFF)
release-check: $(RELCHECK_BUILD)/CMakeCache.txt
	$(CMAKE) --build $(RELCHECK_BUILD) -j $(JOBS)

test-asan: $(ASAN_BUILD)/CMakeCache.txt
	$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)
	$(ASAN_ENV) $(CTEST) --test-dir $(ASAN_BUILD) $(CTEST_FLAGS)

test-tsan: $(TSAN_BUILD)/CMakeCache.txt
	$(CMAKE) --build $(TSAN_BUILD) -j $(JOBS)
	$(TSAN_ENV) $(CTEST) --test-dir $(TSAN_BUILD) $(CTEST_FLAGS)

# The reader/writer stress test, long: SOAK_COMMITS epochs (the default
# suite runs a bounded 3000), in the normal and the TSan build.
SOAK_COMMITS ?= 2000000
soak: $(BUILD)/CMakeCache.txt $(TSAN_BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target test_snapshot
	$(CMAKE) --build $(TSAN_BUILD) -j $(JOBS) --target test_snapshot
	STRATA_STRESS_COMMITS=$(SOAK_COMMITS) $(BUILD)/tests/test_snapshot --filter 'snapshot/stress*' --verbose
	STRATA_STRESS_COMMITS=$$(( $(SOAK_COMMITS) / 10 )) $(TSAN_ENV) $(TSAN_BUILD)/tests/test_snapshot --filter 'snapshot/stress*' --verbose

bench: $(REL_BUILD)/CMakeCache.txt
	$(CMAKE) --build $(REL_BUILD) -j $(JOBS) --target strata-bench
	./$(REL_BUILD)/bench/strata-bench substrate
	./$(REL_BUILD)/bench/strata-bench durable
	./$(REL_BUILD)/bench/strata-bench bptree
	./$(REL_BUILD)/bench/strata-bench xtree

# Each libFuzzer target for FUZZ_SECONDS, one after the other, from the
# generated seeds and the corpus earlier runs kept (build-fuzz/fuzz/run/);
# fails if a target crashes, leaks or hangs, leaving the input in
# build-fuzz/fuzz/run/<target>/artifacts/ (see fuzz/README.md).
FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BUILD)/CMakeCache.txt
	$(CMAKE) --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CTEST) --test-dir $(FUZZ_BUILD) -L '^fuzz$$' \
		--timeout $$(( $(FUZZ_SECONDS) + 300 )) $(CTEST_FLAGS)

install: build
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(REL_BUILD) $(RELCHECK_BUILD) $(FUZZ_BUILD) strata-demo

# ---- crash campaign (tests/crash) -------------------------------------------
# strata-crash forks a multi-threaded DURABLE workload, SIGKILLs it at a
# random moment, reopens and verifies: CRASH_CYCLES cycles (the default
# suite runs 200) in a Release build of its own, store in build-crash/.
# CRASH_FLAGS passes more options (--seed S, --threads T, --max-ms M).
CRASH_BUILD := build-crash
CRASH_CYCLES ?= 100000
CRASH_FLAGS ?=
.PHONY: crash clean-crash
$(CRASH_BUILD)/CMakeCache.txt: | deps
	$(call configure,$(CRASH_BUILD),-DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_BENCH=OFF)

crash: $(CRASH_BUILD)/CMakeCache.txt
	$(CMAKE) --build $(CRASH_BUILD) -j $(JOBS) --target strata-crash
	./$(CRASH_BUILD)/tests/crash/strata-crash --cycles $(CRASH_CYCLES) \
		--dir $(CRASH_BUILD)/crash-work $(CRASH_FLAGS)

clean: clean-crash
clean-crash:
	rm -rf $(CRASH_BUILD)
