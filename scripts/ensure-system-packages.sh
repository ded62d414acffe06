#!/usr/bin/env bash
# Debian packages balsong needs besides Python's: a Hangul font for PDF send statements
# (WeasyPrint draws text with the system's fonts; without one, Korean shows as empty boxes),
# poppler-utils, with which the tests read PDFs back, and chromium, which the console's
# end-to-end tests drive through Playwright. Installs only what is missing.
set -euo pipefail

packages=(fonts-nanum poppler-utils chromium)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "need root to install ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
