#!/usr/bin/env bash
# The gates of `make test` (and `make lint`): formatting, and clippy with
# warnings as errors — natively for every crate that builds natively, and
# for wasm32-wasip2 for the components (which link Spin's SDK and
# `shared::spin`, and build only there).
set -euo pipefail
cd "$(dirname "$0")/.."
components=()
excluded=()
for f in functions/*/; do
  c=$(basename "$f")
  components+=(-p "$c")
  excluded+=(--exclude "$c")
done
echo "== cargo fmt --all --check"
cargo fmt --all --check
echo "== cargo clippy (native: the workspace but the components)"
cargo clippy --workspace --all-targets "${excluded[@]}" -- -D warnings
echo "== cargo clippy (wasm32-wasip2: the components)"
cargo clippy --target wasm32-wasip2 "${components[@]}" -- -D warnings
echo "== gates passed"
