"""The demo provider itself (demo/provider/idp.py), without Apache: fast checks that the tests of the
module stand on a provider that behaves like a real one."""

import base64
import json
import re
import time
import zlib

import pytest
import requests
from cryptography.exceptions import InvalidSignature

from harness import Browser, Provider, b64url_decode, jwk_public_key, jws_parts, parse_form, raw_request, verify_jws

ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def authorize_params(**over):
    params = {"client_id": "test-client", "redirect_uri": "http://localhost:8080/protected/callback",
              "response_type": "id_token", "response_mode": "form_post", "scope": "openid email",
              "state": "st-" + "x" * 30, "nonce": "n-" + "y" * 30}
    params.update(over)
    return {k: v for k, v in params.items() if v is not None}


def authorize(provider, **over):
    return requests.get(provider.url("/authorize"), params=authorize_params(**over), timeout=10,
                        allow_redirects=False)


def test_discovery(provider):
    d = provider.discovery()
    iss = provider.issuer
    assert iss == "http://127.0.0.1:%d" % provider.port
    assert d["issuer"] == iss
    assert d["authorization_endpoint"] == iss + "/authorize"
    assert d["jwks_uri"] == iss + "/jwks"
    assert d["end_session_endpoint"] == iss + "/end_session"
    assert d["response_types_supported"] == ["id_token"]
    assert d["response_modes_supported"] == ["form_post"]
    assert d["subject_types_supported"] == ["public"]
    assert sorted(d["id_token_signing_alg_values_supported"]) == sorted(ALGS)
    assert "openid" in d["scopes_supported"]
    assert provider.stats()["discovery"] == 1


def test_jwks_encoding(provider):
    keys = {k["kid"]: k for k in provider.jwks()["keys"]}
    assert set(keys) == {"rsa-1", "ec-256", "ec-384", "ec-521", "ed-1"}
    assert "alg" not in keys["rsa-1"] and keys["rsa-1"]["use"] == "sig" and keys["rsa-1"]["e"] == "AQAB"
    for kid, crv, size in (("ec-256", "P-256", 32), ("ec-384", "P-384", 48), ("ec-521", "P-521", 66)):
        k = keys[kid]
        assert k["kty"] == "EC" and k["crv"] == crv
        for c in ("x", "y"):
            assert "=" not in k[c]
            assert len(k[c]) == (size * 8 + 5) // 6  # fixed size: unpadded base64url of `size` bytes
    assert keys["ed-1"]["kty"] == "OKP" and keys["ed-1"]["crv"] == "Ed25519" and keys["ed-1"]["alg"] == "EdDSA"
    assert len(keys["rsa-1"]["n"]) == 342  # 256 bytes


@pytest.mark.parametrize("alg", ALGS)
def test_minted_token_verifies_with_the_jwks(provider, alg):
    token = provider.mint(alg=alg, claims={"nonce": "abc"})
    header, claims, _, _ = jws_parts(token)
    assert header["alg"] == alg and header["typ"] == "JWT"
    verified = verify_jws(token, provider.jwks())
    assert verified == claims
    assert claims["iss"] == provider.issuer and claims["aud"] == "test-client"
    assert claims["sub"] == "alice-0001" and claims["nonce"] == "abc"
    assert claims["iat"] <= time.time() + 1 < claims["exp"]


def test_batch_of_minted_tokens_each_with_its_own_nonce(provider):
    tokens = provider.mint_many([{"nonce": "n%d" % i, "username": "u%d" % i} for i in range(3)])
    assert len(tokens) == 3
    for i, token in enumerate(tokens):
        claims = verify_jws(token, provider.jwks())
        assert claims["nonce"] == "n%d" % i and claims["sub"] == "u%d-0001" % i


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_forged_and_tampered_tokens_do_not_verify(provider, alg):
    jwks = provider.jwks()
    with pytest.raises(InvalidSignature):
        verify_jws(provider.mint(alg=alg, forge=True), jwks)
    h, p, s = provider.mint(alg=alg).split(".")
    other_payload = provider.mint(alg=alg, claims={"sub": "mallory"}).split(".")[1]
    with pytest.raises(InvalidSignature):
        verify_jws(".".join((h, other_payload, s)), jwks)


def test_authorize_answers_with_a_form_post_page(provider):
    provider.configure(alg="ES384")
    r = authorize(provider, state='a"<b>&c')
    assert r.status_code == 200
    page = r.text
    assert page.startswith('<html><head><title>Submit This Form</title></head>'
                           '<body onload="javascript:document.forms[0].submit()">')
    assert "<noscript><button type=\"submit\">Continue</button></noscript>" in page
    assert 'a"<b>&c' not in page  # escaped
    form = parse_form(page)
    assert form["method"] == "post" and form["action"] == "http://localhost:8080/protected/callback"
    fields = dict(form["fields"])
    assert set(fields) == {"id_token", "state"}
    assert fields["state"] == 'a"<b>&c'
    claims = verify_jws(fields["id_token"], provider.jwks())
    assert jws_parts(fields["id_token"])[0]["kid"] == "ec-384"
    assert claims["nonce"] == "n-" + "y" * 30
    assert claims["email"] == "alice@example.org" and claims["email_verified"] is True
    assert claims["name"] == "Alice Example" and claims["groups"] == ["staff", "admins"]
    assert claims["auth_time"] <= claims["iat"] < claims["exp"] == claims["iat"] + 300
    # Without state, none comes back.
    assert "state" not in dict(parse_form(authorize(provider, state=None).text)["fields"])


@pytest.mark.parametrize("over,problem", [
    ({"nonce": None}, "nonce"),
    ({"client_id": "someone-else"}, "client_id"),
    ({"client_id": None}, "client_id"),
    ({"response_type": "code"}, "response_type"),
    ({"response_mode": "query"}, "response_mode"),
    ({"response_mode": None}, "response_mode"),
    ({"scope": "email profile"}, "openid"),
    ({"redirect_uri": "javascript:alert(1)"}, "redirect_uri"),
    ({"redirect_uri": None}, "redirect_uri"),
])
def test_authorize_rejects_bad_requests(provider, over, problem):
    r = authorize(provider, **over)
    assert r.status_code == 400
    assert "Location" not in r.headers and "name=\"id_token\"" not in r.text
    assert problem in r.text


def test_registered_redirect_uris_are_enforced():
    p = Provider("--redirect-uri", "http://localhost:8080/protected/callback",
                 "--redirect-uri", "http://localhost:9090/cb")
    try:
        assert authorize(p).status_code == 200
        assert authorize(p, redirect_uri="http://localhost:9090/cb").status_code == 200
        assert authorize(p, redirect_uri="http://localhost:8080/protected/callback/x").status_code == 400
        assert authorize(p, redirect_uri="http://evil.example/cb").status_code == 400
    finally:
        p.stop()


def test_login_page_without_auto_login():
    p = Provider("--test-controls")
    try:
        r = authorize(p)
        assert r.status_code == 200
        form = parse_form(r.text)
        assert form["action"] == "/authorize/login" and form["method"] == "post"
        fields = dict(form["fields"])
        assert fields["username"] == "alice"
        assert 'id="login"' in r.text
        assert fields["nonce"] == "n-" + "y" * 30 and fields["state"] == "st-" + "x" * 30
        b = Browser()
        done = b.submit(r, override={"username": "bob", "password": "whatever"})
        assert done.status_code == 200
        posted = dict(parse_form(done.text)["fields"])
        claims = verify_jws(posted["id_token"], p.jwks())
        assert claims["sub"] == "bob-0001" and claims["nonce"] == "n-" + "y" * 30
        assert posted["state"] == "st-" + "x" * 30
        # The hidden fields are validated again.
        bad = b.submit(r, override={"nonce": None})
        assert bad.status_code == 400
        assert p.stats()["login"] == 1
    finally:
        p.stop()


def test_controls_are_404_without_test_controls():
    p = Provider("--auto-login")
    try:
        for path in ("/_test/config", "/_test/rotate", "/_test/mint", "/_test/reset", "/_test/backchannel_logout"):
            assert requests.post(p.url(path), json={}, timeout=5).status_code == 404
        assert requests.get(p.url("/_test/stats"), timeout=5).status_code == 404
        assert authorize(p).status_code == 200  # the provider itself works
    finally:
        p.stop()


MISBEHAVIOURS = {
    "wrong_nonce": lambda c, h, now: c["nonce"] != "n-" + "y" * 30,
    "expired": lambda c, h, now: c["exp"] < now - 60,
    "wrong_issuer": lambda c, h, now: c["iss"] != "http://127.0.0.1:%d" % h["_port"],
    "wrong_audience": lambda c, h, now: c["aud"] != "test-client",
    "missing_sub": lambda c, h, now: "sub" not in c,
    "future_iat": lambda c, h, now: c["iat"] > now + 60,
    "no_kid": lambda c, h, now: "kid" not in h,
    "unknown_kid": lambda c, h, now: h["kid"] not in ("rsa-1", "ec-256", "ec-384", "ec-521", "ed-1"),
}


@pytest.mark.parametrize("misbehave", sorted(MISBEHAVIOURS))
def test_misbehaviours(provider, misbehave):
    provider.configure(misbehave=misbehave)
    fields = dict(parse_form(authorize(provider).text)["fields"])
    header, claims, _, _ = jws_parts(fields["id_token"])
    header["_port"] = provider.port
    assert MISBEHAVIOURS[misbehave](claims, header, time.time())
    provider.configure(misbehave=None)
    header, claims, _, _ = jws_parts(dict(parse_form(authorize(provider).text)["fields"])["id_token"])
    header["_port"] = provider.port
    assert not MISBEHAVIOURS[misbehave](claims, header, time.time())


def test_bad_signature_and_error_response(provider):
    provider.configure(misbehave="bad_signature", alg="PS256")
    token = dict(parse_form(authorize(provider).text)["fields"])["id_token"]
    with pytest.raises(InvalidSignature):
        verify_jws(token, provider.jwks())
    provider.configure(misbehave="error_response")
    fields = dict(parse_form(authorize(provider).text)["fields"])
    assert fields == {"error": "access_denied", "error_description": "The user denied the request",
                      "state": "st-" + "x" * 30}
    provider.configure(misbehave="login_required")
    assert dict(parse_form(authorize(provider).text)["fields"])["error"] == "login_required"


def test_prompt_none_is_answered_from_the_browsers_provider_session(provider):
    """prompt=none: a token at once for a browser with a session here (the cookie its last login set),
    else the error the config names, posted back with the state; never a login page."""
    browser = Browser()
    r = browser.get(provider.url("/authorize"), params=authorize_params(prompt="none"))
    assert dict(parse_form(r.text)["fields"]) == {"error": "login_required", "error_description": "prompt=none: no session",
                                                 "state": "st-" + "x" * 30}
    provider.configure(prompt_none_error="interaction_required")
    r = browser.get(provider.url("/authorize"), params=authorize_params(prompt="none"))
    assert dict(parse_form(r.text)["fields"])["error"] == "interaction_required"
    # A login (auto-login here) gives the browser a provider session: prompt=none now gets a token.
    assert "id_token" in dict(parse_form(browser.get(provider.url("/authorize"), params=authorize_params()).text)["fields"])
    assert browser.cookie("demo_idp_session") == provider.stats()["last_sid"]
    fields = dict(parse_form(browser.get(provider.url("/authorize"), params=authorize_params(prompt="none")).text)["fields"])
    assert jws_parts(fields["id_token"])[1]["sub"] == "alice-0001"
    # The test config overrides the cookie either way.
    provider.configure(session=False)
    assert "error" in dict(parse_form(browser.get(provider.url("/authorize"), params=authorize_params(prompt="none")).text)["fields"])
    provider.configure(session=True)
    assert "id_token" in dict(parse_form(authorize(provider, prompt="none").text)["fields"])
    assert provider.stats()["prompts"] == ["none", "none", None, "none", "none", "none"]
    for body in ({"session": "yes"}, {"prompt_none_error": "access_denied"}, {"frontchannel_logout_uri": "ftp://x"}):
        assert requests.post(provider.url("/_test/config"), json=body, timeout=5).status_code == 400


def test_logout_page_frames_the_front_channel_logout_uri(provider):
    """GET /logout ends the browser's provider session and loads the relying party's front-channel
    logout URI in an iframe, with iss and sid."""
    provider.configure(frontchannel_logout_uri="http://localhost:8080/protected/callback?frontchannel_logout=1")
    browser = Browser()
    browser.get(provider.url("/authorize"), params=authorize_params())
    sid = provider.stats()["last_sid"]
    page = browser.get(provider.url("/logout")).text
    expected = "http://localhost:8080/protected/callback?frontchannel_logout=1&iss=%s&sid=%s" % (
        requests.utils.quote(provider.issuer, safe=""), sid)
    assert provider.stats()["frontchannel"] == [expected]
    assert '<iframe src="%s"' % expected.replace("&", "&amp;") in page
    # The provider session is over: no iframe the second time, and prompt=none needs a login again.
    assert "<iframe" not in browser.get(provider.url("/logout")).text
    assert "error" in dict(parse_form(browser.get(provider.url("/authorize"), params=authorize_params(prompt="none")).text)["fields"])


def test_config_rejects_unknown_values(provider):
    for body in ({"alg": "HS256"}, {"misbehave": "explode"}, {"colour": "red"}):
        assert requests.post(provider.url("/_test/config"), json=body, timeout=5).status_code == 400


def test_rotation_and_reset(provider):
    old = provider.mint(alg="RS256")
    kid = provider.control("rotate", {"kty": "RSA"})["kid"]
    assert re.fullmatch(r"rsa-\d+", kid) and kid != "rsa-1"
    jwks = provider.jwks()
    assert [k["kid"] for k in jwks["keys"] if k["kty"] == "RSA"] == [kid]
    new = provider.mint(alg="PS512")
    assert jws_parts(new)[0]["kid"] == kid
    verify_jws(new, jwks)
    with pytest.raises(AssertionError):  # rsa-1 is no longer published
        verify_jws(old, jwks)
    provider.reset()
    jwks = provider.jwks()
    assert [k["kid"] for k in jwks["keys"] if k["kty"] == "RSA"] == ["rsa-1"]
    verify_jws(old, jwks)  # the start key is back, not a new one
    again = provider.control("rotate", {"kty": "RSA"})["kid"]
    assert again != kid  # a kid is never reused for another key
    assert provider.stats()["jwks"] == 1


def test_end_session(provider):
    r = requests.get(provider.url("/end_session"), params={
        "post_logout_redirect_uri": "http://localhost:8080/bye", "state": "s1", "id_token_hint": "t"},
        allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == "http://localhost:8080/bye?state=s1"
    r = requests.get(provider.url("/end_session"), allow_redirects=False, timeout=5)
    assert r.status_code == 200 and "logged out" in r.text.lower()
    assert provider.stats()["end_session"] == [
        {"post_logout_redirect_uri": "http://localhost:8080/bye", "state": "s1", "id_token_hint": "t"}, {}]


def test_reset_clears_config_and_stats(provider):
    provider.configure(alg="ES512", misbehave="expired", username="bob")
    provider.fault(discovery="error_500")
    authorize(provider)
    assert provider.stats()["authorize"] == 1
    provider.reset()
    assert provider.stats() == {"jwks": 0, "discovery": 0, "authorize": 0, "login": 0, "tokens": 0,
                                "end_session": [], "last_sid": None, "sids": [], "backchannel_logout": 0,
                                "faults_served": 0, "prompts": [], "frontchannel": []}
    header, claims, _, _ = jws_parts(dict(parse_form(authorize(provider).text)["fields"])["id_token"])
    assert header["alg"] == "RS256" and claims["sub"] == "alice-0001" and claims["exp"] > time.time()
    assert provider.discovery()["issuer"] == provider.issuer


def test_quiet_by_default(provider_server):
    assert (provider_server.folder / "stderr").read_text() == ""


def test_every_login_gets_its_own_sid(provider):
    sids = []
    for _ in range(3):
        token = dict(parse_form(authorize(provider).text)["fields"])["id_token"]
        claims = verify_jws(token, provider.jwks())
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", claims["sid"]), claims["sid"]
        assert provider.stats()["last_sid"] == claims["sid"]
        sids.append(claims["sid"])
    assert len(set(sids)) == 3
    assert provider.stats()["sids"] == sids
    assert "sid" in provider.discovery()["claims_supported"]
    assert provider.discovery()["backchannel_logout_session_supported"] is True
    assert "sid" in jws_parts(provider.mint())[1]


class _Receiver:
    """A relying party's back-channel endpoint: records each POST and answers `status`."""

    def __init__(self, status=200):
        import http.server
        import threading
        received = self.received = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, self.headers.get("Content-Type"), body.decode()))
                self.send_response(status)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/protected/callback" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_backchannel_logout_posts_a_logout_token(provider):
    import urllib.parse as up
    rp = _Receiver(status=200)
    try:
        result = provider.backchannel_logout(rp.url, sid="sid-123", sub="alice-0001")
        assert result["status"] == 200 and result["body"] == "ok"
        assert result["headers"]["cache-control"] == "no-store"
        [(path, content_type, body)] = rp.received
        assert path == "/protected/callback" and content_type == "application/x-www-form-urlencoded"
        assert up.parse_qs(body) == {"logout_token": [result["logout_token"]]}
        token = result["logout_token"]
        header, claims, _, _ = jws_parts(token)
        assert header == {"alg": "RS256", "kid": "rsa-1", "typ": "logout+jwt"}
        assert verify_jws(token, provider.jwks()) == claims
        now = time.time()
        assert claims["iss"] == provider.issuer and claims["aud"] == "test-client"
        assert now - 5 <= claims["iat"] <= now + 1 and claims["exp"] == claims["iat"] + 120
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", claims["jti"])
        assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
        assert claims["sid"] == "sid-123" and claims["sub"] == "alice-0001"
        assert "nonce" not in claims
        # Each token has its own jti; sid and sub only when given; extra and removed claims.
        other = provider.backchannel_logout(rp.url, sub="bob-0001", alg="ES256", extra_claims={"nonce": "x"},
                                            remove_claims=["events"])
        h2, c2, _, _ = jws_parts(other["logout_token"])
        assert h2["alg"] == "ES256" and h2["typ"] == "logout+jwt"
        verify_jws(other["logout_token"], provider.jwks())
        assert c2["jti"] != claims["jti"] and "sid" not in c2 and c2["sub"] == "bob-0001"
        assert c2["nonce"] == "x" and "events" not in c2
        forged = provider.backchannel_logout(rp.url, sid="s", forge=True)["logout_token"]
        with pytest.raises(InvalidSignature):
            verify_jws(forged, provider.jwks())
        assert provider.stats()["backchannel_logout"] == 3
    finally:
        rp.close()


def test_backchannel_logout_reports_the_relying_partys_answer(provider):
    rp = _Receiver(status=400)
    try:
        assert provider.backchannel_logout(rp.url, sid="s")["status"] == 400
    finally:
        rp.close()
    r = requests.post(provider.url("/_test/backchannel_logout"), json={"uri": "javascript:alert(1)"}, timeout=5)
    assert r.status_code == 400
    r = requests.post(provider.url("/_test/backchannel_logout"), json={"uri": rp.url, "sid": "s"}, timeout=10)
    assert r.status_code == 502  # nobody listens any more


def get_raw(provider, path, timeout=10):
    """GET on a socket of its own: (status or None, headers, body bytes, seconds)."""
    t0 = time.monotonic()
    r = raw_request(provider.port, b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n"
                                   b"Connection: close\r\n\r\n" % path.encode(), timeout=timeout)
    return r, time.monotonic() - t0


@pytest.mark.parametrize("target,path", [("discovery", "/.well-known/openid-configuration"), ("jwks", "/jwks")])
def test_faults_of_discovery_and_jwks(provider, target, path):
    good, _ = get_raw(provider, path)
    assert good.status == 200 and json.loads(good.body)
    provider.fault(**{target: "error_500"})
    assert get_raw(provider, path)[0].status == 500
    provider.fault(**{target: "garbage"})
    r, _ = get_raw(provider, path)
    assert r.status == 200
    with pytest.raises(ValueError):
        json.loads(r.body)
    provider.fault(**{target: "deep_json"})
    r, _ = get_raw(provider, path)
    assert r.status == 200 and r.body.startswith(b"[" * 1000) and len(r.body) == 512 * 1024
    provider.fault(**{target: "close"})
    assert get_raw(provider, path)[0].raw == b""
    provider.fault(**{target: "gzip_bomb"})
    r, _ = get_raw(provider, path)
    assert r.header_values("Content-Encoding") == ["gzip"] and len(r.body) < 200 * 1024
    assert len(zlib.decompress(r.body, 31)) == 50 * 1024 * 1024
    provider.fault(**{target: "huge"})
    r, _ = get_raw(provider, path)
    assert r.header_values("Content-Length") == [str(50 * 1024 * 1024)] and len(r.body) == 50 * 1024 * 1024
    provider.fault(**{target: "huge_chunked"})
    r, _ = get_raw(provider, path)
    assert r.header_values("Transfer-Encoding") == ["chunked"] and len(r.body) == 50 * 1024 * 1024
    other = "jwks" if target == "discovery" else "discovery"
    assert provider.stats()[other] == 0 and provider.stats()["faults_served"] == 7
    provider.fault()
    assert get_raw(provider, path)[0].status == 200


def test_slow_faults(provider):
    path = "/jwks"
    provider.fault(jwks="slow", delay=0.5)
    r, took = get_raw(provider, path)
    assert r.status == 200 and took >= 0.45
    provider.fault(jwks="slow", delay=30)
    r, took = get_raw(provider, path, timeout=0.5)
    assert r.raw == b"" and took < 5  # nothing within the client's timeout
    provider.fault(jwks="trickle")
    r, took = get_raw(provider, path, timeout=1.2)
    assert r.status == 200 and r.header_values("Content-Length") and 0 < len(r.body) <= 3
    t0 = time.monotonic()
    provider.reset()  # releases answers held back, and ends the faults
    assert get_raw(provider, path)[0].status == 200 and time.monotonic() - t0 < 5


def test_fault_control_rejects_unknown_values(provider):
    for body in ({"discovery": "explode"}, {"token": "slow"}, {"jwks": "slow", "delay": -1}):
        assert requests.post(provider.url("/_test/fault"), json=body, timeout=5).status_code == 400


def test_mint_signs_raw_segments_as_given(provider):
    payload = b'{"sub":"x\xff","deep":' + b"[" * 3000 + b"]" * 3000 + b"}"
    segment = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    token = provider.mint(raw_payload=segment, alg="ES256")
    header, payload_segment, signature = token.split(".")
    assert payload_segment == segment and json.loads(b64url_decode(header))["alg"] == "ES256"
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    jwk = [k for k in provider.jwks()["keys"] if k["kid"] == "ec-256"][0]
    sig = b64url_decode(signature)
    jwk_public_key(jwk).verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                               (header + "." + payload_segment).encode(), ec.ECDSA(hashes.SHA256()))
