"""What a front end sees (issue 15, items 3, 4, 5, 7): `<redirect URI>?info=json`, silent login
(IDTokenSilentLogin) and script detection, front-channel logout in the provider's iframe, and an
ErrorDocument that brands the module's refusals with the IDTOKEN_ERROR* variables.

The provider is http://127.0.0.1:<p>, the site http://localhost:<a>: two sites, so the form_post and
the provider's logout iframe are cross-site as in real life."""

import http.server
import re
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from harness import (REPO, Browser, Login, Provider, browser_json, chromium, load_modules, module_log_lines, parse_form,
                     wait_browser, wait_module_log)

# The documented example error page (docs/configuration.md, "Errors and ErrorDocument"), as the admin
# would copy it.
DOCS = REPO / "docs" / "configuration.md"


def documented_error_page() -> str:
    text = DOCS.read_text()
    m = re.search(r"<!-- example: errors/login\.shtml -->\s*```html\n(.*?)```", text, re.S)
    assert m, "docs/configuration.md lost its example error page"
    return m.group(1)


FETCH_HEADERS = {"Accept": "*/*", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Sec-Fetch-Site": "same-origin"}


def branded(a):
    """ErrorDocuments for the module's refusals: the documented page, through mod_include."""
    errors = a.folder / "errors"
    errors.mkdir(mode=0o755, exist_ok=True)
    (errors / "login.shtml").write_text(documented_error_page())
    return "\n".join([
        load_modules("include"),
        "Alias /errors/ %s/" % errors,
        "<Directory %s>" % errors,
        "  Options +Includes",
        "  AddOutputFilter INCLUDES .shtml",
        "  Require all granted",
        "</Directory>",
        *("ErrorDocument %d /errors/login.shtml" % status for status in (400, 401, 403, 500, 502, 503)),
        # An admin's global framing ban: the front-channel logout page must still be framable.
        load_modules("headers"),
        "Header always set X-Frame-Options DENY",
        "IDTokenSessionIdleTimeout 600",
        "IDTokenSessionRefreshInterval 1",
    ])


@pytest.fixture(scope="module")
def site(provider_server, module_apache_factory):
    return module_apache_factory(provider_server.discovery_url, extra=branded)


# ---------------------------------------------------------------------------------------------------
# Item 7: errors an admin can brand
# ---------------------------------------------------------------------------------------------------

def test_an_error_document_brands_the_modules_refusals_with_its_variables(site, provider):
    """The documented .shtml page, as ErrorDocument for 400 and 401, shows the module's description and
    code, and the provider's own description HTML-escaped; the status stays the module's."""
    browser = Browser()
    # A login response without its state cookie: 400 invalid_state.
    r = browser.post(site.url("/protected/callback"), data={"state": "x" * 43, "id_token": "a.b.c"})
    assert r.status_code == 400
    assert "We could not sign you in" in r.text, r.text[:1000]
    assert "This login attempt expired or was started in another browser." in r.text
    assert "Error code: invalid_state" in r.text
    assert "The identity provider said" not in r.text
    # The provider's refusal of a login this browser started, its description holding markup.
    login = Login(browser, site).start()
    r = browser.post(site.url("/protected/callback"), data={
        "error": "access_denied", "error_description": "<b>No</b> entry", "state": login.params["state"]})
    assert r.status_code == 401
    assert "Error code: access_denied" in r.text
    assert "The identity provider said: &lt;b&gt;No&lt;/b&gt; entry" in r.text, r.text[:1500]
    assert "<b>No</b>" not in r.text
    # A script's request without a session: the module's 401 (login_required), branded too.
    r = browser.get(site.url("/protected/env"), headers={"Accept": "application/json"})
    assert r.status_code == 401 and "Error code: login_required" in r.text


# ---------------------------------------------------------------------------------------------------
# Item 3: session info for front ends
# ---------------------------------------------------------------------------------------------------

def info(site, browser, query="info=json", headers=None):
    return browser.get(site.url("/protected/callback?" + query), headers=dict(FETCH_HEADERS, **(headers or {})))


def test_session_info_is_json_for_the_sites_own_scripts_and_does_not_extend_the_session(site, provider):
    """401 with a JSON body without a session (not the ErrorDocument); the claims and end times with one,
    never cached, without a new session cookie unless extend_session=1 asks; 403 for another site."""
    browser = Browser()
    r = info(site, browser)
    assert r.status_code == 401 and r.headers["Content-Type"] == "application/json", r.text[:300]
    assert r.json() == {"error": "login_required", "error_description": "no session"}
    Login(browser, site).run()
    time.sleep(1.5)  # past IDTokenSessionRefreshInterval 1: a navigation now would re-issue the session
    r = info(site, browser)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in r.headers, "reading the info extended the session"
    body = r.json()
    assert body["remote_user"] == "alice-0001" and body["claims"]["groups"] == ["staff", "admins"]
    assert body["claims"]["email"] == "alice@example.org" and "nonce" not in body["claims"]
    s = body["session"]
    assert s["idle_timeout"] == 600 and s["idle_expires_at"] == s["created_at"] + 600
    assert s["expires_at"] == s["created_at"] + 8 * 3600 and "id_token" not in body
    extended = info(site, browser, "info=json&extend_session=1")
    assert "idtoken_session=" in extended.headers.get("Set-Cookie", "")
    assert extended.json()["session"]["idle_expires_at"] > s["idle_expires_at"]
    # Another site's request, or another origin's: refused before the session is looked at.
    assert info(site, browser, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    r = info(site, browser, headers={"Origin": "http://127.0.0.1:%d" % site.port})
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers


class StaticPage:
    """A page on another origin of the same site (http://localhost:<port>/), for fetch() from there."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = b"<!DOCTYPE html><html><body>another origin</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://localhost:%d/" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


FETCH_INFO = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {credentials: 'include'})
  .then(r => r.json().then(j => done({status: r.status, body: j})))
  .catch(e => done({error: String(e)}));
"""


@pytest.mark.browser
def test_session_info_in_chromium_same_origin_and_cors_only_for_a_listed_origin(provider, apache_factory, tmp_path):
    """fetch() of ?info=json reads the session from the site's own pages; from another origin (here one of
    the same site, so the Lax session cookie comes along) the browser lets a page read it only when that
    origin is listed in IDTokenSessionInfoOrigins."""
    listed, other = StaticPage(), StaticPage()
    a = apache_factory(provider.discovery_url, extra="IDTokenSessionInfoOrigins %s" % listed.url.rstrip("/"))
    driver = chromium(tmp_path)
    try:
        driver.get(a.url("/protected/env"))
        wait_browser(driver, lambda d: "REMOTE_USER" in d.page_source, a)
        url = a.url("/protected/callback?info=json")
        driver.get(a.url("/index.html"))
        own = driver.execute_async_script(FETCH_INFO, url)
        assert own["status"] == 200 and own["body"]["remote_user"] == "alice-0001", own
        driver.get(other.url)
        assert "error" in driver.execute_async_script(FETCH_INFO, url), "an unlisted origin read the session"
        driver.get(listed.url)
        cors = driver.execute_async_script(FETCH_INFO, url)
        assert cors.get("status") == 200 and cors["body"]["claims"]["email"] == "alice@example.org", cors
    finally:
        driver.quit()
        listed.close()
        other.close()


# ---------------------------------------------------------------------------------------------------
# Item 4: silent login, and what counts as a script
# ---------------------------------------------------------------------------------------------------

SILENT = "\n".join([
    "ScriptAlias /protected/plain/env %s/cgi/env.cgi",
    "<Location /protected>", "  IDTokenSilentLogin On", "</Location>",
    # The option off, with the admin's own prompt=none: the provider's answer is shown.
    "<Location /protected/plain>", "  IDTokenSilentLogin Off", "  IDTokenAuthRequestParams prompt=none", "</Location>",
])


def follow(browser, a, path, limit=8):
    """GET `path` and follow the login as a browser would: the provider's form_post page submitted, the
    site's redirects followed; the first answer that is neither."""
    r = browser.get(a.url(path))
    for _ in range(limit):
        if r.status_code == 302 and not r.headers["Location"].startswith(a.url("/")):
            r = browser.submit(browser.get(r.headers["Location"]))
        elif r.status_code in (302, 303):
            r = browser.get(urllib.parse.urljoin(a.url("/"), r.headers["Location"]))
        else:
            return r
    raise AssertionError("still redirected after %d steps: a loop" % limit)


def test_a_silent_login_falls_back_to_an_interactive_one_once_and_never_loops(provider, apache_factory):
    a = apache_factory(provider.discovery_url, extra=lambda a: SILENT % a.folder)
    provider.configure(session=False)
    browser = Browser()
    first = browser.get(a.url("/protected/env?x=1"))
    assert first.status_code == 302 and "prompt=none" in first.headers["Location"]
    back = browser.submit(browser.get(first.headers["Location"]))
    assert back.status_code == 303 and back.headers["Location"] == "/protected/env?x=1", back.text[:300]
    second = browser.get(a.url("/protected/env?x=1"))
    assert second.status_code == 302 and "prompt=" not in second.headers["Location"]
    assert browser.submit(browser.get(second.headers["Location"])).status_code == 303
    assert browser.get(a.url("/protected/env?x=1")).json()["REMOTE_USER"] == "alice-0001"
    assert provider.stats()["prompts"] == ["none", None]
    assert wait_module_log(a, 0, "silent login: the provider answered login_required")

    # A provider that wants the user even for the interactive login: one fallback, then its refusal.
    provider.configure(misbehave="login_required")
    r = follow(Browser(), a, "/protected/env")
    assert r.status_code == 401 and "login_required" in r.text, (r.status_code, r.text[:300])
    assert provider.stats()["prompts"] == ["none", None, "none", None], "more than one fallback"


def test_with_the_option_off_login_required_is_a_clean_page(provider, apache_factory):
    """An admin's own prompt=none without IDTokenSilentLogin: the provider's login_required ends on the
    module's page (401, the code shown), once, with its state cookie cleared and no fallback."""
    a = apache_factory(provider.discovery_url, extra=lambda a: SILENT % a.folder)
    provider.configure(session=False)
    browser = Browser()
    r = follow(browser, a, "/protected/plain/env")
    assert r.status_code == 401 and "login_required" in r.text
    assert provider.stats()["prompts"] == ["none"]
    assert not [n for n in browser.cookie_names() if n.startswith(("idtoken_state_", "idtoken_interactive"))]


SCRIPT_SIGNALS = [
    {"X-Requested-With": "XMLHttpRequest"},
    {"Sec-Fetch-Dest": "iframe"},
    {"Sec-Fetch-Dest": "empty"},
    {"Accept": "application/json"},
]


@pytest.mark.parametrize("signal", SCRIPT_SIGNALS, ids=lambda s: "-".join("%s=%s" % kv for kv in s.items()))
def test_any_one_signal_of_a_script_gets_401_even_with_sec_fetch_mode_navigate(apache, provider, signal):
    """Sec-Fetch-Mode: navigate used to decide alone; now any one signal the documentation lists makes
    the request a script's (401, no state cookie), and only a request with none of them is redirected."""
    navigation = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html"}
    assert Browser().get(apache.url("/protected/env"), headers=navigation).status_code == 302
    r = Browser().get(apache.url("/protected/env"), headers=dict(navigation, **signal))
    assert r.status_code == 401 and "Set-Cookie" not in r.headers


@pytest.mark.browser
def test_silent_login_in_chromium(apache_factory, tmp_path):
    """Chromium, a provider with a login page: the first silent login comes back with login_required and
    falls back to the login page once; after that the provider remembers the browser, and a silent login
    at another site of the same provider completes without showing anything."""
    from selenium.webdriver.common.by import By
    p = Provider("--test-controls", client_id="test-client")
    try:
        a = apache_factory(p.discovery_url, extra=lambda a: SILENT % a.folder)
        b = apache_factory(p.discovery_url, extra=lambda a: SILENT % a.folder)
        driver = chromium(tmp_path)
        try:
            driver.get(a.url("/protected/env"))
            wait_browser(driver, lambda d: d.find_elements(By.NAME, "username"), a)
            driver.find_element(By.ID, "login").click()
            wait_browser(driver, lambda d: d.current_url == a.url("/protected/env") and "REMOTE_USER" in d.page_source, a)
            assert p.stats()["prompts"] == ["none", None] and p.stats()["login"] == 1
            # Another site: one silent round trip, no login page.
            driver.get(b.url("/protected/env"))
            wait_browser(driver, lambda d: d.current_url == b.url("/protected/env") and "REMOTE_USER" in d.page_source, b)
            assert browser_json(driver)["REMOTE_USER"] == "alice-0001"
            assert p.stats()["prompts"] == ["none", None, "none"] and p.stats()["login"] == 1
        finally:
            driver.quit()
    finally:
        p.stop()


# ---------------------------------------------------------------------------------------------------
# Item 5: front-channel logout
# ---------------------------------------------------------------------------------------------------

# (session store, IDTokenCookieSameSite, the browser allows third-party cookies) -> what ends the session
FRONT_CHANNEL_CASES = [
    ("cache", "Lax", False),   # by the sid index, no cookie needed
    ("cookie", "None", False),  # Chromium's default blocks the iframe's cookie: the session survives
    ("cookie", "None", True),   # a user who allows third-party cookies: the cookie comes and is cleared
]


@pytest.mark.browser
@pytest.mark.parametrize("store,same_site,third_party", FRONT_CHANNEL_CASES,
                         ids=["cache", "cookie-default-chromium", "cookie-third-party-cookies-allowed"])
def test_front_channel_logout_in_the_providers_iframe(provider, apache_factory, tmp_path, store, same_site, third_party):
    """The provider's logout page loads the front-channel logout URL in an iframe (cross-site). A cache
    session ends by its sid whether or not a cookie comes (a Lax one does not). A cookie session can only
    end when its cookie comes along: SameSite=None, and a browser that sends third-party cookies, which
    Chromium by default does not. The page is allowed in the provider's frame even under a global
    X-Frame-Options DENY."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    extra = "\n".join([load_modules("headers"), "Header always set X-Frame-Options DENY",
                       "IDTokenSessionStore %s" % store, "IDTokenCookieSameSite %s" % same_site])
    a = apache_factory(provider.discovery_url, extra=extra)
    provider.configure(frontchannel_logout_uri=a.url("/protected/callback?frontchannel_logout=1"))
    allow = {"profile.cookie_controls_mode": 0, "profile.block_third_party_cookies": False}
    driver = chromium(tmp_path, prefs=allow if third_party else None)
    try:
        driver.get(a.url("/protected/env"))
        wait_browser(driver, lambda d: "REMOTE_USER" in d.page_source, a)
        sid = provider.stats()["last_sid"]
        offset = a.log_size()
        driver.get(provider.url("/logout"))
        wait_browser(driver, lambda d: module_log_lines(a.log_since(offset), "front-channel logout for sid"), a)
        line = module_log_lines(a.log_since(offset), "front-channel logout for sid")[0]
        assert "sid '%s'" % sid in line, line
        # The module's page is shown in the provider's frame (frame-ancestors), despite X-Frame-Options DENY.
        def framed_page_says_logged_out(d):
            d.switch_to.default_content()  # from the top each time: the frame may still be loading
            try:
                d.switch_to.frame(0)
                return "You are logged out." in d.find_element(By.TAG_NAME, "body").text
            except WebDriverException:
                return False
        wait_browser(driver, framed_page_says_logged_out, a)
        driver.switch_to.default_content()
        driver.get(a.url("/protected/callback?info=json"))
        info = browser_json(driver)
        if store == "cache":
            assert "1 stored session(s) ended" in line and "no session cookie came" in line, line
            assert info["error"] == "login_required", "the session outlived the front-channel logout"
        elif third_party:
            assert "this browser's session of 'alice-0001' cleared" in line, line
            assert info["error"] == "login_required", "the session outlived the front-channel logout"
        else:
            assert "no session cookie came with the request" in line, line
            assert info.get("remote_user") == "alice-0001", "Chromium sent a third-party cookie by default: update the docs"
    finally:
        driver.quit()


def test_front_channel_logout_answers_a_framable_page_and_needs_a_sid(site, provider):
    browser = Browser()
    Login(browser, site).run()
    url = site.url("/protected/callback?frontchannel_logout=1&iss=%s" % urllib.parse.quote(provider.issuer, safe=""))
    r = browser.get(url, headers={"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 400 and "Set-Cookie" not in r.headers, "a request without a sid ended something"
    r = browser.get(url + "&sid=" + provider.stats()["last_sid"], headers={"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Security-Policy"].startswith("frame-ancestors %s" % provider.issuer)
    assert "X-Frame-Options" not in r.headers
    assert "idtoken_session=;" in r.headers.get("Set-Cookie", "")
