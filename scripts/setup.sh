#!/usr/bin/env bash
# Installs everything pytest-baremetal needs on a Debian 12 machine: Debian packages,
# a virtual environment in .venv with the project and its extras, and the npm packages
# used to render Allure reports. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  qemu-system-x86 ovmf gnu-efi mtools dosfstools gcc make
  socat python3-venv git postgresql chromium
  ipxe-qemu dnsmasq-base ser2net iproute2
)
# Node may come from elsewhere than Debian (preinstalled); only the binaries matter.
command -v node >/dev/null && command -v npm >/dev/null || APT_PACKAGES+=(nodejs npm)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q -e ".[dev,allure,postgres,plot,lab]" 2>&1 | grep -v '^WARNING: Location' || true

if [ -f package.json ] && [ ! -d node_modules ]; then
  echo "setup: installing npm packages"
  npm ci --silent --no-audit --no-fund >/dev/null 2>&1 || npm install --silent --no-audit --no-fund >/dev/null
fi
echo "setup: ready"
