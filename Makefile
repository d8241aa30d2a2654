# The two commands of the README:
#   make run    build and run tripline on its embedded default (SQLite under ./data)
#   make test   build and run the whole test suite (real SQLite, real dockerd in swarm mode)
# Both install their Debian packages first (scripts/install-deps.sh). Also, for CI (.ci/run):
#   make test-sanitize   the whole ctest suite built with ASan + UBSan (build-asan)
#   make fuzz            the libFuzzer targets, FUZZ_SECONDS (20) each (build-fuzz, clang)
#   make format-check    every C++ file as clang-format (.clang-format) writes it; `make format` fixes
#   make deb             the Debian package, $(BUILD)/tripline_VERSION_amd64.deb (CPack, cmake/Package.cmake)
#   make test-deb        installs that package in a clean Debian 12 container and runs the service
#   make test-image      `docker build .` and the image's container, driven through its published port
#   make test-fresh      the README on a clean minimal Debian 12 container: its install line, then
#                        `make deps-test` for real and `make build` (tests/package/fresh_test.sh)

BUILD ?= build
JOBS ?= $(shell nproc)
# Optimised as released (-O2), with line tables only (-g1): what a stack trace, a sanitizer report
# and perf need (function, file, line), without variable and type info, which cost a third of
# the compile CPU (g++ -O2, four heavy files: 69 s with -g, 48 s with -g1). For gdb sessions with
# locals: make CMAKE_FLAGS=-DCMAKE_BUILD_TYPE=Debug BUILD=build-debug build.
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"

ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
FUZZ_CXX ?= clang++-14

.PHONY: all deps build run test test-sanitize print-sanitize-exclude fuzz bench bench-replicas format format-check clean deb test-deb test-image test-fresh

all: build

deps-%:
	@scripts/install-deps.sh $*

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps-build $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: deps-build $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target tripline
	$(BUILD)/tripline serve --data-dir ./data $(ARGS)

test: deps-test build
	cd $(BUILD) && ctest --output-on-failure --timeout 900

# Sanitizer reports abort the test that triggers them. Leaks are checked at exit; the only
# suppressions are for third-party libraries, each with its reason (tests/sanitizers/).
SANITIZER_ENV = \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$(CURDIR)/tests/sanitizers/ubsan.supp

# Sanitizer builds compile at -O1 with assertions on: the level the sanitizers recommend, and a
# third less compile CPU than -O2 under ASan + UBSan (g++, app.cpp, rules.cpp, dns_update/config.cpp
# and unit/rules_test.cpp: 78 s against 117 s), which matters on this 2-core machine. -g1 keeps
# the line tables a sanitizer report's stack needs (function, file, line) and drops variable and
# type info, which nobody reads in a CI log: another quarter off (server/trigger/rules.cpp under
# g++ -O1 ASan + UBSan: 22.4 s with -g, 16.1 s with -g1).
SANITIZER_CMAKE_FLAGS = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1"

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) $(SANITIZER_CMAKE_FLAGS) -DTRIPLINE_SANITIZE=ON

# The UI test (ctest "ui": Chromium against the server) is left out: it tests the UI, not memory
# safety, and the server it drives is the same code the integration tests cover here. So are
# package_deb (the Debian package of the release build, not the code), fresh_machine (the
# README's install line on a clean Debian) and the docs tests (docs_blocks, docs_config: the
# documentation's commands and tables, run against the release build by `make test`; the server
# code they drive runs here in the integration tests against the same real peers).
SANITIZE_EXCLUDE = ^(ui|package_deb|fresh_machine|docs_blocks|docs_config)$$
test-sanitize: deps-test $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && $(SANITIZER_ENV) ctest --output-on-failure --timeout 900 -E '$(SANITIZE_EXCLUDE)'

# What test-sanitize leaves out, for .ci/run's count of the tests that ran.
print-sanitize-exclude:
	@echo '$(SANITIZE_EXCLUDE)'

$(FUZZ_BUILD)/CMakeCache.txt:
	cmake -S . -B $(FUZZ_BUILD) $(SANITIZER_CMAKE_FLAGS) -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) -DTRIPLINE_FUZZ=ON -DTRIPLINE_TESTS=OFF

# Longer: make fuzz FUZZ_SECONDS=600. One target: tests/fuzz/run.sh build-fuzz rules.
fuzz: deps-fuzz $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BUILD)

bench: deps-bench build
	bench/flood.sh

# Accepted triggers/s on SQLite and on 1, 2, 3 replicas sharing a private PostgreSQL (issue 16).
bench-replicas: deps-bench build
	bench/replicas.sh

# The C++ sources (not generated code, not node_modules), formatted by Debian 12's clang-format 14.
CLANG_FORMAT ?= clang-format-14
FORMAT_FILES = $(shell git ls-files '*.cpp' '*.h' 2>/dev/null)

format: deps-format
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check: deps-format
	$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES)

# Only the tripline target: packaging never builds the tests (CMAKE_SKIP_INSTALL_ALL_DEPENDENCY).
deb: deps-deb $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target tripline
	cd $(BUILD) && cpack -G DEB

# Both need root (an isolated dockerd, tests/support/dockerd-harness.sh) and the Debian mirror.
test-deb: deps-image deb
	tests/package/deb_test.sh $(BUILD)/tripline_*_amd64.deb

test-image: deps-image
	tests/package/image_test.sh

# 7.5 to 9 min installing, then the whole build without ccache (an hour at FRESH_JOBS=1 on a
# loaded 2-core machine; measured once with the build done and every check passing).
test-fresh: deps-image
	FRESH_FULL=1 tests/package/fresh_test.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
