# The two commands: `make demo` (the main job) and `make test` (every test). Both install the
# Debian packages they need first (scripts/setup-deps.sh, idempotent).
JOBS ?= 2

.PHONY: all deps build test test-asan demo clean

all: build

deps:
	./scripts/setup-deps.sh

build: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

test: build
	ctest --preset release -j $(JOBS)
	$(MAKE) test-asan

# The library and unit tests once more under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

demo: build
	./scripts/demo.sh build

clean:
	rm -rf build build-asan
