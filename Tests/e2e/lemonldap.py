"""LemonLDAP::NG, a real OpenID Provider from Debian's packages, for the interop test
(test_interop_lemonldap.py). Its portal runs in llng-fastcgi-server behind an Apache of its own, both
on a free port of 127.0.0.1 and configured from Tests/interop/lemonldap/ into a fresh folder: the
system's /etc/lemonldap-ng, /var/lib/lemonldap-ng and services are never used.

Install it first with `bash Tests/interop/lemonldap/install.sh`."""

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from harness import APACHE, APACHE_MODULES, REPO, builtin_modules, free_port, pid_alive, server_preamble, wait_for

PLACEHOLDER = re.compile(r"@[A-Z_]+@")
TEMPLATES = REPO / "Tests" / "interop" / "lemonldap"
FASTCGI_SERVER = "/usr/sbin/llng-fastcgi-server"
INSTALL = "bash Tests/interop/lemonldap/install.sh"

# The users of LemonLDAP::NG's "Demo" authentication backend (Lemonldap::NG::Portal::Lib::Demo).
DEMO_USERS = {"dwho": {"cn": "Doctor Who", "mail": "dwho@badwolf.org"},
              "rtyler": {"cn": "Rose Tyler", "mail": "rtyler@badwolf.org"}}

# The portal's Apache: event MPM whatever E2E_MPM says (this Apache is the provider, not the module
# under test), and what it needs to serve static files and proxy to the FastCGI socket.
PORTAL_MODULES = ["mpm_event", "authz_core", "unixd", "alias", "mime", "log_config", "proxy", "proxy_fcgi"]


def installed_version() -> str:
    """The installed lemonldap-ng package's version, or "" when it is not installed."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}|${Version}", "lemonldap-ng"],
                       capture_output=True, text=True)
    status, _, version = r.stdout.partition("|")
    return version if r.returncode == 0 and status.endswith(" installed") else ""


def _fill(text: str, values: dict) -> str:
    for name, value in values.items():
        text = text.replace("@%s@" % name, value)
    left = PLACEHOLDER.search(text)
    if left:
        raise ValueError("the template's %s has no value" % left.group(0))
    return text


def _fill_json(node, values: dict):
    """The JSON template with each @NAME@ inside its strings replaced (after parsing, so a value such as
    a PEM key needs no JSON escaping)."""
    if isinstance(node, dict):
        return {k: _fill_json(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill_json(v, values) for v in node]
    if isinstance(node, str):
        return _fill(node, values)
    return node


def rsa_key_pair():
    """(private PEM, public PEM): the provider's signing key, made for each run. PKCS#1 for the private
    key, as LemonLDAP::NG's manager generates it (Crypt::OpenSSL::RSA reads it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class LemonLDAP:
    """One LemonLDAP::NG portal with one OpenID Connect relying party registered: `client_id`, with
    `redirect_uri` and `post_logout_redirect_uris`, its ID tokens signed with `id_token_alg` (HS*
    with `client_secret`). `issuer_slash=False` sets oidcServiceMetaDataIssuer to the portal URL
    without its trailing slash; by default it is unset, and LemonLDAP::NG names itself by its portal
    URL, slash included."""

    def __init__(self, *, client_id, redirect_uri, post_logout_redirect_uris, issuer_slash=True,
                 id_token_alg="RS256", client_secret="", log_level="notice"):
        if not os.path.exists(FASTCGI_SERVER) or not installed_version():
            raise RuntimeError("LemonLDAP::NG is not installed: run `%s` first" % INSTALL)
        self.version = installed_version()
        self.client_id = client_id
        self.port = free_port()
        self.portal = "http://127.0.0.1:%d" % self.port
        self.folder = Path(tempfile.mkdtemp(prefix="e2e-llng-"))
        os.chmod(self.folder, 0o755)
        self.socket = self.folder / "llng-fastcgi.sock"
        self.httpd_conf = self.folder / "httpd.conf"
        self.httpd_pid_file = self.folder / "httpd.pid"
        self.fcgi_log = self.folder / "llng.log"
        self.httpd_log = self.folder / "httpd-error.log"
        self.httpd_pid = None
        self.fcgi = None
        self.configured_issuer = None if issuer_slash else self.portal
        self.id_token_alg = id_token_alg
        self.key_id = "llng-" + secrets.token_hex(4)
        private, public = rsa_key_pair()
        values = {
            "FOLDER": str(self.folder),
            "PORT": str(self.port),
            "PORTAL": self.portal,
            "PRIVATE_KEY": private,
            "PUBLIC_KEY": public,
            "KEY_ID": self.key_id,
            "CLIENT_ID": client_id,
            "REDIRECT_URI": redirect_uri,
            "POST_LOGOUT_REDIRECT_URI": " ".join(post_logout_redirect_uris),
            "ISSUER": self.configured_issuer or "",
            "ID_TOKEN_ALG": id_token_alg,
            "CLIENT_SECRET": client_secret,
            "LOG_LEVEL": log_level,
        }
        for sub in ("conf", "cache", "sessions/lock", "psessions/lock"):
            (self.folder / sub).mkdir(parents=True, mode=0o750)
        conf = _fill_json(json.loads((TEMPLATES / "lmConf.json").read_text()), values)
        (self.folder / "conf" / "lmConf-1.json").write_text(json.dumps(conf, indent=2, sort_keys=True))
        self.ini = self.folder / "lemonldap-ng.ini"
        self.ini.write_text(_fill((TEMPLATES / "lemonldap-ng.ini").read_text(), values))
        self._write_httpd_conf(values)
        # llng-fastcgi-server refuses to run as root: as root it switches to www-data (Apache's user
        # too, which must reach its socket), and www-data must write its sessions and caches.
        self.as_root = os.geteuid() == 0
        if self.as_root:
            www = pwd.getpwnam("www-data")
            for path in [self.folder, *self.folder.rglob("*")]:
                os.chown(path, www.pw_uid, www.pw_gid)

    def _write_httpd_conf(self, values):
        loads = ["LoadModule %s_module %s" % (m, APACHE_MODULES / ("mod_%s.so" % m))
                 for m in PORTAL_MODULES if "mod_%s" % m not in builtin_modules()]
        preamble = server_preamble(self.folder, self.httpd_pid_file, self.port, loads)
        body = _fill((TEMPLATES / "portal-httpd.conf").read_text(), values)
        self.httpd_conf.write_text("# generated by Tests/e2e/lemonldap.py\n" + "\n".join(preamble) + "\n" + body)

    # -- URLs --
    @property
    def issuer(self):
        """What LemonLDAP::NG names itself: oidcServiceMetaDataIssuer, else its portal URL as configured
        (here with a trailing slash)."""
        return self.configured_issuer or self.portal + "/"

    @property
    def discovery_url(self):
        return self.portal + "/.well-known/openid-configuration"

    def url(self, path):
        return self.portal + path

    def discovery(self):
        r = requests.get(self.discovery_url, timeout=10)
        r.raise_for_status()
        return r.json()

    def jwks(self):
        r = requests.get(self.discovery()["jwks_uri"], timeout=10)
        r.raise_for_status()
        return r.json()

    # -- control --
    def start(self):
        """Starts llng-fastcgi-server, then its Apache, and waits for the discovery document (the first
        request compiles the portal). Sets self.start_seconds."""
        began = time.monotonic()
        env = dict(os.environ, LLNG_DEFAULTCONFFILE=str(self.ini),
                   LLNG_DEFAULTLOGGER="Lemonldap::NG::Common::Logger::Std")
        args = [FASTCGI_SERVER, "--foreground", "--proc", "2", "--socket", str(self.socket),
                "--pid", str(self.folder / "llng-fastcgi.pid")]
        if self.as_root:
            args += ["--user", "www-data", "--group", "www-data"]
        log = open(self.fcgi_log, "ab")
        # A session of its own: FCGI::ProcManager forks workers, and stop() ends the whole group.
        self.fcgi = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=self.folder, start_new_session=True)
        log.close()
        try:
            wait_for(self._socket_ready, 30, "llng-fastcgi-server's socket %s" % self.socket)
            r = subprocess.run([APACHE, "-f", str(self.httpd_conf), "-k", "start"], capture_output=True,
                               text=True, timeout=60, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                raise RuntimeError("the portal's apache2 -k start failed (%d):\n%s%s" % (
                    r.returncode, r.stdout, r.stderr))
            self.httpd_pid = int(wait_for(self._read_httpd_pid, 20, "the portal's httpd pid file"))
            wait_for(self._discovery_answers, 60, "LemonLDAP::NG's discovery document at %s" % self.discovery_url,
                     interval=0.2)
        except Exception as e:
            detail = self.logs()
            self.stop()
            raise RuntimeError("%s\n%s" % (e, detail)) from e
        self.start_seconds = time.monotonic() - began
        return self

    def _socket_ready(self):
        if self.fcgi.poll() is not None:
            raise RuntimeError("llng-fastcgi-server exited with %s" % self.fcgi.returncode)
        return self.socket.exists()

    def _read_httpd_pid(self):
        try:
            text = self.httpd_pid_file.read_text().strip()
            return text or None
        except FileNotFoundError:
            return None

    def _discovery_answers(self):
        if self.fcgi.poll() is not None:
            raise RuntimeError("llng-fastcgi-server exited with %s" % self.fcgi.returncode)
        try:
            return requests.get(self.discovery_url, timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def logs(self) -> str:
        """The FastCGI server's and the portal Apache's logs (the portal's own messages are in the first)."""
        out = []
        for path in (self.fcgi_log, self.httpd_log):
            try:
                out.append("--- %s:\n%s" % (path.name, path.read_text(errors="replace")[-6000:]))
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.httpd_pid is not None:
            if pid_alive(self.httpd_pid):
                subprocess.run([APACHE, "-f", str(self.httpd_conf), "-k", "stop"], capture_output=True,
                               timeout=30, stdin=subprocess.DEVNULL)
                try:
                    wait_for(lambda: not pid_alive(self.httpd_pid), 15, "the portal's httpd to exit")
                except TimeoutError:
                    os.kill(self.httpd_pid, signal.SIGKILL)
            self.httpd_pid = None
        if self.fcgi is not None:
            if self.fcgi.poll() is None:
                try:
                    os.killpg(self.fcgi.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.fcgi.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.fcgi.pid, signal.SIGKILL)
                    self.fcgi.wait(5)
            # The workers outlive the manager for a moment: none may keep the folder busy.
            try:
                wait_for(lambda: not _group_alive(self.fcgi.pid), 10, "llng-fastcgi-server's workers to exit")
            except TimeoutError:
                os.killpg(self.fcgi.pid, signal.SIGKILL)
            self.fcgi = None

    def cleanup(self):
        self.stop()
        if not os.environ.get("E2E_KEEP_FILES"):
            shutil.rmtree(self.folder, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
