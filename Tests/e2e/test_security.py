"""Issue 12's security findings, each performed as an attack end to end and shown to fail.

One test (or a few) per finding, numbered as in the issue: 1 internal redirects and subrequests,
2 step-up on existing sessions, 3 chunk-marker amplification, 4 store lookups per cookie value,
5 back-channel logout by sid, 6 sessions bound to the site's session profile, 7 control characters in
claim names, 8 the Connection header against claim headers, 9 __Host- state cookies, 10 logout CSRF,
11 provider errors without state, 12 cacheable responses with a refreshed session, 13 a refresh
resurrecting a removed session, 14 plain-http endpoints in discovery; and one provider fetch at a time
per child. Costs are asserted as counts of work (the module's `request work:` trace line: cookie
lookups, sealed opens, store calls), never as wall-clock times."""

import collections
import json
import secrets
import threading
import time
import urllib.parse
from html.parser import HTMLParser

import pytest
import requests

from harness import (CACHE_CONTROL_CGI, SOCACHE_REDIS, TRACE_WORK, XHR_HEADERS, Browser, DelayProxy,
                     HeaderEchoBackend, Login, cache_mode, form_fields, free_port, https_url, https_vhost,
                     load_modules, logout_url, mpm, one_process_settings, parse_form, raw_get,
                     self_signed_certificate, set_cookies, vm_peak_kib, wait_module_log, wait_work, work_lines,
                     write_htpasswd)

SESSION = "idtoken_session"
STATE = "idtoken_state_"


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------

def authorize_query(response, provider) -> dict:
    """The query of a redirect to the provider's authorization endpoint (fails on anything else)."""
    assert response.status_code == 302, "expected a redirect to the provider, got %d:\n%s" % (
        response.status_code, response.text[:500])
    location = response.headers["Location"]
    assert location.startswith(provider.discovery()["authorization_endpoint"] + "?"), location
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(location).query,
                                                       keep_blank_values=True).items()}


def assert_logged_in(browser, apache, user="alice-0001", path="/protected/env"):
    r = browser.get(apache.url(path))
    assert r.status_code == 200, "not logged in at %s (%d):\n%s" % (apache.url(path), r.status_code, r.text[:500])
    assert r.json()["REMOTE_USER"] == user
    return r


def assert_logged_out(browser, apache, provider, path="/protected/env"):
    """No session there: a navigation is sent to the provider's login."""
    r = browser.get(apache.url(path))
    detail = ""
    if r.status_code == 200 and r.headers.get("Content-Type", "").startswith("application/json"):
        detail = " as REMOTE_USER=%r" % r.json().get("REMOTE_USER")
    assert r.status_code == 302, "still logged in at %s (%d%s)" % (apache.url(path), r.status_code, detail)
    authorize_query(r, provider)
    return r


def session_set(response) -> list:
    """The Set-Cookie headers of a response that set (not clear) a session cookie or chunk."""
    return [c for c in set_cookies(response) if SESSION in c.name and c.value and not c.clears]


def ran_cgi(text: str) -> bool:
    """True when a body is env.cgi's environment dump (the protected script ran)."""
    return '"GATEWAY_INTERFACE"' in text


def session_cookie_header(browser) -> str:
    return "; ".join("%s=%s" % (c.name, c.value) for c in browser.session.cookies if SESSION in c.name)


def cache_control(response) -> list:
    """The Cache-Control directives of a response, lower-cased, in order."""
    value = response.headers.get("Cache-Control", "")
    return [d.strip().lower() for d in value.split(",") if d.strip()]


class LinkParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.title, self._in_title = [], "", False

    def handle_starttag(self, tag, attrs):
        if tag == "a" and dict(attrs).get("href") is not None:
            self.links.append(dict(attrs)["href"])
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def page_links(text):
    p = LinkParser()
    p.feed(text)
    p.close()
    return p


# ---------------------------------------------------------------------------------------------------
# 1. Internal redirects and subrequests are decided afresh
# ---------------------------------------------------------------------------------------------------

def redirects_config(a):
    return "\n".join([
        load_modules("auth_basic", "authn_file", "rewrite"),
        # An optional-login location whose 404 page is the protected CGI.
        "<Location /opt>",
        "  AuthType IDToken",
        "  IDTokenUnauthAction pass",
        "  Require valid-user",
        "  ErrorDocument 404 /protected/env",
        "</Location>",
        # The same from a location of another authentication module.
        "<Location /basic>",
        "  AuthType Basic",
        '  AuthName "e2e basic"',
        "  AuthBasicProvider file",
        "  AuthUserFile %s/htpasswd" % a.folder,
        "  Require valid-user",
        "  ErrorDocument 404 /protected/env",
        "</Location>",
        # mod_dir's FallbackResource: a subrequest to look the fallback up, then a fast redirect.
        "<Location /fallback>",
        "  AuthType IDToken",
        "  IDTokenUnauthAction pass",
        "  Require valid-user",
        "  FallbackResource /protected/env",
        "</Location>",
        # Internal redirects into the redirect URI (callback).
        "<Location /opt-callback>",
        "  AuthType IDToken",
        "  IDTokenUnauthAction pass",
        "  Require valid-user",
        "  ErrorDocument 404 /protected/callback",
        "</Location>",
        "<Location /fallback-callback>",
        "  FallbackResource /protected/callback",
        "</Location>",
        "<Directory %s/htdocs/rewrite-callback>" % a.folder,
        "  Options +FollowSymLinks",
        "  RewriteEngine On",
        "  RewriteRule ^ /protected/callback [PT,L]",
        "</Directory>",
    ])


@pytest.fixture(scope="module")
def redirects(module_apache_factory, provider_server):
    a = module_apache_factory(provider_server.discovery_url, extra=redirects_config, start=False)
    write_htpasswd(a.folder / "htpasswd", {"bob": "bob-secret"})
    (a.folder / "htdocs" / "rewrite-callback").mkdir(mode=0o755)
    (a.folder / "htdocs" / "rewrite-callback" / "x").write_text("never served\n")
    module_apache_factory.start(a)
    return a


BOB = ("bob", "bob-secret")


def test_error_document_into_a_protected_location_does_not_inherit_the_anonymous_pass(redirects, provider):
    """Finding 1. Attack: a cookie-less GET /opt/missing; /opt lets anonymous requests pass and its 404
    page is /protected/env. The error document's internal redirect must not inherit the empty user of
    the pass: the protected CGI does not run."""
    r = requests.get(redirects.url("/opt/missing"), headers={"Accept": "text/html"}, allow_redirects=False, timeout=30)
    assert not ran_cgi(r.text), "the protected CGI ran for an anonymous request (%d): REMOTE_USER=%r" % (
        r.status_code, json.loads(r.text).get("REMOTE_USER") if r.text.startswith("{") else None)
    # httpd answers with the original error when the error document's own request fails ("Additionally,
    # a 401 ... error was encountered"). No login starts there: it could not reach the browser, and would
    # only leave a state cookie behind.
    assert r.status_code == 404, r.text[:500]
    assert not session_set(r)
    assert not [c for c in set_cookies(r) if "idtoken_state_" in c.name], set_cookies(r)


def test_error_document_from_a_basic_auth_location_does_not_run_as_the_basic_user(redirects, provider):
    """Finding 1. Attack: GET /basic/missing with bob's Basic credentials; the 404 page of that Basic-auth
    location is /protected/env. The protected CGI must not run as bob (nor at all without a session);
    with a session it runs as the session's user, not bob."""
    r = requests.get(redirects.url("/basic/missing"), auth=BOB, headers={"Accept": "text/html"},
                     allow_redirects=False, timeout=30)
    assert not ran_cgi(r.text), "the protected CGI ran for a Basic-auth user (%d): REMOTE_USER=%r" % (
        r.status_code, json.loads(r.text).get("REMOTE_USER") if r.text.startswith("{") else None)
    assert r.status_code == 404, r.text[:500]
    # Control: bob's credentials are good (a 404 of the Basic location itself, not a 401).
    assert requests.get(redirects.url("/basic/missing"), allow_redirects=False, timeout=30).status_code == 401

    browser = Browser()
    Login(browser, redirects).run()
    r = browser.get(redirects.url("/basic/missing"), auth=BOB)
    assert ran_cgi(r.text), "with a session the error document shows the protected page (%d):\n%s" % (
        r.status_code, r.text[:500])
    assert r.json()["REMOTE_USER"] == "alice-0001", "the protected CGI ran as %r" % r.json()["REMOTE_USER"]


def test_fallback_resource_into_a_protected_location_does_not_inherit_the_anonymous_pass(redirects, provider):
    """Finding 1. Attack: a cookie-less GET /fallback/missing; /fallback passes anonymous requests and its
    FallbackResource is /protected/env (mod_dir looks it up as a subrequest). The subrequest must not
    inherit the empty user: the protected CGI does not run. With a session it runs as that user."""
    r = requests.get(redirects.url("/fallback/missing"), headers={"Accept": "text/html"}, allow_redirects=False,
                     timeout=30)
    assert not ran_cgi(r.text), "the protected CGI ran through FallbackResource for an anonymous request (%d)" % (
        r.status_code)
    # A subrequest starts no login (httpd 2.4's mod_dir would copy a redirecting subrequest's Location by
    # reference after destroying it, and answer 500): 401, and no state cookie.
    assert r.status_code == 401, r.text[:500]
    assert not [c for c in set_cookies(r) if "idtoken_state_" in c.name], set_cookies(r)
    browser = Browser()
    Login(browser, redirects).run()
    r = browser.get(redirects.url("/fallback/missing"))
    assert r.status_code == 200 and ran_cgi(r.text), "%d:\n%s" % (r.status_code, r.text[:500])
    assert r.json()["REMOTE_USER"] == "alice-0001"


def test_error_document_into_a_protected_location_shows_the_session_user(redirects, provider):
    """Finding 1, the control: with a valid session the error document (decided afresh from the cookies)
    still shows the protected page, with the session's user and claims."""
    browser = Browser()
    Login(browser, redirects).run()
    r = browser.get(redirects.url("/opt/missing"))
    assert ran_cgi(r.text), "%d:\n%s" % (r.status_code, r.text[:500])
    env = r.json()
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org"
    assert env.get("REDIRECT_STATUS") == "404", env.get("REDIRECT_STATUS")


def started_login(apache):
    """A login the provider answered: its Login (the browser holds the state cookie, the form its answer)."""
    return Login(Browser(), apache).start().at_provider()


# URL posted to, and the status the client gets: for the ErrorDocument, httpd answers with the original
# error (404, "Additionally, a ... error was encountered while trying to use an ErrorDocument") when the
# error document's own request fails; the module's 400 is in the access log and the error log.
CALLBACK_VECTORS = {
    "ErrorDocument": ("/opt-callback/missing", 404),
    "FallbackResource subrequest": ("/fallback-callback/missing", 400),
    "per-directory RewriteRule": ("/rewrite-callback/x", 400),
}


@pytest.mark.parametrize("vector", list(CALLBACK_VECTORS))
def test_internal_redirect_to_the_callback_never_opens_a_session(redirects, provider, vector):
    """Finding 1. Attack: POST a real form_post answer (with its state cookie) to a URL that httpd sends
    on to the redirect URI: an ErrorDocument (internal redirect, as GET), a FallbackResource (a
    subrequest looks it up), a per-directory RewriteRule (internal redirect keeping the method and the
    body). The callback refuses anything but the request the browser made: 400 (for the ErrorDocument
    the client sees httpd's original 404), logged as an internal redirect; no session, no 303. The same answer posted to the callback itself logs in."""
    login = started_login(redirects)
    offset = redirects.log_size()
    path, status = CALLBACK_VECTORS[vector]
    r = login.browser.post(redirects.url(path), data=login.form["fields"])
    assert r.status_code != 303, "a login completed through %s: %s" % (vector, r.headers.get("Location"))
    assert not session_set(r), set_cookies(r)
    assert SESSION not in login.browser.cookie_names()
    assert r.status_code == status, "%d:\n%s" % (r.status_code, r.text[:500])
    assert wait_module_log(redirects, offset, r"internal redirect"), redirects.log_since(offset)[-2000:]
    # The answer itself was good: posted where it belongs, it logs in.
    r = login.callback()
    assert r.status_code == 303, r.text[:500]


# ---------------------------------------------------------------------------------------------------
# 2. Step-up: a location's max_age, acr_values and prompt=login apply to existing sessions
# ---------------------------------------------------------------------------------------------------

STEP_UP_BLOCKS = {
    "admin": "max_age=60 acr_values=urn:mfa",
    "recent": "max_age=60",
    "mfa": "acr_values=urn:mfa+urn:hw",
    "fresh": "prompt=login",
}


def step_up_config(a):
    lines = ['ScriptAliasMatch "^/protected/(%s)/env$" "%s/cgi/env.cgi"' % ("|".join(STEP_UP_BLOCKS), a.folder)]
    for name, params in STEP_UP_BLOCKS.items():
        lines += ["<Location /protected/%s>" % name, "  IDTokenAuthRequestParams %s" % params, "</Location>"]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def step_up(module_apache_factory, provider_server):
    return module_apache_factory(provider_server.discovery_url, extra=step_up_config)


def old_password_session(apache, provider):
    """A browser logged in at /protected an hour after a password-only authentication."""
    provider.configure(extra_claims={"acr": "urn:pwd", "auth_time": int(time.time()) - 3600})
    browser = Browser()
    Login(browser, apache).run()
    provider.configure()
    return browser


def test_step_up_location_refuses_an_old_password_session_and_logs_in_again(step_up, provider):
    """Finding 2. Attack: a session from a password-only login an hour ago (acr urn:pwd) asks for
    /protected/admin, which wants max_age=60 and acr_values=urn:mfa. It is sent to the provider with
    those parameters (other locations keep accepting it); once the provider asserts urn:mfa with a fresh
    auth_time, the login completes back at /protected/admin."""
    browser = old_password_session(step_up, provider)
    r = browser.get(step_up.url("/protected/admin/env"))
    if r.status_code == 200:
        pytest.fail("an hour-old password session passed max_age=60 acr_values=urn:mfa as %r" % r.json()["REMOTE_USER"])
    q = authorize_query(r, provider)
    assert q["max_age"] == "60", q
    assert q["acr_values"] == "urn:mfa", q
    assert_logged_in(browser, step_up)  # the old session is still good where nothing more is asked

    provider.configure(extra_claims={"acr": "urn:mfa"})  # auth_time: now
    page = browser.get(r.headers["Location"])
    assert page.status_code == 200, page.text[:500]
    cb = browser.submit(page)
    assert cb.status_code == 303, cb.text[:500]
    target = urllib.parse.urljoin(step_up.url("/"), cb.headers["Location"])
    assert urllib.parse.urlsplit(target).path == "/protected/admin/env", target
    assert assert_logged_in(browser, step_up, path="/protected/admin/env").json()["IDTOKEN_CLAIM_acr"] == "urn:mfa"


def test_step_up_for_a_script_is_401(step_up, provider):
    """Finding 2. A script's request (XHR/fetch) with a session that fails the location's step-up
    requirements gets 401, never the protected page and never a login redirect."""
    browser = old_password_session(step_up, provider)
    for headers in XHR_HEADERS:
        r = browser.get(step_up.url("/protected/admin/env"), headers=headers)
        assert r.status_code == 401, "%s: %d" % (headers, r.status_code)
        assert "Location" not in r.headers


@pytest.mark.parametrize("path,params", [
    ("/protected/recent/env", {"max_age": "60"}),
    ("/protected/mfa/env", {"acr_values": "urn:mfa urn:hw"}),
    ("/protected/fresh/env", {"prompt": "login"}),
])
def test_each_step_up_requirement_applies_to_an_old_session(step_up, provider, path, params):
    """Finding 2. Attack: the hour-old password session at a location asking for only one of max_age,
    acr_values and prompt=login: each alone sends it to the provider with that parameter."""
    browser = old_password_session(step_up, provider)
    r = browser.get(step_up.url(path))
    assert r.status_code != 200, "an hour-old password session passed %s" % params
    q = authorize_query(r, provider)
    for k, v in params.items():
        assert q.get(k) == v, q


def test_prompt_login_location_wants_a_session_made_with_prompt_login(step_up, provider):
    """Finding 2. A fresh session (auth_time now, no acr) passes max_age=60 but not acr_values or
    prompt=login; after a login made with prompt=login the prompt=login location passes too."""
    browser = Browser()
    Login(browser, step_up).run()
    assert_logged_in(browser, step_up, path="/protected/recent/env")
    assert_logged_out(browser, step_up, provider, path="/protected/mfa/env")
    q = authorize_query(browser.get(step_up.url("/protected/fresh/env")), provider)
    assert q["prompt"] == "login"
    Login(browser, step_up, "/protected/fresh/env").run()
    assert_logged_in(browser, step_up, path="/protected/fresh/env")
    assert_logged_in(browser, step_up, path="/protected/recent/env")


# ---------------------------------------------------------------------------------------------------
# 3, 4. Amplification: the work of one request is bounded (cookie lookups, sealed opens, store calls)
# ---------------------------------------------------------------------------------------------------

# Random, so no compression brings the session under one cookie: ~10 KB, split over 3 chunks.
BIG_GROUPS = ["g-" + secrets.token_urlsafe(18) for _ in range(400)]
BIG_HEADERS = "LimitRequestFieldSize 65536"


@pytest.mark.parametrize("store", ["cookie", "cache"])
def test_normal_request_work_is_small(apache_factory, provider, store):
    """The counting itself (and the reference for findings 3 and 4): a normal protected request with a
    valid session costs at most 3 cookie lookups and 1 sealed open; no store call in cookie mode, at
    most 2 in cache mode."""
    extra = TRACE_WORK if store == "cookie" else cache_mode(None, TRACE_WORK)
    a = apache_factory(provider.discovery_url, extra=extra)
    browser = Browser()
    Login(browser, a).run()
    for _ in range(2):
        offset = a.log_size()
        r = raw_get(a, "/protected/env", session_cookie_header(browser))
        assert r.status == 200, r.text[:300]
        work = wait_work(a, offset)[-1]
        assert work.lookups <= 3 and work.opens <= 1, work
        assert work.store_calls == 0 if store == "cookie" else work.store_calls <= 2, work


def chunk_marker_flood(size: int) -> str:
    """31 tiny chunks and as many `idtoken_session=chunks-32` markers as fit in `size` bytes."""
    header = "; ".join("%s_%d=x" % (SESSION, i) for i in range(31))
    marker = "%s=chunks-32" % SESSION
    n = (size - len(header)) // (len(marker) + 2)
    return header + ("; " + marker) * n


@pytest.fixture
def traced_cookie_site(apache_factory, provider):
    return apache_factory(provider.discovery_url, extra="\n".join([TRACE_WORK, BIG_HEADERS]))


@pytest.mark.parametrize("size", [8000, 60000], ids=["8000 bytes", "60000 bytes"])
def test_chunk_marker_flood_costs_no_more_than_a_normal_request(traced_cookie_site, provider, size):
    """Finding 3. Attack (cookie mode, no login needed): 31 tiny chunk cookies and hundreds of
    `idtoken_session=chunks-32` markers in one Cookie header. At most 2 session values are tried and the
    chunks are found from one pass: the request's cookie lookups and sealed opens stay within those of
    a normal request with a valid chunked session (L <= 40, O <= 2; before: markers x 32 lookups)."""
    a = traced_cookie_site
    provider.configure(extra_claims={"groups": BIG_GROUPS})
    browser = Browser()
    Login(browser, a).run()
    chunked = session_cookie_header(browser)
    assert "chunks-" in chunked
    offset = a.log_size()
    r = raw_get(a, "/protected/env", chunked)
    assert r.status == 200, r.text[:300]
    normal = wait_work(a, offset)[-1]

    flood = chunk_marker_flood(size)
    offset = a.log_size()
    r = raw_get(a, "/protected/env", flood)
    assert r.status == 302, "%s:\n%s" % (r.status, r.text[:300])
    work = wait_work(a, offset)[-1]
    markers = flood.count("chunks-32")
    assert work.lookups <= 40 and work.opens <= 2, \
        "%d markers cost %r; a valid chunked session costs %r" % (markers, work, normal)


def test_many_session_values_are_not_all_opened(traced_cookie_site, provider):
    """Finding 3. Attack (cookie mode): a Cookie header holding ~130 `idtoken_session` values that look
    sealed (random base64url). At most 2 are tried: at most 2 sealed opens, a handful of lookups."""
    a = traced_cookie_site
    values = []
    while len("; ".join(values)) < 7900:
        values.append("%s=%s" % (SESSION, secrets.token_urlsafe(45)))
    offset = a.log_size()
    r = raw_get(a, "/protected/env", "; ".join(values[:-1]))
    assert r.status == 302, r.text[:300]
    work = wait_work(a, offset)[-1]
    assert work.opens <= 2 and work.lookups <= 40, "%d values cost %r" % (len(values) - 1, work)


def id_flood(kind: str, size: int) -> str:
    """`idtoken_session` values joined by ';' up to `size` bytes: 'x' (449 copies in 8081 bytes), or
    random values of the session-ID shape (43 base64url characters)."""
    values = []
    while True:
        value = "x" if kind == "x" else secrets.token_urlsafe(32)
        if len(";".join(values + ["%s=%s" % (SESSION, value)])) > size:
            return ";".join(values)
        values.append("%s=%s" % (SESSION, value))


@pytest.mark.parametrize("kind,size", [("x", 8081), ("ids", 60000)], ids=["449 x", "1000 random IDs"])
def test_cookie_value_flood_makes_at_most_two_store_calls(apache_factory, provider, kind, size):
    """Finding 4. Attack (cache mode, no login needed): hundreds of `idtoken_session` values in one
    Cookie header (449 copies of 'x' at the default header limit; ~1000 random values of the session-ID
    shape under a 64 KiB limit). Only values of the ID shape are looked up, at most 2: at most 2 store
    calls per request, and the child's VmPeak does not grow by tens of MB (no 64 KiB buffer per lookup).
    One child (one_process_settings); MALLOC_ARENA_MAX=1 so a thread's first malloc arena (64 MB of
    reserved address space) is not taken for the module's memory."""
    a = apache_factory(provider.discovery_url, extra=cache_mode(None, TRACE_WORK, BIG_HEADERS, one_process_settings(mpm())),
                       env={"MALLOC_ARENA_MAX": "1"})
    browser = Browser()
    Login(browser, a).run()
    for _ in range(3):  # warm the child up with normal requests
        assert raw_get(a, "/protected/env", session_cookie_header(browser)).status == 200
    flood = id_flood(kind, size)
    count = flood.count(SESSION + "=")
    assert count >= (449 if kind == "x" else 900), count
    children = a.children()
    assert children, "no child process"
    before = {pid: vm_peak_kib(pid) for pid in children}
    for i in range(4):
        offset = a.log_size()
        r = raw_get(a, "/protected/env", flood)
        assert r.status == 302, r.text[:300]
        work = wait_work(a, offset)[-1]
        assert work.store_calls <= 2, "request %d: %d values cost %r" % (i, count, work)
    growth = {pid: (vm_peak_kib(pid) - kib) // 1024 for pid, kib in before.items() if pid in a.children()}
    assert max(growth.values(), default=0) < 16, "VmPeak grew by %s MiB (child pid: MiB)" % growth
    print("VmPeak growth (MiB per child) after 4 floods of %d values: %s" % (count, growth))


# ---------------------------------------------------------------------------------------------------
# 5. Back-channel logout by sid ends every session with that sid
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("store", ["file", "redis"])
def test_backchannel_logout_by_sid_ends_every_session_with_that_sid(apache_factory, provider, redis, store):
    """Finding 5. Attack: two logins carry the same provider session id (the provider reuses a sid, or a
    stolen older copy of the session); a back-channel logout by that sid must end both, not only the
    newest. A session of another sid stays."""
    a = apache_factory(provider.discovery_url, extra=cache_mode(redis if store == "redis" else None))
    provider.configure(extra_claims={"sid": "same-sid"})
    first, second = Browser(), Browser()
    Login(first, a).run()
    Login(second, a).run()
    provider.configure()
    other = Browser()
    Login(other, a).run()
    result = provider.backchannel_logout(a.url("/protected/callback"), sid="same-sid")
    assert result["status"] == 200, "%s: %s" % (result["status"], result["body"][:300])
    assert_logged_out(second, a, provider)
    assert_logged_out(first, a, provider)
    assert_logged_in(other, a)


# ---------------------------------------------------------------------------------------------------
# 6. A sealed session is bound to the site's session profile
# ---------------------------------------------------------------------------------------------------

PROFILE_CHANGES = {
    "REMOTE_USER from email": "IDTokenRemoteUserClaim email",
    "REMOTE_USER pattern": "IDTokenRemoteUserClaim sub ^(.+)-0001$",
    "claims kept": "IDTokenClaimsKeep email",
    "claims dropped": "IDTokenClaimsDrop groups",
    "claim delimiter": "IDTokenClaimDelimiter |",
}


@pytest.mark.parametrize("change", list(PROFILE_CHANGES))
def test_session_of_another_profile_is_refused(apache_factory, provider, change):
    """Finding 6. Attack: server B shares A's key file, provider and client but maps REMOTE_USER (or
    keeps claims, or joins lists) differently; A's session cookie sent to B must not pass there with
    A's REMOTE_USER and claims: B sends the browser to log in (302)."""
    a = apache_factory(provider.discovery_url)
    b = apache_factory(provider.discovery_url, key_file=a.key_file, extra=PROFILE_CHANGES[change])
    browser = Browser()
    Login(browser, a).run()
    assert_logged_out(browser.clone(), b, provider)
    assert_logged_in(browser, a)
    # B's own login works, with B's profile.
    env = Login(Browser(), b).run()
    if "email" in PROFILE_CHANGES[change] and "RemoteUser" in PROFILE_CHANGES[change]:
        assert env["REMOTE_USER"] == "alice@example.org"


def test_session_is_accepted_by_a_server_with_the_same_profile(apache_factory, provider):
    """Finding 6, the control: servers behind one load balancer (same key file and the same session
    settings) keep accepting each other's sessions."""
    profile = "\n".join(["IDTokenRemoteUserClaim email ^([^@]+)@example\\.org$", "IDTokenClaimsDrop groups",
                         "IDTokenClaimDelimiter |"])
    a = apache_factory(provider.discovery_url, extra=profile)
    b = apache_factory(provider.discovery_url, key_file=a.key_file, extra=profile)
    browser = Browser()
    assert Login(browser, a).run()["REMOTE_USER"] == "alice"
    env = assert_logged_in(browser, b, user="alice").json()
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org" and "IDTOKEN_CLAIM_groups" not in env


def test_cap_to_token_expiry_of_the_loading_site_applies(apache_factory, provider):
    """Finding 6. Attack: a session made by A (IDTokenSessionCapToTokenExpiry Off) from a token that has
    expired since, sent to B (same key, same session profile) which caps sessions to the token's
    expiry: B applies its own cap when it loads the session (302) while A still accepts it. Before the
    token's expiry B accepts the same session: the refusal is the cap, not the profile."""
    a = apache_factory(provider.discovery_url)
    b = apache_factory(provider.discovery_url, key_file=a.key_file,
                       extra="IDTokenSessionCapToTokenExpiry On\nIDTokenClockSkew 0")
    exp = int(time.time()) + 5
    provider.configure(extra_claims={"exp": exp})
    browser = Browser()
    Login(browser, a).run()
    if time.time() < exp - 0.5:  # (on a machine too loaded for that, the check is skipped)
        assert_logged_in(browser, b)
    time.sleep(max(0.0, exp + 1.5 - time.time()))
    assert_logged_in(browser, a)
    assert_logged_out(browser, b, provider)


# ---------------------------------------------------------------------------------------------------
# 7. Control characters in claim names
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def claims_site(module_apache_factory, provider_server):
    def extra(a):
        return "\n".join(["ScriptAlias /protected/root/env %s/cgi/env.cgi" % a.folder,
                          "<Location /protected/root>", "  Require idtoken-claim groups:root", "</Location>"])
    return module_apache_factory(provider_server.discovery_url, extra=extra)


@pytest.mark.parametrize("name", ["groups\u0000x", "groups\u001fx", "groups\u007f", "\ngroups", "gro\tups"],
                         ids=["NUL", "US", "DEL", "LF", "TAB"])
def test_claim_name_with_a_control_character_is_refused(claims_site, provider, name):
    """Finding 7. Attack: the token carries {"groups\\u0000x": "root"} (and other control characters in
    a top-level claim name) to satisfy `Require idtoken-claim groups:root` through truncation. The
    login is refused at the callback (401, logged as a bad claim name): no session."""
    provider.configure(extra_claims={name: "root"})
    login = Login(Browser(), claims_site, "/protected/root/env").start().at_provider()
    offset = claims_site.log_size()
    r = login.callback()
    assert r.status_code == 401, "the login with claim %r answered %d (%s)" % (name, r.status_code,
                                                                                r.headers.get("Location"))
    assert not session_set(r), set_cookies(r)
    assert wait_module_log(claims_site, offset, r"claim name"), claims_site.log_since(offset)[-2000:]
    assert login.browser.get(claims_site.url("/protected/root/env")).status_code == 302


def test_claim_names_without_control_characters_are_fine(claims_site, provider):
    """Finding 7, the control: names with spaces and non-ASCII letters log in; /protected/root still
    wants groups:root, which alice's groups do not hold (401)."""
    provider.configure(extra_claims={"grüppe name": "root", "x y": 1})
    browser = Browser()
    env = Login(browser, claims_site).run()
    assert env["REMOTE_USER"] == "alice-0001"
    assert browser.get(claims_site.url("/protected/root/env")).status_code == 401


# ---------------------------------------------------------------------------------------------------
# 8. The Connection header cannot make mod_proxy drop the claim headers
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def echo_backend():
    b = HeaderEchoBackend()
    yield b
    b.close()


@pytest.fixture(scope="module")
def proxy_site(module_apache_factory, provider_server, echo_backend):
    extra = "\n".join([load_modules("proxy", "proxy_http"),
                       "ProxyPass /protected/proxied/ http://127.0.0.1:%d/" % echo_backend.port])
    return module_apache_factory(provider_server.discovery_url, extra=extra)


@pytest.fixture(scope="module")
def proxy_user(proxy_site, provider_server):
    provider_server.reset()
    browser = Browser()
    Login(browser, proxy_site).run()
    return browser


@pytest.mark.parametrize("connection", [
    "keep-alive, IDToken-Claim-groups",
    "IDToken-Claim-groups",
    "close, idtoken-claim-groups, IDTOKEN-CLAIM-EMAIL",
    "keep-alive,IDToken_Claim_groups , IDToken-Claim-email",
])
def test_connection_header_cannot_drop_the_claim_headers(proxy_site, proxy_user, connection):
    """Finding 8. Attack: the client names the module's claim headers in its Connection header
    (hop-by-hop), so that mod_proxy would remove them before the backend, which then cannot tell a
    missing claim from an absent one. The backend still receives IDToken-Claim-groups and -email."""
    r = proxy_user.get(proxy_site.url("/protected/proxied/echo"), headers={"Connection": connection})
    assert r.status_code == 200, r.text[:500]
    echo = r.json()
    assert HeaderEchoBackend.header(echo, "IDToken-Claim-groups") == ["staff,admins"], echo["headers"]
    assert HeaderEchoBackend.header(echo, "IDToken-Claim-email") == ["alice@example.org"], echo["headers"]


def test_connection_header_still_works_for_other_headers(proxy_site, proxy_user):
    """Finding 8, the control: the vector is real (mod_proxy drops a header the client names in
    Connection) and only the module's own names are taken out of it."""
    r = proxy_user.get(proxy_site.url("/protected/proxied/echo"), headers={"X-Other": "1"})
    assert HeaderEchoBackend.header(r.json(), "X-Other") == ["1"]
    r = proxy_user.get(proxy_site.url("/protected/proxied/echo"),
                       headers={"X-Other": "1", "Connection": "keep-alive, X-Other, IDToken-Claim-groups"})
    echo = r.json()
    assert HeaderEchoBackend.header(echo, "X-Other") == [], echo["headers"]
    assert HeaderEchoBackend.header(echo, "IDToken-Claim-groups") == ["staff,admins"], echo["headers"]


# ---------------------------------------------------------------------------------------------------
# 9. State cookies over https are __Host- prefixed
# ---------------------------------------------------------------------------------------------------

@pytest.fixture
def https_site(apache_factory, provider, tmp_path):
    """The standard server plus an https port (mod_ssl, a self-signed certificate): (apache, port)."""
    cert, key = self_signed_certificate(tmp_path)
    port = free_port()
    a = apache_factory(provider.discovery_url, extra=https_vhost(port, cert, key))
    return a, port


def state_cookies(response) -> list:
    return [c for c in set_cookies(response) if STATE in c.name and c.value and not c.clears]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_https_login_csrf_with_a_planted_unprefixed_state_cookie_is_refused(https_site, provider):
    """Finding 9. Attack (login CSRF): the attacker starts a login at the https site and keeps the state
    cookie's value and the provider's form_post answer; the victim's browser carries that value under
    the un-prefixed name idtoken_state_<12> (a sibling subdomain can plant that, not a __Host- one) and
    posts the attacker's answer: 400, state cookie missing, no session. The state cookie over https is
    __Host-idtoken_state_<12>: Secure, Path=/, no Domain."""
    a, port = https_site
    attacker = Browser(verify=False)
    r = attacker.get(https_url(port, "/protected/env"))
    assert r.status_code == 302, r.text[:500]
    (state,) = state_cookies(r)
    assert state.name.startswith("__Host-" + STATE), "the state cookie over https: %s" % state.header
    assert len(state.name) == len("__Host-" + STATE) + 12, state.name
    assert state.has("secure") and state.get("path") == "/" and not state.has("domain"), state.header
    page = attacker.get(r.headers["Location"])
    assert page.status_code == 200, page.text[:500]
    action, fields = parse_form(page.text)["action"], form_fields(page.text)
    assert action == https_url(port, "/protected/callback"), action

    planted = "%s=%s" % (state.name[len("__Host-"):], state.value)
    offset = a.log_size()
    victim = requests.post(action, data=fields, headers={"Cookie": planted}, verify=False, allow_redirects=False,
                           timeout=30)
    assert victim.status_code == 400, "the planted state cookie was accepted (%d, %s)" % (
        victim.status_code, victim.headers.get("Location"))
    assert "invalid_state" in victim.text, victim.text[:500]
    assert not session_set(victim), set_cookies(victim)
    assert wait_module_log(a, offset, r"state"), a.log_since(offset)[-2000:]
    # The answer was good: with the prefixed cookie (the attacker's own browser) it logs in.
    r = attacker.submit(page)
    assert r.status_code == 303, r.text[:500]
    assert [c.name for c in session_set(r)] == ["__Host-" + SESSION]


def test_state_cookie_over_plain_http_keeps_its_name(apache, provider, browser):
    """Finding 9, the control: over plain http (loopback) the state cookie stays idtoken_state_<12>, as
    browsers refuse a __Host- cookie that is not Secure."""
    r = browser.get(apache.url("/protected/env"))
    assert r.status_code == 302
    (state,) = state_cookies(r)
    assert state.name.startswith(STATE) and len(state.name) == len(STATE) + 12, state.header


# ---------------------------------------------------------------------------------------------------
# 10. Logout CSRF
# ---------------------------------------------------------------------------------------------------

CROSS_SITE = {
    "Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                                  "Sec-Fetch-Dest": "document"},
    "Sec-Fetch-Site same-site": {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate",
                                 "Sec-Fetch-Dest": "document"},
    "foreign Origin": {"Origin": "https://evil.example"},
    "foreign Referer": {"Referer": "https://evil.example/page.html"},
    "Referer of another port": {"Referer": "http://localhost:1/page.html"},
}


@pytest.mark.parametrize("case", list(CROSS_SITE))
def test_cross_site_logout_asks_for_confirmation(apache, provider, browser, case):
    """Finding 10. Attack: another site makes the browser GET <redirect URI>?logout=... (a link, an
    image). Cross-site (Sec-Fetch-Site cross-site or same-site, or without it a foreign Origin or
    Referer) it does not log out: 200 with a short "Log out?" page linking to the same logout URL on
    this origin, Cache-Control no-store; the session stays, no cookie is cleared, the provider's
    end_session endpoint is not visited. Following the link (same-origin) logs out."""
    login = Login(browser, apache)
    login.run()
    url = logout_url(apache, "/public/env")
    r = browser.get(url, headers=CROSS_SITE[case])
    assert r.status_code == 200, "a %s logout answered %d (%s)" % (case, r.status_code, r.headers.get("Location"))
    assert "Location" not in r.headers
    assert "no-store" in cache_control(r), r.headers.get("Cache-Control")
    assert not [c for c in set_cookies(r) if SESSION in c.name], set_cookies(r)
    page = page_links(r.text)
    assert page.title.strip() == "Log out?", r.text[:500]
    assert provider.stats()["end_session"] == []
    assert_logged_in(browser, apache)

    expected = urllib.parse.urlsplit(url)
    links = [urllib.parse.urlsplit(urllib.parse.urljoin(url, href)) for href in page.links]
    same = [l for l in links if (l.scheme, l.netloc, l.path) == (expected.scheme, expected.netloc, expected.path)
            and urllib.parse.parse_qs(l.query) == urllib.parse.parse_qs(expected.query)]
    assert same, "no same-origin link to %s in:\n%s" % (url, r.text[:1000])
    r = browser.get(urllib.parse.urlunsplit(same[0]), headers={"Sec-Fetch-Site": "same-origin",
                                                                "Sec-Fetch-Mode": "navigate"})
    assert r.status_code == 302, r.text[:500]
    location = r.headers["Location"]
    assert location.startswith(provider.discovery()["end_session_endpoint"] + "?"), location
    assert_logged_out(browser, apache, provider)


SAME_ORIGIN = {
    "no such headers": {},
    "Sec-Fetch-Site same-origin": {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"},
    "Sec-Fetch-Site none": {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"},
    "own Referer": {"Referer": "{origin}/public/env"},
}


@pytest.mark.parametrize("case", list(SAME_ORIGIN))
def test_same_origin_logout_goes_through(apache, provider, browser, case):
    """Finding 10, the control: a logout from the site itself (Sec-Fetch-Site same-origin or none,
    typed in the address bar; no such headers at all; a Referer of this origin) logs out as before:
    302 to the provider's end_session_endpoint with id_token_hint."""
    login = Login(browser, apache)
    login.run()
    headers = {k: v.replace("{origin}", apache.url("")) for k, v in SAME_ORIGIN[case].items()}
    r = browser.get(logout_url(apache, "/public/env"), headers=headers)
    assert r.status_code == 302, "%s: %d\n%s" % (case, r.status_code, r.text[:300])
    location = r.headers["Location"]
    assert location.startswith(provider.discovery()["end_session_endpoint"] + "?"), location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["id_token_hint"] == [login.id_token]
    assert_logged_out(browser, apache, provider)


# ---------------------------------------------------------------------------------------------------
# 11. Provider error responses only with a matching state
# ---------------------------------------------------------------------------------------------------

XSS = "<script>alert(1)</script>"


@pytest.fixture
def error_doc_site(apache_factory, provider):
    """The standard server with its 400 and 401 pages served by the environment-dump CGI."""
    return apache_factory(provider.discovery_url, extra="ErrorDocument 400 /public/env\nErrorDocument 401 /public/env")


@pytest.mark.parametrize("state", ["none", "unknown", "another browser's"])
def test_provider_error_without_a_matching_state_is_invalid_state(error_doc_site, provider, state):
    """Finding 11. Attack: anyone POSTs error=access_denied&error_description=<script>... to the
    callback (no state, a made-up state, or a real login's state without its cookie), hoping an
    ErrorDocument shows it unescaped. 400 invalid_state; IDTOKEN_PROVIDER_ERROR_DESCRIPTION is not set;
    the error log does not hold the posted description."""
    a = error_doc_site
    body = {"error": "access_denied", "error_description": XSS}
    if state == "unknown":
        body["state"] = secrets.token_urlsafe(32)
    elif state == "another browser's":
        body["state"] = started_login(a).fields["state"]
    offset = a.log_size()
    r = requests.post(a.url("/protected/callback"), data=body, allow_redirects=False, timeout=30)
    assert r.status_code == 400, "%d:\n%s" % (r.status_code, r.text[:500])
    env = r.json()
    shown = {k: v for k, v in env.items() if "PROVIDER_ERROR" in k}
    assert not shown, "the posted description reached the error document: %s" % shown
    assert env.get("REDIRECT_IDTOKEN_ERROR") == "invalid_state", env.get("REDIRECT_IDTOKEN_ERROR")
    assert XSS not in r.text
    wait_module_log(a, offset, r"state", timeout=1.0)
    logged = a.log_since(offset)
    assert "<script>" not in logged and "alert(1)" not in logged, logged[-2000:]


def test_provider_error_with_its_state_is_shown(error_doc_site, provider):
    """Finding 11, the control: the provider's own refusal, posted with the state of a live login and its
    cookie, is shown: 401, IDTOKEN_ERROR access_denied and the description for the error document, the
    description in the log."""
    a = error_doc_site
    provider.configure(misbehave="error_response")
    login = started_login(a)
    assert login.fields.get("error") == "access_denied" and login.fields.get("state")
    offset = a.log_size()
    r = login.callback()
    assert r.status_code == 401, "%d:\n%s" % (r.status_code, r.text[:500])
    env = r.json()
    assert env.get("REDIRECT_IDTOKEN_ERROR") == "access_denied", env
    assert env.get("REDIRECT_IDTOKEN_PROVIDER_ERROR_DESCRIPTION") == "The user denied the request", env
    assert wait_module_log(a, offset, r"The user denied the request")


# ---------------------------------------------------------------------------------------------------
# 12. A refreshed session cookie makes a cacheable response private
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,kept", [
    ("public, max-age=600", ["max-age=600"]),
    ("public, s-maxage=300, max-age=600, must-revalidate", ["max-age=600", "must-revalidate"]),
])
def test_refreshed_session_cookie_makes_a_cacheable_response_private(apache_factory, provider, value, kept):
    """Finding 12. Attack: a response that a shared cache may keep (Cache-Control: public) carries the
    re-issued session cookie (IDTokenSessionRefreshInterval 1, a request 1.5 s after login), so the
    cache would hand one user's session to others. The module makes it private: public and s-maxage
    removed, private added, the other directives kept. Responses without its Set-Cookie are left alone."""
    def extra(a):
        return "\n".join(["IDTokenSessionRefreshInterval 1",
                          "ScriptAlias /protected/cacheable %s/cgi/cache.cgi" % a.folder,
                          "ScriptAlias /public/cacheable %s/cgi/cache.cgi" % a.folder])
    a = apache_factory(provider.discovery_url, extra=extra, cgis={"cache.cgi": CACHE_CONTROL_CGI})
    query = "?" + urllib.parse.quote(value)
    browser = Browser()
    Login(browser, a).run()
    time.sleep(1.5)
    r = browser.get(a.url("/protected/cacheable" + query))
    assert r.status_code == 200, r.text[:500]
    assert session_set(r), "no refreshed session cookie after 1.5 s: %s" % set_cookies(r)
    directives = cache_control(r)
    assert "public" not in directives, "a response with a session cookie is public: %s" % directives
    assert not [d for d in directives if d.startswith("s-maxage")], directives
    assert "private" in directives, directives
    for d in kept:
        assert d in directives, directives

    # Left alone: the same response without a session cookie (an unprotected URL, and a protected
    # one within the refresh interval).
    r = browser.get(a.url("/public/cacheable" + query))
    assert r.headers.get("Cache-Control") == value
    for _ in range(3):
        r = browser.get(a.url("/protected/cacheable" + query))
        assert r.status_code == 200
        if not session_set(r):
            assert r.headers.get("Cache-Control") == value
            break
    else:
        pytest.fail("every protected response re-issued the session")


# ---------------------------------------------------------------------------------------------------
# 13. A refresh never resurrects a session that logout removed
# ---------------------------------------------------------------------------------------------------

HAMMERS = 6
REDIS_DELAY = 0.03  # each store call's round trip through DelayProxy
# A round per value: the logout starts this long before the burst, whose threads start STAGGER apart
# (together they cover 0-110 ms, the store calls of a logout taking 2-4 round trips).
LEADS = [0.0, 0.02, 0.04, 0.06]
STAGGER = 0.01
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def logout_token(provider, sid):
    """A valid Logout Token for `sid` (signed by the provider), to POST at a moment of the test's choosing."""
    now = int(time.time())
    return provider.mint(claims={"sid": sid, "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 120,
                                 "events": {BACKCHANNEL_EVENT: {}}},
                         remove_claims=["sub", "auth_time", "email", "email_verified", "name", "groups"],
                         header={"typ": "logout+jwt"})


@pytest.mark.parametrize("how", ["logout", "back-channel logout"])
def test_refresh_never_resurrects_a_removed_session(apache_factory, provider, redis, how):
    """Finding 13. Attack (a race; cache mode on Redis, IDTokenSessionRefreshInterval 1): a burst of
    requests with the session cookie, each due to refresh the session (store get, then put), runs while
    the session is logged out (RP-initiated, or a back-channel Logout Token posted by the test). Every
    store call goes through DelayProxy (30 ms each way in), so a refresh whose get came before the
    removal has its put land after it: without a tombstone that put writes the session back. Afterwards
    the old cookie must be no session (302). One round per lead of the logout over the burst."""
    proxy = DelayProxy(redis.port, REDIS_DELAY)
    try:
        def extra(a):
            return "\n".join([SOCACHE_REDIS, "IDTokenCache redis:%s" % proxy.address, "IDTokenSessionStore cache",
                              "IDTokenSessionRefreshInterval 1", "Alias /protected/static %s/htdocs" % a.folder,
                              TRACE_WORK])
        a = apache_factory(provider.discovery_url, extra=extra)
        static = a.url("/protected/static/index.html")
        for round_, lead in enumerate(LEADS):
            browser = Browser()
            Login(browser, a).run()
            sid = provider.stats()["last_sid"]
            cookie = {SESSION: browser.cookie(SESSION)}
            token = logout_token(provider, sid)
            time.sleep(1.5)  # every request of the burst is due to refresh the session
            offset = a.log_size()
            barrier = threading.Barrier(HAMMERS + 1)
            statuses, errors = [], []

            def hammer(k):
                try:
                    barrier.wait(30)
                    time.sleep(lead + k * STAGGER)
                    for _ in range(6):
                        r = requests.get(static, cookies=cookie, headers={"Accept": "text/html"},
                                         allow_redirects=False, timeout=30)
                        statuses.append(r.status_code)
                except Exception as e:  # reported below, not lost in the thread
                    errors.append(repr(e))

            threads = [threading.Thread(target=hammer, args=(k,)) for k in range(HAMMERS)]
            for t in threads:
                t.start()
            barrier.wait(30)
            if how == "logout":
                r = requests.get(logout_url(a, "/public/env"), cookies=cookie, headers={"Accept": "text/html"},
                                 allow_redirects=False, timeout=30)
                assert r.status_code == 302, r.text[:300]
            else:
                r = requests.post(a.url("/protected/callback"), data={"logout_token": token}, allow_redirects=False,
                                  timeout=30)
                assert r.status_code == 200, r.text[:300]
            for t in threads:
                t.join(60)
            assert not errors, errors
            assert set(statuses) <= {200, 302}, statuses
            r = requests.get(static, cookies=cookie, headers={"Accept": "text/html"}, allow_redirects=False,
                             timeout=30)
            assert r.status_code == 302, "round %d (logout %.0f ms ahead): the session came back after its %s " \
                "(%d; the burst saw %s)" % (round_, lead * 1000, how, r.status_code, statuses)
            # For the record (-s): store calls per request of the round. Those of the burst that loaded
            # the session before its removal show the load, the put, the look for a tombstone (and a
            # remove): with the delays every first request of each thread does.
            print("round %d, %s %.0f ms ahead: store calls per request %s, answers %s" % (
                round_, how, lead * 1000, dict(collections.Counter(w.store_calls for w in work_lines(a, offset))),
                dict(collections.Counter(statuses))))
    finally:
        proxy.close()


# ---------------------------------------------------------------------------------------------------
# 14. Plain-http endpoints in the discovery document
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("member", ["jwks_uri", "authorization_endpoint", "end_session_endpoint"])
def test_plain_http_endpoint_on_a_remote_host_is_refused(apache_factory, provider, member):
    """Finding 14. Attack: the discovery document (fetched over http from a loopback provider here)
    names a plain-http endpoint on another host, which an attacker on the path could answer (keys) or
    read (id_token_hint). The document is refused: a login gets 502, the log says "plain http"."""
    provider.configure(discovery_overrides={member: "http://idp.example.test/" + member})
    a = apache_factory(provider.discovery_url)
    offset = a.log_size()
    r = Browser().get(a.url("/protected/env"))
    assert r.status_code == 502, "discovery with %s over plain http: %d %s" % (member, r.status_code,
                                                                               r.headers.get("Location"))
    assert "Location" not in r.headers
    assert wait_module_log(a, offset, r"plain http"), a.log_since(offset)[-2000:]


@pytest.mark.parametrize("overrides", [
    {"authorization_endpoint": "http://localhost:{port}/authorize",
     "end_session_endpoint": "https://idp.example.test/end_session"},
    {"jwks_uri": "http://127.0.0.1:{port}/jwks", "end_session_endpoint": "http://[::1]:9/end_session"},
], ids=["localhost and remote https", "127.0.0.1 and [::1]"])
def test_loopback_http_and_remote_https_endpoints_are_accepted(apache_factory, provider, overrides):
    """Finding 14, the control: plain http on loopback (127.x, localhost, [::1]) and https anywhere are
    accepted: the login completes, and logout goes to the end_session_endpoint as published."""
    overrides = {k: v.replace("{port}", str(provider.port)) for k, v in overrides.items()}
    provider.configure(discovery_overrides=overrides)
    a = apache_factory(provider.discovery_url)
    browser = Browser()
    login = Login(browser, a).start()
    if "authorization_endpoint" in overrides:
        assert login.authorize_url.startswith(overrides["authorization_endpoint"] + "?"), login.authorize_url
    login.at_provider()
    r = login.callback()
    assert r.status_code == 303, r.text[:500]
    assert_logged_in(browser, a)
    r = browser.get(logout_url(a, "/public/env"))
    assert r.status_code == 302 and r.headers["Location"].startswith(overrides["end_session_endpoint"] + "?"), \
        r.headers.get("Location")


# ---------------------------------------------------------------------------------------------------
# One discovery fetch at a time per child
# ---------------------------------------------------------------------------------------------------

def test_one_discovery_fetch_at_a_time_per_child(apache_factory, provider):
    """Also in issue 12. Attack: while the provider is slow (its discovery document takes 3 s), six
    logins start at once in one child of eight threads. One thread fetches, the others wait for it:
    the provider sees one discovery fetch, not six, and every login is redirected."""
    if mpm() == "prefork":
        pytest.skip("prefork: a child serves one request at a time, so no thread ever waits on another's fetch")
    a = apache_factory(provider.discovery_url, extra=one_process_settings(mpm()))
    provider.fault(discovery="slow", delay=3)
    barrier = threading.Barrier(6)
    statuses, errors = [], []

    def login():
        try:
            barrier.wait(30)
            r = requests.get(a.url("/protected/env"), headers={"Accept": "text/html"}, allow_redirects=False,
                             timeout=60)
            statuses.append(r.status_code)
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=login) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors
    assert statuses == [302] * 6, statuses
    assert provider.stats()["discovery"] == 1, "%d discovery fetches for 6 logins at once" % (
        provider.stats()["discovery"])
