#!/usr/bin/env bash
# Builds libapache2-mod-auth-idtoken_<version>_amd64.deb from build/ (make module first; `make deb` does
# both) with dpkg-deb: no network, nothing but Debian's own tools. The version is IDT_VERSION in
# CShim/include/idtoken.h; DEB_VERSION overrides it (the upgrade test builds a later one).
# The layout follows Debian's Apache modules: the module and its library in /usr/lib/apache2/modules,
# auth_idtoken.load/.conf in /etc/apache2/mods-available (conffiles), maintainer scripts that use
# apache2-maintscript-helper (packaging/deb/).
set -euo pipefail
cd "$(dirname "$0")/.."

version=${DEB_VERSION:-$(sed -n 's/^#define IDT_VERSION "\(.*\)"$/\1/p' CShim/include/idtoken.h)}
[ -n "$version" ] || { echo "no IDT_VERSION in CShim/include/idtoken.h" >&2; exit 1; }
package=libapache2-mod-auth-idtoken
out=${DEB_OUT:-build}
for f in build/mod_auth_idtoken.so build/libIDToken.so; do
  [ -f "$f" ] || { echo "$f is missing: run make module first" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
modules="$root/usr/lib/apache2/modules"
# The library is private to the module: in a folder of its own (found through the module's RUNPATH
# $ORIGIN/../../libapache2-mod-auth-idtoken), not among httpd's modules.
private="$root/usr/lib/$package"
doc="$root/usr/share/doc/$package"
install -d "$modules" "$private" "$root/etc/apache2/mods-available" "$doc/docs" "$root/usr/share/lintian/overrides" "$root/DEBIAN"

install -m 644 build/mod_auth_idtoken.so "$modules/"
install -m 644 build/libIDToken.so "$private/"
strip --strip-unneeded "$modules/mod_auth_idtoken.so"
install -m 644 apache/auth_idtoken.load apache/auth_idtoken.conf "$root/etc/apache2/mods-available/"
install -m 644 packaging/deb/copyright "$doc/copyright"
install -m 644 README.md "$doc/README.md"
install -m 644 docs/*.md "$doc/docs/"
gzip -9n -c CHANGELOG.md > "$doc/changelog.gz"
# Debian's own changelog format, one entry per package build, as dpkg and lintian expect.
{
  echo "$package ($version) unstable; urgency=medium"
  echo
  echo "  * Release $version: see /usr/share/doc/$package/changelog.gz."
  echo
  echo " -- mod_auth_idtoken developers <mod-auth-idtoken@example.org>  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n > "$doc/changelog.Debian.gz"
install -m 644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/$package"
chmod 644 "$doc/docs/"*.md

# The libraries the module and its library need, as Debian names them; plus httpd's module ABI.
mkdir -p "$stage/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: amd64\n' "$package" "$package" > "$stage/debian/control"
# The module needs libc, hiredis and OpenSSL (its Redis client) and its private library, which needs the
# rest; dpkg-shlibdeps is told where that private library is, as it is not on the linker's path (and not to
# list the module's references to httpd, which no library provides: httpd itself does).
shlibs=$(cd "$stage" && dpkg-shlibdeps -O --warnings=2 -l"root/usr/lib/$package" -e"root/usr/lib/apache2/modules/mod_auth_idtoken.so" \
  -e"root/usr/lib/$package/libIDToken.so" | sed -n 's/^shlibs:Depends=//p')
# libIDToken.so's relative relocations are packed (DT_RELR, see the Makefile), which glibc reads from 2.36
# on; dpkg-shlibdeps goes by the symbols used and does not know it.
if [[ $shlibs =~ libc6\ \(\>=\ ([^\)]+)\) ]] && dpkg --compare-versions "${BASH_REMATCH[1]}" lt 2.36; then
  shlibs=${shlibs/"libc6 (>= ${BASH_REMATCH[1]})"/"libc6 (>= 2.36)"}
fi
depends="apache2-api-20120211, apache2-bin (>= 2.4.16)${shlibs:+, $shlibs}"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" packaging/deb/control.in > "$root/DEBIAN/control"
printf '/etc/apache2/mods-available/auth_idtoken.conf\n/etc/apache2/mods-available/auth_idtoken.load\n' > "$root/DEBIAN/conffiles"
install -m 755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | sort | xargs md5sum) > "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/${package}_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
