#!/usr/bin/env bash
# Sets up a fresh Debian machine, builds the module, and runs it in a local Apache in front of a demo
# app, with the demo OpenID Provider beside it. Ctrl-C stops both.
#
#   Apache   http://localhost:${APACHE_PORT:-8080}/protected/   (the page to open)
#   provider http://127.0.0.1:${PROVIDER_PORT:-9000}            (a different site, as in real life)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
apache_port=${APACHE_PORT:-8080}
provider_port=${PROVIDER_PORT:-9000}

./scripts/install-deps.sh
export PATH="/opt/swift/usr/bin:$PATH"
make module

# Under /tmp, not in the checkout: Apache's children run as www-data and must reach the CGI, and a
# checkout often lies in a folder only its owner may enter (/root, a home folder of mode 0700).
run=${DEMO_RUN_DIR:-/tmp/mod_auth_idtoken-demo}
rm -rf "$run"
mkdir -p "$run/cgi"
chmod 755 "$run" "$run/cgi"
# The session key: random, one line, readable by root only (httpd reads it before dropping privileges).
(umask 077; openssl rand -base64 32 > "$run/session.key")
cp demo/app/whoami.cgi "$run/cgi/"

user_lines=""
if [ "$(id -u)" = 0 ]; then user_lines=$'User www-data\nGroup www-data'; fi
mods=/usr/lib/apache2/modules
cat > "$run/httpd.conf" <<CONF
ServerRoot "$run"
Listen 127.0.0.1:$apache_port
ServerName localhost:$apache_port
PidFile "$run/httpd.pid"
ErrorLog "$run/error.log"
LogLevel warn auth_idtoken:info
Mutex file:$run
$user_lines
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule alias_module $mods/mod_alias.so
LoadModule mime_module $mods/mod_mime.so
LoadModule cgid_module $mods/mod_cgid.so
TypesConfig /etc/mime.types
# No .htaccess lookups in the folders above the demo (www-data may not be allowed to read them).
<Directory />
    AllowOverride None
</Directory>
ScriptSock "$run/cgid.sock"
LoadModule auth_idtoken_module $repo/build/mod_auth_idtoken.so

# --- mod_auth_idtoken -------------------------------------------------------------------------
IDTokenDiscoveryURL   http://127.0.0.1:$provider_port/.well-known/openid-configuration
IDTokenClientID       demo-client
IDTokenRedirectURI    /protected/callback
IDTokenSessionKeyFile "$run/session.key"

ScriptAlias /protected/ "$run/cgi/whoami.cgi/"
<Location "/protected">
    AuthType IDToken
    Require valid-user
</Location>
CONF

python3 demo/provider/idp.py --host 127.0.0.1 --port "$provider_port" --client-id demo-client \
    --redirect-uri "http://localhost:$apache_port/protected/callback" > "$run/provider.log" 2>&1 &
provider_pid=$!
stop() {
    /usr/sbin/apache2 -f "$run/httpd.conf" -k stop 2>/dev/null || true
    kill "$provider_pid" 2>/dev/null || true
}
trap stop EXIT INT TERM
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$provider_port/.well-known/openid-configuration" >/dev/null 2>&1 && break
    sleep 0.1
done
SWIFT_BACKTRACE=enable=no /usr/sbin/apache2 -f "$run/httpd.conf" -k start
echo
echo "  Open http://localhost:$apache_port/protected/ and log in as any user at the demo provider."
echo "  Apache's config and error log: $run/httpd.conf, $run/error.log. Ctrl-C stops everything."
echo
wait "$provider_pid"
