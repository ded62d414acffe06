#!/usr/bin/env bash
# Debian packages the tests drive: chromium (console end-to-end tests, through Playwright).
# Installs only what is missing, so it is quick on a machine that has them.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=300 update -q
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
fi
echo "tools: ${missing[*]:-all present}"
