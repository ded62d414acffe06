#!/usr/bin/env bash
# Make sure Debian's `prometheus` package is installed: it provides `promtool` (config, rules and
# metrics checks) and the `prometheus` server the observability integration test starts.
# Idempotent: does nothing when both binaries are already there.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  echo "prometheus/promtool: present ($(promtool --version 2>&1 | head -n1))"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "promtool is missing; install Debian's package: sudo apt-get install -y prometheus" >&2
  exit 1
fi

echo "prometheus/promtool: missing, installing Debian's prometheus package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: only the server and promtool, not the node exporter and web assets.
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
promtool --version 2>&1 | head -n1
