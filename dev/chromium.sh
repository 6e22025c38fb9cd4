#!/usr/bin/env bash
# The browser test (tests/it/browser.rs) drives Debian's Chromium: install it
# when it is missing and apt can (as root); otherwise say what is missing
# (the test then fails, naming it).
set -u
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser test"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null && exit 0
fi
echo "chromium is missing: the browser test needs Debian's chromium (apt-get install chromium)" >&2
