#!/usr/bin/env bash
# Installs what building, running and testing mod_auth_idtoken needs on Debian.
# Idempotent: it installs only what is missing, so CI and `make demo` can call it every time.
set -euo pipefail

debs=(make wrk valgrind gcc apache2 apache2-dev libapr1-dev libaprutil1-dev libssl-dev libcurl4-openssl-dev zlib1g-dev gdb lintian
      chromium chromium-driver curl python3 python3-pip redis-server redis-sentinel libhiredis-dev
      libapache2-mod-auth-openidc openssl)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # policy-rc.d keeps the package scripts from starting a system Apache on port 80. A system
  # redis-server or redis-sentinel, where one starts, is not used: the tests start their own on free ports.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=(selenium requests cryptography pytest prometheus_client)
need=()
for m in "${py[@]}"; do python3 -c "import $m" 2>/dev/null || need+=("$m"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Python packages: ${need[*]}"
  python3 -m pip install -q "${need[@]}"
fi

if ! command -v swift >/dev/null 2>&1; then
  for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do [ -x "$d/swift" ] && export PATH="$d:$PATH"; done
  command -v swift >/dev/null || { echo "Swift 6.x toolchain not found: install it (swift.org) and put it on PATH" >&2; exit 1; }
fi
