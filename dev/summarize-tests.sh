#!/usr/bin/env bash
# Sums every `test result:` line of a cargo test run into one closing line,
# so the run ends with the total rather than the last binary's count.
set -u
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/)  p += $i
         if ($(i+1) ~ /^failed/)  f += $i
         if ($(i+1) ~ /^ignored/) s += $i
       }
     }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$1"
