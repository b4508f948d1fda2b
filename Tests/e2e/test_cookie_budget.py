"""The cookie budget (issue 14, item 1): the session's cookies are sized for what this browser and this
httpd carry back. The demo token's session fits a small cookie, a 4 KB-claims token one cookie, and an
18 KB token (330 random group IDs, as Entra ID sends them) logs in and its next request is served in both
session modes with default settings, in headless Chromium through the cross-site form_post: in cookie
mode it goes to the shared store under an ID, because its cookies would pass LimitRequestFieldSize.
Without a shared store such a login ends on a page and a log line that name the remedy, never on a
session the next request cannot carry."""

import random
import urllib.parse

import pytest

from harness import Browser, Login, cache_mode, raw_request
from test_browser import Waiter, driver, page_json  # noqa: F401 (driver is a fixture)

# The bench's fat token: 100 group names of 38 characters, about 4.1 KB of claims.
FOUR_KB_GROUPS = ["group-%03d-engineering-department-staff" % i for i in range(100)]


def guid_groups(n, seed=1):
    rnd = random.Random(seed)
    return ["%08x-%04x-%04x-%04x-%012x" % (rnd.getrandbits(32), rnd.getrandbits(16), rnd.getrandbits(16),
                                          rnd.getrandbits(16), rnd.getrandbits(48)) for _ in range(n)]


EIGHTEEN_KB_GROUPS = guid_groups(330)


def session_cookies(browser):
    return {c.name: c.value for c in browser.session.cookies if c.name.startswith(("idtoken_session", "__Host-idtoken_session"))}


def cookie_bytes(cookies):
    """What the session adds to the Cookie header: name=value pairs and their separators."""
    return sum(len(n) + 1 + len(v) for n, v in cookies.items()) + 2 * max(0, len(cookies) - 1)


def login_with(provider, apache, groups=None):
    provider.configure(extra_claims={"groups": groups} if groups is not None else {})
    browser = Browser()
    login = Login(browser, apache)
    env = login.run()
    return browser, login, env


def test_the_demo_tokens_session_cookie_is_small(apache, provider):
    browser, login, env = login_with(provider, apache)
    cookies = session_cookies(browser)
    print("demo token %d B -> session cookie %d B" % (len(login.id_token), cookie_bytes(cookies)))
    assert list(cookies) == ["idtoken_session"], cookies
    assert cookie_bytes(cookies) <= 700, cookies
    assert env["REMOTE_USER"] == "alice-0001" and env["IDTOKEN_CLAIM_groups"] == "staff,admins"


def test_a_4kb_claims_token_fits_one_cookie(apache, provider):
    browser, login, env = login_with(provider, apache, FOUR_KB_GROUPS)
    cookies = session_cookies(browser)
    print("4 KB-claims token %d B -> session cookie %d B" % (len(login.id_token), cookie_bytes(cookies)))
    assert list(cookies) == ["idtoken_session"], cookies
    assert env["IDTOKEN_CLAIM_groups"].endswith(FOUR_KB_GROUPS[-1])


def test_the_token_comes_back_whole_as_id_token_hint(apache, provider):
    """Nothing is kept twice, but the token is given back byte for byte at logout."""
    browser, login, _ = login_with(provider, apache, FOUR_KB_GROUPS)
    r = browser.get(apache.url("/protected/callback?logout="))
    assert r.status_code in (302, 303), r.text[:500]
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    assert q["id_token_hint"] == [login.id_token]


def test_a_session_too_big_for_the_request_header_without_a_shared_store(provider, apache_factory):
    a = apache_factory(provider.discovery_url, extra="IDTokenCache none")
    provider.configure(extra_claims={"groups": EIGHTEEN_KB_GROUPS})
    browser = Browser()
    login = Login(browser, a).start().at_provider()
    offset = a.log_size()
    r = login.callback()
    assert r.status_code == 500, r.text[:500]
    assert "too large" in r.text and "groups" not in r.text
    assert session_cookies(browser) == {}
    log = a.log_since(offset)
    assert "LimitRequestFieldSize" in log and "IDTokenSessionStore cache" in log, log[-2000:]


def test_a_raised_limit_request_field_size_keeps_the_big_session_in_cookies(provider, apache_factory):
    a = apache_factory(provider.discovery_url, extra="LimitRequestFieldSize 32768\nIDTokenCache none")
    browser, _, env = login_with(provider, a, EIGHTEEN_KB_GROUPS)
    cookies = session_cookies(browser)
    assert len(cookies) > 2 and cookies["idtoken_session"].startswith("chunks-"), list(cookies)
    assert cookie_bytes(cookies) > 8190
    assert env["IDTOKEN_CLAIM_groups"].endswith(EIGHTEEN_KB_GROUPS[-1])


@pytest.mark.browser
@pytest.mark.parametrize("mode", ["cookie", "cache"])
def test_an_18kb_token_logs_in_and_out_in_chromium(mode, provider, apache_factory, driver):  # noqa: F811
    from selenium.webdriver.common.by import By

    a = apache_factory(provider.discovery_url, extra=cache_mode() if mode == "cache" else "")
    provider.configure(extra_claims={"groups": EIGHTEEN_KB_GROUPS})
    driver.get(a.url("/protected/env"))
    wait = Waiter(driver, a)
    wait.until(lambda d: d.current_url == a.url("/protected/env") and "REMOTE_USER" in d.find_element(By.TAG_NAME, "body").text)
    env = page_json(driver)
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["IDTOKEN_CLAIM_groups"].endswith(EIGHTEEN_KB_GROUPS[-1])
    cookies = {c["name"]: c["value"] for c in driver.get_cookies() if c["name"].startswith("idtoken_session")}
    # One short cookie: the session went to the store (cookie mode: because it would not fit).
    assert list(cookies) == ["idtoken_session"] and len(cookies["idtoken_session"]) == 43, cookies
    print("%s mode: cookie %r" % (mode, {k: len(v) for k, v in cookies.items()}))

    # The next request is served from the session, without the provider.
    before = provider.stats()["authorize"]
    driver.get(a.url("/protected/env?next=1"))
    env = page_json(driver)
    assert env["QUERY_STRING"] == "next=1" and env["REMOTE_USER"] == "alice-0001"
    assert provider.stats()["authorize"] == before

    # Logout ends it in the store too: the old cookie, replayed, opens nothing.
    driver.get(a.url("/protected/callback?logout=/public/env"))
    wait.until(lambda d: d.current_url.startswith(a.url("/public/env")))
    assert not [c for c in driver.get_cookies() if c["name"].startswith("idtoken_session")]
    replay = raw_request(a.port, ("GET /protected/env HTTP/1.1\r\nHost: localhost:%d\r\nCookie: idtoken_session=%s\r\n"
                                  "Connection: close\r\n\r\n" % (a.port, cookies["idtoken_session"])).encode())
    assert replay.status == 302, replay.text()[:500]
