"""Interoperability with a real OpenID Provider that people deploy: LemonLDAP::NG from Debian's
packages (install it with `bash Tests/interop/lemonldap/install.sh`), its portal in
llng-fastcgi-server behind an Apache of its own (lemonldap.py, Tests/interop/lemonldap/).

The provider is http://127.0.0.1:<p>/ and the protected site http://localhost:<a>: two sites, so the
form_post is cross-site as in real deployments. LemonLDAP::NG is configured as an admin would, and
issues its ID tokens its own way (RS256 with its kid, `aud` as an array with `azp`, an issuer ending in
`/`, a JWKS key without `alg`, `expires_in` and `session_state` in the form_post body, a logout
confirmation page, `none` and HS* advertised in discovery), and the module must take them as they are.
"""

import json
import time
import urllib.parse

import pytest

from harness import Browser, b64url_decode, free_port, jws_parts, logout_url, module_log_lines, parse_form, verify_jws
from lemonldap import DEMO_USERS, LemonLDAP
from test_browser import driver, page_json  # noqa: F401 (driver is the Chromium fixture)

pytestmark = [pytest.mark.interop, pytest.mark.browser]

CLIENT_ID = "mod-auth-idtoken-interop"
# LemonLDAP::NG uses the client secret only for HS* ID tokens; the module wants 32 bytes or more.
CLIENT_SECRET = "interop-test-client-secret-0123456789abcdef"
RETURN_PATH = "/public/env"


class Deployment:
    """A LemonLDAP::NG portal and a protected site registered there as a relying party."""

    def __init__(self, llng, site):
        self.llng, self.site = llng, site


def _deploy(apache_make, started, directives="", **llng_options):
    port = free_port()
    site_origin = "http://localhost:%d" % port
    llng = LemonLDAP(client_id=CLIENT_ID, redirect_uri=site_origin + "/protected/callback",
                     post_logout_redirect_uris=[site_origin + RETURN_PATH], **llng_options)
    started.append(llng)
    llng.start()
    site = apache_make(
        llng.discovery_url, port=port, client_id=CLIENT_ID,
        directives=lambda a: a.module_directives() + ("\n" + directives if directives else ""),
        extra="<Location /protected>\n  IDTokenPassIDToken serialized\n</Location>")
    return Deployment(llng, site)


@pytest.fixture(scope="module")
def deployment(module_apache_factory):
    """LemonLDAP::NG as configured in Tests/interop/lemonldap/ (RS256, its issuer the portal URL with
    a trailing slash), shared by the tests of this file."""
    started = []
    try:
        yield _deploy(module_apache_factory, started)
    finally:
        for llng in started:
            llng.cleanup()


@pytest.fixture
def deploy(apache_factory):
    """deploy(directives="", **LemonLDAP options) -> a Deployment of its own, stopped after the test."""
    started = []

    def make(directives="", **llng_options):
        return _deploy(apache_factory, started, directives, **llng_options)

    yield make
    for llng in started:
        llng.cleanup()


def query_of(url):
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query,
                                                      keep_blank_values=True).items()}


def jws_header(token):
    """A token's JOSE header, whatever follows it (LemonLDAP::NG's `none` tokens have no third part)."""
    return json.loads(b64url_decode(token.split(".")[0]))


def context(d):
    """What to print when a step fails: both servers' logs."""
    return "\n--- site error log:\n%s\n%s" % (d.site.error_log()[-3000:], d.llng.logs())


class Steps:
    """One login through LemonLDAP::NG's real login form, with a browser-like HTTP client, each step
    kept for assertions (the Chromium test below does the same in a real browser)."""

    def __init__(self, d, user="dwho", browser=None):
        self.d, self.user, self.browser = d, user, browser or Browser()

    def to_provider(self):
        r = self.browser.get(self.d.site.url("/protected/env"))
        assert r.status_code == 302, "expected a redirect to the provider, got %d%s" % (r.status_code, context(self.d))
        self.authorize_url = r.headers["Location"]
        self.request = query_of(self.authorize_url)
        self.login_page = self.browser.get(self.authorize_url)
        assert self.login_page.status_code == 200, "LemonLDAP::NG answered %d%s" % (
            self.login_page.status_code, context(self.d))
        return self

    def log_in(self):
        """Fill in LemonLDAP::NG's login form (action "#": the authorize URL itself) and get its
        form_post page, whose onload would POST the response to the redirect URI."""
        form = parse_form(self.login_page.text)
        names = [n for n, _ in form["fields"]]
        assert "user" in names and "password" in names, "not LemonLDAP::NG's login form: %r" % form
        self.form_post_page = self.browser.submit(self.login_page, override={"user": self.user,
                                                                            "password": self.user})
        assert self.form_post_page.status_code == 200, "login answered %d%s" % (
            self.form_post_page.status_code, context(self.d))
        self.form_post = parse_form(self.form_post_page.text)
        self.fields = dict(self.form_post["fields"])
        assert "id_token" in self.fields, "no ID token in LemonLDAP::NG's answer:\n%s%s" % (
            self.form_post_page.text[:3000], context(self.d))
        return self

    def callback(self):
        self.callback_response = self.browser.submit(self.form_post_page)
        return self.callback_response

    def run(self):
        self.to_provider().log_in()
        r = self.callback()
        assert r.status_code == 303, "the module refused LemonLDAP::NG's answer (%d):\n%s%s" % (
            r.status_code, r.text[:1000], context(self.d))
        page = self.browser.get(urllib.parse.urljoin(self.d.site.url("/"), r.headers["Location"]))
        assert page.status_code == 200, page.text[:1000]
        return page.json()


def assert_lemonldap_token(token, d, nonce=None):
    """The ID token as LemonLDAP::NG issued it: verified here independently of the module, against the
    provider's published keys. Returns (header, claims)."""
    header, claims, _, _ = jws_parts(token)
    assert verify_jws(token, d.llng.jwks()) == claims
    assert header["alg"] == "RS256" and header["kid"] == d.llng.key_id, header
    assert claims["iss"] == d.llng.issuer
    assert claims["aud"] == [CLIENT_ID], "LemonLDAP::NG's aud is an array, even of one"
    assert claims["azp"] == CLIENT_ID
    if nonce is not None:
        assert claims["nonce"] == nonce
    return header, claims


# ---------------------------------------------------------------------------------------------------
# What this provider publishes
# ---------------------------------------------------------------------------------------------------

def test_what_lemonldap_publishes(deployment):
    """The habits the module has to live with, checked so that a LemonLDAP::NG update that changes
    them shows up here rather than as a puzzling failure below."""
    llng = deployment.llng
    doc = llng.discovery()
    assert doc["issuer"] == llng.portal + "/", "the issuer is the portal URL, trailing slash included"
    assert doc["authorization_endpoint"] == llng.url("/oauth2/authorize")
    assert doc["end_session_endpoint"] == llng.url("/oauth2/logout")
    assert "form_post" in doc["response_modes_supported"] and "id_token" in doc["response_types_supported"]
    # Algorithms the module must never accept from discovery alone.
    assert {"none", "HS256"} <= set(doc["id_token_signing_alg_values_supported"])
    keys = llng.jwks()["keys"]
    assert len(keys) == 1 and keys[0]["kid"] == llng.key_id and keys[0]["kty"] == "RSA"
    assert "alg" not in keys[0], "LemonLDAP::NG publishes its key without alg"


# ---------------------------------------------------------------------------------------------------
# Login, step by step (what is on the wire)
# ---------------------------------------------------------------------------------------------------

def test_login_through_lemonldap_login_form(deployment):
    d = deployment
    offset = d.site.log_size()
    steps = Steps(d).to_provider()
    assert steps.authorize_url.startswith(d.llng.discovery()["authorization_endpoint"] + "?")
    assert steps.request["response_type"] == "id_token" and steps.request["response_mode"] == "form_post"
    assert steps.request["client_id"] == CLIENT_ID and steps.request["nonce"]

    steps.log_in()
    # LemonLDAP::NG's form_post body: more than id_token and state.
    assert urllib.parse.urljoin(steps.form_post_page.url, steps.form_post["action"]) == \
        d.site.url("/protected/callback")
    assert steps.fields["state"] == steps.request["state"]
    assert {"id_token", "state", "expires_in", "session_state"} <= set(steps.fields), steps.fields.keys()
    _, claims = assert_lemonldap_token(steps.fields["id_token"], d, nonce=steps.request["nonce"])
    assert claims["sub"] == "dwho"

    r = steps.callback()
    assert r.status_code == 303, "the module refused LemonLDAP::NG's answer (%d):\n%s%s" % (
        r.status_code, r.text[:1000], context(d))
    assert r.headers["Location"] == "/protected/env"
    env = steps.browser.get(d.site.url("/protected/env")).json()
    assert env["REMOTE_USER"] == "dwho"
    assert env["IDTOKEN_CLAIM_email"] == DEMO_USERS["dwho"]["mail"]
    assert env["IDTOKEN_CLAIM_name"] == DEMO_USERS["dwho"]["cn"]
    assert env["IDTOKEN_CLAIM_preferred_username"] == "dwho"
    assert env["IDTOKEN_TOKEN"] == steps.fields["id_token"], "the module passes the token as it was issued"
    logged = module_log_lines(d.site.log_since(offset), r"login of 'dwho' \(RS256, kid %s\)" % d.llng.key_id)
    assert logged, d.site.log_since(offset)


# ---------------------------------------------------------------------------------------------------
# Login and logout in headless Chromium
# ---------------------------------------------------------------------------------------------------

class Waiter:
    def __init__(self, driver, d):
        from selenium.webdriver.support.ui import WebDriverWait
        self.driver, self.d, self.wait = driver, d, WebDriverWait(driver, 60)

    def until(self, condition, what):
        from selenium.common.exceptions import TimeoutException
        try:
            return self.wait.until(condition)
        except TimeoutException:
            pytest.fail("browser stuck at %s waiting for %s\n--- page:\n%s%s" % (
                self.driver.current_url, what, self.driver.page_source[:3000], context(self.d)))


def test_login_and_logout_in_chromium(deployment, driver):  # noqa: F811 (driver: the imported fixture)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    d = deployment
    wait = Waiter(driver, d)
    assert d.site.url("/").startswith("http://localhost:") and d.llng.portal.startswith("http://127.0.0.1:")

    # LemonLDAP::NG's own login page.
    began = time.monotonic()
    driver.get(d.site.url("/protected/env"))
    user = wait.until(EC.presence_of_element_located((By.NAME, "user")), "LemonLDAP::NG's login form")
    assert driver.current_url.startswith(d.llng.url("/oauth2/authorize?"))
    user.send_keys("rtyler")
    driver.find_element(By.NAME, "password").send_keys("rtyler")
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()

    # Its form_post page posts, cross-site, to the redirect URI; the module answers 303 to the page.
    wait.until(lambda dr: dr.current_url == d.site.url("/protected/env")
               and "REMOTE_USER" in dr.find_element(By.TAG_NAME, "body").text, "the protected page")
    env = page_json(driver)
    assert env["REMOTE_USER"] == "rtyler"
    assert env["AUTH_TYPE"] == "IDToken"
    assert env["IDTOKEN_CLAIM_email"] == DEMO_USERS["rtyler"]["mail"]
    assert env["IDTOKEN_CLAIM_name"] == DEMO_USERS["rtyler"]["cn"]
    assert_lemonldap_token(env["IDTOKEN_TOKEN"], d)
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert "idtoken_session" in cookies, cookies
    assert not any(n.startswith("idtoken_state_") for n in cookies), "the state cookie was not cleared"
    login_seconds = time.monotonic() - began

    # RP-initiated logout: the module ends its session and sends the browser to LemonLDAP::NG's
    # end_session_endpoint, which asks for confirmation before ending its own session and returning.
    driver.get(logout_url(d.site, RETURN_PATH))
    accept = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "form.confirm button.positive")),
                        "LemonLDAP::NG's logout confirmation")
    assert driver.current_url.startswith(d.llng.url("/oauth2/logout?"))
    asked = query_of(driver.current_url)
    assert asked["client_id"] == CLIENT_ID and asked["post_logout_redirect_uri"] == d.site.url(RETURN_PATH)
    assert_lemonldap_token(asked["id_token_hint"], d)
    accept.click()
    wait.until(lambda dr: dr.current_url.startswith(d.site.url(RETURN_PATH + "?")), "the return URL")
    back = page_json(driver)
    assert query_of("?" + back["QUERY_STRING"]) == {"state": asked["state"]}
    assert "REMOTE_USER" not in back
    assert "idtoken_session" not in {c["name"] for c in driver.get_cookies()}

    # Both sessions are over: the protected page leads to LemonLDAP::NG's login form again.
    driver.get(d.site.url("/protected/env"))
    wait.until(EC.presence_of_element_located((By.NAME, "user")), "LemonLDAP::NG's login form after logout")
    assert driver.current_url.startswith(d.llng.url("/oauth2/authorize?"))
    print("LemonLDAP::NG %s: portal started in %.1f s, Chromium login in %.1f s" % (
        d.llng.version, d.llng.start_seconds, login_seconds))


# ---------------------------------------------------------------------------------------------------
# Other LemonLDAP::NG settings admins use
# ---------------------------------------------------------------------------------------------------

def test_issuer_without_trailing_slash(deploy):
    """oidcServiceMetaDataIssuer set to the portal URL without its `/`: discovery and tokens then name
    that issuer, which is exactly the discovery URL minus its suffix."""
    d = deploy(issuer_slash=False)
    assert d.llng.discovery()["issuer"] == d.llng.portal
    env = Steps(d).run()
    assert env["REMOTE_USER"] == "dwho"
    _, claims = assert_lemonldap_token(env["IDTOKEN_TOKEN"], d)
    assert claims["iss"] == d.llng.portal


def test_hs512_with_client_secret(deploy):
    """LemonLDAP::NG's manager proposes HS512 for a new relying party: the token is then an HMAC with
    the client secret, which the module accepts only when told to (IDTokenClientSecret and
    IDTokenSignatureAlgorithms)."""
    d = deploy(directives="IDTokenClientSecret %s\nIDTokenSignatureAlgorithms HS512" % CLIENT_SECRET,
               id_token_alg="HS512", client_secret=CLIENT_SECRET)
    steps = Steps(d)
    env = steps.run()
    header, _, _, _ = jws_parts(env["IDTOKEN_TOKEN"])
    assert header["alg"] == "HS512" and "kid" not in header
    assert env["REMOTE_USER"] == "dwho"


@pytest.mark.parametrize("alg, reason", [
    # LemonLDAP::NG writes an unsecured token as header.payload, without the final "." of RFC 7519.
    ("none", "not three dot-separated parts"),
    ("HS512", "signature algorithm .HS512. is not allowed"),
])
def test_token_algorithm_not_allowed_is_refused(deploy, alg, reason):
    """LemonLDAP::NG can be set to sign with `none`, or with HS512 (the secret the module was not given),
    and its discovery advertises both: the module, on its default algorithms, refuses the login."""
    d = deploy(id_token_alg=alg, client_secret=CLIENT_SECRET)
    offset = d.site.log_size()
    steps = Steps(d).to_provider().log_in()
    assert jws_header(steps.fields["id_token"])["alg"] == alg
    r = steps.callback()
    assert r.status_code == 401, "the module accepted an ID token signed with %s (%d)%s" % (alg, r.status_code,
                                                                                          context(d))
    assert "idtoken_session" not in steps.browser.cookie_names()
    assert module_log_lines(d.site.log_since(offset), "ID token refused: .*" + reason), d.site.log_since(offset)
