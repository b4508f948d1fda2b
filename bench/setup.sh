#!/usr/bin/env bash
# Installs what the benchmark needs beyond scripts/install-deps.sh: wrk (the load generator) and
# Debian's mod_auth_openidc (the module we compare with). Idempotent: installs only what is missing.
set -euo pipefail

debs=(wrk libapache2-mod-auth-openidc)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/setup.sh: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # The package's scripts may run a2enmod on the system Apache; the benchmark never uses that one
  # (every instance has its own generated configuration), so nothing changes for it.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for m in requests; do
  python3 -c "import $m" 2>/dev/null || python3 -m pip install -q "$m"
done
