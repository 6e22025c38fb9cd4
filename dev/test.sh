#!/usr/bin/env bash
# `make test`: every test on the dev host, then the end-to-end suite again on
# each real Spin named in SPIN_BIN (a list, separated by spaces or `:`).
# Tests that only make sense in process (IN_PROCESS_TESTS: the import check,
# the native upstream clients, the Kubernetes manifests) run once, on the dev host. The output ends with
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

run "dev host, every test" cargo test --no-fail-fast

# The gateway's contract suite against a real MongoDB (ignored, so counted
# as skipped above, unless MONGODB_URI names one).
if [ -n "${MONGODB_URI:-}" ]; then
  run "gateway on the MongoDB at MONGODB_URI, contract suite" cargo test --no-fail-fast -p gateway --test contract -- --ignored
else
  echo "#### real MongoDB: skipped (MONGODB_URI is not set; the gateway's mongodb:: contract tests are reported as skipped)" | tee -a "$out"
fi

in_process=" ${IN_PROCESS_TESTS:-imports clients kubernetes} "
e2e=()
for f in tests/tests/*.rs; do
  name=$(basename "$f" .rs)
  [[ $in_process == *" $name "* ]] || e2e+=(--test "$name")
done

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
  E2E_RUNTIME=spin SPIN_BIN=$bin run "$version, end-to-end suite" cargo test --no-fail-fast -p e2e "${e2e[@]}"
done

bash dev/summarize-tests.sh "$out"
exit $status
