#!/usr/bin/env python3
"""Benchmark of mod_auth_idtoken against plain Apache and Debian's mod_auth_openidc (see README.md here).

Starts, on 127.0.0.1, the demo provider and seven Apache httpd instances with the same event-MPM settings:

    plain           no authentication (the limit)
    idtoken-cookie  mod_auth_idtoken, sessions in sealed cookies
    idtoken-nometrics  the same with IDTokenMetrics Off: what counting costs is the difference
    idtoken-cache   mod_auth_idtoken, IDTokenSessionStore cache (the default IDTokenCache, file)
    idtoken-shmcb   mod_auth_idtoken, IDTokenSessionStore cache, IDTokenCache shmcb
    idtoken-redis   mod_auth_idtoken, IDTokenSessionStore cache, IDTokenCache redis: (a redis-server on
                    127.0.0.1 started here; its own CPU is not in the server CPU figures)
    openidc-cookie  mod_auth_openidc, OIDCSessionType client-cookie
    openidc-cache   mod_auth_openidc, OIDCSessionType server-cache, OIDCCacheType shm

and measures, round by round with the configurations interleaved: protected requests/s and latency
with a valid session (wrk), the server CPU per protected request and per login (RS256, ES256), memory
per child, and the session cookie's size. Prints one table of medians, then what the metrics cost
(idtoken-cookie against idtoken-nometrics, round by round).

    python3 bench/run.py               # 5 rounds (about 6 minutes on 2 cores)
    python3 bench/run.py --quick       # one short round (smoke)
    python3 bench/run.py --rounds 9 --duration 15 --json /tmp/bench.json
"""

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "Tests" / "e2e"))

from harness import (APACHE_MODULES, MODULE, Apache, Browser, Provider, Redis, SetCookie,  # noqa: E402
                     server_preamble, builtin_modules, cache_mode, pid_alive, set_cookies)

LIBRARY = MODULE.parent / "libIDToken.so"
UNSTRIPPED_LIBRARY = REPO / ".build" / "release" / "libIDToken.so"
WRK_SCRIPT = BENCH / "wrk_report.lua"
SETUP = BENCH / "setup.sh"
OPENIDC_SO = APACHE_MODULES / "mod_auth_openidc.so"
CLIENT_ID = "bench-client"
RESOURCE = "/protected/1k.html"
RESOURCE_SIZE = 1024
CONFIGS = ["plain", "idtoken-cookie", "idtoken-nometrics", "idtoken-cache", "idtoken-shmcb", "idtoken-redis",
           "openidc-cookie", "openidc-cache"]
MODULE_CONFIGS = CONFIGS[1:]
ALGS = ["RS256", "ES256"]
ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"
USER_AGENT = "mod_auth_idtoken-bench/1"
# A fat ID token: N group names of 38 characters on top of the default claims (100: ~4.1 KB of claims).


def fat_groups(n):
    return ["group-%03d-engineering-department-staff" % i for i in range(n)]


SESSION_COOKIE = {
    "idtoken": re.compile(r"^idtoken_session(_\d+)?$"),
    "openidc": re.compile(r"^mod_auth_openidc_session(_\d+|_chunks)?$"),
}
# A module's session is re-issued after its refresh interval (mod_auth_idtoken: 60 s): wrk, which keeps
# sending the first cookie, would then measure a refresh on every request. Each wrk run therefore gets a
# session from a fresh login and lasts less than this.
MAX_WRK_SECONDS = 50

# Identical for every instance: two event-MPM children of 32 threads, never more, never replaced
# (MaxConnectionsPerChild 0), so memory per child and growth are comparable.
MPM = """
StartServers 2
ServerLimit 2
ThreadLimit 32
ThreadsPerChild 32
MinSpareThreads 16
MaxSpareThreads 96
MaxRequestWorkers 64
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
Timeout 30
"""
BASE_MODULES = ["mpm_event", "authz_core", "authz_user", "authn_core", "unixd", "mime", "dir", "socache_shmcb",
                "log_config"]


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------------

def ensure_tools():
    """wrk and mod_auth_openidc: installed by bench/setup.sh (apt-get) when missing."""
    if shutil.which("wrk") is None or not OPENIDC_SO.exists():
        log("wrk or mod_auth_openidc missing: running %s" % SETUP)
        subprocess.run(["bash", str(SETUP)], check=True, stdin=subprocess.DEVNULL)
    if shutil.which("wrk") is None or not OPENIDC_SO.exists():
        raise SystemExit("bench: wrk or %s still missing after %s" % (OPENIDC_SO, SETUP))


# ---------------------------------------------------------------------------------------------------
# The Apache instances
# ---------------------------------------------------------------------------------------------------

class BenchApache(Apache):
    """The e2e harness's Apache (folder, start/stop, pid file, error log) with the benchmark's own
    configuration: no access log, LogLevel warn, the MPM settings above, and only the modules the
    configuration needs (the plain and mod_auth_openidc instances do not load mod_auth_idtoken)."""

    def __init__(self, kind, provider, module=None, redis=None):
        self.kind = kind
        self.redis = redis
        self.family = kind.split("-")[0]
        self.passphrase = secrets.token_urlsafe(32)
        self.callback_path = {"idtoken": "/protected/callback", "openidc": "/protected/redirect_uri"}.get(self.family)
        super().__init__(provider.discovery_url, client_id=CLIENT_ID, write_key=self.family == "idtoken",
                         module=module)
        protected = self.folder / "htdocs" / "protected"
        protected.mkdir(mode=0o755)
        body = ("<html><body><pre>" + "x" * RESOURCE_SIZE)[:RESOURCE_SIZE - len("</pre></body></html>\n")]
        (protected / "1k.html").write_text(body + "</pre></body></html>\n")
        assert (protected / "1k.html").stat().st_size == RESOURCE_SIZE
        self.session_rx = SESSION_COOKIE.get(self.family)
        self.served = 0  # protected requests served by wrk, for the memory figure "after >= N requests"

    def module_section(self):
        if self.kind == "plain":
            return "# plain: no authentication; /protected is an ordinary folder"
        if self.family == "idtoken":
            lines = ["LoadModule auth_idtoken_module %s" % self.module, self.module_directives()]
            if self.kind == "idtoken-cache":
                lines.append(cache_mode())  # IDTokenSessionStore cache, the default IDTokenCache (file)
            elif self.kind == "idtoken-shmcb":
                lines.append(cache_mode(None, "IDTokenCache shmcb"))
            elif self.kind == "idtoken-redis":
                lines.append(cache_mode(self.redis))
            elif self.kind == "idtoken-nometrics":
                lines.append("IDTokenMetrics Off")  # nothing counted: idtoken-cookie minus this is the metrics' cost
            lines += ["<Location /protected>", "  AuthType IDToken", "  Require valid-user", "</Location>"]
            return "\n".join(lines)
        session_type = {"openidc-cookie": "client-cookie", "openidc-cache": "server-cache"}[self.kind]
        return "\n".join([
            "LoadModule auth_openidc_module %s" % OPENIDC_SO,
            "OIDCProviderMetadataURL %s" % self.discovery_url,
            "OIDCClientID %s" % self.client_id,
            "OIDCRedirectURI %s" % self.callback_path,
            "OIDCResponseType id_token",
            "OIDCResponseMode form_post",
            'OIDCScope "openid email profile"',
            "OIDCCryptoPassphrase %s" % self.passphrase,
            "OIDCSessionType %s" % session_type,
            "OIDCCacheType shm",
            # Off = the state cookie is SameSite=None, which a cross-site form_post needs (On makes it Lax).
            "OIDCCookieSameSite Off",
            # mod_auth_idtoken's idle timeout is 1 h; mod_auth_openidc's default is 300 s.
            "OIDCSessionInactivityTimeout 3600",
            "<Location /protected>",
            "  AuthType openid-connect",
            "  Require valid-user",
            "</Location>",
        ])

    def write_config(self, directives=None, extra=""):
        f = self.folder
        loads = ["LoadModule %s_module %s" % (m, APACHE_MODULES / ("mod_%s.so" % m))
                 for m in BASE_MODULES if "mod_%s" % m not in builtin_modules()]
        lines = [
            "# generated by bench/run.py (%s)" % self.kind,
            *server_preamble(f, self.pid_file, self.port, loads),
            "DocumentRoot %s/htdocs" % f,
            "ErrorLog %s" % self.log_file,
            "LogLevel warn",
            "TypesConfig /etc/mime.types",
            "DirectoryIndex index.html",
            MPM,
            "<Directory />",
            "  AllowOverride None",
            "  Require all denied",
            "</Directory>",
            "<Directory %s/htdocs>" % f,
            "  Require all granted",
            "</Directory>",
            self.module_section(),
            extra,
            "",
        ]
        self.conf.write_text("\n".join(lines))

    @property
    def host(self):
        return "localhost:%d" % self.port


# ---------------------------------------------------------------------------------------------------
# /proc: CPU and memory of an instance
# ---------------------------------------------------------------------------------------------------

def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()  # [0] = state, [1] = ppid, [11] = utime, [12] = stime


def children_of(pid):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if int(_stat_fields(int(name))[1]) == pid:
                    found.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return sorted(found)


def processes(inst):
    return [inst.pid] + children_of(inst.pid)


TICK = os.sysconf("SC_CLK_TCK")


def cpu_snapshot(inst):
    """{pid: (utime+stime in s, {tid: ns on CPU})} for the parent and every child. utime/stime come in
    ticks of 10 ms; the per-thread schedstat run time (ns) is the same quantity, exact."""
    snap = {}
    for pid in processes(inst):
        try:
            fields = _stat_fields(pid)
            ticks = (int(fields[11]) + int(fields[12])) / TICK
            threads = {}
            for tid in os.listdir("/proc/%d/task" % pid):
                try:
                    with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                        threads[tid] = int(f.read().split()[0])
                except (OSError, ValueError, IndexError):
                    pass
            snap[pid] = (ticks, threads)
        except (OSError, ValueError, IndexError):
            pass
    return snap


def cpu_between(a, b):
    """Seconds of CPU the instance used from snapshot a to b. A process whose threads all survived:
    the exact schedstat sum; otherwise its utime+stime (a thread that exited took its run time along)."""
    total = 0.0
    for pid, (ticks_b, threads_b) in b.items():
        if pid not in a:
            total += ticks_b
            continue
        ticks_a, threads_a = a[pid]
        if threads_a and set(threads_a) <= set(threads_b):
            total += sum(threads_b[t] - threads_a[t] for t in threads_a) / 1e9
            total += sum(threads_b[t] for t in set(threads_b) - set(threads_a)) / 1e9
        else:
            total += ticks_b - ticks_a
    return total


def cpu_ticks_between(a, b):
    """The same from utime+stime alone (10 ms ticks per process): a cross-check kept in the JSON."""
    return sum(ticks - a.get(pid, (0.0, None))[0] for pid, (ticks, _) in b.items())


def child_memory(inst):
    """Per child: {"rss", "pss", "private"} in kB from /proc/PID/smaps_rollup (private = Private_Clean +
    Private_Dirty)."""
    out = []
    for pid in children_of(inst.pid):
        try:
            values = {}
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                        values[parts[0][:-1]] = int(parts[1])
            out.append({"pid": pid, "rss": values.get("Rss", 0), "pss": values.get("Pss", 0),
                        "private": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)})
        except OSError:
            pass
    return out


def memory_summary(per_child):
    if not per_child:
        return None
    return {"children": len(per_child),
            "rss_kb": statistics.mean(c["rss"] for c in per_child),
            "private_kb": statistics.mean(c["private"] for c in per_child),
            "private_max_kb": max(c["private"] for c in per_child),
            "per_child": per_child}


# ---------------------------------------------------------------------------------------------------
# Logins
# ---------------------------------------------------------------------------------------------------

class LoginFailed(Exception):
    pass


def real_login(inst, check=True):
    """A whole login as a browser does it, through the demo provider (auto-login): GET the protected
    page, follow the redirect to the provider, POST its form to the module, GET the page again.
    Returns (the session cookies the callback set, as SetCookie objects; the status of the page asked
    again with them). With check, that page must be the 1 KB file, asked with the cookies alone too."""
    b = Browser()
    b.session.headers["User-Agent"] = USER_AGENT
    try:
        first = b.get(inst.url(RESOURCE))
        if first.status_code != 302:
            raise LoginFailed("%s: GET %s answered %d, not a redirect" % (inst.kind, RESOURCE, first.status_code))
        page = b.get(first.headers["Location"])
        if page.status_code != 200:
            raise LoginFailed("%s: the provider answered %d: %s" % (inst.kind, page.status_code, page.text[:300]))
        callback = b.submit(page)
        if callback.status_code not in (302, 303):
            raise LoginFailed("%s: the callback answered %d: %s" % (
                inst.kind, callback.status_code, callback.text[:300]))
        cookies = [c for c in set_cookies(callback) if inst.session_rx.match(c.name) and not c.clears]
        if not cookies:
            raise LoginFailed("%s: the callback set no session cookie: %s" % (inst.kind, set_cookies(callback)))
        target = urllib.parse.urljoin(inst.url("/"), callback.headers["Location"])
        final = b.get(target)
        if check and (final.status_code != 200 or len(final.content) != RESOURCE_SIZE):
            raise LoginFailed("%s: after the login %s answered %d (%d bytes)" % (
                inst.kind, target, final.status_code, len(final.content)))
    finally:
        b.session.close()
    if check:
        status, _, body = RawClient(inst).request("GET", RESOURCE, {"Cookie": cookie_header(cookies)})
        if status != 200 or len(body) != RESOURCE_SIZE:
            raise LoginFailed("%s: the session cookies alone got %d (%d bytes)" % (inst.kind, status, len(body)))
    return cookies, final.status_code


def cookie_header(cookies):
    return "; ".join("%s=%s" % (c.name, c.value) for c in cookies)


def cookie_size(cookies):
    """Sum of the Set-Cookie values of the session cookies (chunks included)."""
    return sum(len(c.value) for c in cookies)


class RawClient:
    """One keep-alive connection to 127.0.0.1 with Host: localhost:PORT (the name the sessions were made
    for), reopened when the server closes it."""

    def __init__(self, inst, keep_alive=True):
        self.inst = inst
        self.keep_alive = keep_alive
        self.conn = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=30)

    def request(self, method, path, headers=None, body=None):
        h = {"Host": self.inst.host, "User-Agent": USER_AGENT, "Accept": ACCEPT}
        if not self.keep_alive:
            h["Connection"] = "close"
        h.update(headers or {})
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                if not self.keep_alive:
                    self.conn.close()
                return r.status, r.msg, data
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                if attempt == 2:
                    raise

    def close(self):
        self.conn.close()


class Minter:
    """ID tokens from the provider's /_test/mint, one short connection each: on a kept-alive connection
    the demo provider's answers stall 40 ms (headers and body go out in two writes: Nagle's algorithm
    against the client's delayed ACK), a fresh connection is answered in about 1 ms."""

    def __init__(self, provider):
        self.port = provider.port

    def mint(self, nonce, alg):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", "/_test/mint", body=json.dumps({"nonce": nonce, "alg": alg}).encode(),
                         headers={"Content-Type": "application/json", "Connection": "close"})
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        if r.status != 200:
            raise RuntimeError("the provider's /_test/mint answered %d: %r" % (r.status, body[:300]))
        return json.loads(body)["id_token"]


def login_bench(inst, minter, alg, n, keep_alive=True):
    """n logins, measured on the server only: first the n redirect GETs, then (not measured) a token
    minted for each nonce, then the n callback POSTs. Returns CPU per login and the failures."""
    client = RawClient(inst, keep_alive)
    pending, failures = [], []
    t0 = time.monotonic()
    before = cpu_snapshot(inst)
    for _ in range(n):
        status, msg, _ = client.request("GET", RESOURCE)
        if status != 302:
            failures.append("GET %d" % status)
            continue
        location = msg["Location"]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        state_cookies = [SetCookie(v) for v in msg.get_all("Set-Cookie") or []]
        pending.append((query, "; ".join("%s=%s" % (c.name, c.value) for c in state_cookies if not c.clears)))
    after_get = cpu_snapshot(inst)
    t_get = time.monotonic() - t0
    forms = []
    for query, cookies in pending:
        token = minter.mint(query["nonce"][0], alg)
        path = urllib.parse.urlsplit(query["redirect_uri"][0]).path
        forms.append((path, cookies, urllib.parse.urlencode({"id_token": token, "state": query["state"][0]})))
    t1 = time.monotonic()
    before_post = cpu_snapshot(inst)
    for path, cookies, body in forms:
        status, msg, data = client.request("POST", path, {
            "Cookie": cookies, "Content-Type": "application/x-www-form-urlencoded"}, body)
        names = [SetCookie(v) for v in msg.get_all("Set-Cookie") or []]
        if status not in (302, 303) or not any(inst.session_rx.match(c.name) and not c.clears for c in names):
            failures.append("POST %d %s" % (status, data[:200].decode("utf-8", "replace")))
    after = cpu_snapshot(inst)
    t_post = time.monotonic() - t1
    client.close()
    cpu = cpu_between(before, after_get) + cpu_between(before_post, after)
    return {"n": n, "cpu_us": cpu / n * 1e6 if n else None, "failures": failures,
            "client_seconds": t_get + t_post}


# ---------------------------------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------------------------------

def run_wrk(inst, cookies, seconds, threads, connections):
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", "%ds" % seconds, "--latency",
           "-s", str(WRK_SCRIPT), "-H", "Host: %s" % inst.host, "-H", "Accept: %s" % ACCEPT,
           "-H", "User-Agent: %s" % USER_AGENT]
    if cookies:
        cmd += ["-H", "Cookie: %s" % cookie_header(cookies)]
    cmd.append("http://127.0.0.1:%d%s" % (inst.port, RESOURCE))
    before = cpu_snapshot(inst)
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=seconds + 60)
    after = cpu_snapshot(inst)
    if r.returncode != 0:
        raise RuntimeError("wrk failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr))
    v = {}
    for line in r.stdout.splitlines():
        if line.startswith("BENCH "):
            _, key, value = line.split()
            v[key] = int(value)
    requests_done = v.get("requests", 0)
    inst.served += requests_done
    cpu = cpu_between(before, after)
    return {
        "requests": requests_done,
        "rps": requests_done / (v["duration_us"] / 1e6) if v.get("duration_us") else 0.0,
        "p50_ms": v.get("p50_us", 0) / 1000.0,
        "p99_ms": v.get("p99_us", 0) / 1000.0,
        "cpu_us": cpu / requests_done * 1e6 if requests_done else None,
        "cpu_us_from_ticks": cpu_ticks_between(before, after) / requests_done * 1e6 if requests_done else None,
        "errors": v.get("non2xx", 0) + v.get("socket_errors", 0),
        "non2xx": v.get("non2xx", 0),
        "socket_errors": v.get("socket_errors", 0),
        "socket_error_kinds": {k: v.get(k, 0) for k in ("connect_errors", "read_errors", "write_errors", "timeouts")},
        "bytes_per_request": v.get("bytes", 0) / requests_done if requests_done else 0,
    }


class FillerCookie:
    """What plain Apache gets instead of a session: a cookie header exactly as long as
    mod_auth_idtoken's, so that Apache's own work on the header is not counted as the module's."""

    def __init__(self, like):
        self.name = "filler"
        self.value = "f" * max(1, len(cookie_header(like)) - len("filler="))


def wrk_with_fresh_session(inst, seconds, threads, connections):
    cookies = real_login(inst)[0] if inst.kind != "plain" else getattr(inst, "filler", None)
    return run_wrk(inst, cookies, seconds, threads, connections)


# ---------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def log_problems(inst, since):
    """Error-log lines since `since` that deserve a look: crashes, and [error]/[crit]/... lines."""
    text = inst.log_since(since)
    keep = re.compile(r"exit signal|\[[a-z_]*:(error|crit|alert|emerg)\]|\[(error|crit|alert|emerg)\]")
    return [line for line in text.splitlines() if keep.search(line)]


def check_instance(inst):
    if not inst.conf.exists():
        raise RuntimeError("%s: its folder %s is gone (deleted by another process?)" % (inst.kind, inst.folder))
    if not pid_alive(inst.pid):
        raise RuntimeError("%s: httpd (pid %d) is gone:\n%s" % (inst.kind, inst.pid, inst.error_log()[-2000:]))


def stop_instance(inst):
    """The harness's stop + cleanup; then any process of this instance still alive (a parent killed
    with SIGKILL leaves its children behind) is killed by pid."""
    pids = processes(inst) if inst.pid else []
    try:
        inst.cleanup()
    except Exception as e:  # keep stopping the others
        log("stopping %s: %s" % (inst.kind, e))
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                mine = str(inst.conf).encode() in f.read()
            if mine:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def private_module(library=None):
    """build/mod_auth_idtoken.so and its library (`library` instead of build/libIDToken.so, e.g. an
    unstripped copy) copied into a new folder of their own, readable by everyone; returns the module's
    path. Inside in_own_tmp the folder lies in the run's own /tmp folder and goes with it.

    Two reasons. The checkout may lie where www-data cannot enter (a clone under /root, mode 0700):
    an httpd started as www-data (instructions.py, under valgrind) could not load the module from
    there. And a rebuild of build/ during a run must not change what the servers load: a graceful
    restart would pair a new module with the old library, which can never be unloaded (-z nodelete,
    docs/internals.md). The two files are taken from one build: copied again if either changed meanwhile."""
    if not MODULE.exists() or not LIBRARY.exists():
        raise RuntimeError("%s or %s does not exist: build the module first (make)" % (MODULE, LIBRARY))
    folder = Path(tempfile.mkdtemp(prefix="module-"))
    folder.chmod(0o755)
    sources = [(Path(library) if library else LIBRARY, LIBRARY.name), (MODULE, MODULE.name)]

    def identity():
        return [(os.stat(src).st_ino, os.stat(src).st_mtime_ns) for src, _ in sources]

    for _ in range(5):
        before = identity()
        for src, name in sources:
            shutil.copyfile(src, folder / name)
            (folder / name).chmod(0o755)
        if identity() == before:
            return folder / MODULE.name
        time.sleep(2)  # build/ is being replaced: let the build finish
    raise RuntimeError("%s kept changing while it was copied: is a build running?" % MODULE.parent)


def in_own_tmp(prefix, work, *args):
    """work(*args) with a folder of its own under /tmp for the provider's and the servers' folders, so
    that nothing that tidies /tmp/e2e-* (the e2e suite's prefix) removes them under a running server.
    Removed afterwards unless E2E_KEEP_FILES is set."""
    tmp_root = tempfile.mkdtemp(prefix=prefix)
    os.chmod(tmp_root, 0o755)  # the children (www-data) read the htdocs below it
    saved_tempdir, tempfile.tempdir = tempfile.tempdir, tmp_root
    try:
        return work(*args)
    finally:
        tempfile.tempdir = saved_tempdir
        if not os.environ.get("E2E_KEEP_FILES"):
            shutil.rmtree(tmp_root, ignore_errors=True)


def run(args):
    ensure_tools()
    return in_own_tmp("mod_auth_idtoken-bench-", _run, args)


def _run(args):
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    results = {"settings": {k: getattr(args, k) for k in ("rounds", "duration", "logins", "threads", "connections",
                                                          "leak_requests", "fat_groups", "quick")},
               "configs": CONFIGS, "rounds": [], "memory": {}, "cookie_bytes": {}, "problems": {},
               "login_failures": {}, "fat_login_failures": {}}
    module = private_module()
    provider = Provider("--test-controls", "--auto-login", client_id=CLIENT_ID)
    redis = Redis()
    instances = {}
    try:
        for kind in CONFIGS:
            inst = BenchApache(kind, provider, module=module, redis=redis)
            instances[kind] = inst
            inst.start()
            log("%-15s pid %d on port %d (%s)" % (kind, inst.pid, inst.port, inst.folder))
        time.sleep(0.5)
        results["memory"]["start"] = {k: memory_summary(child_memory(i)) for k, i in instances.items()}

        # A real login through each module: the small token's cookie size, and memory idle after it.
        small = {}
        for kind in MODULE_CONFIGS:
            small[kind] = real_login(instances[kind])[0]
        instances["plain"].filler = [FillerCookie(small["idtoken-cookie"])]
        time.sleep(0.5)
        results["memory"]["after_login"] = {k: memory_summary(child_memory(i)) for k, i in instances.items()}
        groups = fat_groups(args.fat_groups)
        results["fat_claims_bytes"] = len(json.dumps({"groups": groups}, separators=(",", ":")))
        provider.configure(extra_claims={"groups": groups})
        fat = {}
        try:
            for kind in MODULE_CONFIGS:
                # Not checked: a browser sends every chunk in one Cookie header, which may pass
                # Apache's LimitRequestFieldSize (8190 bytes); the status after the login is reported.
                try:
                    fat[kind] = real_login(instances[kind], check=False)
                except LoginFailed as e:
                    fat[kind] = None
                    results["fat_login_failures"][kind] = str(e)
                    log("fat-token login failed: %s" % " ".join(str(e).split())[:200])
        finally:
            provider.configure()
        for kind in MODULE_CONFIGS:
            f = fat[kind]
            results["cookie_bytes"][kind] = {
                "small": cookie_size(small[kind]), "small_cookies": len(small[kind]),
                "fat": cookie_size(f[0]) if f else None, "fat_cookies": len(f[0]) if f else None,
                "fat_status_after_login": f[1] if f else None}
        log("cookie sizes: %s" % {k: (v["small"], v["fat"]) for k, v in results["cookie_bytes"].items()})
        log_marks = {k: i.log_size() for k, i in instances.items()}

        # Warm-up, not recorded: both children of each instance fetch discovery and keys, load the
        # ES256 key, and fill their caches. New connections spread the logins over the children.
        minter = Minter(provider)
        for kind in CONFIGS:
            run_wrk(instances[kind], small.get(kind), 1, args.threads, args.connections)
            if kind != "plain":
                for alg in ALGS:
                    warm = login_bench(instances[kind], minter, alg, args.warmup_logins, keep_alive=False)
                    if warm["failures"]:
                        raise RuntimeError("%s %s warm-up logins failed: %s" % (kind, alg, warm["failures"][:3]))

        time.sleep(0.5)
        results["memory"]["after_warmup"] = {k: memory_summary(child_memory(i)) for k, i in instances.items()}

        for r in range(args.rounds):
            order = CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]
            rnd = {"order": order, "wrk": {}, "login": {}}
            for inst in instances.values():
                check_instance(inst)
            for kind in order:
                rnd["wrk"][kind] = wrk_with_fresh_session(instances[kind], args.duration, args.threads,
                                                          args.connections)
            for kind in order:
                if kind == "plain":
                    continue
                rnd["login"][kind] = {}
                for alg in ALGS:
                    res = login_bench(instances[kind], minter, alg, args.logins)
                    rnd["login"][kind][alg] = res
                    if res["failures"]:
                        results["login_failures"].setdefault(kind, []).extend(res["failures"][:5])
            results["rounds"].append(rnd)
            log("round %d/%d: %s" % (r + 1, args.rounds, "  ".join(
                "%s %.0f/s %.0fus%s" % (k, rnd["wrk"][k]["rps"], rnd["wrk"][k]["cpu_us"] or 0,
                                        " ERR%d" % rnd["wrk"][k]["errors"] if rnd["wrk"][k]["errors"] else "")
                for k in CONFIGS)))

        # Memory after >= leak_requests protected requests per instance (wrk runs of earlier rounds
        # count; the rest is topped up here, each run with a fresh session).
        results["topup"] = {}
        for kind in CONFIGS:
            inst = instances[kind]
            while inst.served < args.leak_requests:
                rate = median(rnd["wrk"][kind]["rps"] for rnd in results["rounds"]) or 1000.0
                seconds = int(min(MAX_WRK_SECONDS, max(2, (args.leak_requests - inst.served) / rate * 1.1 + 1)))
                res = wrk_with_fresh_session(inst, seconds, args.threads, args.connections)
                results["topup"].setdefault(kind, []).append(res)
                log("%s: topped up to %d requests" % (kind, inst.served))
        time.sleep(1.0)
        results["memory"]["after_load"] = {k: memory_summary(child_memory(i)) for k, i in instances.items()}
        results["served"] = {k: i.served for k, i in instances.items()}
        for kind, inst in instances.items():
            problems = log_problems(inst, log_marks[kind])
            if problems:
                results["problems"][kind] = problems[:20]
    finally:
        for inst in instances.values():
            stop_instance(inst)
        provider.stop()
        redis.stop()
    results["seconds"] = time.monotonic() - started
    results["load_average"] = {"start": load_start, "end": os.getloadavg()[0]}
    results["summary"] = summarize(results)
    results["metrics_cost"] = metrics_cost(results["rounds"])
    return results


def spread(values):
    values = [v for v in values if v is not None]
    return {"median": median(values), "min": min(values) if values else None, "max": max(values) if values else None,
            "rounds": len(values)}


def metrics_cost(rounds):
    """What counting costs: idtoken-cookie (IDTokenMetrics On, the default) against idtoken-nometrics (Off),
    round by round (the same round's figures, so a round slowed down by the machine cancels out); the
    median over rounds and the smallest and largest round."""
    on, off = "idtoken-cookie", "idtoken-nometrics"
    cost = {
        "cpu_us_per_request": spread([r["wrk"][on]["cpu_us"] - r["wrk"][off]["cpu_us"] for r in rounds
                                      if r["wrk"][on]["cpu_us"] is not None and r["wrk"][off]["cpu_us"] is not None]),
        "rps_ratio": spread([r["wrk"][on]["rps"] / r["wrk"][off]["rps"] for r in rounds if r["wrk"][off]["rps"]]),
    }
    for alg in ALGS:
        cost["cpu_us_per_login_" + alg] = spread([
            r["login"][on][alg]["cpu_us"] - r["login"][off][alg]["cpu_us"] for r in rounds
            if r["login"][on][alg]["cpu_us"] is not None and r["login"][off][alg]["cpu_us"] is not None])
    return cost


def metrics_cost_lines(results):
    c = results["metrics_cost"]

    def show(s, spec):
        if s["median"] is None:
            return "—"
        return ("%s (%s … %s over %d round%s)" % (spec.format(s["median"]), spec.format(s["min"]), spec.format(s["max"]),
                                                   s["rounds"], "" if s["rounds"] == 1 else "s"))
    cpu_plain = results["summary"]["idtoken-cookie"]["cpu_us"]
    return [
        "metrics: IDTokenMetrics On (idtoken-cookie) against Off (idtoken-nometrics), the same round's difference; "
        "median (smallest … largest round):",
        "  server CPU / protected request: %s µs, of %s µs" % (show(c["cpu_us_per_request"], "{:+.2f}"),
                                                               fmt(cpu_plain, "{:.1f}")),
        "  protected requests/s, On / Off: %s" % show(c["rps_ratio"], "{:.3f}"),
        "  server CPU / login RS256: %s µs; ES256: %s µs" % (show(c["cpu_us_per_login_RS256"], "{:+.0f}"),
                                                             show(c["cpu_us_per_login_ES256"], "{:+.0f}")),
    ]


def summarize(results):
    rounds = results["rounds"]
    s = {}
    for kind in CONFIGS:
        w = [rnd["wrk"][kind] for rnd in rounds]
        plain = [rnd["wrk"]["plain"] for rnd in rounds]
        row = {
            "rps": median(x["rps"] for x in w),
            "rps_vs_plain": median(x["rps"] / p["rps"] for x, p in zip(w, plain) if p["rps"]),
            "rps_spread": (max(x["rps"] for x in w) / min(x["rps"] for x in w) - 1) if w and min(
                x["rps"] for x in w) else None,
            "p50_ms": median(x["p50_ms"] for x in w),
            "p99_ms": median(x["p99_ms"] for x in w),
            "cpu_us": median(x["cpu_us"] for x in w),
            "cpu_over_plain_us": median(x["cpu_us"] - p["cpu_us"] for x, p in zip(w, plain)
                                        if x["cpu_us"] is not None and p["cpu_us"] is not None),
            "wrk_errors": sum(x["errors"] for x in w) + sum(x["errors"] for x in results.get("topup", {}).get(kind, [])),
            "login_failures": sum(len(rnd["login"].get(kind, {}).get(a, {}).get("failures", []))
                                  for rnd in rounds for a in ALGS),
        }
        for alg in ALGS:
            row["login_cpu_us_" + alg] = median(rnd["login"][kind][alg]["cpu_us"] for rnd in rounds) \
                if kind != "plain" else None
        for point in ("start", "after_login", "after_warmup", "after_load"):
            m = results["memory"].get(point, {}).get(kind)
            row["rss_kb_" + point] = m["rss_kb"] if m else None
            row["private_kb_" + point] = m["private_kb"] if m else None
        a, b = row["private_kb_after_warmup"], row["private_kb_after_load"]
        row["private_growth_kb"] = b - a if a is not None and b is not None else None
        a, b = row["rss_kb_after_warmup"], row["rss_kb_after_load"]
        row["rss_growth_kb"] = b - a if a is not None and b is not None else None
        c = results["cookie_bytes"].get(kind)
        row["cookie_small"] = c["small"] if c else None
        row["cookie_fat"] = c["fat"] if c else None
        row["cookie_fat_count"] = c["fat_cookies"] if c else None
        row["fat_status"] = c["fat_status_after_login"] if c else None
        s[kind] = row
    return s


# ---------------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------------

def fmt(value, spec):
    if value is None:
        return "—"
    return spec.format(value)


def table(results):
    s = results["summary"]
    st = results["settings"]
    served = min(results.get("served", {}).values() or [0])
    mb = lambda kb: None if kb is None else kb / 1024.0  # noqa: E731
    rows = [
        ("protected requests/s", "rps", "{:,.0f}"),
        ("  ratio to plain (same round)", "rps_vs_plain", "{:.2f}"),
        ("  spread over rounds (max/min-1)", "rps_spread", "{:.0%}"),
        ("latency p50 (ms)", "p50_ms", "{:.2f}"),
        ("latency p99 (ms)", "p99_ms", "{:.2f}"),
        ("server CPU / request (µs)", "cpu_us", "{:.1f}"),
        ("  module cost over plain (µs)", "cpu_over_plain_us", "{:+.1f}"),
        ("server CPU / login RS256 (µs)", "login_cpu_us_RS256", "{:,.0f}"),
        ("server CPU / login ES256 (µs)", "login_cpu_us_ES256", "{:,.0f}"),
        ("child RSS, start (MB)", ("rss_kb_start", mb), "{:.1f}"),
        ("child RSS, idle after login (MB)", ("rss_kb_after_login", mb), "{:.1f}"),
        ("child RSS, after warm-up (MB)", ("rss_kb_after_warmup", mb), "{:.1f}"),
        ("child RSS, after %s req (MB)" % _short(served), ("rss_kb_after_load", mb), "{:.1f}"),
        ("child private, start (MB)", ("private_kb_start", mb), "{:.2f}"),
        ("child private, idle after login (MB)", ("private_kb_after_login", mb), "{:.2f}"),
        ("child private, after warm-up (MB)", ("private_kb_after_warmup", mb), "{:.2f}"),
        ("child private, after %s req (MB)" % _short(served), ("private_kb_after_load", mb), "{:.2f}"),
        ("  RSS growth warm-up→end (kB)", "rss_growth_kb", "{:+,.0f}"),
        ("  private growth warm-up→end (kB)", "private_growth_kb", "{:+,.0f}"),
        ("session cookie bytes, small token", "cookie_small", "{:,}"),
        ("session cookie bytes, fat token (%s B claims)" % fmt(results.get("fat_claims_bytes"), "{:,}"),
         "cookie_fat", "{:,}"),
        ("  cookies for the fat session", "cookie_fat_count", "{}"),
        ("  status of the page after fat login", "fat_status", "{}"),
        ("errors: wrk non-2xx + socket", "wrk_errors", "{}"),
        ("errors: failed logins", "login_failures", "{}"),
    ]
    label_w = max(len(r[0]) for r in rows) + 2
    col_w = max(len(c) for c in CONFIGS) + 2
    out = []
    out.append("mod_auth_idtoken benchmark: %d round(s), wrk %d s x %d threads x %d connections, %d logins per alg "
               "per round; medians over rounds; %.0f s in all; load average %.1f at the start, %.1f at the end" % (
                   st["rounds"], st["duration"], st["threads"], st["connections"], st["logins"], results["seconds"],
                   results["load_average"]["start"], results["load_average"]["end"]))
    out.append(" " * label_w + "".join(c.rjust(col_w) for c in CONFIGS))
    for label, key, spec in rows:
        conv = None
        if isinstance(key, tuple):
            key, conv = key
        cells = []
        for kind in CONFIGS:
            v = s[kind].get(key)
            if conv is not None:
                v = conv(v)
            cells.append(fmt(v, spec).rjust(col_w))
        out.append(label.ljust(label_w) + "".join(cells))
    return "\n".join(out)


def _short(n):
    if n >= 1000:
        return "%dk" % (n // 1000)
    return str(n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="rounds, configurations interleaved (default 5)")
    ap.add_argument("--duration", type=int, default=10, help="seconds of wrk per configuration and round (default 10)")
    ap.add_argument("--logins", type=int, default=200, help="logins per alg, configuration and round (default 200)")
    ap.add_argument("--warmup-logins", type=int, default=20, help="unrecorded logins per alg before round 1")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    ap.add_argument("--leak-requests", type=int, default=100_000,
                    help="protected requests each instance serves before the last memory figure (default 100000)")
    ap.add_argument("--fat-groups", type=int, default=100,
                    help="groups in the fat ID token, 41 bytes each (default 100: ~4.1 KB of claims)")
    ap.add_argument("--quick", action="store_true",
                    help="one short round: 2 s of wrk, 10 logins per alg, no top-up for the memory figure")
    ap.add_argument("--json", metavar="PATH", help="also write every figure, round by round, as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.logins, args.warmup_logins, args.leak_requests = 1, 2, 10, 4, 0
    if args.rounds < 1 or args.duration < 1 or args.logins < 1:
        ap.error("--rounds, --duration and --logins must be at least 1")
    if args.duration > MAX_WRK_SECONDS:
        ap.error("--duration must be at most %d s (sessions are re-issued after 60 s)" % MAX_WRK_SECONDS)
    results = run(args)
    print(table(results))
    print()
    print("\n".join(metrics_cost_lines(results)))
    problems = results["problems"]
    if problems:
        print("\nerror-log lines during the measurement:")
        for kind, lines in problems.items():
            for line in lines:
                print("  %s: %s" % (kind, line))
    if results["fat_login_failures"]:
        print("\nfailed logins with the fat token (no fat cookie size):")
        for kind, message in results["fat_login_failures"].items():
            print("  %s" % " ".join(message.split())[:300])
    if results["login_failures"]:
        print("\nfailed logins:")
        for kind, fails in results["login_failures"].items():
            print("  %s: %s" % (kind, fails[:5]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    errors = any(results["summary"][k]["wrk_errors"] or results["summary"][k]["login_failures"] for k in CONFIGS)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
