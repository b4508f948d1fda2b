"""The login through the module with a browser-like HTTP client, every step asserted."""

import urllib.parse

import pytest
import requests

from harness import URLSAFE_RANDOM, Browser, Login, jws_parts, set_cookies, verify_jws

EXPECTED_CLAIMS = {
    "REMOTE_USER": "alice-0001",
    "AUTH_TYPE": "IDToken",
    "IDTOKEN_CLAIM_email": "alice@example.org",
    "IDTOKEN_CLAIM_name": "Alice Example",
    "IDTOKEN_CLAIM_groups": "staff,admins",
    "HTTP_IDTOKEN_CLAIM_EMAIL": "alice@example.org",
    "HTTP_IDTOKEN_CLAIM_NAME": "Alice Example",
    "HTTP_IDTOKEN_CLAIM_GROUPS": "staff,admins",
}

SPOOFED = {"IDToken-Claim-email": "evil@x", "idtoken_claim_email": "evil", "IDTOKEN-CLAIM-SUB": "x",
           "IDToken-Claim-groups": "evil-admins", "IdToken-Claim-Name": "Evil Mallory",
           "IDToken-Claim-Role": "evil-superuser"}  # a claim the token does not have


def state_cookies(response):
    return [c for c in set_cookies(response) if c.name.startswith("idtoken_state_")]


def session_cookies(response):
    return [c for c in set_cookies(response) if c.name == "idtoken_session"]


def test_no_session_redirects_to_provider(apache, provider, browser):
    r = browser.get(apache.url("/protected/env"))
    assert r.status_code == 302, r.text[:500]
    location = r.headers["Location"]
    endpoint = provider.discovery()["authorization_endpoint"]
    assert location.startswith(endpoint + "?"), location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in query.values()), query
    q = {k: v[0] for k, v in query.items()}
    assert q["client_id"] == "test-client"
    assert q["redirect_uri"] == apache.url("/protected/callback")
    assert q["response_type"] == "id_token"
    assert q["response_mode"] == "form_post"
    assert "openid" in q["scope"].split()
    assert URLSAFE_RANDOM.match(q["state"]), q["state"]
    assert URLSAFE_RANDOM.match(q["nonce"]), q["nonce"]
    assert q["state"] != q["nonce"]

    cookies = state_cookies(r)
    assert len(cookies) == 1, set_cookies(r)
    c = cookies[0]
    assert c.value
    assert c.get("path") == "/"
    assert c.has("httponly")
    assert c.has("secure")
    assert str(c.get("samesite")).lower() == "none"
    assert c.get("max-age") == "360"  # the 300 s state lifetime, plus a minute to report "expired"
    assert not session_cookies(r), "no session may be set before the login"

    # Each redirect gets its own state and nonce.
    again = Browser().get(apache.url("/protected/env"))
    assert again.status_code == 302
    q2 = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(again.headers["Location"]).query).items()}
    assert q2["state"] != q["state"]
    assert q2["nonce"] != q["nonce"]
    assert state_cookies(again)[0].value != c.value


def test_full_login(apache, provider, browser):
    login = Login(browser, apache).start()
    q = login.params

    # The provider's form_post page posts the token and our state back to the redirect URI.
    login.at_provider()
    assert "<title>Submit This Form</title>" in login.provider_page.text
    assert login.form["action"] == q["redirect_uri"] == apache.url("/protected/callback")
    assert login.fields["state"] == q["state"]
    claims = verify_jws(login.id_token, provider.jwks())
    assert claims["nonce"] == q["nonce"]

    r = login.callback()
    assert r.status_code == 303, r.text[:1000]
    assert r.headers["Location"] in (apache.url("/protected/env"), "/protected/env")

    sessions = session_cookies(r)
    assert len(sessions) == 1, set_cookies(r)
    s = sessions[0]
    assert s.value and not s.clears
    assert s.has("httponly")
    assert str(s.get("samesite")).lower() == "lax"
    assert s.get("path") == "/"
    assert login.id_token not in s.header, "the session cookie must not carry the raw ID token"

    cleared = state_cookies(r)
    assert cleared, "the callback must clear the state cookie: %s" % set_cookies(r)
    assert all(c.get("max-age") == "0" for c in cleared), cleared
    assert {c.name for c in cleared} == {c.name for c in state_cookies(login.first)}
    assert not any(n.startswith("idtoken_state_") for n in browser.cookie_names())

    page = browser.get(apache.url("/protected/env"))
    assert page.status_code == 200, page.text[:1000]
    env = page.json()
    for name, value in EXPECTED_CLAIMS.items():
        assert env.get(name) == value, "%s: %r" % (name, env.get(name))

    # The session is the cookie: another client holding only that cookie is logged in too...
    other = requests.get(apache.url("/protected/env"), cookies={"idtoken_session": s.value},
                         allow_redirects=False, timeout=30)
    assert other.status_code == 200
    assert other.json()["REMOTE_USER"] == "alice-0001"
    # ...and a client without it is not.
    assert requests.get(apache.url("/protected/env"), allow_redirects=False, timeout=30).status_code == 302


def test_tampered_session_cookie_is_not_a_session(apache, provider, browser):
    Login(browser, apache).run()
    value = browser.cookie("idtoken_session")
    i = len(value) // 2
    tampered = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1:]
    r = requests.get(apache.url("/protected/env"), cookies={"idtoken_session": tampered},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 302, "a tampered session cookie was accepted (%d)" % r.status_code
    assert r.headers["Location"].startswith(provider.discovery()["authorization_endpoint"])


def test_login_returns_to_the_original_url_with_its_query(apache, provider, browser):
    login = Login(browser, apache, "/protected/env?a=1&b=two%20words")
    env = login.run()
    assert login.callback_response.headers["Location"] in (
        apache.url("/protected/env?a=1&b=two%20words"), "/protected/env?a=1&b=two%20words")
    assert env["QUERY_STRING"] == "a=1&b=two%20words"
    assert env["REMOTE_USER"] == "alice-0001"


def test_spoofed_headers_never_reach_an_unprotected_page(apache, browser):
    r = browser.get(apache.url("/public/env"), headers=SPOOFED)
    assert r.status_code == 200
    env = r.json()
    assert env["HTTP_HOST"] == "localhost:%d" % apache.port  # the CGI does see the request's headers
    leaked = {k: v for k, v in env.items() if k.upper().startswith("HTTP_IDTOKEN")}
    assert not leaked, leaked
    assert not any(k.upper().startswith("IDTOKEN") for k in env), env
    assert "REMOTE_USER" not in env


def test_spoofed_headers_never_reach_a_protected_page(apache, provider, browser):
    Login(browser, apache).run()
    r = browser.get(apache.url("/protected/env"), headers=SPOOFED)
    assert r.status_code == 200
    env = r.json()
    for name, value in EXPECTED_CLAIMS.items():
        assert env.get(name) == value, "%s: %r" % (name, env.get(name))
    assert env.get("HTTP_IDTOKEN_CLAIM_SUB", "alice-0001") == "alice-0001"
    assert "HTTP_IDTOKEN_CLAIM_ROLE" not in env and "IDTOKEN_CLAIM_Role" not in env
    for k, v in env.items():
        if "IDTOKEN" in k.upper():
            assert "evil" not in v.lower() and v != "x", "spoofed %s=%r got through" % (k, v)


# The contract names RS256, PS256, ES256, ES384, ES512 and EdDSA; the provider advertises all ten.
@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                                 "EdDSA"])
def test_login_with_each_signing_algorithm(apache, provider, browser, alg):
    provider.configure(alg=alg)
    login = Login(browser, apache)
    env = login.run()
    header = jws_parts(login.id_token)[0]
    assert header["alg"] == alg  # the provider really signed with it
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org"


def test_another_user(apache, provider, browser):
    provider.configure(username="bob")
    env = Login(browser, apache).run()
    assert env["REMOTE_USER"] == "bob-0001"
    assert env["IDTOKEN_CLAIM_email"] == "bob@example.org"


def test_login_after_the_provider_rotates_its_key(apache_factory, provider):
    """Beyond the written contract: a token under a new kid makes the module fetch the JWKS again.
    A fresh Apache, so no earlier unknown-kid refetch in this test run can rate-limit this one."""
    a = apache_factory(provider.discovery_url)
    first = Browser()
    Login(first, a).run()
    kid = provider.control("rotate", {"kty": "RSA"})["kid"]
    later = Login(Browser(), a)
    env = later.run()
    assert jws_parts(later.id_token)[0]["kid"] == kid
    assert env["REMOTE_USER"] == "alice-0001"
    # The session made before the rotation does not depend on the provider's keys.
    assert first.get(a.url("/protected/env")).status_code == 200


def test_spoofed_underscore_headers_are_stripped_too(apache_factory, provider):
    """CGI cannot show it (Apache leaves headers with '_' out of a CGI environment), but a proxied
    backend would get them: mod_headers echoes what the request still carries when it is answered."""
    a = apache_factory(provider.discovery_url, extra="\n".join([
        "LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so",
        "<Location /public>",
        '  Header always set X-Seen "expr=[%{req:idtoken_claim_email}][%{req:IDToken-Claim-email}]'
        '[%{req:IDTOKEN-CLAIM-SUB}][%{req:IDToken-Claim-Role}]"',
        '  Header always set X-Control "expr=[%{req:X-Control}]"',
        "</Location>",
    ]))
    r = Browser().get(a.url("/public/env"), headers=dict(SPOOFED, **{"X-Control": "kept"}))
    assert r.status_code == 200
    assert r.headers["X-Control"] == "[kept]"  # the echo works
    assert r.headers["X-Seen"] == "[][][][]", r.headers["X-Seen"]


def test_a_portal_links_login_hint_reaches_the_provider(apache_factory, provider):
    """IDTokenAuthRequestFromQuery: `?login_hint=` and `?domain_hint=` of the request that starts the login
    go on to the authorization request; a `prompt` in the same query does not."""
    a = apache_factory(provider.discovery_url, extra="\n".join([
        "<Location /protected/hinted>", "  IDTokenAuthRequestFromQuery login_hint domain_hint", "</Location>"]))
    login = Login(Browser(), a, path="/protected/hinted/x?login_hint=bob%40example.org&domain_hint=example.org&prompt=none")
    login.start()
    assert login.params["login_hint"] == "bob@example.org"
    assert login.params["domain_hint"] == "example.org"
    assert "prompt" not in login.params
    # Elsewhere the query is not read.
    other = Login(Browser(), a, path="/protected/env?login_hint=bob%40example.org").start()
    assert "login_hint" not in other.params
