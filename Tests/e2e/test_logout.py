"""Logout: RP-initiated (GET <redirect URI>?logout=<return URL>) through the provider's
end_session_endpoint, the return URLs it refuses, and back-channel logout (the provider POSTs a
Logout Token to the redirect URI) in cache mode."""

import concurrent.futures
import re
import time
import urllib.parse

import pytest
import requests

from harness import (TRACE_WORK, Browser, Login, cache_mode, jws_parts, logout_url, raw_get, set_cookies,
                     wait_module_log, wait_work)

SESSION = "idtoken_session"


def assert_logged_in(browser, apache, user="alice-0001"):
    r = browser.get(apache.url("/protected/env"))
    assert r.status_code == 200, "not logged in at %s (%d):\n%s" % (apache.url(), r.status_code, r.text[:500])
    assert r.json()["REMOTE_USER"] == user


def assert_logged_out(browser, apache, provider):
    r = browser.get(apache.url("/protected/env"))
    assert r.status_code == 302, "still logged in at %s (%d)" % (apache.url(), r.status_code)
    assert r.headers["Location"].startswith(provider.discovery()["authorization_endpoint"] + "?")


def query_of(url):
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in query.values()), "a parameter given twice: %s" % url
    return {k: v[0] for k, v in query.items()}


def end_session_redirect(response, provider):
    """The module's answer to a logout: a redirect to the provider's end_session_endpoint; its query."""
    assert response.status_code == 302, "logout answered %d:\n%s" % (response.status_code, response.text[:500])
    location = response.headers["Location"]
    endpoint = provider.discovery()["end_session_endpoint"]
    assert location.startswith(endpoint + "?"), location
    return query_of(location)


def session_headers(response):
    return [c for c in set_cookies(response) if c.name == SESSION or c.name.startswith(SESSION + "_")]


def assert_session_cleared(response, browser):
    cleared = [c for c in session_headers(response) if c.clears]
    assert [c for c in cleared if c.name == SESSION], "the session cookie is not cleared: %s" % set_cookies(response)
    assert all(c.get("path") == "/" for c in cleared), cleared  # the path it was set with, or nothing is cleared
    assert not [c for c in session_headers(response) if not c.clears], "logout set a session: %s" % set_cookies(response)
    assert not [n for n in browser.cookie_names() if n.startswith(SESSION)], browser.cookie_names()


# ---------------------------------------------------------------------------------------------------
# RP-initiated logout
# ---------------------------------------------------------------------------------------------------

def test_logout_goes_through_the_providers_end_session_endpoint(apache, provider, browser):
    login = Login(browser, apache)
    login.run()
    r = browser.get(logout_url(apache, "/public/env"))
    q = end_session_redirect(r, provider)
    assert q["id_token_hint"] == login.id_token
    assert q["client_id"] == "test-client"
    assert q["post_logout_redirect_uri"] == apache.url("/public/env")
    assert q["state"], q
    assert_session_cleared(r, browser)

    # The provider ends its session and sends the browser back, with the state.
    at_provider = browser.get(r.headers["Location"])
    assert at_provider.status_code == 302, at_provider.text[:500]
    assert provider.stats()["end_session"] == [q]
    back = at_provider.headers["Location"]
    assert back == apache.url("/public/env") + "?" + urllib.parse.urlencode({"state": q["state"]})
    page = browser.get(back)
    assert page.status_code == 200
    env = page.json()
    assert query_of("?" + env["QUERY_STRING"]) == {"state": q["state"]}
    assert "REMOTE_USER" not in env
    assert_logged_out(browser, apache, provider)


def test_logout_with_an_empty_return_url_does_not_ask_to_come_back(apache, provider, browser):
    login = Login(browser, apache)
    login.run()
    r = browser.get(logout_url(apache, None))
    assert r.request.url.endswith("/protected/callback?logout=")
    q = end_session_redirect(r, provider)
    assert "post_logout_redirect_uri" not in q, q
    assert q["id_token_hint"] == login.id_token and q["client_id"] == "test-client"
    assert_session_cleared(r, browser)
    done = browser.get(r.headers["Location"])
    assert done.status_code == 200 and "logged out" in done.text.lower()
    assert_logged_out(browser, apache, provider)


def test_logout_to_an_absolute_url_of_the_same_origin(apache, provider, browser):
    Login(browser, apache).run()
    target = apache.url("/public/env?after=logout")
    q = end_session_redirect(browser.get(logout_url(apache, target)), provider)
    assert q["post_logout_redirect_uri"] == target


def test_logout_to_an_allowed_other_origin(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra="IDTokenLogoutRedirectAllowed https://app.example.org")
    browser = Browser()
    Login(browser, a).run()
    # Near misses of the allowed origin are refused, and leave the session alone.
    for near in ("https://app.example.org.evil.example/", "http://app.example.org/bye",
                 "https://app.example.org:8443/bye", "https://evil.example/?https://app.example.org",
                 "https://app.example.org@evil.example/"):
        r = browser.get(logout_url(a, near))
        assert r.status_code == 400, "%s: %d" % (near, r.status_code)
        assert not session_headers(r), set_cookies(r)
        assert_logged_in(browser, a)
    q = end_session_redirect(browser.get(logout_url(a, "https://app.example.org/bye")), provider)
    assert q["post_logout_redirect_uri"] == "https://app.example.org/bye"
    assert_logged_out(browser, a, provider)


OPEN_REDIRECTS = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/public/env\r\nSet-Cookie: idtoken_session=x",
    "/public/env\nLocation: https://evil.example/",
    "/\t/evil.example",  # browsers drop tabs and newlines inside URLs: this is //evil.example
    "http://localhost:{port}@evil.example/",
    "http://localhost:{port}.evil.example/",
    "https://localhost:{port}/public/env",  # another origin than the request's own (http)
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_logout_refuses_return_urls_off_the_site(apache, provider, browser, target):
    Login(browser, apache).run()
    target = target.replace("{port}", str(apache.port))
    r = browser.get(logout_url(apache, target))
    assert r.status_code == 400, "return URL %r: %d %s" % (target, r.status_code, r.headers.get("Location"))
    assert "Location" not in r.headers
    assert not session_headers(r), "a refused logout must not touch the session: %s" % set_cookies(r)
    assert_logged_in(browser, apache)
    # The refusal was about the return URL: the same browser's logout to its own page goes through.
    assert end_session_redirect(browser.get(logout_url(apache, "/public/env")), provider)["client_id"] == "test-client"


def test_cookie_mode_logout_clears_the_browser_but_a_copy_stays_valid(apache, provider, browser):
    """Documents the limit of cookie sessions: stateless, so a copy of the cookie taken before the
    logout keeps working until it expires (use IDTokenSessionStore cache to revoke)."""
    Login(browser, apache).run()
    copy = browser.clone()
    assert_session_cleared(browser.get(logout_url(apache, "/public/env")), browser)
    assert_logged_out(browser, apache, provider)
    assert_logged_in(copy, apache)


def test_cache_mode_logout_revokes_every_copy_of_the_cookie(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra=cache_mode())
    browser = Browser()
    login = Login(browser, a)
    login.run()
    copy = browser.clone()
    r = browser.get(logout_url(a, "/public/env"))
    q = end_session_redirect(r, provider)
    assert q["id_token_hint"] == login.id_token
    assert q["post_logout_redirect_uri"] == a.url("/public/env")
    assert_session_cleared(r, browser)
    assert_logged_out(copy, a, provider)
    assert_logged_out(browser, a, provider)


PID = re.compile(r"\[pid (\d+)")


def spread_gets(apache, cookie, count=48, threads=8):
    """`count` GETs of /protected/env with this Cookie header, each on a new connection, `threads` at a
    time: spread over every child process and thread. Their statuses."""
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: raw_get(apache, "/protected/env", cookie=cookie).status, range(count)))


def pids_of(work, store_calls=None):
    return {PID.search(w.line).group(1) for w in work if store_calls is None or w.store_calls == store_calls}


STORES = {
    "file": [],
    # What a stock Debian apache2.conf gives the store's mutex (APR's default on Linux); the harness's
    # preamble makes every other mutex an fcntl lock in the test's folder.
    "file, pthread mutex": ["Mutex pthread idtoken-cache"],
    "shmcb": ["IDTokenCache shmcb"],
}


@pytest.mark.parametrize("store", list(STORES))
def test_cache_mode_logout_reaches_processes_that_pass_the_session_without_reading_it(apache_factory, provider, store):
    """A child that has let a session through passes it again without reading the store while the store
    has taken no write (its write count, idt_store.writes). Logout is a write: a copy of the cookie
    replayed after it, to the very children that were passing it from memory, is refused by every one."""
    extra = cache_mode(None, *STORES[store], TRACE_WORK)
    a = apache_factory(provider.discovery_url, extra=extra)
    browser = Browser()
    Login(browser, a).run()
    cookie = "%s=%s" % (SESSION, browser.cookie(SESSION))
    offset = a.log_size()
    assert spread_gets(a, cookie) == [200] * 48
    warm = wait_work(a, offset, count=48)
    from_memory = pids_of(warm, store_calls=0)
    assert from_memory, "no child passed the session without reading the store:\n%s" % "\n".join(w.line for w in warm[:5])

    assert_session_cleared(browser.get(logout_url(a, "/public/env")), browser)
    # Until the replays have reached a child that passed from memory (prefork may hand them to others
    # first); every one of them is refused, and each read the store.
    reached = set()
    for _ in range(5):
        offset = a.log_size()
        assert spread_gets(a, cookie) == [302] * 48
        replayed = wait_work(a, offset, count=48)
        assert all(w.store_calls >= 1 for w in replayed), "a replay was answered without reading the store"
        reached |= from_memory & pids_of(replayed)
        if reached:
            break
    assert reached, "240 replays reached none of the children that passed from memory: %s" % sorted(from_memory)


# ---------------------------------------------------------------------------------------------------
# Back-channel logout
# ---------------------------------------------------------------------------------------------------

@pytest.fixture
def cache_apache(apache_factory, provider):
    """One Apache with sessions in its default store (IDTokenSessionStore cache, IDTokenCache file)."""
    return apache_factory(provider.discovery_url, extra=cache_mode())


def login_with_sid(apache, provider):
    browser = Browser()
    login = Login(browser, apache)
    login.run()
    sid = provider.stats()["last_sid"]
    assert sid and jws_parts(login.id_token)[1]["sid"] == sid
    return browser, sid


def backchannel(provider, apache, **body):
    return provider.backchannel_logout(apache.url("/protected/callback"), **body)


def assert_accepted(result):
    assert result["status"] == 200, "back-channel logout answered %s: %s" % (result["status"], result["body"][:300])
    assert "no-store" in result["headers"].get("cache-control", ""), result["headers"]


def test_backchannel_logout_by_sid_ends_that_session_only(cache_apache, provider):
    a = cache_apache
    first, sid = login_with_sid(a, provider)
    second, other_sid = login_with_sid(a, provider)
    assert sid != other_sid
    assert_accepted(backchannel(provider, a, sid=sid))
    assert_logged_out(first, a, provider)
    assert_logged_in(second, a)


def test_backchannel_logout_by_sub_ends_every_session_of_that_user(cache_apache, provider):
    a = cache_apache
    first, _ = login_with_sid(a, provider)
    second, _ = login_with_sid(a, provider)
    provider.configure(username="bob")
    bob, _ = login_with_sid(a, provider)
    assert_accepted(backchannel(provider, a, sub="alice-0001"))
    assert_logged_out(first, a, provider)
    assert_logged_out(second, a, provider)
    assert_logged_in(bob, a, "bob-0001")


def _now():
    return int(time.time())


INVALID_LOGOUT_TOKENS = {
    "forged_signature": lambda sid: {"sid": sid, "forge": True},
    "missing_events": lambda sid: {"sid": sid, "remove_claims": ["events"]},
    "events_without_logout_event": lambda sid: {"sid": sid, "extra_claims": {
        "events": {"http://schemas.openid.net/event/something-else": {}}}},
    "has_nonce": lambda sid: {"sid": sid, "extra_claims": {"nonce": "n-0123456789"}},
    "wrong_audience": lambda sid: {"sid": sid, "extra_claims": {"aud": "some-other-client"}},
    "wrong_issuer": lambda sid: {"sid": sid, "extra_claims": {"iss": "https://impostor.example.com"}},
    "expired": lambda sid: {"sid": sid, "extra_claims": {"iat": _now() - 7200, "exp": _now() - 3600}},
    "no_sid_no_sub": lambda sid: {},
}


@pytest.mark.parametrize("case", sorted(INVALID_LOGOUT_TOKENS))
def test_invalid_logout_token_is_refused_and_the_session_stays(cache_apache, provider, case):
    a = cache_apache
    browser, sid = login_with_sid(a, provider)
    result = backchannel(provider, a, **INVALID_LOGOUT_TOKENS[case](sid))
    assert result["status"] == 400, "%s: %s %s" % (case, result["status"], result["body"][:300])
    assert_logged_in(browser, a)
    # A valid token for the same session is accepted: the refusal was about the token.
    assert_accepted(backchannel(provider, a, sid=sid))
    assert_logged_out(browser, a, provider)


def test_replayed_logout_token_is_refused(cache_apache, provider):
    a = cache_apache
    browser, sid = login_with_sid(a, provider)
    first = backchannel(provider, a, sid=sid)
    assert_accepted(first)
    assert_logged_out(browser, a, provider)
    again = requests.post(a.url("/protected/callback"), data={"logout_token": first["logout_token"]},
                          allow_redirects=False, timeout=30)
    assert again.status_code == 400, "a replayed logout token answered %d" % again.status_code
    # A new token (another jti) for the same, already ended session is valid: the refusal was the replay.
    assert_accepted(backchannel(provider, a, sid=sid))


def test_backchannel_logout_through_redis_ends_the_session_on_every_server(apache_factory, provider, redis):
    a = apache_factory(provider.discovery_url, extra=cache_mode(redis))
    b = apache_factory(provider.discovery_url, extra=cache_mode(redis), key_file=a.key_file)
    browser, sid = login_with_sid(a, provider)
    assert_logged_in(browser, b)
    assert_accepted(backchannel(provider, b, sid=sid))
    assert_logged_out(browser.clone(), a, provider)
    assert_logged_out(browser, b, provider)


def test_backchannel_logout_in_cookie_mode_is_not_implemented(apache, provider, browser):
    Login(browser, apache).run()
    sid = provider.stats()["last_sid"]
    offset = apache.log_size()
    result = backchannel(provider, apache, sid=sid)
    assert result["status"] == 501, "%s: %s" % (result["status"], result["body"][:300])
    assert wait_module_log(apache, offset, r"IDTokenSessionStore cache")
    assert_logged_in(browser, apache)  # nothing to end on the server: the cookie is the session
