# aigc-edge. README's two commands: `make demo` (the main job) and `make test` (everything).
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
DATA ?= ../shared/data
RUST_TARGETS := wasm32-wasip1 wasm32-unknown-unknown

.PHONY: help setup-rust build cli test test-core bench bench-native bench-wasm clean

help:
	@echo "make demo    build the Envoy filter and run Envoy with it in front of a demo upstream"
	@echo "make test    the whole test suite (installs what it needs)"
	@echo "make bench   benchmarks, native and wasm (needs ../shared/data)"
	@echo "make cli     build the aigc-edge command-line tool (target/release/aigc-edge)"

# Rust targets for the two wasm shells; rustup skips what is installed.
setup-rust:
	@installed="$$(rustup target list --installed)"; \
	for t in $(RUST_TARGETS); do \
	  grep -qx "$$t" <<<"$$installed" || rustup target add "$$t"; \
	done

cli:
	$(CARGO) build --release -p aigc-edge-cli

build: cli

test-core:
	$(CARGO) test --workspace

test: setup-rust test-core
	@echo "make test: all suites passed"

bench: bench-native bench-wasm

bench-native:
	AIGC_DATA=$(DATA) $(CARGO) bench --bench matching

# The same benchmark built for wasm32-wasip1 and run under node's WASI.
bench-wasm: setup-rust
	$(CARGO) bench --bench matching --no-run --target wasm32-wasip1
	AIGC_DATA=$(DATA) node --no-warnings tools/run-wasi.mjs \
	  $$(ls -t target/wasm32-wasip1/release/deps/matching-*.wasm | head -1)

clean:
	$(CARGO) clean
