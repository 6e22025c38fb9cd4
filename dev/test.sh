#!/usr/bin/env bash
# `make test`: the gates (dev/lint.sh: rustfmt, clippy), every test on the
# dev host, then the end-to-end suite again on each real Spin named in
# SPIN_BIN (a list, separated by spaces or `:`).
# Modules of tests/it that only make sense in process (IN_PROCESS_TESTS: the
# import check, the native upstream clients, the Kubernetes manifests, the
# TypeScript client) run
# once, on the dev host. The output ends with
# a line per runtime and the summed `total:` line (dev/summarize-tests.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
out=target/test-output.txt
mkdir -p target && : > "$out"
status=0

# run LABEL COMMAND...: one section of the output, with its wall time.
run() {
  local label=$1 start=$SECONDS
  shift
  echo "#### runtime: $label" | tee -a "$out"
  "$@" 2>&1 | tee -a "$out"
  local code=${PIPESTATUS[0]}
  [ "$code" = 0 ] || status=1
  echo "#### wall: $((SECONDS - start)) s" | tee -a "$out"
  echo "#### exit: $code" | tee -a "$out"
}

run "gates: rustfmt and clippy (-D warnings)" bash dev/lint.sh

# The end-to-end binary (tests/it) runs its `soak` module on its own, after
# the rest: a minute of load beside the timing-sensitive fault tests would
# test the machine rather than the app. Between them, the Data API rights
# the suite's calls used are checked against shared::needs::TABLE
# (tests/it/rights.rs; ignored in the suite itself, which records them).
soak_alone() {
  local code=0
  rm -rf target/e2e-rights
  "$@" -- --skip soak:: || code=1
  cargo test --no-fail-fast -p e2e --test it rights:: -- --ignored || code=1
  "$@" soak:: || code=1
  return $code
}

run "dev host, every test" soak_alone cargo test --no-fail-fast

# The gateway's contract suite against a real MongoDB (ignored, so counted
# as skipped above, unless MONGODB_URI names one).
if [ -n "${MONGODB_URI:-}" ]; then
  run "gateway on the MongoDB at MONGODB_URI, contract suite" cargo test --no-fail-fast -p gateway --test contract -- --ignored
else
  echo "#### real MongoDB: skipped (MONGODB_URI is not set; the gateway's mongodb:: contract tests are reported as skipped)" | tee -a "$out"
fi

skip_in_process=()
for name in ${IN_PROCESS_TESTS:-imports clients kubernetes typescript}; do
  skip_in_process+=(--skip "$name::")
done
# On Spin: tests/it without its in-process modules, then the soak alone.
spin_suite() {
  local code=0
  cargo test --no-fail-fast -p e2e --test it -- "${skip_in_process[@]}" --skip soak:: || code=1
  cargo test --no-fail-fast -p e2e --test it soak:: || code=1
  return $code
}

bins=${SPIN_BIN:-}
if [ -z "${bins//[:[:space:]]/}" ]; then
  echo "#### real Spin: skipped (SPIN_BIN is not set; e.g. SPIN_BIN=/path/to/spin make test)" | tee -a "$out"
fi
for bin in ${bins//:/ }; do
  if ! version=$("$bin" --version 2>&1 | head -n 1); then
    echo "#### real Spin: $bin does not run: $version" | tee -a "$out"
    status=1
    continue
  fi
  echo "Spin binary: $bin" | tee -a "$out"
  E2E_RUNTIME=spin SPIN_BIN=$bin run "$version, end-to-end suite" spin_suite
done

bash dev/summarize-tests.sh "$out"
exit $status
