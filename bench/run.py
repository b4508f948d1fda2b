#!/usr/bin/env python3
"""Benchmark of mod_auth_idtoken against plain Apache and Debian's mod_auth_openidc (see README.md here).

Starts, on 127.0.0.1, the demo provider and nine Apache httpd instances with the same event-MPM settings:

    plain              no authentication (the limit)
    idtoken-cookie     mod_auth_idtoken, sessions in sealed cookies
    idtoken-nometrics  the same with IDTokenMetrics Off: what counting costs is the difference
    idtoken-proxy      the same as idtoken-cookie behind a (pretended) TLS-terminating proxy:
                       IDTokenTrustedProxies 127.0.0.1, every request with X-Forwarded-Proto: https and
                       X-Forwarded-Host, so the session is the https one (__Host-idtoken_session)
    idtoken-cache      mod_auth_idtoken, IDTokenSessionStore cache (the default IDTokenCache, file)
    idtoken-shmcb      mod_auth_idtoken, IDTokenSessionStore cache, IDTokenCache shmcb
    idtoken-redis      mod_auth_idtoken, IDTokenSessionStore cache, IDTokenCache redis: (a redis-server on
                       127.0.0.1 started here; its own CPU is not in the server CPU figures)
    openidc-cookie     mod_auth_openidc, OIDCSessionType client-cookie
    openidc-cache      mod_auth_openidc, OIDCSessionType server-cache, OIDCCacheType shm

and measures, in several runs (each with fresh httpd instances; the provider stays), round by round
with the configurations interleaved: protected requests/s and latency with a valid session (wrk), the
server CPU per protected request and per login (RS256, ES256; the redirect and the callback apart),
memory per child (RSS, private, PSS), and the session cookie's size. Prints one table: for each figure
the median over runs of each run's value (itself the median over its rounds), each run's value beside
it; then the modules' size on disk, the issue's targets, and what the metrics cost.

    python3 bench/run.py               # 3 runs x 2 rounds (about 10 minutes on 2 cores)
    python3 bench/run.py --quick       # one short run of one round (smoke)
    python3 bench/run.py --runs 5 --rounds 3 --json /tmp/bench.json
    python3 bench/run.py --quick --configs idtoken-shmcb   # plain and one column
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
                     server_preamble, builtin_modules, cache_mode, parse_form, pid_alive, set_cookies)

LIBRARY = MODULE.parent / "libIDToken.so"
UNSTRIPPED_LIBRARY = REPO / ".build" / "release" / "libIDToken.so"
WRK_SCRIPT = BENCH / "wrk_report.lua"
SETUP = BENCH / "setup.sh"
OPENIDC_SO = APACHE_MODULES / "mod_auth_openidc.so"
CLIENT_ID = "bench-client"
RESOURCE = "/protected/1k.html"
RESOURCE_SIZE = 1024
CONFIGS = ["plain", "idtoken-cookie", "idtoken-nometrics", "idtoken-proxy", "idtoken-cache", "idtoken-shmcb",
           "idtoken-redis", "openidc-cookie", "openidc-cache"]
MODULE_CONFIGS = CONFIGS[1:]
# Where each module column keeps its sessions: its login CPU and memory are compared with mod_auth_openidc's
# column of the same kind (cookie with cookie, cache with cache).
SESSION_KIND = {"idtoken-cookie": "cookie", "idtoken-nometrics": "cookie", "idtoken-proxy": "cookie",
                "idtoken-cache": "cache", "idtoken-shmcb": "cache", "idtoken-redis": "cache",
                "openidc-cookie": "cookie", "openidc-cache": "cache"}
# wrk's --timeout: a response slower than this is counted as a timeout (wrk's default, 2 s, is reached by
# a loaded 2-core machine); a timeout is reported, not counted as an error (wrk aborts nothing for it).
WRK_TIMEOUT = 10
ALGS = ["RS256", "ES256"]
ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"
USER_AGENT = "mod_auth_idtoken-bench/1"
# A fat ID token: N group names of 38 characters on top of the default claims (100: ~4.1 KB of claims).


def fat_groups(n):
    return ["group-%03d-engineering-department-staff" % i for i in range(n)]


SESSION_COOKIE = {
    "idtoken": re.compile(r"^(__Host-)?idtoken_session(_\d+)?$"),
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

    @property
    def forwarded(self):
        """The headers a TLS-terminating proxy in front of idtoken-proxy would add (IDTokenTrustedProxies
        127.0.0.1): every request to it carries them, the login's as well as wrk's, so that the session
        is the one an https browser gets (its cookie named __Host-idtoken_session)."""
        if self.kind != "idtoken-proxy":
            return {}
        return {"X-Forwarded-Proto": "https", "X-Forwarded-Host": self.host}

    def module_section(self):
        if self.kind == "plain":
            # The same <Location> as the modules get, so that Apache's own section walk and merge, which a
            # real site's config has too, counts for plain as well and not as the module's cost.
            return "\n".join(["# plain: no authentication", "<Location /protected>", "  Require all granted",
                              "</Location>"])
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
            elif self.kind == "idtoken-proxy":
                lines.append("IDTokenTrustedProxies 127.0.0.1")  # X-Forwarded-Proto/-Host believed from wrk
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
        # Debian's stock configuration leaves every mutex on APR's default mechanism (a process-shared
        # pthread mutex); the e2e preamble's `Mutex file:DIR default` (lock files in the test's folder)
        # would make them all fcntl locks, two system calls per lock, which a server with cache sessions
        # takes on every request. The benchmark runs what a stock install runs.
        preamble = [l for l in server_preamble(f, self.pid_file, self.port, loads) if not l.startswith("Mutex ")]
        lines = [
            "# generated by bench/run.py (%s)" % self.kind,
            *preamble,
            "DocumentRoot %s/htdocs" % f,
            "ErrorLog %s" % self.log_file,
            # mpm_event:trace1 adds nothing per request; it says when a child, all its workers busy,
            # closes its keep-alive connections (wrk then counts read errors: run_wrk tells them apart).
            "LogLevel warn mpm_event:trace1",
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


def smaps_rollup(pid):
    """{field: kB} of /proc/PID/smaps_rollup (Rss, Pss, Private_Clean, ...)."""
    values = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                values[parts[0][:-1]] = int(parts[1])
    return values


def child_memory(inst):
    """Per child: {"rss", "pss", "private"} in kB from /proc/PID/smaps_rollup (private = Private_Clean +
    Private_Dirty)."""
    out = []
    for pid in children_of(inst.pid):
        try:
            values = smaps_rollup(pid)
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
            "pss_kb": statistics.mean(c["pss"] for c in per_child),
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
    again with them). With check, that page must be the 1 KB file, asked with the cookies alone too.

    An instance with forwarded headers (idtoken-proxy) gets them on every request to it: the browser's
    origin is then https://localhost:PORT, whose URLs (the form's action, the return URL) are asked over
    plain http with the same headers, as the proxy would; its session cookies must be __Host- named."""
    forwarded = getattr(inst, "forwarded", {})
    origin = "https://%s" % inst.host

    def backend(url):
        return inst.url(url[len(origin):]) if forwarded and url.startswith(origin) else url

    b = Browser()
    b.session.headers["User-Agent"] = USER_AGENT
    try:
        first = b.get(inst.url(RESOURCE), headers=forwarded)
        if first.status_code != 302:
            raise LoginFailed("%s: GET %s answered %d, not a redirect" % (inst.kind, RESOURCE, first.status_code))
        page = b.get(first.headers["Location"])
        if page.status_code != 200:
            raise LoginFailed("%s: the provider answered %d: %s" % (inst.kind, page.status_code, page.text[:300]))
        form = parse_form(page.text)
        callback = b.post(backend(urllib.parse.urljoin(page.url, form["action"])), data=list(form["fields"]),
                          headers=forwarded)
        if callback.status_code not in (302, 303):
            raise LoginFailed("%s: the callback answered %d: %s" % (
                inst.kind, callback.status_code, callback.text[:300]))
        cookies = [c for c in set_cookies(callback) if inst.session_rx.match(c.name) and not c.clears]
        if not cookies:
            raise LoginFailed("%s: the callback set no session cookie: %s" % (inst.kind, set_cookies(callback)))
        if forwarded and not all(c.name.startswith("__Host-") for c in cookies):
            raise LoginFailed("%s: the forwarded headers %s were not believed: session cookies %s, not __Host-" % (
                inst.kind, forwarded, [c.name for c in cookies]))
        target = backend(urllib.parse.urljoin(origin if forwarded else inst.url("/"), callback.headers["Location"]))
        final = b.get(target, headers=forwarded)
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
    for) and the instance's forwarded headers if it has any, reopened when the server closes it."""

    def __init__(self, inst, keep_alive=True):
        self.inst = inst
        self.keep_alive = keep_alive
        self.conn = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=30)

    def request(self, method, path, headers=None, body=None):
        h = {"Host": self.inst.host, "User-Agent": USER_AGENT, "Accept": ACCEPT}
        h.update(getattr(self.inst, "forwarded", {}))
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
    minted for each nonce, then the n callback POSTs. Returns CPU per login (cpu_us), its two parts
    (cpu_get_us: the redirect, cpu_post_us: the callback) and the failures."""
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
    result = login_cpu(n, cpu_between(before, after_get), cpu_between(before_post, after), failures)
    result["client_seconds"] = t_get + t_post
    return result


def login_cpu(n, cpu_get, cpu_post, failures):
    """A batch of n logins' figures, per login in µs: the GETs' CPU, the POSTs', their sum."""
    per = (lambda cpu: cpu / n * 1e6) if n else (lambda cpu: None)
    return {"n": n, "cpu_us": per(cpu_get + cpu_post), "cpu_get_us": per(cpu_get), "cpu_post_us": per(cpu_post),
            "failures": failures}


def floor_bench(inst, minter, alg, n):
    """What any module's login costs plain Apache already: the same two requests on one connection, the
    same sizes, no module. n GETs of the page, then n POSTs to it of a callback's form body (a token of
    `alg` and a state) with a state cookie of a login's size (httpd's default handler discards the body
    and answers with the page). The same keys as login_bench, so the table puts it in plain's column."""
    token = minter.mint("n" * 43, alg)
    body = urllib.parse.urlencode({"id_token": token, "state": "s" * 43})
    cookie = "idtoken_state_%s=%s" % ("k" * 22, "v" * 200)
    client = RawClient(inst)
    failures = []
    before = cpu_snapshot(inst)
    for _ in range(n):
        status, _, _ = client.request("GET", RESOURCE)
        if status != 200:
            failures.append("GET %d" % status)
    after_get = cpu_snapshot(inst)
    for _ in range(n):
        status, _, _ = client.request("POST", RESOURCE, {
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}, body)
        if status != 200:
            failures.append("POST %d" % status)
    after = cpu_snapshot(inst)
    client.close()
    return login_cpu(n, cpu_between(before, after_get), cpu_between(after_get, after), failures)


# ---------------------------------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------------------------------

BUSY_CLOSE = re.compile(r"All workers are busy.*?will (?:shutdown|close) (\d+) keep-alive")


def run_wrk(inst, cookies, seconds, threads, connections):
    """wrk on the 1 KB page with these cookies (and the instance's forwarded headers). errors = responses
    not 2xx (statuses: how many of each status) + connect, read and write errors; timeouts (no response
    within WRK_TIMEOUT s) apart: wrk only counts them, the response still arrives and is counted."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", "%ds" % seconds, "--latency",
           "--timeout", "%ds" % WRK_TIMEOUT,
           "-s", str(WRK_SCRIPT), "-H", "Host: %s" % inst.host, "-H", "Accept: %s" % ACCEPT,
           "-H", "User-Agent: %s" % USER_AGENT]
    for name, value in getattr(inst, "forwarded", {}).items():
        cmd += ["-H", "%s: %s" % (name, value)]
    log_mark = inst.log_size() if hasattr(inst, "log_size") else None
    if cookies:
        cmd += ["-H", "Cookie: %s" % cookie_header(cookies)]
    cmd.append("http://127.0.0.1:%d%s" % (inst.port, RESOURCE))
    before = cpu_snapshot(inst)
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=seconds + 60)
    after = cpu_snapshot(inst)
    if r.returncode != 0:
        raise RuntimeError("wrk failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr))
    v, statuses = {}, {}
    for line in r.stdout.splitlines():
        if line.startswith("BENCH "):
            _, key, value = line.split()
            if re.match(r"^status_\d+$", key):  # wrk_report.lua: responses not 2xx of this status
                statuses[key[len("status_"):]] = int(value)
            else:
                v[key] = int(value)
    requests_done = v.get("requests", 0)
    kinds = {k: v.get(k, 0) for k in ("connect_errors", "read_errors", "write_errors", "timeouts")}
    # Keep-alive connections httpd itself closed meanwhile because all of a child's workers were busy
    # (the event MPM's line at mpm_event:trace1): wrk counts each as a read (or write) error.
    busy_closed = sum(int(n) for n in BUSY_CLOSE.findall(inst.log_since(log_mark))) if log_mark is not None else 0
    socket = kinds["connect_errors"] + kinds["read_errors"] + kinds["write_errors"]
    inst.served += requests_done
    cpu = cpu_between(before, after)
    return {
        "requests": requests_done,
        "rps": requests_done / (v["duration_us"] / 1e6) if v.get("duration_us") else 0.0,
        "p50_ms": v.get("p50_us", 0) / 1000.0,
        "p99_ms": v.get("p99_us", 0) / 1000.0,
        "max_ms": v.get("max_us", 0) / 1000.0,
        "cpu_us": cpu / requests_done * 1e6 if requests_done else None,
        "cpu_us_from_ticks": cpu_ticks_between(before, after) / requests_done * 1e6 if requests_done else None,
        "errors": v.get("non2xx", 0) + socket,
        "busy_closed": busy_closed,
        # the errors no busy close explains: what the exit code and the smoke test go by
        "unexplained_errors": v.get("non2xx", 0) + max(0, socket - busy_closed),
        "non2xx": v.get("non2xx", 0),
        "statuses": statuses,
        "socket_errors": v.get("socket_errors", 0),
        "socket_error_kinds": kinds,
        "timeouts": kinds["timeouts"],
        "bytes_per_request": v.get("bytes", 0) / requests_done if requests_done else 0,
    }


class FillerCookie:
    """What plain Apache gets instead of a session: a cookie header exactly as long as
    mod_auth_idtoken's, so that Apache's own work on the header is not counted as the module's."""

    def __init__(self, like):
        self.name = "filler"
        self.value = "f" * max(1, len(cookie_header(like)) - len("filler="))


# A session cookie of about the size the demo provider's default token seals to: what plain Apache gets
# when no idtoken instance's real cookie is at hand.
TYPICAL_SESSION = [type("Session", (), {"name": "idtoken_session", "value": "v" * 640})]


def session_or_filler(inst):
    """The cookies a protected request to `inst` carries: a real login's, or for plain Apache a filler
    cookie as long as a typical session's."""
    return [FillerCookie(TYPICAL_SESSION)] if inst.kind == "plain" else real_login(inst)[0]


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


def machine_load():
    """The 1-minute load average (/proc/loadavg) and the number of CPUs, now."""
    with open("/proc/loadavg") as f:
        load1 = float(f.read().split()[0])
    return {"loadavg_1min": load1, "cpus": os.cpu_count()}


def _ldd(path):
    """{soname: resolved path} of the shared libraries `path` pulls in (ldd)."""
    r = subprocess.run(["ldd", str(path)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    libs = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m:
            libs[m.group(1)] = os.path.realpath(m.group(2))
    return libs


def module_sizes():
    """What each module brings into an httpd child, in bytes on disk: its own file(s), and the shared
    libraries it pulls in that /usr/sbin/apache2 does not link itself (shared with other processes
    that load them, so an upper bound of what the module costs in memory)."""
    httpd = set(_ldd("/usr/sbin/apache2"))
    out = {}
    for name, files in (("idtoken", [MODULE, LIBRARY]), ("openidc", [OPENIDC_SO])):
        if not all(Path(f).exists() for f in files):
            continue
        own = {Path(f).name: Path(f).stat().st_size for f in files}
        extra = {}
        for f in files:
            for soname, path in _ldd(f).items():
                if soname not in httpd and soname not in own and os.path.exists(path):
                    extra[soname] = os.path.getsize(path)
        out[name] = {"files": own, "libraries": extra}
    return out


def sizes_line(sizes):
    mb = lambda n: "%.1f MB" % (n / 1e6)  # noqa: E731
    parts = []
    for name in ("idtoken", "openidc"):
        z = sizes.get(name)
        if z:
            files = " + ".join("%s %s" % (f, mb(n)) for f, n in z["files"].items())
            if len(z["files"]) > 1:
                files += " = %s" % mb(sum(z["files"].values()))
            parts.append("%s, and %d libraries it pulls in that httpd does not link itself, %s" % (
                files, len(z["libraries"]), mb(sum(z["libraries"].values()))))
    return "on disk: " + "; ".join(parts)


def _run(args):
    started = time.monotonic()
    configs = args.configs
    results = {"settings": {k: getattr(args, k) for k in ("runs", "rounds", "duration", "logins", "threads",
                                                          "connections", "leak_requests", "fat_groups", "quick")},
               "wrk_timeout_s": WRK_TIMEOUT, "configs": configs, "runs": [], "sizes": module_sizes()}
    module = private_module()
    provider = Provider("--test-controls", "--auto-login", client_id=CLIENT_ID)
    redis = None
    try:
        redis = Redis() if "idtoken-redis" in configs else None
        minter = Minter(provider)
        for n in range(args.runs):
            if redis is not None:
                redis.command("FLUSHALL")
            results["runs"].append(one_run(args, n, configs, provider, redis, module, minter))
    finally:
        provider.stop()
        if redis is not None:
            redis.stop()
    results["seconds"] = time.monotonic() - started
    aggregate(results)
    return results


def one_run(args, n, configs, provider, redis, module, minter):
    """One run: every configuration in a fresh httpd instance (started here, stopped at the end), the
    cookie sizes, a warm-up, args.rounds rounds, the top-up for the memory figure. Returns its record,
    with its own summary (medians over its rounds)."""
    started = time.monotonic()
    rec = {"run": n + 1, "load_start": machine_load(), "rounds": [], "memory": {}, "cookie_bytes": {},
           "problems": {}, "login_failures": {}, "fat_login_failures": {}}
    log("run %d/%d: starting fresh instances; load average %.2f, %d CPUs" % (
        n + 1, args.runs, rec["load_start"]["loadavg_1min"], rec["load_start"]["cpus"]))
    module_configs = [k for k in configs if k != "plain"]
    instances = {}
    try:
        for kind in configs:
            inst = BenchApache(kind, provider, module=module, redis=redis)
            instances[kind] = inst
            inst.start()
            log("%-17s pid %d on port %d (%s)" % (kind, inst.pid, inst.port, inst.folder))
        time.sleep(0.5)
        rec["memory"]["start"] = {k: memory_summary(child_memory(i)) for k, i in instances.items()}

        # A real login through each module: the small token's cookie size, and memory idle after it.
        small = {}
        for kind in module_configs:
            small[kind] = real_login(instances[kind])[0]
        like = small.get("idtoken-cookie") or next((small[k] for k in module_configs if k.startswith("idtoken")), None)
        instances["plain"].filler = [FillerCookie(like)] if like else [
            type("Session", (), {"name": "filler", "value": "f" * 1563})]
        time.sleep(0.5)
        rec["memory"]["after_login"] = {k: memory_summary(child_memory(i)) for k, i in instances.items()}
        groups = fat_groups(args.fat_groups)
        rec["fat_claims_bytes"] = len(json.dumps({"groups": groups}, separators=(",", ":")))
        provider.configure(extra_claims={"groups": groups})
        fat = {}
        try:
            for kind in module_configs:
                # Not checked: a browser sends every chunk in one Cookie header, which may pass
                # Apache's LimitRequestFieldSize (8190 bytes); the status after the login is reported.
                try:
                    fat[kind] = real_login(instances[kind], check=False)
                except LoginFailed as e:
                    fat[kind] = None
                    rec["fat_login_failures"][kind] = str(e)
                    log("fat-token login failed: %s" % " ".join(str(e).split())[:200])
        finally:
            provider.configure()
        for kind in module_configs:
            f = fat[kind]
            rec["cookie_bytes"][kind] = {
                "small": cookie_size(small[kind]), "small_cookies": len(small[kind]),
                "fat": cookie_size(f[0]) if f else None, "fat_cookies": len(f[0]) if f else None,
                "fat_status_after_login": f[1] if f else None}
        log("cookie sizes: %s" % {k: (v["small"], v["fat"]) for k, v in rec["cookie_bytes"].items()})
        log_marks = {k: i.log_size() for k, i in instances.items()}

        # Warm-up, not recorded: both children of each instance fetch discovery and keys, load the
        # ES256 key, and fill their caches. New connections spread the logins over the children.
        for kind in configs:
            run_wrk(instances[kind], small.get(kind, instances[kind].filler if kind == "plain" else None), 1,
                    args.threads, args.connections)
            if kind != "plain":
                for alg in ALGS:
                    warm = login_bench(instances[kind], minter, alg, args.warmup_logins, keep_alive=False)
                    if warm["failures"]:
                        raise RuntimeError("%s %s warm-up logins failed: %s" % (kind, alg, warm["failures"][:3]))

        time.sleep(0.5)
        rec["memory"]["after_warmup"] = {k: memory_summary(child_memory(i)) for k, i in instances.items()}

        for r in range(args.rounds):
            shift = (n * args.rounds + r) % len(configs)  # the rotation goes on from run to run
            order = configs[shift:] + configs[:shift]
            rnd = {"order": order, "wrk": {}, "login": {}}
            for inst in instances.values():
                check_instance(inst)
            for kind in order:
                rnd["wrk"][kind] = wrk_with_fresh_session(instances[kind], args.duration, args.threads,
                                                          args.connections)
            for kind in order:
                rnd["login"][kind] = {}
                for alg in ALGS:
                    bench = floor_bench if kind == "plain" else login_bench
                    res = bench(instances[kind], minter, alg, args.logins)
                    rnd["login"][kind][alg] = res
                    if res["failures"]:
                        rec["login_failures"].setdefault(kind, []).extend(res["failures"][:5])
            rec["rounds"].append(rnd)
            log("run %d round %d/%d: %s" % (n + 1, r + 1, args.rounds, "  ".join(
                "%s %.0f/s %.0fus%s" % (k, rnd["wrk"][k]["rps"], rnd["wrk"][k]["cpu_us"] or 0,
                                        " ERR%d" % rnd["wrk"][k]["errors"] if rnd["wrk"][k]["errors"] else "")
                for k in configs)))

        # Memory after >= leak_requests protected requests per instance (wrk runs of earlier rounds
        # count; the rest is topped up here, each run with a fresh session).
        rec["topup"] = {}
        for kind in configs:
            inst = instances[kind]
            while inst.served < args.leak_requests:
                rate = median(rnd["wrk"][kind]["rps"] for rnd in rec["rounds"]) or 1000.0
                seconds = int(min(MAX_WRK_SECONDS, max(2, (args.leak_requests - inst.served) / rate * 1.1 + 1)))
                res = wrk_with_fresh_session(inst, seconds, args.threads, args.connections)
                rec["topup"].setdefault(kind, []).append(res)
                log("%s: topped up to %d requests" % (kind, inst.served))
        time.sleep(1.0)
        rec["memory"]["after_load"] = {k: memory_summary(child_memory(i)) for k, i in instances.items()}
        rec["served"] = {k: i.served for k, i in instances.items()}
        for kind, inst in instances.items():
            problems = log_problems(inst, log_marks[kind])
            if problems:
                rec["problems"][kind] = problems[:20]
    finally:
        for inst in instances.values():
            stop_instance(inst)
    rec["load_end"] = machine_load()
    rec["seconds"] = time.monotonic() - started
    rec["summary"] = summarize_run(rec, configs)
    rec["metrics_cost"] = metrics_cost(rec["rounds"]) if {"idtoken-cookie", "idtoken-nometrics"} <= set(configs) \
        else None
    log("run %d/%d done in %.0f s; load average %.2f" % (n + 1, args.runs, rec["seconds"],
                                                          rec["load_end"]["loadavg_1min"]))
    return rec


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


def metrics_cost_over_runs(runs):
    """Each run's median (over its rounds), their median, and the smallest and largest round of all."""
    costs = [r["metrics_cost"] for r in runs if r.get("metrics_cost")]
    if not costs:
        return None
    out = {}
    for key in costs[0]:
        per_run = [c[key]["median"] for c in costs]
        lows = [c[key]["min"] for c in costs if c[key]["min"] is not None]
        highs = [c[key]["max"] for c in costs if c[key]["max"] is not None]
        out[key] = {"median": median(per_run), "runs": per_run, "min": min(lows) if lows else None,
                    "max": max(highs) if highs else None, "rounds": sum(c[key]["rounds"] for c in costs)}
    return out


def metrics_cost_lines(results):
    c = results.get("metrics_cost")
    if not c:
        return ["metrics: not measured (needs idtoken-cookie and idtoken-nometrics)"]

    def show(s, spec):
        if s["median"] is None:
            return "—"
        runs = " ".join(fmt(v, spec) for v in s["runs"])
        return "%s (runs: %s; smallest … largest of %d round%s: %s … %s)" % (
            spec.format(s["median"]), runs, s["rounds"], "" if s["rounds"] == 1 else "s",
            spec.format(s["min"]), spec.format(s["max"]))
    cpu_plain = results["summary"]["idtoken-cookie"]["cpu_us"]
    return [
        "metrics: IDTokenMetrics On (idtoken-cookie) against Off (idtoken-nometrics), the same round's difference; "
        "median over runs of each run's median over its rounds:",
        "  server CPU / protected request: %s µs, of %s µs" % (show(c["cpu_us_per_request"], "{:+.2f}"),
                                                               fmt(cpu_plain, "{:.1f}")),
        "  protected requests/s, On / Off: %s" % show(c["rps_ratio"], "{:.3f}"),
        "  server CPU / login RS256: %s µs" % show(c["cpu_us_per_login_RS256"], "{:+.0f}"),
        "  server CPU / login ES256: %s µs" % show(c["cpu_us_per_login_ES256"], "{:+.0f}"),
    ]


def _ratio(a, b):
    return a / b if a is not None and b else None


def _less(a, b):
    return a - b if a is not None and b is not None else None


def summarize_run(rec, configs):
    """One run's figures per configuration: medians over its rounds (ratios and differences taken within
    a round first); memory and cookie sizes as measured in this run."""
    rounds = rec["rounds"]
    s = {}
    for kind in configs:
        w = [rnd["wrk"][kind] for rnd in rounds]
        plain = [rnd["wrk"]["plain"] for rnd in rounds]
        all_wrk = w + rec.get("topup", {}).get(kind, [])
        statuses = {}
        for x in all_wrk:
            for status, count in x.get("statuses", {}).items():
                statuses[status] = statuses.get(status, 0) + count
        row = {
            "rps": median(x["rps"] for x in w),
            "rps_vs_plain": median(_ratio(x["rps"], p["rps"]) for x, p in zip(w, plain)),
            "rps_spread_rounds": (max(x["rps"] for x in w) / min(x["rps"] for x in w) - 1) if w and min(
                x["rps"] for x in w) else None,
            "p50_ms": median(x["p50_ms"] for x in w),
            "p99_ms": median(x["p99_ms"] for x in w),
            "max_ms": max((x.get("max_ms", 0) for x in all_wrk), default=None),
            "cpu_us": median(x["cpu_us"] for x in w),
            "cpu_over_plain_us": median(x["cpu_us"] - p["cpu_us"] for x, p in zip(w, plain)
                                        if x["cpu_us"] is not None and p["cpu_us"] is not None),
            "cpu_vs_plain": median(_ratio(x["cpu_us"], p["cpu_us"]) for x, p in zip(w, plain)),
            "wrk_errors": sum(x["errors"] for x in all_wrk),
            "wrk_unexplained_errors": sum(x.get("unexplained_errors", x["errors"]) for x in all_wrk),
            "wrk_busy_closed": sum(x.get("busy_closed", 0) for x in all_wrk),
            "wrk_non2xx": sum(x["non2xx"] for x in all_wrk),
            "wrk_statuses": statuses,
            "wrk_timeouts": sum(x["timeouts"] for x in all_wrk),
            "login_failures": sum(len(rnd["login"].get(kind, {}).get(a, {}).get("failures", []))
                                  for rnd in rounds for a in ALGS),
        }
        for k in ("connect_errors", "read_errors", "write_errors"):
            row["wrk_" + k] = sum(x["socket_error_kinds"][k] for x in all_wrk)
        other = "openidc-" + SESSION_KIND[kind] if kind in SESSION_KIND else None
        for alg in ALGS:
            for part, key in (("cpu_us", "login_cpu_us_"), ("cpu_get_us", "login_get_us_"),
                              ("cpu_post_us", "login_post_us_")):
                row[key + alg] = median(rnd["login"][kind][alg][part] for rnd in rounds if kind in rnd["login"])
            row["login_vs_openidc_" + alg] = median(
                _ratio(rnd["login"][kind][alg]["cpu_us"], rnd["login"][other][alg]["cpu_us"])
                for rnd in rounds if other in rnd["login"]) if other in configs else None
            # The module's own share: each login less plain's two requests of the same round.
            row["login_own_vs_openidc_" + alg] = median(
                _ratio(_less(rnd["login"][kind][alg]["cpu_us"], rnd["login"]["plain"][alg]["cpu_us"]),
                       _less(rnd["login"][other][alg]["cpu_us"], rnd["login"]["plain"][alg]["cpu_us"]))
                for rnd in rounds if other in rnd["login"] and "plain" in rnd["login"]) if other in configs else None
        for point in ("start", "after_login", "after_warmup", "after_load"):
            m = rec["memory"].get(point, {}).get(kind)
            for figure in ("rss", "pss", "private"):
                row["%s_kb_%s" % (figure, point)] = m[figure + "_kb"] if m else None
        for figure in ("rss", "private", "pss"):
            a, b = row[figure + "_kb_after_warmup"], row[figure + "_kb_after_load"]
            row[figure + "_growth_kb"] = b - a if a is not None and b is not None else None
        c = rec["cookie_bytes"].get(kind)
        row["cookie_small"] = c["small"] if c else None
        row["cookie_fat"] = c["fat"] if c else None
        row["cookie_fat_count"] = c["fat_cookies"] if c else None
        row["fat_status"] = c["fat_status_after_login"] if c else None
        s[kind] = row
    for kind in configs:
        other = "openidc-" + SESSION_KIND[kind] if kind in SESSION_KIND else None
        s[kind]["pss_vs_openidc"] = _ratio(s[kind]["pss_kb_after_load"], s[other]["pss_kb_after_load"]) \
            if other in s else None
        s[kind]["private_vs_openidc"] = _ratio(s[kind]["private_kb_after_load"], s[other]["private_kb_after_load"]) \
            if other in s else None
    return s


# Summed over runs, not their median: errors and failures.
SUM_KEYS = {"wrk_errors", "wrk_unexplained_errors", "wrk_busy_closed", "wrk_non2xx", "wrk_timeouts", "wrk_connect_errors", "wrk_read_errors", "wrk_write_errors",
            "login_failures"}


def aggregate(results):
    """The headline figures: for each figure, the median over runs of each run's value (results["summary"]),
    each run's value beside it (results["per_run"]); errors summed over runs; the spread of requests/s over
    runs; the metrics' cost over runs; failures and error-log lines of every run, by configuration."""
    runs = results["runs"]
    summary, per_run = {}, {}
    for kind in results["configs"]:
        rows = [r["summary"][kind] for r in runs]
        summary[kind], per_run[kind] = {}, {}
        for key in rows[0]:
            values = [row[key] for row in rows]
            per_run[kind][key] = values
            if key == "wrk_statuses":
                merged = {}
                for v in values:
                    for status, count in v.items():
                        merged[status] = merged.get(status, 0) + count
                summary[kind][key] = merged
            elif key in SUM_KEYS:
                summary[kind][key] = sum(values)
            elif all(isinstance(v, (int, float)) or v is None for v in values):
                summary[kind][key] = median(values)
            else:
                summary[kind][key] = values[0]
        rps = [v for v in per_run[kind]["rps"] if v]
        summary[kind]["rps_spread_runs"] = max(rps) / min(rps) - 1 if len(rps) > 1 else None
    results["summary"], results["per_run"] = summary, per_run
    results["metrics_cost"] = metrics_cost_over_runs(runs)
    for key in ("login_failures", "fat_login_failures", "problems"):
        merged = {}
        for r in runs:
            for kind, v in r[key].items():
                if isinstance(v, list):
                    merged.setdefault(kind, []).extend("run %d: %s" % (r["run"], x) for x in v)
                else:
                    merged.setdefault(kind, []).append("run %d: %s" % (r["run"], v))
        results[key] = merged
    results["served"] = {k: min(r["served"][k] for r in runs) for k in results["configs"]}


# ---------------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------------

def fmt(value, spec):
    if value is None:
        return "—"
    return spec.format(value)


def _cell(results, kind, key, spec, conv=None, same=False):
    """The median over runs, then each run's value in parentheses (none with one run). same: a figure that
    is not a measurement of time (a size, a status): one value when every run gave the same."""
    c = conv or (lambda v: v)
    head = fmt(c(results["summary"][kind].get(key)), spec)
    values = results["per_run"][kind].get(key) or []
    if len(values) < 2 or all(v is None for v in values) or (same and len(set(values)) == 1):
        return head
    return "%s (%s)" % (head, " ".join(fmt(c(v), spec) for v in values))


def _error_cell(results, kind, what):
    s = results["summary"][kind]
    if what == "non2xx":
        text = "%d" % s["wrk_non2xx"]
        if s["wrk_statuses"]:
            text += " (%s)" % " ".join("%s×%d" % (k, v) for k, v in sorted(s["wrk_statuses"].items()))
        return text
    if what == "socket":
        return "%d/%d/%d" % (s["wrk_connect_errors"], s["wrk_read_errors"], s["wrk_write_errors"])
    return "%d" % s.get(what, 0)


def table_rows(results):
    served = min(results.get("served", {}).values() or [0])
    mb = lambda kb: None if kb is None else kb / 1024.0  # noqa: E731
    fat_claims = results["runs"][0].get("fat_claims_bytes")
    rows = [
        ("protected requests/s", "rps", "{:,.0f}"),
        ("  ratio to plain (target: cookie ≥ 0.90, cache ≥ 0.85)", "rps_vs_plain", "{:.2f}"),
        ("  spread over runs (max/min-1)", ("rps_spread_runs", None, "single"), "{:.0%}"),
        ("latency p50 (ms)", "p50_ms", "{:.2f}"),
        ("latency p99 (ms)", "p99_ms", "{:.2f}"),
        ("latency max (ms), the run's slowest", "max_ms", "{:,.0f}"),
        ("server CPU / request (µs)", "cpu_us", "{:.1f}"),
        ("  module cost over plain (µs)", "cpu_over_plain_us", "{:+.1f}"),
        ("  ratio to plain", "cpu_vs_plain", "{:.2f}"),
    ]
    for alg in ALGS:
        rows += [
            ("server CPU / login %s (µs): redirect GET" % alg, "login_get_us_" + alg, "{:,.0f}"),
            ("  callback POST (µs)", "login_post_us_" + alg, "{:,.0f}"),
            ("  login = GET + POST (µs)", "login_cpu_us_" + alg, "{:,.0f}"),
            ("  ratio to openidc, same sessions (target ≤ 0.3)", "login_vs_openidc_" + alg, "{:.2f}"),
            ("  the same, each less plain's (its two requests, same sizes)", "login_own_vs_openidc_" + alg, "{:.2f}"),
        ]
    rows += [
        ("child RSS, start (MB)", ("rss_kb_start", mb), "{:.1f}"),
        ("child RSS, idle after login (MB)", ("rss_kb_after_login", mb), "{:.1f}"),
        ("child RSS, after warm-up (MB)", ("rss_kb_after_warmup", mb), "{:.1f}"),
        ("child RSS, after %s req (MB)" % _short(served), ("rss_kb_after_load", mb), "{:.1f}"),
        ("child private, start (MB)", ("private_kb_start", mb), "{:.2f}"),
        ("child private, idle after login (MB)", ("private_kb_after_login", mb), "{:.2f}"),
        ("child private, after warm-up (MB)", ("private_kb_after_warmup", mb), "{:.2f}"),
        ("child private, after %s req (MB)" % _short(served), ("private_kb_after_load", mb), "{:.2f}"),
        ("child PSS, after %s req (MB)" % _short(served), ("pss_kb_after_load", mb), "{:.2f}"),
        ("  PSS ratio to openidc, same sessions", "pss_vs_openidc", "{:.2f}"),
        ("  private ratio to openidc, same sessions", "private_vs_openidc", "{:.2f}"),
        ("  RSS growth warm-up→end (kB)", "rss_growth_kb", "{:+,.0f}"),
        ("  private growth warm-up→end (kB)", "private_growth_kb", "{:+,.0f}"),
        ("session cookie bytes, small token", ("cookie_small", None, "same"), "{:,}"),
        ("session cookie bytes, fat token (%s B claims)" % fmt(fat_claims, "{:,}"), ("cookie_fat", None, "same"),
         "{:,}"),
        ("  cookies for the fat session", ("cookie_fat_count", None, "same"), "{}"),
        ("  status of the page after fat login", ("fat_status", None, "same"), "{}"),
        ("errors: responses not 2xx (status×count)", ("non2xx", None, "error"), None),
        ("errors: connect/read/write", ("socket", None, "error"), None),
        ("  keep-alive closed by httpd, workers all busy", ("wrk_busy_closed", None, "error"), None),
        ("wrk timeouts (no answer in %d s; not errors)" % results.get("wrk_timeout_s", WRK_TIMEOUT),
         ("wrk_timeouts", None, "error"), None),
        ("errors: failed logins", ("login_failures", None, "error"), None),
    ]
    return rows


def table(results, width=160):
    """The header (settings, each run's time and load), then the table, in blocks of columns no wider
    than `width` when the runs' values make the cells wide."""
    st = results["settings"]
    configs = results["configs"]
    out = ["mod_auth_idtoken benchmark: %d run%s (each with fresh httpd instances) x %d round%s, wrk %d s x %d "
           "threads x %d connections (--timeout %d s), %d logins per alg per round; %.0f s in all" % (
               st["runs"], "" if st["runs"] == 1 else "s", st["rounds"], "" if st["rounds"] == 1 else "s",
               st["duration"], st["threads"], st["connections"], results.get("wrk_timeout_s", WRK_TIMEOUT),
               st["logins"], results["seconds"])]
    for r in results["runs"]:
        out.append("  run %d: %.0f s; load average (1 min) %.2f at the start, %.2f at the end; %d CPUs" % (
            r["run"], r["seconds"], r["load_start"]["loadavg_1min"], r["load_end"]["loadavg_1min"],
            r["load_start"]["cpus"]))
    out.append("each cell: the median over runs of each run's value%s; a run's value: the median over its rounds "
               "(ratios and differences taken within a round)" % (
                   ", then each run's value in parentheses" if st["runs"] > 1 else ""))
    grid = []
    for label, key, spec in table_rows(results):
        conv, mode = None, None
        if isinstance(key, tuple):
            key, conv, mode = (key + (None,))[:3]
        cells = []
        for kind in configs:
            if mode == "error":
                cells.append(_error_cell(results, kind, key))
            elif mode == "single":
                cells.append(fmt(results["summary"][kind].get(key), spec))
            else:
                cells.append(_cell(results, kind, key, spec, conv, same=mode == "same"))
        grid.append((label, cells))
    label_w = max(len(label) for label, _ in grid) + 2
    col_w = [max([len(kind)] + [len(cells[i]) for _, cells in grid]) + 2 for i, kind in enumerate(configs)]
    blocks, block, used = [], [], label_w
    for i in range(len(configs)):
        if block and used + col_w[i] > width:
            blocks.append(block)
            block, used = [], label_w
        block.append(i)
        used += col_w[i]
    blocks.append(block)
    for block in blocks:
        out.append("")
        out.append(" " * label_w + "".join(configs[i].rjust(col_w[i]) for i in block))
        for label, cells in grid:
            out.append(label.ljust(label_w) + "".join(cells[i].rjust(col_w[i]) for i in block))
    return "\n".join(out)


def targets_lines(results):
    """The issue's targets, read off the table: nothing asserted."""
    s = results["summary"]
    have = lambda k: k in s  # noqa: E731
    lines = ["targets (read off the table above; nothing asserted):"]
    parts = []
    for kind, target in (("idtoken-cookie", 0.90), ("idtoken-cache", 0.85)):
        if have(kind):
            parts.append("%s %s (≥ %.2f)" % (kind, fmt(s[kind]["rps_vs_plain"], "{:.2f}"), target))
    lines.append("  protected requests/s, ratio to plain: " + ", ".join(parts))
    parts = []
    for kind in ("idtoken-cookie", "idtoken-cache"):
        if have(kind):
            parts.append("%s/%s %s" % (kind, "openidc-" + SESSION_KIND[kind],
                                       fmt(s[kind]["login_vs_openidc_RS256"], "{:.2f}")))
    lines.append("  server CPU / RS256 login, ratio to mod_auth_openidc: %s (≤ 0.3)" % ", ".join(parts))
    if have("plain") and have("openidc-cookie"):
        floor, other = s["plain"]["login_cpu_us_RS256"], s["openidc-cookie"]["login_cpu_us_RS256"]
        lines.append("    plain Apache's two requests alone: %s µs, %s of openidc-cookie's login; each login less "
                     "them: idtoken-cookie %s of openidc-cookie's" % (
                         fmt(floor, "{:,.0f}"), fmt(_ratio(floor, other), "{:.2f}"),
                         fmt(s.get("idtoken-cookie", {}).get("login_own_vs_openidc_RS256"), "{:.2f}")))
    parts = []
    for kind in ("idtoken-cookie", "idtoken-cache"):
        if have(kind):
            parts.append("%s/%s %s" % (kind, "openidc-" + SESSION_KIND[kind], fmt(s[kind]["pss_vs_openidc"], "{:.2f}")))
    lines.append("  child PSS at the end, ratio to mod_auth_openidc: %s" % ", ".join(parts))
    return lines


def _short(n):
    if n >= 1000:
        return "%dk" % (n // 1000)
    return str(n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=None,
                    help="runs, each with fresh httpd instances (default 3; 1 with --quick)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per run, configurations interleaved (default 2)")
    ap.add_argument("--duration", type=int, default=6, help="seconds of wrk per configuration and round (default 6)")
    ap.add_argument("--logins", type=int, default=100, help="logins per alg, configuration and round (default 100)")
    ap.add_argument("--warmup-logins", type=int, default=20, help="unrecorded logins per alg before round 1 of a run")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    # Fewer than a child's 32 threads: a child that finds all its workers busy closes its keep-alive
    # connections (the event MPM's way to push clients to another child), which wrk counts as read errors.
    ap.add_argument("--connections", type=int, default=24,
                    help="wrk connections (default 24: fewer than the 32 threads of a child)")
    ap.add_argument("--leak-requests", type=int, default=100_000,
                    help="protected requests each instance serves in a run before the last memory figure "
                         "(default 100000)")
    ap.add_argument("--fat-groups", type=int, default=100,
                    help="groups in the fat ID token, 41 bytes each (default 100: ~4.1 KB of claims)")
    ap.add_argument("--configs", metavar="LIST",
                    help="comma-separated columns to run (plain is always added), of: %s" % ",".join(CONFIGS))
    ap.add_argument("--quick", action="store_true",
                    help="one short run of one round: 2 s of wrk, 10 logins per alg, no top-up for the memory figure")
    ap.add_argument("--json", metavar="PATH", help="also write every figure, run by run and round by round, as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.logins, args.warmup_logins, args.leak_requests = 1, 2, 10, 4, 0
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.runs < 1 or args.rounds < 1 or args.duration < 1 or args.logins < 1:
        ap.error("--runs, --rounds, --duration and --logins must be at least 1")
    if args.duration > MAX_WRK_SECONDS:
        ap.error("--duration must be at most %d s (sessions are re-issued after 60 s)" % MAX_WRK_SECONDS)
    if args.configs:
        chosen = set(args.configs.split(",")) | {"plain"}
        unknown = chosen - set(CONFIGS)
        if unknown:
            ap.error("unknown configuration(s): %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(CONFIGS)))
        args.configs = [k for k in CONFIGS if k in chosen]
    else:
        args.configs = list(CONFIGS)
    results = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    print(table(results))
    print()
    print(sizes_line(results["sizes"]))
    print()
    print("\n".join(targets_lines(results)))
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
        for kind, messages in results["fat_login_failures"].items():
            for message in messages:
                print("  %s" % " ".join(message.split())[:300])
    if results["login_failures"]:
        print("\nfailed logins:")
        for kind, fails in results["login_failures"].items():
            print("  %s: %s" % (kind, fails[:5]))
    errors = any(results["summary"][k]["wrk_unexplained_errors"] or results["summary"][k]["login_failures"]
                 for k in results["configs"])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
