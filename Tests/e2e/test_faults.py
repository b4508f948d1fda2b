"""Failures around the module: a provider that is down, slow or broken while users log in, graceful
restarts under load, a child killed mid-load. Logins must fail fast with a clear 502/503, users logged
in before keep working, workers are not held, and the server keeps serving.

The provider's discovery document and keys are cached per child process, so a fault only shows in a
child that has not fetched them yet: each test takes a fresh server (`site`), as a graceful restart or
a new child would be. Its users logged in through another server with the same key file and provider
(`home`): a session cookie is accepted by every such server, and needs nothing from the provider."""

import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import (REPO, Browser, Login, Provider, mpm, one_process_settings, set_cookies, wait_for,
                     wait_module_log)

# IDTokenHTTPTimeout in these tests: short, so a fault costs the suite seconds, not tens of them.
TIMEOUT = 2
# What "fails fast" allows beyond the timeout: generous, for a loaded 2-core CI machine.
SLACK = 4
# Each fault the demo provider can play (idp.py FAULTS), and the status a login then gets: 503 when the
# provider could not be reached in time, 502 when it answered with something unusable.
FAULTS = [
    ("slow", 503),          # no byte before the timeout
    ("trickle", 503),       # headers at once, then a byte a second: only the total timeout ends it
    ("close", 503),         # the connection closed without an answer
    ("error_500", 502),
    ("garbage", 502),       # binary junk, invalid UTF-8, as application/json
    ("deep_json", 502),     # valid JSON nested 262,144 deep
    ("huge", 502),          # 50 MB with a Content-Length
    ("huge_chunked", 502),  # 50 MB chunked: only the module's own cap stops it
    ("gzip_bomb", 502),     # 50 KB of gzip that inflates to 50 MB
]
WRK_SCRIPT = REPO / "bench" / "wrk_report.lua"


@pytest.fixture(scope="module")
def home(module_apache_factory, provider_server):
    """The server the users logged in through, before any fault."""
    return module_apache_factory(provider_server.discovery_url)


@pytest.fixture(scope="module")
def user(home, provider_server):
    """A browser logged in through `home`."""
    provider_server.reset()
    browser = Browser()
    assert Login(browser, home).run()["REMOTE_USER"] == "alice-0001"
    return browser


@pytest.fixture
def site(apache_factory, home, provider):
    """A fresh server of the same site (same key file and provider): no provider data cached yet."""
    return apache_factory(provider.discovery_url, key_file=home.key_file, extra="IDTokenHTTPTimeout %d 1" % TIMEOUT)


def assert_logged_in(browser, apache, within=None, **kw):
    t0 = time.monotonic()
    r = browser.get(apache.url("/protected/env"), **kw)
    took = time.monotonic() - t0
    assert r.status_code == 200, "the logged-in user got %d:\n%s" % (r.status_code, r.text[:500])
    assert r.json()["REMOTE_USER"] == "alice-0001"
    if within is not None:
        assert took < within, "the logged-in user waited %.1f s" % took
    return took


def assert_clear_refusal(response, status, took):
    assert response.status_code == status, "expected %d, got %d:\n%s" % (status, response.status_code,
                                                                        response.text[:500])
    assert took < TIMEOUT + SLACK, "the refusal took %.1f s (timeout %d s)" % (took, TIMEOUT)
    assert "Location" not in response.headers
    assert "text/html" in response.headers.get("Content-Type", "")
    assert len(response.content) < 20000
    assert not [c for c in set_cookies(response) if c.name.startswith("idtoken_session") and not c.clears]


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    result = fn(*args, **kw)
    return result, time.monotonic() - t0


@pytest.mark.parametrize("fault,status", FAULTS, ids=[f for f, _ in FAULTS])
def test_discovery_fault_refuses_logins_fast_and_keeps_sessions(site, provider, user, fault, status):
    provider.fault(discovery=fault)
    offset = site.log_size()
    r, took = timed(Browser().get, site.url("/protected/env"))
    assert_clear_refusal(r, status, took)
    assert provider.stats()["faults_served"] >= 1, "the module never asked the provider"
    lines = wait_module_log(site, offset, r"provider")
    assert lines and all(":error]" in line for line in lines), lines
    assert_logged_in(user, site)
    assert Browser().get(site.url("/public/env")).status_code == 200


@pytest.mark.parametrize("fault,status", FAULTS, ids=[f for f, _ in FAULTS])
def test_jwks_fault_refuses_logins_fast_and_keeps_sessions(site, provider, user, fault, status):
    provider.fault(jwks=fault)
    login = Login(Browser(), site).start().at_provider()  # discovery still answers: the redirect works
    offset = site.log_size()
    r, took = timed(login.callback)
    assert_clear_refusal(r, status, took)
    assert provider.stats()["faults_served"] >= 1, "the module never asked the provider"
    lines = wait_module_log(site, offset, r"provider")
    assert lines and all(":error]" in line for line in lines), lines
    assert login.browser.get(site.url("/protected/env")).status_code == 302  # still logged out
    assert_logged_in(user, site)


def test_provider_down_refuses_logins_fast_and_keeps_sessions(apache_factory):
    """The provider's host gone (connection refused): test_refusals.py checks the 503; here the users
    logged in before it went keep working. A provider of its own, since this one is stopped."""
    gone = Provider("--test-controls", "--auto-login", client_id="test-client")
    try:
        home = apache_factory(gone.discovery_url)
        user = Browser()
        Login(user, home).run()
        site = apache_factory(gone.discovery_url, key_file=home.key_file, extra="IDTokenHTTPTimeout %d 1" % TIMEOUT)
    finally:
        gone.stop()
    offset = site.log_size()
    r, took = timed(Browser().get, site.url("/protected/env"))
    assert_clear_refusal(r, 503, took)
    assert wait_module_log(site, offset, r"provider unreachable")
    assert_logged_in(user, site)
    assert_logged_in(user, home)


def test_logins_work_again_once_the_provider_is_back(site, provider, user):
    provider.fault(discovery="close", jwks="close")
    assert Browser().get(site.url("/protected/env")).status_code == 503
    provider.fault()

    def login():
        try:
            return Login(Browser(), site).run()["REMOTE_USER"] == "alice-0001"
        except AssertionError:
            return False  # still inside the few seconds a failure is remembered
    wait_for(login, 15, "a login after the provider came back", interval=0.5)


def test_slow_provider_holds_neither_logins_nor_sessions(apache_factory, home, user, provider):
    """Eight browsers start a login while the provider is slow: each waits at most about the timeout,
    and meanwhile the logged-in user is answered at once, not behind them."""
    timeout, logins = 4, 8
    extra = ["IDTokenHTTPTimeout %d 2" % timeout]
    if mpm() == "prefork":
        # One process per connection: enough idle ones that no request waits for a fork.
        extra += ["StartServers 12", "MinSpareServers 12", "MaxSpareServers 16"]
    site = apache_factory(provider.discovery_url, key_file=home.key_file, extra="\n".join(extra))
    provider.fault(discovery="slow")
    with ThreadPoolExecutor(logins) as pool:
        started = [pool.submit(timed, Browser().get, site.url("/protected/env")) for _ in range(logins)]
        wait_for(lambda: provider.stats()["faults_served"] >= logins or any(f.done() for f in started),
                 timeout, "every login to wait on the provider")
        for _ in range(3):
            # Well under the provider timeout: this request did not wait for a login to give up. On a
            # new connection each time: with every thread of a child busy, the event MPM closes idle
            # kept-alive connections, and a browser, unlike `requests`, retries a GET that meets that.
            assert_logged_in(user, site, within=timeout / 2, headers={"Connection": "close"})
        results = [f.result() for f in started]
    for r, took in results:
        assert r.status_code == 503, r.text[:300]
        assert took < timeout + SLACK, "a login took %.1f s with a %d s timeout" % (took, timeout)


@pytest.mark.parametrize("target", ["discovery", "jwks"])
def test_after_a_failed_fetch_logins_fail_at_once_for_a_while(apache_factory, provider, target):
    """docs/configuration.md: "After a failed fetch, requests fail fast for 2 seconds instead of each
    waiting for a timeout". One process, so both logins meet the same cache."""
    site = apache_factory(provider.discovery_url, extra="IDTokenHTTPTimeout %d 1\n%s" % (
        TIMEOUT, one_process_settings(mpm())))

    def attempt():
        b = Browser()
        if target == "discovery":
            return timed(b.get, site.url("/protected/env"))
        login = Login(b, site).start().at_provider()
        return timed(login.callback)

    if target == "jwks":
        Login(Browser(), site).start()  # the discovery document is cached before the fault
    provider.fault(**{target: "slow"})
    (first, first_took), (second, second_took) = attempt(), attempt()
    assert first.status_code == 503 and second.status_code == 503, (first.status_code, second.status_code)
    assert first_took >= TIMEOUT - 0.5, "the first login did not wait for the provider (%.1f s)" % first_took
    assert provider.stats()["faults_served"] == 1, "the second login asked the slow provider again"
    assert second_took < TIMEOUT / 2, "the second login waited %.1f s" % second_took


# ---------------------------------------------------------------------------------------------------
# The server under load: graceful restarts, a killed child
# ---------------------------------------------------------------------------------------------------

def static_page(apache):
    """A small static page inside <Location /protected>: cheap enough for wrk to push thousands."""
    folder = apache.folder / "htdocs" / "protected"
    folder.mkdir(mode=0o755, exist_ok=True)
    (folder / "page.html").write_text("<html><body>protected</body></html>\n")
    return "/protected/page.html"


def session_cookie_header(browser):
    return "; ".join("%s=%s" % (c.name, c.value) for c in browser.session.cookies
                     if c.name.startswith("idtoken_session"))


def start_wrk(apache, path, cookie, connections=4, keep_alive=True):
    """wrk on `path` with the session cookie, until stop_wrk (at most two minutes)."""
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (apt-get install wrk, or bench/setup.sh)")
    # --timeout: a request held up a few seconds while restarts replace every child is slow, not lost.
    cmd = ["wrk", "-t", "1", "-c", str(connections), "-d", "120s", "--timeout", "10s", "-s", str(WRK_SCRIPT),
           "-H", "Host: localhost:%d" % apache.port, "-H", "Accept: text/html", "-H", "Cookie: " + cookie]
    if not keep_alive:
        cmd += ["-H", "Connection: close"]
    cmd.append("http://127.0.0.1:%d%s" % (apache.port, path))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def stop_wrk(proc):
    """wrk's counts (bench/wrk_report.lua): requests, non2xx, socket_errors, read_errors, ..."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # wrk stops and reports
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, "wrk failed (%d): %s%s" % (proc.returncode, out, err)
    v = {}
    for line in out.splitlines():
        if line.startswith("BENCH "):
            _, key, value = line.split()
            v[key] = int(value)
    assert v.get("requests"), "wrk made no request:\n%s" % out
    return v


def test_ten_graceful_restarts_under_load_fail_no_request(apache_factory, provider):
    """Two loads at once with a session cookie. On new connections: not one request may fail. On
    kept-alive connections: every answer must be a 200 (the session holds across generations), but
    httpd closes idle kept-alive connections at each restart, and wrk, unlike a browser, does not
    retry a request that meets such a close: those read errors are httpd's, plain Apache's alike."""
    a = apache_factory(provider.discovery_url)
    path = static_page(a)
    user = Browser()
    Login(user, a).run()
    cookie = session_cookie_header(user)
    fresh = start_wrk(a, path, cookie, keep_alive=False)
    kept = start_wrk(a, path, cookie, keep_alive=True)
    try:
        time.sleep(1)
        generations = a.generation_count()
        for _ in range(10):
            a.graceful()
        assert a.generation_count() >= generations + 10
        time.sleep(1)
    finally:
        fresh, kept = stop_wrk(fresh), stop_wrk(kept)
    assert fresh["non2xx"] == 0 and fresh["socket_errors"] == 0, "failed requests: %r" % fresh
    assert kept["non2xx"] == 0, "%d answers were not 2xx: %r" % (kept["non2xx"], kept)
    assert kept["connect_errors"] == 0 and kept["timeouts"] == 0, kept
    assert_logged_in(user, a, headers={"Connection": "close"})  # not a connection from before the restarts
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"


def test_a_child_killed_under_load_is_replaced_and_the_server_keeps_serving(apache_factory, provider):
    a = apache_factory(provider.discovery_url)
    path = static_page(a)
    user = Browser()
    Login(user, a).run()
    before = set(a.children())
    wrk = start_wrk(a, path, session_cookie_header(user), connections=8)
    try:
        time.sleep(1)
        victim = sorted(before)[0]
        with open("/proc/%d/cmdline" % victim, "rb") as f:
            assert str(a.conf).encode() in f.read()
        os.kill(victim, signal.SIGKILL)  # httpd does not log a SIGKILL: the crash check stays quiet
        wait_for(lambda: victim not in a.children(), 15, "httpd to reap the killed child")
        time.sleep(1)
    finally:
        result = stop_wrk(wrk)
    # In-flight requests of the killed child may fail; the rest of the load is served all the same.
    assert result["requests"] > 100, result
    assert_logged_in(user, a, headers={"Connection": "close"})  # not a connection of the killed child
    wait_for(lambda: set(a.children()) - before, 15, "httpd to start a new child")
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"
