"""Every login completes (issue 14), with the browser-like client: the login loop guard, long return
URLs, and a replayed login response (the Back button) sent on for the browser that completed that
login and refused to anyone else. The same in Chromium: test_browser.py."""

import urllib.parse

import pytest

from harness import Browser, Login, logout_url, module_log_lines, set_cookies, wait_module_log

MARKER = "idtoken_login"
LOOP_LIMIT = 3


def round_trips_until_not_redirected(browser, apache, path="/protected/env", limit=10):
    """Follows the login as a browser would (start, provider, callback, back to the page) until the page
    is not a redirect to the provider: (round trips to the provider, that last response)."""
    trips = 0
    for _ in range(limit):
        r = browser.get(apache.url(path))
        if r.status_code != 302:
            return trips, r
        page = browser.get(r.headers["Location"])
        assert page.status_code == 200, page.text[:500]
        cb = browser.submit(page)
        assert cb.status_code == 303, cb.text[:500]
        trips += 1
    pytest.fail("still sent to the provider after %d round trips" % limit)


def drop_cookie(browser, name):
    for c in list(browser.session.cookies):
        if c.name == name:
            browser.session.cookies.clear(c.domain, c.path, c.name)


# ---------------------------------------------------------------------------------------------------
# The loop guard
# ---------------------------------------------------------------------------------------------------

def test_a_cookie_path_that_never_matches_ends_on_the_loop_page(apache_factory, provider):
    """IDTokenCookiePath /elsewhere: the browser keeps the session cookie but never sends it to
    /protected. Three round trips, then a page (500, login_loop) and one log line naming the setting."""
    a = apache_factory(provider.discovery_url, extra="IDTokenCookiePath /elsewhere")
    browser = Browser()
    trips, r = round_trips_until_not_redirected(browser, a)
    assert trips == LOOP_LIMIT
    assert r.status_code == 500, r.text[:500]
    assert "login_loop" in r.text and "Allow cookies for this site" in r.text
    assert "Location" not in r.headers and r.headers.get("Cache-Control") == "no-store"
    assert not [c for c in set_cookies(r)], "the loop page sets no cookie: %s" % set_cookies(r)
    assert provider.stats()["authorize"] == LOOP_LIMIT
    lines = wait_module_log(a, 0, "login loop")
    assert len(lines) == 1, lines
    assert "IDTokenCookiePath /elsewhere does not cover /protected/env" in lines[0], lines[0]
    assert "[auth_idtoken:error]" in lines[0], lines[0]
    # Reloading it at once shows the page again, not another login.
    again = browser.get(a.url("/protected/env"))
    assert again.status_code == 500 and provider.stats()["authorize"] == LOOP_LIMIT


def test_logging_out_and_in_again_and_again_is_no_loop(apache, provider, browser):
    """Logout takes the marker away, and a login that keeps its session is no round trip: a user who logs
    in and out five times in a row never sees the loop page."""
    for i in range(5):
        env = Login(browser, apache).run()
        assert env["REMOTE_USER"] == "alice-0001", "login %d" % i
        assert browser.cookie(MARKER)
        out = browser.get(logout_url(apache, "/public/env"))
        assert out.status_code == 302, out.text[:300]
        assert MARKER not in browser.cookie_names()
    assert not module_log_lines(apache.error_log(), "login loop")


def test_the_marker_cookie_is_small_and_crosses_the_providers_post(apache, provider, browser):
    login = Login(browser, apache)
    login.run()
    markers = [c for c in set_cookies(login.callback_response) if c.name == MARKER]
    assert len(markers) == 1, set_cookies(login.callback_response)
    m = markers[0]
    assert len(m.header) < 400, m.header
    assert str(m.get("samesite")).lower() == "none" and m.has("secure") and m.has("httponly"), m.header
    assert m.get("path") == "/" and not m.has("domain") and m.get("max-age") == "600", m.header


# ---------------------------------------------------------------------------------------------------
# Long return URLs
# ---------------------------------------------------------------------------------------------------

LONG_QUERY = "q=" + "abcdefghijklmnop" * 440  # 7 KB: the request line stays under httpd's 8190 bytes


def test_a_7_kb_return_url_survives_the_login_and_the_state_cookie_stays_small(apache, provider, browser):
    login = Login(browser, apache, "/protected/env?" + LONG_QUERY).start()
    states = [c for c in set_cookies(login.first) if c.name.startswith("idtoken_state_")]
    assert len(states) == 1 and len(states[0].header) < 1000, "state cookie of %d bytes" % len(states[0].header)
    login.at_provider()
    r = login.callback()
    assert r.status_code == 303, r.text[:500]
    assert r.headers["Location"].endswith("/protected/env?" + LONG_QUERY)
    env = browser.get(urllib.parse.urljoin(apache.url("/"), r.headers["Location"])).json()
    assert env["QUERY_STRING"] == LONG_QUERY and env["REMOTE_USER"] == "alice-0001"


def test_a_long_return_url_the_store_does_not_have_falls_back_to_its_path_and_says_so(apache_factory, provider):
    """Two servers with one key file but each its own shmcb: a login started on one and completed on the
    other finds no long return URL in the store. The browser comes back to the path, and the log says why."""
    a = apache_factory(provider.discovery_url)
    b = apache_factory(provider.discovery_url, key_file=a.key_file)
    browser = Browser()
    login = Login(browser, a, "/protected/env?" + LONG_QUERY).start().at_provider()
    r = browser.post(b.url("/protected/callback"), data=login.form["fields"])  # cookies are per host, not port
    assert r.status_code == 303, r.text[:500]
    assert r.headers["Location"] in ("/protected/env", b.url("/protected/env"))
    assert wait_module_log(b, 0, r"no longer in the shared store.*returns to /protected/env")
    assert browser.get(b.url("/protected/env")).json()["REMOTE_USER"] == "alice-0001"


# ---------------------------------------------------------------------------------------------------
# The Back button: a replayed login response
# ---------------------------------------------------------------------------------------------------

def test_a_replayed_response_sends_the_browser_that_completed_that_login_on(apache, provider, browser):
    login = Login(browser, apache, "/protected/env?page=2")
    login.run()
    offset = apache.log_size()
    again = login.callback()  # the same form, posted again by the same browser (the Back button)
    assert again.status_code == 303, again.text[:500]
    assert again.headers["Location"] in ("/protected/env?page=2", apache.url("/protected/env?page=2"))
    assert not set_cookies(again), "nothing changes: %s" % set_cookies(again)
    assert wait_module_log(apache, offset, "posted again")
    assert browser.get(apache.url("/protected/env?page=2")).json()["REMOTE_USER"] == "alice-0001"


def test_a_replayed_response_without_that_logins_marker_is_refused(apache, provider, browser):
    """Attack: a captured login response replayed by a browser that does not hold the marker of that very
    login (a stranger; a copy of the victim's cookies without it; a browser with the marker of a login of
    its own) gets 400 and no session."""
    login = Login(browser, apache)
    login.run()
    without_marker = browser.clone()
    drop_cookie(without_marker, MARKER)
    assert MARKER not in without_marker.cookie_names() and "idtoken_session" in without_marker.cookie_names()
    own = Browser()
    Login(own, apache).run()
    drop_cookie(own, "idtoken_session")
    for who, other in (("a stranger", Browser()), ("the victim's cookies without the marker", without_marker),
                       ("a marker of another login", own)):
        offset = apache.log_size()
        r = login.callback(browser=other)
        assert r.status_code == 400, "%s: %d %s" % (who, r.status_code, r.text[:300])
        assert not [c for c in set_cookies(r) if c.name.startswith("idtoken_session") and not c.clears], who
        assert wait_module_log(apache, offset, "state cookie missing"), who
