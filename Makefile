# The two commands: `make demo` (the main job) and `make test` (every test). Both install the
# Debian packages they need first (scripts/setup-deps.sh, idempotent).
JOBS ?= 2

FUZZ_SECONDS ?= 600

.PHONY: all deps build test test-asan test-fuzz test-tsan fuzz demo bench clean

all: build

deps:
	./scripts/setup-deps.sh

build: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

test: build
	ctest --preset release -j $(JOBS)
	$(MAKE) test-asan
	$(MAKE) test-fuzz
	$(MAKE) test-tsan

# The library, the unit tests and the emb tool's tests (but the WordNet one) once more under
# AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

# The fuzz targets (clang-14, libFuzzer, ASan + UBSan): corpus replay and a short deterministic run.
test-fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)
	ctest --preset fuzz -j $(JOBS)

# The concurrency test under ThreadSanitizer.
test-tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan

# Long fuzzing: each target for FUZZ_SECONDS (default 600), growing build-fuzz/corpus/<target>.
fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)
	./scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

# The benchmark suite (never part of `make test`): emb against libtorch and the plain C++ probe,
# one line per case in build/bench/compare.tsv. QUICK=1 runs a short subset.
bench: build
	cmake --build --preset release -j $(JOBS) --target compare_bench sparse_step_bench collection_bench
	./build/bench/compare_bench $(if $(QUICK),--quick) --out build/bench
	./build/bench/sparse_step_bench $(if $(QUICK),1000000 64 50 --fused-ids 200000 --fused-table-mib 256 --fused-reps 3,10000000 64 200) --out build/bench
	./build/bench/collection_bench $(if $(QUICK),10,30) --out build/bench

# The main job on its default data: WordNet -> emb train -> emb test. Installs and builds only
# what it needs (the library and build-demo/emb; no libtorch, no tests).
demo:
	./scripts/setup-deps.sh --demo
	cmake --preset demo
	cmake --build --preset demo -j $(JOBS)
	./scripts/demo.sh build-demo

clean:
	rm -rf build build-asan build-demo build-fuzz build-tsan
