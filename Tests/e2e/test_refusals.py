"""What the module must refuse: bad tokens, missing state, provider errors, an unreachable provider."""

import socket

import pytest

from harness import Browser, Login, jws_parts, set_cookies, wait_module_log


def assert_no_session_set(response):
    for c in set_cookies(response):
        if c.name == "idtoken_session":
            assert c.clears or not c.value, "a refusal set a session cookie: %r" % c


def assert_html_page(response):
    assert "text/html" in response.headers.get("Content-Type", ""), response.headers
    assert "<html" in response.text.lower(), response.text[:500]
    assert len(response.text) < 20000, "expected a short page"


def assert_log_names_rule(apache, offset, pattern, token=None):
    lines = wait_module_log(apache, offset, pattern)
    new = apache.log_since(offset)
    assert lines, "no auth_idtoken line matching /%s/ in the error log; new lines:\n%s" % (pattern, new)
    if token:
        header, payload, signature = token.split(".")
        assert token not in new, "the error log holds the token"
        assert payload not in new, "the error log holds the token's payload"
        if signature:
            assert signature not in new, "the error log holds the token's signature"


def assert_still_logged_out(browser, apache):
    r = browser.get(apache.url("/protected/env"))
    assert r.status_code == 302, "the refused login left a session (%d)" % r.status_code


BAD_TOKENS = [
    ("bad_signature", r"signature"),
    ("wrong_nonce", r"nonce"),
    ("expired", r"expir|\bexp\b"),
    ("wrong_issuer", r"issuer|\biss\b"),
    ("wrong_audience", r"audience|\baud\b"),
    ("missing_sub", r"\bsub\b|subject"),
    # Beyond the written contract, standard all the same (RFC 7515 §4.1.4, OIDC Core §3.1.3.7 item 10):
    ("unknown_kid", r"\bkid\b"),   # signed by a published key, under a kid the JWKS does not have
    ("future_iat", r"future|\biat\b"),
]


@pytest.mark.parametrize("misbehave,rule", BAD_TOKENS, ids=[m for m, _ in BAD_TOKENS])
def test_bad_token_is_refused(apache, provider, browser, misbehave, rule):
    provider.configure(misbehave=misbehave)
    login = Login(browser, apache).start().at_provider()
    token = login.id_token
    assert token and login.fields["state"] == login.params["state"]
    offset = apache.log_size()
    r = login.callback()
    assert r.status_code == 401, "%s: got %d\n%s" % (misbehave, r.status_code, r.text[:1000])
    assert_no_session_set(r)
    assert_html_page(r)
    assert token not in r.text
    assert_log_names_rule(apache, offset, rule, token)
    assert_still_logged_out(browser, apache)


def test_forged_token_with_an_unsigned_alg_is_refused(apache, provider, browser):
    """alg "none" with an empty signature (RFC 7519 §6 "unsecured JWT") must never pass."""
    login = Login(browser, apache).start().at_provider()
    offset = apache.log_size()
    forged = provider.mint(claims={"nonce": login.params["nonce"]}, alg="none", unsigned=True, kid="rsa-1")
    assert jws_parts(forged)[0]["alg"] == "none"
    r = login.callback(override={"id_token": forged})
    assert r.status_code == 401, r.text[:500]
    assert_no_session_set(r)
    assert_log_names_rule(apache, offset, r"\balg|algorithm|none|unsigned|signature", forged)
    assert_still_logged_out(browser, apache)


def test_callback_without_state_cookie_is_refused(apache, provider, browser):
    login = Login(browser, apache).start().at_provider()
    offset = apache.log_size()
    stranger = Browser()  # has none of the browser's cookies
    r = login.callback(browser=stranger)
    assert r.status_code == 400, r.text[:500]
    assert_no_session_set(r)
    assert_html_page(r)
    assert_log_names_rule(apache, offset, r"state", login.id_token)
    assert stranger.get(apache.url("/protected/env")).status_code == 302


def test_callback_with_another_state_is_refused(apache, provider, browser):
    login = Login(browser, apache).start().at_provider()
    offset = apache.log_size()
    r = login.callback(override={"state": "A" * 43})
    assert r.status_code in (400, 401, 403), r.text[:500]
    assert_no_session_set(r)
    assert_log_names_rule(apache, offset, r"state", login.id_token)
    assert_still_logged_out(browser, apache)


def test_callback_replayed_after_login_is_refused(apache, provider, browser):
    """The state cookie is spent by the first callback: the same form posted again by another browser
    has none, and is refused. (The browser that completed the login is sent on to its page instead, as
    after the Back button: test_login_completes.py.)"""
    login = Login(browser, apache)
    login.run()
    offset = apache.log_size()
    again = login.callback(browser=Browser())
    assert again.status_code == 400, again.text[:500]
    assert_no_session_set(again)
    assert_log_names_rule(apache, offset, r"state", login.id_token)


def test_get_to_the_callback_is_refused(apache, provider, browser):
    r = browser.get(apache.url("/protected/callback"))
    assert r.status_code in (400, 405), r.text[:500]
    assert_no_session_set(r)
    r = browser.get(apache.url("/protected/callback?id_token=x.y.z&state=abc"))
    assert r.status_code in (400, 405), r.text[:500]
    assert_no_session_set(r)


def test_provider_error_response_is_refused(apache, provider, browser):
    provider.configure(misbehave="error_response")
    login = Login(browser, apache).start().at_provider()
    assert login.fields == {"error": "access_denied", "error_description": "The user denied the request",
                            "state": login.params["state"]}
    offset = apache.log_size()
    r = login.callback()
    assert r.status_code in (401, 403), r.text[:500]
    assert "access_denied" in r.text
    assert_no_session_set(r)
    assert_html_page(r)
    assert_log_names_rule(apache, offset, r"access_denied")
    assert_still_logged_out(browser, apache)


def test_provider_down_answers_bad_gateway(apache_factory, browser):
    # A port that is bound but never listens: every connection is refused, and nobody else takes it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        a = apache_factory("http://127.0.0.1:%d/.well-known/openid-configuration" % port)
        r = browser.get(a.url("/protected/env"), timeout=60)
        assert r.status_code in (502, 503), "got %d:\n%s" % (r.status_code, r.text[:500])
        assert "Location" not in r.headers
        assert_no_session_set(r)
        # The unprotected part of the site keeps working.
        assert browser.get(a.url("/public/env")).status_code == 200
