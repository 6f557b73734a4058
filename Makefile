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

# The library, the unit tests and the emb tool's tests (but the WordNet one) once more under
# AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

# The main job on its default data: WordNet -> emb train -> emb test. Installs and builds only
# what it needs (the library and build-demo/emb; no libtorch, no tests).
demo:
	./scripts/setup-deps.sh --demo
	cmake --preset demo
	cmake --build --preset demo -j $(JOBS)
	./scripts/demo.sh build-demo

clean:
	rm -rf build build-asan build-demo
