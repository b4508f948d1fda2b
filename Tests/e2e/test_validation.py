"""The callback cannot be fooled: replays, slow logins, made-up key IDs, and rotated keys, end to end."""

import time
import uuid

from harness import Browser, Login, jws_parts, mpm, one_process_settings, wait_module_log

# One child process, so "one refetch per interval" is a property of one JWKS cache, not of several.
ONE_CHILD = one_process_settings(mpm())


def copy_cookies(src: Browser, dst: Browser, prefix: str):
    for c in src.session.cookies:
        if c.name.startswith(prefix):
            dst.session.cookies.set_cookie(c)


def test_replayed_response_with_its_captured_state_cookie_is_refused(apache, provider, browser):
    """An attacker who captured the form_post and the state cookie beside it (say, from a shared
    machine) posts them again after the user logged in: the response was spent, in any process."""
    login = Login(browser, apache).start().at_provider()
    attacker = Browser()
    copy_cookies(browser, attacker, "idtoken_state_")
    assert attacker.cookie_names(), "the state cookie should have been captured"
    assert login.callback().status_code == 303
    offset = apache.log_size()
    replay = login.callback(browser=attacker)
    assert replay.status_code == 400, replay.text[:500]
    assert "idtoken_session" not in attacker.cookie_names()
    assert wait_module_log(apache, offset, r"replayed")
    assert attacker.get(apache.url("/protected/env")).status_code == 302


def test_state_older_than_its_lifetime_is_refused(apache_factory, provider, browser):
    a = apache_factory(provider.discovery_url, extra="IDTokenStateLifetime 2")
    login = Login(browser, a).start().at_provider()
    time.sleep(3.5)
    offset = a.log_size()
    r = login.callback()
    assert r.status_code == 400, r.text[:500]
    assert "idtoken_session" not in browser.cookie_names()
    assert wait_module_log(a, offset, r"state expired")


def test_burst_of_unknown_kids_causes_one_refetch(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra=ONE_CHILD)
    Login(Browser(), a).run()
    fetched = provider.stats()["jwks"]
    offset = a.log_size()
    for _ in range(10):
        browser = Browser()
        login = Login(browser, a).start()
        bogus = provider.mint(claims={"nonce": login.params["nonce"]}, kid="made-up-" + uuid.uuid4().hex[:8])
        login.at_provider()
        r = login.callback(override={"id_token": bogus})
        assert r.status_code == 401, r.text[:300]
    assert provider.stats()["jwks"] == fetched + 1, "a burst of unknown kids must cost one JWKS fetch"
    assert wait_module_log(a, offset, r"unknown kid")
    # Tokens under the published kid still pass (fail closed only for the unknown ones).
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"


def test_rotated_key_is_accepted_after_one_refetch(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra=ONE_CHILD)
    Login(Browser(), a).run()
    before = provider.stats()["jwks"]
    kid = provider.control("rotate", {"kty": "RSA"})["kid"]
    later = Login(Browser(), a)
    assert later.run()["REMOTE_USER"] == "alice-0001"
    assert jws_parts(later.id_token)[0]["kid"] == kid
    assert provider.stats()["jwks"] == before + 1


def test_kidless_token_after_a_rotation_is_accepted_after_one_refetch(apache_factory, provider):
    """Issue 14, item 7. A provider that signs without kid rotates its key: the cached key set cannot
    verify the next token and nothing in it names a new key; one refetch (rate-limited like an unknown
    kid's) finds the new key."""
    a = apache_factory(provider.discovery_url, extra=ONE_CHILD)
    provider.configure(misbehave="no_kid")
    first = Login(Browser(), a)
    assert first.run()["REMOTE_USER"] == "alice-0001"
    assert "kid" not in jws_parts(first.id_token)[0]
    before = provider.stats()["jwks"]
    provider.control("rotate", {"kty": "RSA"})
    later = Login(Browser(), a)
    assert later.run()["REMOTE_USER"] == "alice-0001"
    assert "kid" not in jws_parts(later.id_token)[0]
    assert provider.stats()["jwks"] == before + 1


def test_burst_of_forged_kidless_tokens_causes_one_refetch(apache_factory, provider):
    """Attack: tokens without kid signed by a key the provider never published. Each fails on the cached
    keys; the refetch that might find a rotated key happens once per IDTokenKeyRefetchInterval, not once
    per token."""
    a = apache_factory(provider.discovery_url, extra=ONE_CHILD)
    Login(Browser(), a).run()
    fetched = provider.stats()["jwks"]
    offset = a.log_size()
    for _ in range(10):
        login = Login(Browser(), a).start()
        forged = provider.mint(claims={"nonce": login.params["nonce"]}, kid=None, forge=True)
        assert "kid" not in jws_parts(forged)[0]
        login.at_provider()
        r = login.callback(override={"id_token": forged})
        assert r.status_code == 401, r.text[:300]
    assert provider.stats()["jwks"] == fetched + 1, "a burst of forged kid-less tokens must cost one JWKS fetch"
    assert wait_module_log(a, offset, r"signature verification failed")
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"
