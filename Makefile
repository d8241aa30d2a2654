# The two commands of the README:
#   make run    build and run tripline on its embedded default (SQLite under ./data)
#   make test   build and run the whole test suite (real SQLite, real dockerd in swarm mode)
# Both install their Debian packages first (scripts/install-deps.sh).

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build run test bench clean

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

bench: deps-bench build
	bench/run.sh

clean:
	rm -rf $(BUILD)
