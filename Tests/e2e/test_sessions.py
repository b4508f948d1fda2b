"""Sessions: shared between servers (same key file, or the same Redis), large ones split over several
cookies, idle timeout with refresh, cookie attributes, graceful restarts, and which claims are kept."""

import secrets
import time

import pytest
import requests

from harness import (XHR_HEADERS, Browser, Login, cache_mode, free_port, logout_url, session_cookie_headers,
                     set_cookies, wait_module_log)

SESSION = "idtoken_session"


def assert_logged_in(browser, apache, user="alice-0001"):
    r = browser.get(apache.url("/protected/env"))
    assert r.status_code == 200, "not logged in at %s (%d):\n%s" % (apache.url(), r.status_code, r.text[:500])
    assert r.json()["REMOTE_USER"] == user
    return r


def assert_logged_out(browser, apache, provider):
    """No session: a navigation is sent to the provider's login."""
    r = browser.get(apache.url("/protected/env"))
    assert r.status_code == 302, "still logged in at %s (%d)" % (apache.url(), r.status_code)
    assert r.headers["Location"].startswith(provider.discovery()["authorization_endpoint"] + "?")
    return r


def the_session_cookie(response):
    """The one Set-Cookie for idtoken_session in a response (not a chunk)."""
    found = [c for c in set_cookies(response) if c.name == SESSION]
    assert len(found) == 1, "expected one %s Set-Cookie: %s" % (SESSION, set_cookies(response))
    return found[0]


def raw_set_cookie_lines(response):
    headers = response.raw.headers
    return headers.getlist("Set-Cookie") if hasattr(headers, "getlist") else headers.get_all("Set-Cookie")


# ---------------------------------------------------------------------------------------------------
# Two servers, one session
# ---------------------------------------------------------------------------------------------------

def test_cookie_session_is_accepted_by_a_server_with_the_same_key_file(apache_factory, provider):
    a = apache_factory(provider.discovery_url)
    b = apache_factory(provider.discovery_url, key_file=a.key_file)
    stranger = apache_factory(provider.discovery_url)  # a key of its own
    browser = Browser()
    env = Login(browser, a).run()
    # Cookies are not per port: the browser sends the session made by A to B as it would to a second
    # server behind the same host name.
    assert assert_logged_in(browser, b).json()["REMOTE_USER"] == env["REMOTE_USER"]
    assert assert_logged_in(browser, b).json()["IDTOKEN_CLAIM_email"] == "alice@example.org"
    assert_logged_out(browser, stranger, provider)


def test_cache_sessions_are_shared_through_redis_and_logout_ends_them_everywhere(apache_factory, provider, redis):
    a = apache_factory(provider.discovery_url, extra=cache_mode(redis))
    b = apache_factory(provider.discovery_url, extra=cache_mode(redis), key_file=a.key_file)
    browser = Browser()
    before_login = redis.keys()
    login = Login(browser, a)
    env = login.run()
    assert env["REMOTE_USER"] == "alice-0001"
    made_by_login = redis.keys() - before_login
    assert made_by_login, "a cache-mode login must write its session to the shared store"

    # The cookie holds a reference, not the claims.
    value = browser.cookie(SESSION)
    assert value and len(value) < 200, "cache mode: the cookie should hold only a session id: %r" % value
    assert not [n for n in browser.cookie_names() if n.startswith(SESSION + "_")], browser.cookie_names()

    # Served by B from the shared store, claims included.
    env_b = assert_logged_in(browser, b).json()
    assert env_b["IDTOKEN_CLAIM_email"] == "alice@example.org"
    assert env_b["IDTOKEN_CLAIM_groups"] == "staff,admins"

    # Logout on A: B no longer accepts a copy of the cookie taken before it.
    copy_before_logout = browser.clone()
    r = browser.get(logout_url(a, "/public/env"))
    assert r.status_code == 302, r.text[:500]
    assert r.headers["Location"].startswith(provider.discovery()["end_session_endpoint"] + "?")
    assert any(c.name == SESSION and c.clears for c in set_cookies(r)), set_cookies(r)
    assert SESSION not in browser.cookie_names()
    assert made_by_login - redis.keys(), "logout must remove the session's entry from the shared store"
    assert_logged_out(copy_before_logout, b, provider)
    assert_logged_out(copy_before_logout, a, provider)


def test_cache_mode_login_response_replayed_on_another_server_is_refused(apache_factory, provider, redis):
    """The single-use mark of a login response lives in Redis: the same form_post (with its captured
    state cookie) replayed on a second server is refused there."""
    a = apache_factory(provider.discovery_url, extra=cache_mode(redis))
    b = apache_factory(provider.discovery_url, extra=cache_mode(redis), key_file=a.key_file)
    browser = Browser()
    login = Login(browser, a).start().at_provider()
    attacker = browser.clone()
    assert [n for n in attacker.cookie_names() if n.startswith("idtoken_state_")]
    assert login.callback().status_code == 303
    offset = b.log_size()
    replay = attacker.post(b.url("/protected/callback"), data=login.form["fields"])
    assert replay.status_code == 400, replay.text[:500]
    assert SESSION not in attacker.cookie_names()
    assert not session_cookie_headers(replay) or all(c.clears for c in session_cookie_headers(replay))
    assert wait_module_log(b, offset, r"replayed")
    assert_logged_out(attacker, b, provider)
    # A login response that was never used is accepted by B (the refusal above was the replay).
    fresh = Browser()
    other = Login(fresh, a).start().at_provider()
    r = fresh.post(b.url("/protected/callback"), data=other.form["fields"])
    assert r.status_code == 303, r.text[:500]
    assert_logged_in(fresh, b)


# ---------------------------------------------------------------------------------------------------
# Large sessions: several cookies
# ---------------------------------------------------------------------------------------------------

# Random, so no compression can bring the session under one cookie: 400 x 24 characters, ~10 KB.
BIG_GROUPS = ["g-" + secrets.token_urlsafe(18) for _ in range(400)]
# The Cookie header of a chunked session is larger than Apache's default 8190-byte header limit.
BIG_HEADERS = "LimitRequestFieldSize 65536"


def test_large_session_is_split_into_chunk_cookies_and_a_smaller_one_clears_them(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra=BIG_HEADERS)
    provider.configure(extra_claims={"groups": BIG_GROUPS})
    browser = Browser()
    login = Login(browser, a)
    env = login.run()
    r = login.callback_response
    for line in raw_set_cookie_lines(r):
        assert len(line.encode()) <= 4096, "a Set-Cookie header of %d bytes" % len(line.encode())
    head = the_session_cookie(r)
    assert head.value.startswith("chunks-"), "a ~10 KB session must be split: %s=%s..." % (head.name, head.value[:40])
    n = int(head.value[len("chunks-"):])
    assert n >= 2
    chunks = {c.name: c for c in session_cookie_headers(r) if c.name != SESSION}
    assert set(chunks) == {"%s_%d" % (SESSION, i) for i in range(n)}, sorted(chunks)
    for c in [head, *chunks.values()]:
        assert c.value and not c.clears
        assert c.has("httponly") and c.get("path") == "/"
    # The application sees every claim, whole.
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["IDTOKEN_CLAIM_groups"] == ",".join(BIG_GROUPS)
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org"

    # A new, small login in the same browser (started in another tab, whose state cookie the browser
    # shares) while the big session's cookies are still there: one cookie again, the chunks cleared.
    provider.reset()
    tab = Browser()
    again = Login(tab, a).start().at_provider()
    for c in tab.session.cookies:
        browser.session.cookies.set_cookie(c)
    r = browser.submit(again.provider_page)
    assert r.status_code == 303, r.text[:500]
    for line in raw_set_cookie_lines(r):
        assert len(line.encode()) <= 4096
    small = the_session_cookie(r)
    assert not small.value.startswith("chunks-") and not small.clears
    cleared = {c.name for c in session_cookie_headers(r) if c.clears}
    assert cleared >= set(chunks), "leftover chunk cookies must be cleared: %s" % set_cookies(r)
    assert not [x for x in browser.cookie_names() if x.startswith(SESSION + "_")], browser.cookie_names()
    assert assert_logged_in(browser, a).json()["IDTOKEN_CLAIM_groups"] == "staff,admins"


def test_chunked_session_with_a_missing_chunk_is_no_session(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra=BIG_HEADERS)
    provider.configure(extra_claims={"groups": BIG_GROUPS})
    browser = Browser()
    Login(browser, a).run()
    cookies = {c.name: c.value for c in browser.session.cookies if c.name.startswith(SESSION)}
    assert cookies[SESSION].startswith("chunks-")
    del cookies[SESSION + "_1"]
    r = requests.get(a.url("/protected/env"), cookies=cookies, allow_redirects=False, timeout=30)
    assert r.status_code == 302, "a session with a chunk missing was accepted (%d)" % r.status_code


# ---------------------------------------------------------------------------------------------------
# Idle timeout
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("store", ["cookie", "cache"])
def test_idle_timeout_slides_with_use_and_ends_an_unused_session(apache_factory, provider, store):
    settings = "IDTokenSessionIdleTimeout 3\nIDTokenSessionRefreshInterval 1"
    a = apache_factory(provider.discovery_url, extra=cache_mode(None, settings) if store == "cache" else settings)
    browser = Browser()
    Login(browser, a).run()
    logged_in_at = time.monotonic()
    first = browser.cookie(SESSION)
    untouched = browser.clone()  # the same session, never used again
    refreshed = 0
    for _ in range(5):
        time.sleep(1)
        r = assert_logged_in(browser, a)
        issued = [c for c in set_cookies(r) if c.name == SESSION and not c.clears]
        if issued and issued[0].value != first:
            refreshed += 1
    assert time.monotonic() - logged_in_at > 4.5  # longer than the idle timeout, kept alive by use
    if store == "cookie":
        # The idle clock is inside the sealed cookie: only a re-issued cookie can carry it forward.
        assert refreshed >= 1, "an active session must be re-issued (its idle clock reset)"
        # The first cookie carries its own idle clock, never reset: it ended long ago.
        assert_logged_out(untouched, a, provider)
    time.sleep(4)
    assert_logged_out(browser, a, provider)


def test_expired_session_gets_401_without_state_cookies_for_scripts(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra="IDTokenSessionIdleTimeout 2\nIDTokenSessionRefreshInterval 1")
    browser = Browser()
    Login(browser, a).run()
    time.sleep(3)
    for i in range(20):
        r = browser.get(a.url("/protected/env"), headers=XHR_HEADERS[i % len(XHR_HEADERS)])
        assert r.status_code == 401, "request %d (%s): %d" % (i, XHR_HEADERS[i % len(XHR_HEADERS)], r.status_code)
        assert "Location" not in r.headers
        states = [c for c in set_cookies(r) if c.name.startswith("idtoken_state_")]
        assert not states, "a script's request must not start a login: %s" % states
    assert not [n for n in browser.cookie_names() if n.startswith("idtoken_state_")]
    # A navigation still starts a new login.
    r = assert_logged_out(browser, a, provider)
    assert [c for c in set_cookies(r) if c.name.startswith("idtoken_state_")]


# ---------------------------------------------------------------------------------------------------
# Cookie attributes
# ---------------------------------------------------------------------------------------------------

def test_session_cookie_attributes(apache, provider, browser):
    login = Login(browser, apache)
    login.run()
    c = the_session_cookie(login.callback_response)
    assert c.has("httponly")
    assert str(c.get("samesite")).lower() == "lax"
    assert c.get("path") == "/"
    assert not c.has("domain"), "host-only by default: %s" % c.header
    assert not c.has("max-age") and not c.has("expires"), "a browser-session cookie: %s" % c.header


@pytest.mark.parametrize("same_site", ["Strict", "None"])
def test_cookie_samesite_setting(apache_factory, provider, same_site):
    a = apache_factory(provider.discovery_url, extra="IDTokenCookieSameSite %s" % same_site)
    browser = Browser()
    login = Login(browser, a)
    login.run()
    c = the_session_cookie(login.callback_response)
    assert c.get("samesite") == same_site, c.header
    if same_site == "None":
        assert c.has("secure"), "browsers drop SameSite=None without Secure: %s" % c.header
    assert c.has("httponly") and c.get("path") == "/"


def test_cookie_path_setting(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra="IDTokenCookiePath /protected")
    browser = Browser()
    login = Login(browser, a)
    login.run()
    c = the_session_cookie(login.callback_response)
    assert c.get("path") == "/protected", c.header
    assert c.name == SESSION  # no __Host- prefix over http, and none possible with a path other than /


def test_cookie_domain_setting(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra="IDTokenCookieDomain example.org")
    browser = Browser()
    login = Login(browser, a).start().at_provider()
    r = login.callback()
    assert r.status_code == 303, r.text[:500]
    c = the_session_cookie(r)  # (the client rightly refuses a cookie for another domain: the header only)
    assert str(c.get("domain")).lstrip(".").lower() == "example.org", c.header
    assert c.has("httponly") and c.get("path") == "/"


def test_session_cookie_over_https_is_host_prefixed(apache_factory, provider):
    """Over https (here: ServerName https://..., which makes Apache and the module take the site as
    https behind a TLS-terminating proxy) the cookie is __Host-idtoken_session: Secure, Path=/, no
    Domain. The provider posts to the https redirect URI; the test posts the same form over http."""
    port = free_port()
    a = apache_factory(provider.discovery_url, port=port, extra="ServerName https://localhost:%d" % port)
    browser = Browser()
    login = Login(browser, a).start()
    assert login.params["redirect_uri"] == "https://localhost:%d/protected/callback" % port
    login.at_provider()
    r = browser.post(a.url("/protected/callback"), data=login.form["fields"])
    assert r.status_code == 303, r.text[:500]
    found = [c for c in set_cookies(r) if c.name.endswith(SESSION)]
    assert [c.name for c in found] == ["__Host-" + SESSION], set_cookies(r)
    c = found[0]
    assert c.has("secure") and c.has("httponly") and c.get("path") == "/" and not c.has("domain"), c.header
    assert_logged_in(browser, a)


# ---------------------------------------------------------------------------------------------------
# Restarts
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("store", ["cookie", "redis"])
def test_session_survives_graceful_restarts(apache_factory, provider, redis, store):
    """(The default file store: test_restart.py.)"""
    a = apache_factory(provider.discovery_url, extra=cache_mode(redis) if store == "redis" else "")
    browser = Browser()
    Login(browser, a).run()
    for _ in range(2):
        a.graceful()
        assert_logged_in(browser, a)
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"


def test_cache_mode_with_shmcb_after_graceful_restart_logs_in_again_cleanly(apache_factory, provider):
    """shmcb lives in memory that a graceful restart makes anew: sessions kept there are lost (the
    default file store, Redis or memcache keep them). What is left must be a clean new login, no error."""
    a = apache_factory(provider.discovery_url, extra=cache_mode(None, "IDTokenCache shmcb"))
    browser = Browser()
    Login(browser, a).run()
    a.graceful()
    r = browser.get(a.url("/protected/env"))
    assert r.status_code in (200, 302), "%d:\n%s" % (r.status_code, r.text[:500])
    if r.status_code == 302:
        assert r.headers["Location"].startswith(provider.discovery()["authorization_endpoint"] + "?")
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"


def test_shmcb_keeps_every_session_of_many_logins(apache_factory, provider):
    """shmcb picks a subcache by a key's first byte, and every key of the module starts alike: they all
    went to one subcache, and after some eight later logins the first user was logged out (16 logins are well within the default size once spread). The adapter
    spreads them (idtoken_store.c, socache_key)."""
    a = apache_factory(provider.discovery_url, extra=cache_mode(None, "IDTokenCache shmcb"))
    browsers = []
    for _ in range(16):
        b = Browser()
        Login(b, a).run()
        browsers.append(b)
    lost = [i for i, b in enumerate(browsers) if b.get(a.url("/protected/env")).status_code != 200]
    assert lost == [], "sessions lost after 16 logins on the default shmcb: %s" % lost


# ---------------------------------------------------------------------------------------------------
# Which claims the session keeps
# ---------------------------------------------------------------------------------------------------

def test_claims_keep_list(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra="IDTokenClaimsKeep email")
    env = Login(Browser(), a).run()
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org"
    assert env["HTTP_IDTOKEN_CLAIM_EMAIL"] == "alice@example.org"
    for dropped in ("name", "groups", "email_verified", "sid"):
        assert "IDTOKEN_CLAIM_" + dropped not in env, dropped
        assert "HTTP_IDTOKEN_CLAIM_" + dropped.upper() not in env, dropped


def test_claims_drop_list(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra="IDTokenClaimsDrop groups name")
    env = Login(Browser(), a).run()
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org"
    assert "IDTOKEN_CLAIM_groups" not in env and "IDTOKEN_CLAIM_name" not in env
    assert "HTTP_IDTOKEN_CLAIM_GROUPS" not in env and "HTTP_IDTOKEN_CLAIM_NAME" not in env
