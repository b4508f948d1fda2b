#!/usr/bin/env bash
# Installs LemonLDAP::NG from Debian's packages for the interop test (Tests/e2e/test_interop_lemonldap.py).
# Idempotent and quick once installed. The package scripts must not start any system service: the
# test runs its own portal and its own Apache, on free loopback ports, from a temporary folder.
set -euo pipefail

# lemonldap-ng: the provider itself. lemonldap-ng-fastcgi-server: llng-fastcgi-server, which serves
# the portal as FastCGI (without it apt would settle the portal's "a way to run me" dependency with
# the apache2 already installed, and nothing could run the portal). The Perl modules: the 2.16
# portal, or its OpenID Connect issuer, does not start without them, though Debian only recommends
# or suggests them (the other recommends are left out: fonts, WebAuthn, LDAP, ...).
debs=(lemonldap-ng lemonldap-ng-fastcgi-server libstring-random-perl libgd-securityimage-perl
      libimage-magick-perl libio-string-perl)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
# invoke-rc.d and deb-systemd-invoke ask /usr/sbin/policy-rc.d before starting a service; 101 means
# "not allowed". A policy already in place (a container's) is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# mod_auth_idtoken interop install: start no service\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi

echo "installing Debian packages: ${missing[*]}"
start=$(date +%s)
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  # The package lists may be missing or stale on a fresh machine.
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "installed $(dpkg-query -W -f='${Package} ${Version}' lemonldap-ng) in $(( $(date +%s) - start )) s"
