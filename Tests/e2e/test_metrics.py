"""The metrics (`SetHandler idtoken-metrics`, Prometheus text parsed by prometheus_client's own parser)
and the status view (`SetHandler idtoken-status`, JSON) through a real httpd: counters move with real
logins, refusals, logouts and back-channel logouts, summed over every child (under prefork, four
children that each served a login: each browser's kept-alive connection holds its child), kept across
graceful and hard restarts; a provider that fails and a store that cannot be reached show as such; IDTokenMetrics
Off counts nothing. The MPM is the suite's (E2E_MPM): CI runs the first test under event, prefork and
worker; the others do not depend on the MPM and run under event only."""

import re
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import SOCACHE_REDIS, Browser, Login, cache_mode, free_port, logout_url, mpm

REPO = Path(__file__).resolve().parents[2]
HEADER = (REPO / "CShim" / "include" / "idtoken.h").read_text()
ABI = int(re.search(r"#define IDT_ABI_VERSION (\d+)", HEADER).group(1))
VERSION = re.search(r'#define IDT_VERSION "([^"]+)"', HEADER).group(1)

HANDLERS = "\n".join([
    "<Location /idtoken/metrics>",
    "  SetHandler idtoken-metrics",
    "  Require all granted",
    "</Location>",
    "<Location /idtoken/status>",
    "  SetHandler idtoken-status",
    "  Require all granted",
    "</Location>",
])

event_only = pytest.mark.skipif(mpm() != "event", reason="does not depend on the MPM: run under event only")


class Scrape:
    """One scrape, parsed by prometheus_client: {(sample name, sorted labels): value}, and the families'
    types."""

    def __init__(self, apache):
        r = Browser().get(apache.url("/idtoken/metrics"))
        assert r.status_code == 200, "the metrics answered %d: %s" % (r.status_code, r.text[:500])
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
        assert "no-store" in r.headers.get("Cache-Control", "")
        self.text = r.text
        self.samples, self.types = {}, {}
        for family in text_string_to_metric_families(r.text):
            self.types[family.name] = family.type
            for s in family.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def __call__(self, name, **labels):
        value = self.get(name, **labels)
        assert value is not None, "no sample %s%s in the scrape:\n%s" % (name, labels, self.text)
        return value


def status(apache):
    r = Browser().get(apache.url("/idtoken/status"))
    assert r.headers["Content-Type"] == "application/json", r.headers
    assert "no-store" in r.headers.get("Cache-Control", "")
    return r.status_code, r.json()


def log_in(apache, keep_alive=False):
    """A whole login. With keep_alive its connection to httpd stays open afterwards: under prefork the
    child that served it then waits on it (KeepAliveTimeout) and serves no one else, so the next login
    is served, and counted, by another child."""
    b = Browser()
    if not keep_alive:
        b.session.headers["Connection"] = "close"
    Login(b, apache).run()
    return b


def test_counters_move_with_logins_summed_over_every_child(apache_factory, provider):
    extra = cache_mode() + "\n" + HANDLERS
    if mpm() == "prefork":
        # Each browser's kept-alive connection holds its child for the whole test: every login is
        # served by a child of its own, and the counts must add up over them.
        extra += "\nKeepAliveTimeout 30"
    a = apache_factory(provider.discovery_url, extra=extra)
    before = Scrape(a)
    assert before.types["idtoken_requests"] == "counter"
    assert before.types["idtoken_login_duration_seconds"] == "histogram"
    assert before("idtoken_logins_completed_total") == 0

    browsers = [log_in(a, keep_alive=True) for _ in range(4)]
    try:
        sid = provider.stats()["last_sid"]  # the last browser's provider session
        # A login response posted by a browser that did not start that login: no state cookie.
        login = Login(Browser(), a).start().at_provider()
        assert login.callback(browser=Browser()).status_code == 400
        # A script without a session: 401, no login.
        assert Browser().get(a.url("/protected/env"), headers={"Accept": "application/json"}).status_code == 401
        # A logout, and a back-channel logout of another browser's session.
        assert browsers[0].get(logout_url(a, "/public/env")).status_code == 302
        result = provider.backchannel_logout(a.url("/protected/callback"), sid=sid)
        assert result["status"] == 200, result
        after = Scrape(a)
        code, st = status(a)
    finally:
        for b in browsers:
            b.session.close()

    def delta(name, **labels):
        return after(name, **labels) - before(name, **labels)

    assert delta("idtoken_logins_started_total") == 5
    assert delta("idtoken_logins_completed_total") == 4
    assert delta("idtoken_logins_refused_total", error="invalid_state", reason="state_cookie_missing") == 1
    refused = sum(v for (n, _), v in after.samples.items() if n == "idtoken_logins_refused_total")
    assert refused == 1, after.text
    assert delta("idtoken_sessions_opened_total") == 4
    assert delta("idtoken_sessions_ended_total", reason="logout") == 1
    assert delta("idtoken_sessions_ended_total", reason="backchannel") == 1
    assert delta("idtoken_backchannel_logouts_total", result="accepted") == 1
    assert delta("idtoken_requests_total", outcome="login") == 5
    assert delta("idtoken_requests_total", outcome="passed") == 4  # each login's page after the callback
    assert delta("idtoken_requests_total", outcome="refused") == 1
    assert delta("idtoken_requests_total", outcome="anonymous") == 0
    # The histogram: 4 logins, each well within 5 s here; buckets cumulative up to +Inf.
    assert delta("idtoken_login_duration_seconds_count") == 4
    assert after("idtoken_login_duration_seconds_bucket", le="5") == after("idtoken_login_duration_seconds_count")
    assert after("idtoken_login_duration_seconds_bucket", le="+Inf") == after("idtoken_login_duration_seconds_count")
    assert 0 <= after("idtoken_login_duration_seconds_sum") <= 4 * 5
    # Each login's single-use mark and session in the file store (cache sessions), the logout token's jti.
    assert delta("idtoken_store_operations_total", operation="add", result="ok") == 5  # and the logout token's jti
    assert delta("idtoken_store_operations_total", operation="put", result="ok") >= 4
    assert delta("idtoken_store_operations_total", operation="get", result="ok") >= 4
    assert sum(v for (n, labels), v in after.samples.items()
               if n == "idtoken_store_operations_total" and ("result", "error") in labels) == 0
    assert after("idtoken_store_up", store="file") == 1
    assert after("idtoken_store_entries") > 0
    # Each child that served a login fetched discovery and keys once.
    assert delta("idtoken_provider_fetches_total", document="discovery", result="ok") >= 1
    assert delta("idtoken_provider_fetches_total", document="keys", result="ok") >= 1
    site = "localhost:%d" % a.port
    assert after("idtoken_provider_up", site=site) == 1
    assert 0 <= after("idtoken_provider_keys_age_seconds", site=site) < 60
    assert after("idtoken_build_info", version=VERSION, abi=str(ABI), module_version=VERSION,
                 module_abi=str(ABI)) == 1

    assert code == 200 and st["healthy"] is True, st
    assert (st["version"], st["abi"], st["module_version"], st["module_abi"]) == (VERSION, ABI, VERSION, ABI)
    assert st["store"]["kind"] == "file" and st["store"]["reachable"] is True
    assert st["metrics"]["counting"] is True
    [s] = st["sites"]
    assert s["name"] == site and s["provider"] == provider.discovery_url
    assert s["provider_reachable"] is True and 0 <= s["keys_age_seconds"] < 60
    assert s["discovery"]["last_success"] and s["discovery"]["last_failure"] is None
    if mpm() == "prefork":
        # Four logins, each in a child of its own (the others held by their browsers).
        assert st["metrics"]["processes"] >= 4, st["metrics"]
    assert 1 <= st["metrics"]["processes"] <= st["metrics"]["slots"]


@event_only
def test_counters_survive_graceful_and_hard_restarts(apache_factory, provider):
    """The memory is kept in the parent (ap_retained_data): new children add to the old numbers."""
    a = apache_factory(provider.discovery_url, extra=HANDLERS)
    log_in(a)
    before = Scrape(a)
    assert before("idtoken_logins_completed_total") == 1
    for restart in (a.graceful, a.restart):
        restart()
        kept = Scrape(a)
        for name in ("idtoken_logins_completed_total", "idtoken_logins_started_total", "idtoken_sessions_opened_total",
                     "idtoken_metrics_start_time_seconds"):
            assert kept(name) == before(name), (restart.__name__, name)
        assert kept("idtoken_requests_total", outcome="passed") == before("idtoken_requests_total", outcome="passed")
    log_in(a)
    assert Scrape(a)("idtoken_logins_completed_total") == 2


@event_only
def test_a_failing_provider_is_counted_and_shown(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra=HANDLERS)
    provider.fault(discovery="error_500")
    try:
        r = Browser().get(a.url("/protected/env"))
        assert r.status_code == 502, r.text[:300]
        failed = Scrape(a)
        code, st = status(a)
    finally:
        provider.fault()
    site = "localhost:%d" % a.port
    assert failed("idtoken_provider_fetches_total", document="discovery", result="bad_response") == 1
    assert failed("idtoken_logins_refused_total", error="provider_unavailable", reason="provider_bad_response") == 1
    assert failed("idtoken_requests_total", outcome="refused") == 1
    assert failed("idtoken_provider_up", site=site) == 0
    assert failed("idtoken_provider_last_fetch_timestamp_seconds", site=site, document="discovery", result="error") > 0
    # The provider is reported, but a server whose store works stays healthy: every server shares the provider.
    assert code == 200 and st["healthy"] is True
    assert st["sites"][0]["provider_reachable"] is False and st["sites"][0]["discovery"]["last_failure"]
    # Once it answers again (after the 2 s a failure is remembered), a login works and it is up again.
    time.sleep(2.5)
    log_in(a)
    back = Scrape(a)
    assert back("idtoken_provider_up", site=site) == 1
    assert back("idtoken_logins_completed_total") == 1


@event_only
def test_an_unreachable_store_makes_the_status_503(apache_factory, provider):
    dead = free_port()  # nothing listens there
    a = apache_factory(provider.discovery_url, extra="\n".join([SOCACHE_REDIS, "IDTokenCache redis:127.0.0.1:%d" % dead,
                                                                HANDLERS]))
    code, st = status(a)
    assert code == 503 and st["healthy"] is False, st
    assert st["store"] == {"kind": "redis", "reachable": False}
    assert Scrape(a)("idtoken_store_up", store="redis") == 0
    # A login fails closed at its single-use mark, counted as a store error.
    login = Login(Browser(), a).start().at_provider()
    assert login.callback().status_code == 503
    s = Scrape(a)
    assert s("idtoken_store_operations_total", operation="add", result="error") == 1
    assert s("idtoken_logins_refused_total", error="temporarily_unavailable", reason="store_failed") == 1


@event_only
def test_a_session_found_expired_is_counted_when_its_browser_logs_in_again(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra="\n".join([
        "IDTokenSessionIdleTimeout 2", "IDTokenSessionRefreshInterval 1", HANDLERS]))
    b = log_in(a)
    time.sleep(3.5)
    r = b.get(a.url("/protected/env"))
    assert r.status_code == 302, r.status_code
    s = Scrape(a)
    assert s("idtoken_sessions_ended_total", reason="expired") == 1
    assert s("idtoken_logins_started_total") == 2


@event_only
def test_metrics_off_counts_nothing(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra="IDTokenMetrics Off\n" + HANDLERS)
    log_in(a)
    assert Browser().get(a.url("/idtoken/metrics")).status_code == 404
    code, st = status(a)
    assert code == 200 and st["metrics"]["counting"] is False and st["metrics"]["processes"] == 0
    assert st["sites"][0]["provider_reachable"] is None  # nothing recorded the fetches
    assert st["store"]["reachable"] is True
