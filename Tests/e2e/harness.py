"""Helpers for the end-to-end tests: the demo provider, Apache instances, a browser-like HTTP client,
and an independent JWS verifier (the tests never reuse the provider's own signing code to check it)."""

import base64
import copy
import html
import http.cookiejar
import ipaddress
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import requests

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parents[1]
IDP = REPO / "demo" / "provider" / "idp.py"
MODULE = REPO / "build" / "mod_auth_idtoken.so"
APACHE = "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def stop_process(proc):
    """Terminate a helper process (provider, Redis), killing it if it will not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def server_preamble(folder, pid_file, port, loads) -> list:
    """The lines every generated httpd.conf starts with: its own folder, pid file, mutexes, modules,
    the user children run as (when started as root), and one loopback port."""
    as_root = os.geteuid() == 0
    return [
        "ServerRoot %s" % folder,
        "DefaultRuntimeDir %s" % folder,
        "PidFile %s" % pid_file,
        "Mutex file:%s default" % folder,
        *loads,
        "User www-data" if as_root else "",
        "Group www-data" if as_root else "",
        "Listen 127.0.0.1:%d" % port,
        "ServerName localhost:%d" % port,
    ]


def port_open(port, host="127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------
# The demo provider
# ---------------------------------------------------------------------------------------------------

class Provider:
    """demo/provider/idp.py in a subprocess, on a free port of 127.0.0.1."""

    def __init__(self, *args, client_id="test-client"):
        self.folder = Path(tempfile.mkdtemp(prefix="e2e-idp-"))
        self.client_id = client_id
        out = open(self.folder / "stdout", "wb")
        err = open(self.folder / "stderr", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(IDP), "--port", "0", "--host", "127.0.0.1", "--client-id", client_id, *args],
            stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        try:
            line = wait_for(self._ready_line, 20, "the demo provider to print its ready line")
            self.issuer = line.split(" at ", 1)[1].strip()
            self.port = urllib.parse.urlsplit(self.issuer).port
            wait_for(self._discovery_answers, 10, "the demo provider's discovery document")
        except Exception:
            self.stop()
            raise

    def _ready_line(self):
        if self.proc.poll() is not None:
            raise RuntimeError("the demo provider exited with %s:\n%s" % (
                self.proc.returncode, (self.folder / "stderr").read_text(errors="replace")))
        for line in (self.folder / "stdout").read_text(errors="replace").splitlines():
            if line.startswith("demo provider ready at "):
                return line
        return None

    def _discovery_answers(self):
        try:
            return requests.get(self.discovery_url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    @property
    def discovery_url(self):
        return self.issuer + "/.well-known/openid-configuration"

    def url(self, path):
        return self.issuer + path

    def discovery(self):
        r = requests.get(self.discovery_url, timeout=5)
        r.raise_for_status()
        return r.json()

    def jwks(self):
        r = requests.get(self.url("/jwks"), timeout=5)
        r.raise_for_status()
        return r.json()

    def control(self, name, body=None):
        r = requests.post(self.url("/_test/" + name), json=body or {}, timeout=30)
        assert r.status_code == 200, "provider control %s failed: %s %s" % (name, r.status_code, r.text)
        return r.json()

    def reset(self):
        return self.control("reset")

    def configure(self, **settings):
        return self.control("config", settings)

    def mint(self, **body):
        return self.control("mint", body)["id_token"]

    def mint_many(self, bodies):
        """One token per mint body (as for mint), in one round trip."""
        return self.control("mint", {"batch": list(bodies)})["id_tokens"]

    def fault(self, delay=30, **faults):
        """Make GET discovery and/or GET jwks fail: fault(discovery="slow", jwks="garbage", delay=30).
        No argument clears every fault (so does reset()). See FAULTS in idp.py and its README."""
        return self.control("fault", dict(faults, delay=delay))

    def backchannel_logout(self, uri, **body):
        """The provider POSTs a Logout Token to `uri`: {"status", "body", "headers", "logout_token"}.
        body: sid, sub, forge, alg, extra_claims, remove_claims, header (see demo/provider/README.md)."""
        return self.control("backchannel_logout", dict(body, uri=uri))

    def stats(self):
        r = requests.get(self.url("/_test/stats"), timeout=5)
        r.raise_for_status()
        return r.json()

    def stop(self):
        stop_process(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# Apache
# ---------------------------------------------------------------------------------------------------

_BUILTIN = None


def builtin_modules():
    """The modules compiled into /usr/sbin/apache2 (mod_unixd.c, mod_log_config.c on Debian)."""
    global _BUILTIN
    if _BUILTIN is None:
        out = subprocess.run([APACHE, "-l"], capture_output=True, text=True).stdout
        _BUILTIN = {line.strip()[:-2] for line in out.splitlines() if line.strip().endswith(".c")}
    return _BUILTIN


STOCK_MODULES = ["authz_core", "authz_user", "authn_core", "unixd", "alias", "mime", "cgid", "socache_shmcb",
                 "env", "log_config", "dir"]

# The MPM every generated configuration loads: E2E_MPM=event (the default), worker or prefork.
MPMS = ("event", "worker", "prefork")


def mpm() -> str:
    name = os.environ.get("E2E_MPM", "event").strip().lower() or "event"
    if name not in MPMS:
        raise RuntimeError("E2E_MPM=%r: must be one of %s" % (name, ", ".join(MPMS)))
    return name


def mpm_settings(name: str) -> list:
    """Small pools that still serve a few keep-alive clients at once. prefork has no threads: one
    connection per process, so it gets more processes."""
    if name == "prefork":
        return ["StartServers 4", "MinSpareServers 2", "MaxSpareServers 8", "ServerLimit 16",
                "MaxRequestWorkers 16"]
    return ["StartServers 2", "ServerLimit 4", "ThreadLimit 8", "ThreadsPerChild 8", "MinSpareThreads 8",
            "MaxSpareThreads 16", "MaxRequestWorkers 16"]


def one_process_settings(name: str) -> str:
    """Settings (for `extra`, after the defaults) that make httpd serve everything from one child
    process: one cache of provider keys, one in-memory store. Under prefork that child serves one
    connection at a time, so keep-alive is off: an idle client must not hold up the next."""
    if name == "prefork":
        return "\n".join(["StartServers 1", "MinSpareServers 1", "MaxSpareServers 1", "ServerLimit 1",
                          "MaxRequestWorkers 1", "KeepAlive Off"])
    return "\n".join(["StartServers 1", "ServerLimit 1", "MaxRequestWorkers 8", "MinSpareThreads 1",
                      "MaxSpareThreads 8"])


def child_crashes(log_text: str) -> list:
    """Error-log lines of children killed by a signal: a trap in the module kills the child and httpd
    logs only 'AH00052: child pid N exit signal ...' (same message under every MPM)."""
    return [line for line in log_text.splitlines() if "exit signal" in line]

ENV_CGI = """#!/usr/bin/env python3
import json, os, sys
sys.stdout.write("Content-Type: application/json\\r\\n\\r\\n")
sys.stdout.write(json.dumps(dict(os.environ), indent=1, sort_keys=True))
"""

# The raw bytes of the environment (os.environ would decode them as UTF-8): {name: hex of the value}.
HEX_CGI = """#!/usr/bin/env python3
import json, os, sys
sys.stdout.write("Content-Type: application/json\\r\\n\\r\\n")
sys.stdout.write(json.dumps({k.decode("latin-1"): v.hex() for k, v in os.environb.items()}, indent=1, sort_keys=True))
"""


class Apache:
    """One httpd with a generated configuration in a fresh folder under /tmp.

    `directives` replaces the module's settings block (None: the standard one for `provider`);
    `extra` is appended to the configuration. `key_file`: copy that session key file instead of
    making a new key (servers that must accept each other's cookies). `cgis`: more scripts for the
    cgi folder, {file name: text} (executable; alias them in `extra`). `env`: variables added to
    httpd's environment (its children inherit it), e.g. {"MALLOC_ARENA_MAX": "1"}."""

    def __init__(self, discovery_url, *, client_id="test-client", directives=None, extra="", port=None,
                 write_key=True, key_file=None, standard_location=True, module=None, cgis=None, env=None):
        self.folder = Path(tempfile.mkdtemp(prefix="e2e-httpd-"))
        os.chmod(self.folder, 0o755)
        self.port = port or free_port()
        self.discovery_url = discovery_url
        self.client_id = client_id
        self.conf = self.folder / "httpd.conf"
        self.key_file = self.folder / "session.key"
        self.pid_file = self.folder / "httpd.pid"
        self.log_file = self.folder / "error.log"
        self.pid = None
        if key_file is not None:
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(Path(key_file).read_text())
        elif write_key:
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        (self.folder / "htdocs").mkdir(mode=0o755)
        (self.folder / "htdocs" / "index.html").write_text("<html><body>e2e</body></html>\n")
        cgi = self.folder / "cgi"
        cgi.mkdir(mode=0o755)
        (cgi / "env.cgi").write_text(ENV_CGI)
        os.chmod(cgi / "env.cgi", 0o755)
        (cgi / "hex.cgi").write_text(HEX_CGI)
        os.chmod(cgi / "hex.cgi", 0o755)
        for name, text in (cgis or {}).items():
            (cgi / name).write_text(text)
            os.chmod(cgi / name, 0o755)
        self.env = dict(env or {})
        self.mpm = mpm()
        self.standard_location = standard_location
        self.module = Path(module) if module else MODULE
        self.write_config(directives, extra)

    # -- configuration --
    def module_directives(self):
        return "\n".join([
            "IDTokenDiscoveryURL %s" % self.discovery_url,
            "IDTokenClientID %s" % self.client_id,
            "IDTokenRedirectURI /protected/callback",
            "IDTokenSessionKeyFile %s" % self.key_file,
        ])

    def write_config(self, directives=None, extra=""):
        """`directives` and `extra` may also be functions of this Apache (for its folder or port)."""
        f = self.folder
        directives = directives(self) if callable(directives) else directives
        extra = extra(self) if callable(extra) else extra
        loads = []
        for name in ["mpm_" + self.mpm] + STOCK_MODULES:
            if "mod_%s" % name in builtin_modules():
                continue
            loads.append("LoadModule %s_module %s" % (name, APACHE_MODULES / ("mod_%s.so" % name)))
        lines = [
            "# generated by Tests/e2e/harness.py",
            *server_preamble(f, self.pid_file, self.port, loads),
            "ServerAdmin webmaster@localhost",
            "DocumentRoot %s/htdocs" % f,
            "ErrorLog %s" % self.log_file,
            "LogLevel info",
            'LogFormat "%h %l %u %t \\"%r\\" %>s %b" common',
            "CustomLog %s/access.log common" % f,
            "TypesConfig /etc/mime.types",
            "DirectoryIndex index.html",
            "ScriptSock %s/cgid.sock" % f,
            *mpm_settings(self.mpm),
            "KeepAliveTimeout 2",
            "Timeout 30",
            "GracefulShutdownTimeout 5",
            # E2E_CORE_DIR: a crashed child leaves a core file there (for gdb), as www-data can write it.
            "CoreDumpDirectory %s" % os.environ["E2E_CORE_DIR"] if os.environ.get("E2E_CORE_DIR") else "",
            "<Directory />",
            "  AllowOverride None",
            "  Require all denied",
            "</Directory>",
            "<Directory %s/htdocs>" % f,
            "  Require all granted",
            "</Directory>",
            "<Directory %s/cgi>" % f,
            "  Options +ExecCGI",
            "  Require all granted",
            "</Directory>",
            "",
            "LoadModule auth_idtoken_module %s" % self.module,
            "LogLevel info auth_idtoken:debug",
            directives if directives is not None else self.module_directives(),
            "ScriptAlias /protected/env %s/cgi/env.cgi" % f,
            "ScriptAlias /public/env %s/cgi/env.cgi" % f,
            *(["<Location /protected>", "  AuthType IDToken", "  Require valid-user", "</Location>"]
              if self.standard_location else []),
            extra,
            "",
        ]
        self.conf.write_text("\n".join(lines))

    # -- control --
    def url(self, path="/"):
        return "http://localhost:%d%s" % (self.port, path)

    def _ctl(self, *args, timeout=60):
        env = dict(os.environ, SWIFT_BACKTRACE="enable=no", **self.env)
        return subprocess.run([APACHE, "-f", str(self.conf), *args], capture_output=True, text=True,
                              env=env, timeout=timeout, stdin=subprocess.DEVNULL,
                              preexec_fn=_allow_core_files if os.environ.get("E2E_CORE_DIR") else None)

    def configtest(self):
        """(exit code, stdout + stderr) of `apache2 -t`."""
        r = self._ctl("-t")
        return r.returncode, r.stdout + r.stderr

    def _check_module_built(self):
        if not self.module.exists():
            raise RuntimeError("%s does not exist: build the module first (make)" % self.module)

    def start(self):
        self._check_module_built()
        r = self._ctl("-k", "start")
        if r.returncode != 0:
            raise RuntimeError("apache2 -k start failed (%d):\n%s%s\n--- error log:\n%s" % (
                r.returncode, r.stdout, r.stderr, self.error_log()))
        try:
            self.pid = int(wait_for(self._read_pid, 20, "httpd's pid file"))
            wait_for(self._answers, 20, "httpd to answer on port %d" % self.port)
        except Exception as e:
            raise RuntimeError("%s\n--- error log:\n%s" % (e, self.error_log())) from e
        return self

    def _read_pid(self):
        try:
            text = self.pid_file.read_text().strip()
            return text if text else None
        except FileNotFoundError:
            self._raise_if_dead()
            return None

    def _raise_if_dead(self):
        if self.pid is not None and not pid_alive(self.pid):
            raise RuntimeError("httpd (pid %d) is gone" % self.pid)

    def _answers(self):
        self._raise_if_dead()
        try:
            requests.get(self.url("/index.html"), timeout=2, allow_redirects=False)
            return True
        except requests.RequestException:
            return False

    def generation_count(self):
        """How many times httpd finished (re)configuring: AH00489 '... resuming normal operations'."""
        return self.error_log().count("resuming normal operations")

    def graceful(self):
        before = self.generation_count()
        r = self._ctl("-k", "graceful")
        assert r.returncode == 0, "apache2 -k graceful failed: %s%s" % (r.stdout, r.stderr)
        wait_for(lambda: self._raise_if_dead() or self.generation_count() > before, 30,
                 "httpd to finish a graceful restart")
        wait_for(self._answers, 20, "httpd to answer after a graceful restart")

    def restart(self):
        """apache2 -k restart: every child stopped at once, the configuration read again."""
        before = self.generation_count()
        r = self._ctl("-k", "restart")
        assert r.returncode == 0, "apache2 -k restart failed: %s%s" % (r.stdout, r.stderr)
        wait_for(lambda: self._raise_if_dead() or self.generation_count() > before, 30,
                 "httpd to finish a restart")
        wait_for(self._answers, 20, "httpd to answer after a restart")

    def children(self) -> list:
        """httpd's child processes now."""
        return child_pids(self.pid) if self.pid else []

    def error_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.pid is None:
            return
        if pid_alive(self.pid):
            self._ctl("-k", "stop", timeout=30)
            try:
                wait_for(lambda: not pid_alive(self.pid), 15, "httpd (pid %d) to exit" % self.pid)
            except TimeoutError:
                os.kill(self.pid, signal.SIGKILL)
                wait_for(lambda: not pid_alive(self.pid), 10, "httpd to die")
        self.pid = None

    def cleanup(self):
        self.stop()
        if os.environ.get("E2E_KEEP_FILES"):
            return
        shutil.rmtree(self.folder, ignore_errors=True)


def child_pids(parent: int) -> list:
    """The processes whose parent is `parent` (httpd's children), from /proc."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(name))
        except (OSError, IndexError, ValueError):
            pass
    return sorted(found)


class RawResponse:
    """What a server answered on a raw socket: status (None if it sent nothing parseable), the headers
    as a list of (name, value) pairs in order, the body, and every byte as received."""

    def __init__(self, data: bytes):
        self.raw = data
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0]) if lines else None
        self.status = int(m.group(1)) if m else None
        self.headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            self.headers.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))
        if "chunked" in ",".join(self.header_values("Transfer-Encoding")).lower():
            self.body = dechunk(self.body)

    def header_values(self, name: str) -> list:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def set_cookies(self) -> list:
        return [SetCookie(v) for v in self.header_values("Set-Cookie")]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def dechunk(data: bytes) -> bytes:
    """A chunked body's content (as far as it is complete)."""
    out, pos = [], 0
    while pos < len(data):
        end = data.find(b"\r\n", pos)
        if end < 0:
            break
        try:
            size = int(data[pos:end].split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out.append(data[end + 2:end + 2 + size])
        pos = end + 2 + size + 2
    return b"".join(out)


def raw_request(port: int, data: bytes, timeout=30, host="127.0.0.1", source=None) -> RawResponse:
    """Send `data` as it is (no normalising by an HTTP library) and read until the server closes.
    The request should say `Connection: close`; a server that keeps the socket open, or trickles,
    ends the read `timeout` seconds after the start with what came so far. `source`: the local
    address to connect from (e.g. "127.0.0.2": another peer address on the loopback)."""
    chunks = []
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413, 400) and close before reading everything
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (ConnectionResetError, socket.timeout):
            pass
    return RawResponse(b"".join(chunks))


def _allow_core_files():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------
# Redis (Debian's redis-server), the store that several Apache servers share in cache mode
# ---------------------------------------------------------------------------------------------------

REDIS_SERVER = "/usr/bin/redis-server"
SOCACHE_REDIS = "LoadModule socache_redis_module %s" % (APACHE_MODULES / "mod_socache_redis.so")


class RedisError(Exception):
    pass


class Redis:
    """redis-server in the foreground on a free port of 127.0.0.1, nothing saved to disk, and a
    minimal RESP client for what the tests look at (PING, DBSIZE, KEYS, FLUSHALL, or any `command`).

    `args`: more redis-server options ("--requirepass", "pw", "--tls-port", "6380", ...); `auth`: the
    (user, password) or (password,) the harness's own client logs in with; `port`: the plain port (0:
    none, then `tls` (ca, cert, key) makes the harness client speak TLS on `tls_port`); `folder`: reuse a
    folder (a restart with the same data)."""

    def __init__(self, *args, auth=None, port=None, folder=None, tls=None, tls_port=None):
        if not os.path.exists(REDIS_SERVER):
            raise RuntimeError("%s does not exist: install redis-server (scripts/install-deps.sh)" % REDIS_SERVER)
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="e2e-redis-"))
        self.port = free_port() if port is None else port
        self.tls = tls
        self.tls_port = tls_port
        self.auth = auth
        self.args = args
        self.proc = None
        self.start()

    def start(self):
        log = open(self.folder / "redis.log", "ab")
        # `save ""` unless the caller asked for persistence; appendonly off unless asked.
        defaults = [] if any(a in ("--appendonly", "--save") for a in self.args) else ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [REDIS_SERVER, *defaults, "--port", str(self.port), "--bind", "127.0.0.1",
             "--daemonize", "no", "--dir", str(self.folder), *[str(a) for a in self.args]],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        try:
            wait_for(self._pong, 20, "redis-server to answer PING on port %d" % (self.port or self.tls_port))
        except Exception:
            self.stop()
            raise
        return self

    def _pong(self):
        if self.proc.poll() is not None:
            raise RuntimeError("redis-server exited with %s:\n%s" % (
                self.proc.returncode, (self.folder / "redis.log").read_text(errors="replace")))
        try:
            return self.command("PING") == "PONG"
        except (OSError, RedisError):
            return False

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _connect(self):
        if self.port:
            return socket.create_connection(("127.0.0.1", self.port), timeout=5)
        import ssl
        ca, cert, key = self.tls
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.check_hostname = False
        if cert:
            ctx.load_cert_chain(str(cert), str(key))
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        return ctx.wrap_socket(raw)

    @staticmethod
    def _encode(args) -> bytes:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        return out

    def command(self, *args, db=None):
        """One command; the decoded reply (bytes for bulk strings, lists for arrays). `db`: SELECT first."""
        with self._connect() as sock:
            reader = sock.makefile("rb")
            if self.auth:
                sock.sendall(self._encode(("AUTH", *self.auth)))
                self._reply(reader)
            if db is not None:
                sock.sendall(self._encode(("SELECT", db)))
                self._reply(reader)
            sock.sendall(self._encode(args))
            return self._reply(reader)

    def _reply(self, reader):
        line = reader.readline()
        if not line.endswith(b"\r\n"):
            raise RedisError("truncated reply %r" % line)
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = reader.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply(reader) for _ in range(n)]
        raise RedisError("unexpected reply %r" % line)

    def keys(self, db=None) -> set:
        return set(self.command("KEYS", "*", db=db))

    def flushall(self):
        assert self.command("FLUSHALL") == "OK"

    def log(self) -> str:
        try:
            return (self.folder / "redis.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        """Ends the process at once (SIGKILL: no shutdown, as a crash or a lost machine)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def shutdown(self):
        """Stops the process (SIGTERM: a clean shutdown, which writes the append-only file when on);
        the folder stays for start()."""
        if self.proc:
            stop_process(self.proc)

    def stop(self):
        if self.proc:
            stop_process(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)


REDIS_SENTINEL = "/usr/bin/redis-sentinel"


class Sentinel:
    """redis-sentinel on a free port of 127.0.0.1 watching one master as `name`, quick to act: the master
    counts as down after `down_after_ms` and one Sentinel is a quorum."""

    def __init__(self, master_port, name="mymaster", down_after_ms=1000):
        if not os.path.exists(REDIS_SENTINEL):
            raise RuntimeError("%s does not exist: install redis-sentinel (scripts/install-deps.sh)" % REDIS_SENTINEL)
        self.folder = Path(tempfile.mkdtemp(prefix="e2e-sentinel-"))
        self.port = free_port()
        self.name = name
        conf = self.folder / "sentinel.conf"
        # Sentinel rewrites its file (what it learns of replicas and failovers): it must be writable.
        conf.write_text("\n".join([
            "port %d" % self.port,
            "bind 127.0.0.1",
            "daemonize no",
            "dir %s" % self.folder,
            "sentinel monitor %s 127.0.0.1 %d 1" % (name, master_port),
            "sentinel down-after-milliseconds %s %d" % (name, down_after_ms),
            "sentinel failover-timeout %s 10000" % name,
            "sentinel parallel-syncs %s 1" % name,
            "",
        ]))
        log = open(self.folder / "sentinel.log", "wb")
        self.proc = subprocess.Popen([REDIS_SENTINEL, str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        self.client = Redis.__new__(Redis)
        self.client.port, self.client.auth, self.client.tls = self.port, None, None
        try:
            wait_for(lambda: self._pong(), 20, "redis-sentinel to answer on port %d" % self.port)
        except Exception:
            self.stop()
            raise

    def _pong(self):
        if self.proc.poll() is not None:
            raise RuntimeError("redis-sentinel exited:\n%s" % self.log())
        try:
            return self.client.command("PING") == "PONG"
        except (OSError, RedisError):
            return False

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def command(self, *args):
        return self.client.command(*args)

    def master(self):
        """(host, port) Sentinel now gives for the master."""
        host, port = self.command("SENTINEL", "get-master-addr-by-name", self.name)
        return host.decode(), int(port)

    def replicas_known(self) -> int:
        return len(self.command("SENTINEL", "replicas", self.name) or [])

    def log(self) -> str:
        try:
            return (self.folder / "sentinel.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        stop_process(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)


def make_ca(folder, name="Test CA"):
    """(ca certificate, ca key) made by the openssl CLI in `folder`: P-256, one day."""
    folder = Path(folder)
    cert, key = folder / ("%s.pem" % name.replace(" ", "-")), folder / ("%s.key" % name.replace(" ", "-"))
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
             "-subj", "/CN=%s" % name, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", str(key), "-out", str(cert))
    os.chmod(cert, 0o644)
    return cert, key


def issue_certificate(folder, ca, name, sans, client=False):
    """(certificate, key) for `name` signed by `ca` ((cert, key) of make_ca), with the subjectAltName
    entries `sans` ("DNS:localhost", "IP:127.0.0.1"); `client`: for TLS client authentication."""
    folder = Path(folder)
    cert, key, csr = folder / ("%s.pem" % name), folder / ("%s.key" % name), folder / ("%s.csr" % name)
    ext = folder / ("%s.ext" % name)
    ext.write_text("subjectAltName=%s\nextendedKeyUsage=%s\n" % (",".join(sans) if sans else "DNS:unused.invalid",
                                                              "clientAuth" if client else "serverAuth"))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", "/CN=%s" % name, "-keyout", str(key), "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-days", "1", "-extfile", str(ext), "-out", str(cert))
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)   # redis-server runs as root here; the module reads its key as root too
    return cert, key


def _openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (args[0], r.returncode, r.stderr))


def cache_mode(redis=None, *more) -> str:
    """Configuration lines for sessions kept in the shared store (IDTokenSessionStore cache): in the
    given Redis (the module's own client), else in the default store of this one server (IDTokenCache
    file, in the Apache's folder: its DefaultRuntimeDir)."""
    lines = []
    if redis is not None:
        lines += ["IDTokenCache redis:%s" % redis.address]
    lines.append("IDTokenSessionStore cache")
    lines += list(more)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# A browser-like HTTP client
# ---------------------------------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    host = (host or "").split(":")[0].strip("[]").lower()
    if host in ("localhost", "localhost.local") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackSecurePolicy(http.cookiejar.DefaultCookiePolicy):
    """Browsers treat http://localhost and http://127.0.0.1 as secure contexts: Secure cookies are kept
    and sent there. Python's cookiejar only sends them over https; this policy adds loopback."""

    def set_ok(self, cookie, request):
        return super().set_ok(cookie, request)

    def return_ok_secure(self, cookie, request):
        if cookie.secure and is_loopback(urllib.parse.urlsplit(request.get_full_url()).hostname):
            return True
        return super().return_ok_secure(cookie, request)


class SetCookie:
    """One Set-Cookie header, parsed (attribute names lower-cased)."""

    def __init__(self, header: str):
        self.header = header
        parts = [p.strip() for p in header.split(";")]
        self.name, _, self.value = parts[0].partition("=")
        self.name, self.value = self.name.strip(), self.value.strip()
        self.attrs = {}
        for p in parts[1:]:
            if not p:
                continue
            k, eq, v = p.partition("=")
            self.attrs[k.strip().lower()] = v.strip() if eq else True

    def has(self, attr):
        return attr.lower() in self.attrs

    def get(self, attr):
        return self.attrs.get(attr.lower())

    @property
    def clears(self) -> bool:
        """True when this header deletes the cookie (Max-Age<=0 or an Expires in the past)."""
        max_age = self.get("max-age")
        if isinstance(max_age, str) and max_age.lstrip("-").isdigit():
            return int(max_age) <= 0
        expires = self.get("expires")
        if isinstance(expires, str):
            t = http.cookiejar.http2time(expires)
            return t is not None and t < time.time()
        return False

    def __repr__(self):
        return "SetCookie(%r)" % self.header


def set_cookies(response) -> list:
    headers = response.raw.headers
    values = headers.getlist("Set-Cookie") if hasattr(headers, "getlist") else headers.get_all("Set-Cookie")
    return [SetCookie(v) for v in values or []]


class FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "method": (a.get("method") or "get").lower(),
                               "fields": []})
        elif tag == "input" and self.forms:
            if a.get("name") is not None and (a.get("type") or "text").lower() != "submit":
                self.forms[-1]["fields"].append((a["name"], a.get("value") or ""))

    handle_startendtag = handle_starttag


def parse_form(page: str, index=0) -> dict:
    parser = FormParser()
    parser.feed(page)
    parser.close()
    assert len(parser.forms) > index, "no form in the page:\n%s" % page[:2000]
    return parser.forms[index]


class LoopbackSession(requests.Session):
    """requests copies the session's cookies into a fresh jar with the default policy before building
    the Cookie header, so the policy is applied again here."""

    def prepare_request(self, request):
        p = super().prepare_request(request)
        jar = requests.cookies.RequestsCookieJar(policy=LoopbackSecurePolicy())
        jar.update(p._cookies)
        p.headers.pop("Cookie", None)
        p.prepare_cookies(jar)
        return p


class Browser:
    """A requests.Session that keeps cookies like a browser on loopback, and never follows redirects."""

    def __init__(self, verify=True):
        """verify=False: accept any TLS certificate (a test's self-signed one). Per request, because
        requests lets REQUESTS_CA_BUNDLE in the environment override a session's verify=False."""
        self.verify = verify
        self.session = LoopbackSession()
        self.session.cookies.set_policy(LoopbackSecurePolicy())
        self.session.headers["User-Agent"] = "mod_auth_idtoken-e2e/1"
        self.session.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"

    def get(self, url, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 30)
        kw.setdefault("verify", self.verify)
        return self.session.get(url, **kw)

    def post(self, url, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 30)
        kw.setdefault("verify", self.verify)
        return self.session.post(url, **kw)

    def submit(self, response_or_page, base_url=None, override=None, index=0):
        """Submit a form as a browser would (the form_post page's onload does this): POST its fields
        as application/x-www-form-urlencoded to its action, resolved against base_url."""
        if isinstance(response_or_page, requests.Response):
            page, base_url = response_or_page.text, base_url or response_or_page.url
        else:
            page = response_or_page
        form = parse_form(page, index)
        fields = list(form["fields"])
        for k, v in (override or {}).items():
            fields = [(n, val) for n, val in fields if n != k]
            if v is not None:
                fields.append((k, v))
        action = urllib.parse.urljoin(base_url or "", form["action"])
        assert form["method"] == "post", "the form does not POST: %r" % form
        return self.post(action, data=fields)

    def cookie(self, name):
        for c in self.session.cookies:
            if c.name == name:
                return c.value
        return None

    def cookie_names(self):
        return {c.name for c in self.session.cookies}

    def clone(self):
        """A new Browser holding copies of this one's cookies now (an attacker's copy, a second
        tab restored from a backup): later changes to either do not reach the other."""
        other = Browser(verify=self.verify)
        for c in self.session.cookies:
            other.session.cookies.set_cookie(copy.copy(c))
        return other


# Requests a script makes (fetch/XHR): each of these alone must get a 401, never a login redirect.
XHR_HEADERS = [
    {"Accept": "application/json"},
    {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
    {"X-Requested-With": "XMLHttpRequest"},
]


def session_cookie_headers(response, name="idtoken_session") -> list:
    """The Set-Cookie headers of a response for the session cookie and its chunks (`name`, `name_0`..)."""
    rx = re.compile(r"^%s(_\d+)?$" % re.escape(name))
    return [c for c in set_cookies(response) if rx.match(c.name)]


def logout_url(apache, return_to=None) -> str:
    """The module's logout: the redirect URI with ?logout=<url-encoded return URL> (None: empty value)."""
    return apache.url("/protected/callback?logout=" + urllib.parse.quote(return_to or "", safe=""))


def form_fields(page: str) -> dict:
    return dict(parse_form(page)["fields"])


# ---------------------------------------------------------------------------------------------------
# JOSE, independently of the provider's code
# ---------------------------------------------------------------------------------------------------

def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jws_parts(token: str):
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), b64url_decode(s), (h + "." + p).encode()


def jwk_public_key(jwk: dict):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    if jwk["kty"] == "RSA":
        n = int.from_bytes(b64url_decode(jwk["n"]), "big")
        e = int.from_bytes(b64url_decode(jwk["e"]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if jwk["kty"] == "EC":
        curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[jwk["crv"]]()
        size = (curve.key_size + 7) // 8
        x, y = b64url_decode(jwk["x"]), b64url_decode(jwk["y"])
        assert len(x) == size and len(y) == size, "EC coordinates must be %d bytes" % size
        return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                             curve).public_key()
    if jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    raise ValueError("unsupported JWK %r" % jwk)


def verify_jws(token: str, jwks: dict) -> dict:
    """Verify `token` with the key of its kid in `jwks`; returns the claims. Raises on a bad signature."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    header, claims, signature, signing_input = jws_parts(token)
    alg = header["alg"]
    matches = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")]
    assert len(matches) == 1, "kid %r: %d keys in the JWKS" % (header.get("kid"), len(matches))
    jwk = matches[0]
    if "alg" in jwk:
        assert jwk["alg"] == alg, "the JWK says alg %s, the token %s" % (jwk["alg"], alg)
    key = jwk_public_key(jwk)
    digest = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}.get(alg[-3:])
    if alg.startswith("RS"):
        key.verify(signature, signing_input, padding.PKCS1v15(), digest())
    elif alg.startswith("PS"):
        key.verify(signature, signing_input, padding.PSS(mgf=padding.MGF1(digest()),
                                                         salt_length=digest().digest_size), digest())
    elif alg.startswith("ES"):
        size = (key.curve.key_size + 7) // 8
        assert len(signature) == 2 * size, "ES signature must be raw r||s of %d bytes" % (2 * size)
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(digest()))
    elif alg == "EdDSA":
        key.verify(signature, signing_input)
    else:
        raise ValueError("unexpected alg " + alg)
    return claims


URLSAFE_RANDOM = re.compile(r"^[A-Za-z0-9_-]{22,}$")


# ---------------------------------------------------------------------------------------------------
# The login flow, step by step
# ---------------------------------------------------------------------------------------------------

def module_log_lines(text: str, pattern: str = "") -> list:
    """The module's lines ('[auth_idtoken:...]') in `text` that match `pattern` (case-insensitive)."""
    rx = re.compile(pattern, re.I)
    return [line for line in text.splitlines() if "auth_idtoken" in line and rx.search(line)]


def wait_module_log(apache, offset: int, pattern: str, timeout=3.0) -> list:
    """The module's log lines written since `offset` that match `pattern`; waits a little for them."""
    deadline = time.monotonic() + timeout
    while True:
        found = module_log_lines(apache.log_since(offset), pattern)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


ONWARD_PAGE = re.compile(r'<meta http-equiv="refresh" content="0;url=([^"]*)">')


def onward_location(response) -> str:
    """Where a completed login sends the browser: the Location of the callback's 303, or, with
    IDTokenCookieSameSite Strict, the URL of the page that moves on by itself (a meta refresh, so that
    the next request is same-site and carries the Strict session cookie)."""
    if response.status_code == 303:
        return response.headers["Location"]
    m = ONWARD_PAGE.search(response.text) if response.status_code == 200 else None
    assert m, "callback answered %d, neither a 303 nor the onward page:\n%s" % (response.status_code, response.text[:1000])
    return html.unescape(m.group(1))


class Login:
    """The steps of one login through the module, kept for assertions."""

    def __init__(self, browser, apache, path="/protected/env"):
        self.browser, self.apache, self.path = browser, apache, path

    def start(self):
        """GET the protected page: the module must redirect to the provider."""
        self.first = self.browser.get(self.apache.url(self.path))
        assert self.first.status_code == 302, "expected a redirect to the provider, got %d:\n%s" % (
            self.first.status_code, self.first.text[:1000])
        self.authorize_url = self.first.headers["Location"]
        self.params = {k: v[0] for k, v in urllib.parse.parse_qs(
            urllib.parse.urlsplit(self.authorize_url).query, keep_blank_values=True).items()}
        return self

    def at_provider(self):
        """Follow the redirect to the provider (auto-login): its form_post page."""
        self.provider_page = self.browser.get(self.authorize_url)
        assert self.provider_page.status_code == 200, "provider answered %d:\n%s" % (
            self.provider_page.status_code, self.provider_page.text[:1000])
        self.form = parse_form(self.provider_page.text)
        self.fields = dict(self.form["fields"])
        self.id_token = self.fields.get("id_token")
        return self

    def callback(self, browser=None, override=None):
        """The browser runs the form_post page: POST to the module's redirect URI."""
        self.callback_response = (browser or self.browser).submit(self.provider_page, override=override)
        return self.callback_response

    def run(self):
        """The whole login; returns the env of the protected page after it."""
        self.start().at_provider()
        r = self.callback()
        target = urllib.parse.urljoin(self.apache.url("/"), onward_location(r))
        self.final = self.browser.get(target)
        assert self.final.status_code == 200, "after login %s answered %d:\n%s" % (
            target, self.final.status_code, self.final.text[:1000])
        return self.final.json()


# ---------------------------------------------------------------------------------------------------
# Many logins, fast (the store tests)
# ---------------------------------------------------------------------------------------------------

def set_cookie_values(response) -> dict:
    """{name: value} of an http.client response's Set-Cookie headers."""
    found = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


class FastClient:
    """One kept-alive http.client connection per thread to an Apache (much lighter than requests, so a
    test can log in thousands of times). A connection httpd closed is opened again."""

    def __init__(self, apache):
        import threading
        self.apache = apache
        self.local = threading.local()

    def request(self, method, path, body=None, headers=None):
        import http.client
        headers = {"Host": "localhost:%d" % self.apache.port, "Accept": "text/html", **(headers or {})}
        conn = getattr(self.local, "conn", None)
        reused = conn is not None
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.apache.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # httpd closed a kept-alive connection just as it was reused (KeepAliveTimeout): the request
            # was never read, so it is sent again on a new one. A new connection's failure is real.
            if not reused:
                raise
            conn.close()
            self.local.conn = None
            return self.request(method, path, body, headers)
        response.data = response.read()
        return response


def many_logins(apache, provider, count, threads=8, first=0):
    """`count` logins through the module as fast as this client allows, each of a user of its own
    (user<first>, user<first+1>, ...): every login's redirect (its state cookie and nonce), then the
    provider's tokens for all the nonces in batches (provider.mint_many: no form page, no signing per
    round trip), then every callback POST, `threads` at a time. Returns [(status, session cookie value
    or None, body)] in the order the logins started (their sessions are written in about that order).
    Each phase gets fresh connections: httpd closes idle ones after KeepAliveTimeout."""
    import concurrent.futures

    def starts(indexes):
        client = FastClient(apache)

        def start(i):
            r = client.request("GET", "/protected/env")
            assert r.status == 302, "login %d: the protected page answered %d" % (i, r.status)
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(r.getheader("Location")).query)
            state = "; ".join("%s=%s" % kv for kv in set_cookie_values(r).items() if kv[0].startswith(
                ("idtoken_state_", "__Host-idtoken_state_")))
            return query["nonce"][0], query["state"][0], state
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            return list(pool.map(start, indexes))

    begun = starts(range(first, first + count))
    tokens = []
    for at in range(0, count, 500):
        tokens += provider.mint_many([{"nonce": nonce, "username": "user%d" % (first + at + k)}
                                      for k, (nonce, _, _) in enumerate(begun[at:at + 500])])
    client = FastClient(apache)

    def finish(args):
        (_, state, cookie), token = args
        r = client.request("POST", "/protected/callback", urllib.parse.urlencode({"state": state, "id_token": token}),
                           {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        return r.status, set_cookie_values(r).get("idtoken_session"), r.data
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(finish, zip(begun, tokens)))


def sessions_valid(apache, session_ids, threads=8) -> list:
    """Whether each session cookie value still opens the protected page (200; 302 means logged out)."""
    import concurrent.futures
    client = FastClient(apache)

    def valid(sid):
        r = client.request("GET", "/protected/env", headers={"Cookie": "idtoken_session=%s" % sid})
        assert r.status in (200, 302), "unexpected %d for a session" % r.status
        return r.status == 200
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(valid, session_ids))


# ---------------------------------------------------------------------------------------------------
# Pieces of the security tests (test_security.py): stock modules, https, a header-echo backend,
# Basic auth, extra CGI scripts, and the module's count of the work each request cost
# ---------------------------------------------------------------------------------------------------

def load_modules(*names) -> str:
    """LoadModule lines (for `extra`) for stock modules not compiled into httpd: load_modules("ssl")."""
    return "\n".join("LoadModule %s_module %s" % (name, APACHE_MODULES / ("mod_%s.so" % name))
                     for name in names if "mod_%s" % name not in builtin_modules())


def self_signed_certificate(folder, host="localhost"):
    """(certificate, key) files made in `folder` by the openssl CLI: P-256, one day, CN and SAN `host`
    (and 127.0.0.1). Clients take it with Browser(verify=False)."""
    folder = Path(folder)
    cert, key = folder / "cert.pem", folder / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-subj", "/CN=%s" % host,
                        "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % host,
                        "-keyout", str(key), "-out", str(cert)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError("openssl req failed (%d): %s" % (r.returncode, r.stderr))
    os.chmod(cert, 0o644)
    return cert, key


def https_vhost(port, cert, key, *lines) -> str:
    """Configuration (for `extra`) of an https virtual host on 127.0.0.1:`port` (mod_ssl, SSLEngine on)
    that serves the same site as the server's http port: the module's settings, ScriptAliases and
    <Location> blocks of the main server apply to it. `lines` go inside the <VirtualHost>.
    Open it as https_url(port, path) with Browser(verify=False)."""
    return "\n".join([
        load_modules("ssl"),
        "Listen 127.0.0.1:%d" % port,
        "<VirtualHost 127.0.0.1:%d>" % port,
        "  ServerName localhost:%d" % port,
        "  SSLEngine on",
        "  SSLCertificateFile %s" % cert,
        "  SSLCertificateKeyFile %s" % key,
        *("  " + line for line in lines),
        "</VirtualHost>",
    ])


def https_url(port, path="/") -> str:
    return "https://localhost:%d%s" % (port, path)


class HeaderEchoBackend:
    """A threaded HTTP/1.1 server on 127.0.0.1 (an application behind mod_proxy_http) that answers
    every request with JSON: {"method", "path", "headers": [[name, value], ...]} in the order received.
    It keeps every header, IDToken-* ones included (the same Apache would strip them from a client)."""

    def __init__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length > 0:
                    self.rfile.read(length)
                body = json.dumps({"method": self.command, "path": self.path,
                                   "headers": [[k, v] for k, v in self.headers.items()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def header(echo: dict, name: str) -> list:
        """The values the backend received for header `name` (any case) in an echo's JSON."""
        return [v for k, v in echo["headers"] if k.lower() == name.lower()]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def write_htpasswd(path, users: dict):
    """An htpasswd file for mod_authn_file with a {SHA} hash per user ({"bob": "secret"}), readable by
    the children."""
    import hashlib
    lines = ["%s:{SHA}%s" % (user, base64.b64encode(hashlib.sha1(password.encode()).digest()).decode())
             for user, password in users.items()]
    Path(path).write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o644)


# A response a shared cache may keep: Cache-Control from the query string (URL-decoded), by default
# "public, max-age=600". For Apache(cgis={"cache.cgi": CACHE_CONTROL_CGI}).
CACHE_CONTROL_CGI = """#!/usr/bin/env python3
import os, sys, urllib.parse
value = urllib.parse.unquote(os.environ.get("QUERY_STRING", "")) or "public, max-age=600"
sys.stdout.write("Content-Type: text/plain\\r\\nCache-Control: %s\\r\\n\\r\\ncacheable\\n" % value)
"""

# LogLevel that makes the module log one "request work:" line per request it decides (check_authn).
TRACE_WORK = "LogLevel info auth_idtoken:trace1"
WORK_LINE = re.compile(r"request work: (\d+) cookie lookups, (\d+) sealed opens, (\d+) store calls")


class Work:
    """One 'request work:' trace line: cookie lookups (searches of the parsed Cookie header), sealed
    opens (AES-GCM open attempts of session/state values) and store calls (socache get/put/add/remove)."""

    def __init__(self, lookups, opens, store_calls, line=""):
        self.lookups, self.opens, self.store_calls, self.line = lookups, opens, store_calls, line

    def __repr__(self):
        return "Work(lookups=%d, opens=%d, store_calls=%d)" % (self.lookups, self.opens, self.store_calls)


def work_lines(apache, offset: int) -> list:
    """The Work of every 'request work:' line `apache` logged since `offset`, in order."""
    found = []
    for line in apache.log_since(offset).splitlines():
        m = WORK_LINE.search(line)
        if m:
            found.append(Work(int(m.group(1)), int(m.group(2)), int(m.group(3)), line))
    return found


def wait_work(apache, offset: int, count=1, timeout=5.0) -> list:
    """The 'request work:' lines since `offset`, once there are at least `count` (needs TRACE_WORK).
    Fails when they do not come: the module does not count its work (not built with it)."""
    deadline = time.monotonic() + timeout
    while True:
        found = work_lines(apache, offset)
        if len(found) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(found) >= count, "expected %d 'request work:' trace line(s) with LogLevel auth_idtoken:trace1, " \
        "found %d; module lines logged:\n%s" % (count, len(found),
                                                "\n".join(module_log_lines(apache.log_since(offset))[-10:]))
    return found


def raw_get(apache, path, cookie=None, headers=(), timeout=30) -> RawResponse:
    """GET `path` as a browser navigation (Accept: text/html) with this exact Cookie header, on a new
    connection closed after the answer."""
    lines = ["GET %s HTTP/1.1" % path, "Host: localhost:%d" % apache.port, "Connection: close",
             "Accept: text/html"]
    if cookie is not None:
        lines.append("Cookie: %s" % cookie)
    lines += ["%s: %s" % kv for kv in headers]
    r = raw_request(apache.port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), timeout=timeout)
    assert r.status is not None, "no answer at all (a child killed while serving?): %r" % r.raw[:300]
    return r


def vm_peak_kib(pid: int) -> int:
    """A process's VmPeak (the most virtual memory it ever had mapped), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmPeak:"):
                return int(line.split()[1])
    raise RuntimeError("no VmPeak in /proc/%d/status" % pid)


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that holds every chunk a client sends for `delay` seconds before passing
    it on (in order); answers come back at once. Put between httpd and Redis, each store call takes a
    round trip of at least `delay`: a race between two requests' store calls (a refresh's get and put
    around a logout's remove) gets a window wide enough to hit on purpose."""

    def __init__(self, target_port, delay, target_host="127.0.0.1"):
        import threading
        self.target, self.delay = (target_host, target_port), delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self._threading = threading
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for src, dst, delay in ((client, server, self.delay), (server, client, 0)):
                self._threading.Thread(target=self._pipe, args=(src, dst, delay), daemon=True).start()

    @staticmethod
    def _pipe(src, dst, delay):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.sock.close()


# ---------------------------------------------------------------------------------------------------
# Headless Chromium (issue 15's files; test_browser.py has its own fixture)
# ---------------------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium(folder, *extra_args, prefs=None):
    """A headless Chromium driven by Selenium, its profile in `folder`; `extra_args` such as
    "--ignore-certificate-errors" or "--host-resolver-rules=MAP app.example.test 127.0.0.1"; `prefs`, the
    profile's preferences (a user's settings). The caller quits it."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        raise RuntimeError("chromium and chromium-driver are needed (scripts/install-deps.sh installs them)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--user-data-dir=%s" % (Path(folder) / "profile"),
                *extra_args):
        options.add_argument(arg)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(Path(folder) / "chromedriver.log")),
                              options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait_browser(driver, condition, apache=None, timeout=60):
    """WebDriverWait that, when it times out, says where the browser was (and what httpd logged)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        raise AssertionError("browser stuck at %s\n--- page:\n%s\n--- error log:\n%s" % (
            driver.current_url, driver.page_source[:3000], apache.error_log()[-3000:] if apache else ""))


def browser_json(driver):
    """The JSON document the browser shows (Chromium wraps it in a <pre>)."""
    from selenium.webdriver.common.by import By
    pres = driver.find_elements(By.TAG_NAME, "pre")
    text = pres[0].text if pres else driver.find_element(By.TAG_NAME, "body").text
    return json.loads(text)
