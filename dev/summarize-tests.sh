#!/usr/bin/env bash
# Sums every `test result:` line of a `make test` run: one line per runtime
# section (`#### runtime: …` … `#### exit: …` markers of dev/test.sh), the
# skipped runtimes, and last the summed closing line, so the run ends with
# the total rather than the last binary's count.
set -u
awk '
  function flush() {
    if (label != "") printf "%-60s %4d passed, %d failed, %d skipped, %s%s\n", label ":", sp, sf, ss, wall, code
    label = ""; sp = sf = ss = 0; wall = ""; code = ""
  }
  /^#### runtime: / { flush(); label = substr($0, 15); next }
  /^#### wall: /    { wall = substr($0, 12) " wall"; next }
  # A failed build counts no test: say so on its line.
  /^#### exit: /    { if ($3 != "0") code = ", FAILED (exit " $3 ")"; next }
  /^#### /          { flush(); notes = notes substr($0, 6) "\n"; next }
  /^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed/)  { p += $i; sp += $i }
      if ($(i+1) ~ /^failed/)  { f += $i; sf += $i }
      if ($(i+1) ~ /^ignored/) { s += $i; ss += $i }
    }
  }
  BEGIN { print "\n== summary" }
  END {
    flush()
    printf "%s", notes
    printf "total: %d passed, %d failed, %d skipped\n", p, f, s
  }' "$1"
