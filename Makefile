# The two commands of the README:
#   make dev    builds everything and starts the whole app on the embedded
#               default (dev host + emulators with demo data)
#   make test   builds everything and runs every test (what CI runs); with
#               SPIN_BIN=/path/to/spin also the end-to-end suite on real Spin
# and what a developer needs next:
#   make build  builds the wasm components (release, wasm32-wasip2)
#   make lint   the gates make test starts with: rustfmt and clippy (-D warnings)
#   make bench  prints sizes, latencies, round trips and build/start times
#               (latencies also on each real Spin in SPIN_BIN)
#   make client regenerates the TypeScript client's types from /openapi.json

SHELL := /bin/bash
COMPONENTS := $(notdir $(wildcard functions/*))
WASM_TARGET := wasm32-wasip2

.PHONY: dev test build lint bench client toolchain emulators

toolchain:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

build: toolchain
	cargo build --target $(WASM_TARGET) --release $(addprefix -p ,$(COMPONENTS))

dev: build
	cargo run -p devtool --bin dev -- $(ARGS)

emulators:
	cargo run -p emulators --bin emulators -- $(ARGS)

# Every test on the dev host; the end-to-end suite again on each real Spin in
# SPIN_BIN (a list of Spin CLIs; .ci/run sets it when it finds one).
lint: toolchain
	@bash dev/lint.sh

test: build
	@bash dev/chromium.sh
	@bash dev/test.sh

bench: build
	cargo run -p devtool --bin bench -- $(ARGS)

client:
	cargo run -p devtool --bin client
