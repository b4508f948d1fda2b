"""The module as an Apache admin uses it: per-location settings (optional login, claims as headers or
environment, their encoding, the ID token for the application, extra login parameters), `Require
idtoken-claim` inside httpd's own authorization containers, REMOTE_USER from another claim, two
virtual hosts with a provider each, mod_ssl and mod_auth_openidc beside the module, and `make install`."""

import base64
import json
import os
import re
import secrets
import subprocess
import time
import types
import urllib.parse

import pytest
import requests

from harness import (APACHE_MODULES, REPO, Browser, Login, Provider, b64url_decode, free_port, jws_parts,
                     set_cookies, verify_jws, wait_module_log)

# Claims the provider adds for the shared user of this module (beside its own: sub, email, name,
# email_verified, groups ["staff", "admins"], sid).
EXTRA_CLAIMS = {
    "realm_access": {"roles": ["editor", "viewer"]},
    "https://example.com/role": "boss",
    "nickname": "Zoë Ünal",     # every character in ISO-8859-1
    "locality": "Łódź",         # Ł and ź are not: latin1 gives '?' for them
    "prénom": "Zoë",            # a name beyond ASCII: one '-' or '_' per character
}

# <Location> blocks under /t, the one AuthType IDToken location of this server besides /protected;
# each ends in .../env (the environment as JSON) or .../hex (its raw bytes, hex-encoded).
REQUIRE_BLOCKS = {
    "exact-yes": "Require idtoken-claim email:alice@example.org",
    "exact-no": "Require idtoken-claim email:bob@example.org",
    "exact-prefix-no": "Require idtoken-claim email:alice",
    "member-yes": "Require idtoken-claim groups:admins",
    "member-no": "Require idtoken-claim groups:root",
    "bool-yes": "Require idtoken-claim email_verified:true",
    "nested-yes": "Require idtoken-claim realm_access.roles:editor",
    "nested-no": "Require idtoken-claim realm_access.roles:owner",
    "nested-wrong-path-no": "Require idtoken-claim realm_access.groups:editor",
    "regex-yes": r"Require idtoken-claim email~@example\.org$",
    "regex-unanchored-yes": r"Require idtoken-claim email~example",
    "regex-no": r"Require idtoken-claim email~@example\.or$",
    "quoted-name-yes": 'Require idtoken-claim "https://example.com/role":boss',
    "quoted-name-no": 'Require idtoken-claim "https://example.com/role":peon',
    "quoted-expr-yes": 'Require idtoken-claim "name:Alice Example"',
    "quoted-expr-no": 'Require idtoken-claim "name:Alice"',
    "one-line-any-yes": r"Require idtoken-claim groups:root email~@example\.org$",
    "one-line-any-no": "Require idtoken-claim groups:root email:bob@example.org",
    "all-yes": """<RequireAll>
    Require idtoken-claim groups:admins
    Require idtoken-claim email_verified:true
  </RequireAll>""",
    "all-no": """<RequireAll>
    Require idtoken-claim groups:admins
    Require idtoken-claim groups:root
  </RequireAll>""",
    "any-yes": """<RequireAny>
    Require idtoken-claim groups:root
    Require idtoken-claim groups:staff
  </RequireAny>""",
    "any-no": """<RequireAny>
    Require idtoken-claim groups:root
    Require idtoken-claim email:bob@example.org
  </RequireAny>""",
    "none-yes": """<RequireAll>
    Require valid-user
    <RequireNone>
      Require idtoken-claim groups:banned
    </RequireNone>
  </RequireAll>""",
    "none-no": """<RequireAll>
    Require valid-user
    <RequireNone>
      Require idtoken-claim groups:staff
    </RequireNone>
  </RequireAll>""",
    "forbidden-yes": """AuthzSendForbiddenOnFailure On
  Require idtoken-claim groups:admins""",
    "forbidden-no": """AuthzSendForbiddenOnFailure On
  Require idtoken-claim groups:root""",
    "forbidden-all-no": """AuthzSendForbiddenOnFailure On
  <RequireAll>
    Require idtoken-claim groups:admins
    Require idtoken-claim groups:root
  </RequireAll>""",
    "forbidden-none-no": """AuthzSendForbiddenOnFailure On
  <RequireAll>
    Require valid-user
    <RequireNone>
      Require idtoken-claim "https://example.com/role":boss
    </RequireNone>
  </RequireAll>""",
}

BLOCKS = {
    # Claims, their encoding, the ID token.
    "/t/enc-none": "IDTokenClaimEncoding none",
    "/t/enc-b64": "IDTokenClaimEncoding base64url",
    "/t/enc-b64/plain": "IDTokenClaimEncoding none",
    "/t/enc-b64/headers": "IDTokenPassClaimsAs headers",
    "/t/enc-latin1": "IDTokenClaimEncoding latin1",
    "/t/as-both": "IDTokenPassClaimsAs both",
    "/t/as-headers": "IDTokenPassClaimsAs headers",
    "/t/as-env": "IDTokenPassClaimsAs environment",
    "/t/as-none": "IDTokenPassClaimsAs none",
    "/t/as-none/admins": "Require idtoken-claim groups:admins",
    "/t/as-none/root": "Require idtoken-claim groups:root",
    "/t/tok-payload": "IDTokenPassIDToken payload",
    "/t/tok-payload/off": "IDTokenPassIDToken off",
    "/t/tok-serialized": "IDTokenPassIDToken serialized",
    "/t/tok-serialized/env-only": "IDTokenPassClaimsAs environment",
    # Without a session.
    "/t/opt": "IDTokenUnauthAction pass",
    "/t/opt/claim": "Require idtoken-claim groups:admins",
    "/t/opt/login": "IDTokenUnauthAction auth",
    "/t/deny401": "IDTokenUnauthAction 401",
    "/t/deny410": "IDTokenUnauthAction 410",
    # The login request.
    "/t/params": "IDTokenAuthRequestParams prompt=login max_age=120 acr_values=urn:a+urn:b\n"
                 "  IDTokenAuthRequestParams scope=groups login_hint=alice%40example.org",
    "/t/params/inner": "IDTokenAuthRequestParams prompt=consent",
}
BLOCKS.update({"/t/req/" + name: body for name, body in REQUIRE_BLOCKS.items()})


def native_config(apache):
    lines = [
        'ScriptAliasMatch "^/t/(.+/)?env$" "%s/cgi/env.cgi"' % apache.folder,
        'ScriptAliasMatch "^/t/(.+/)?hex$" "%s/cgi/hex.cgi"' % apache.folder,
        "<Location /t>",
        "  AuthType IDToken",
        "  Require valid-user",
        "</Location>",
    ]
    # Apache applies <Location> blocks in the order written: parents first, so the inner one wins.
    for path in sorted(BLOCKS, key=lambda p: p.count("/")):
        lines += ["<Location %s>" % path, "  " + BLOCKS[path], "</Location>"]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def native(module_apache_factory, provider_server):
    return module_apache_factory(provider_server.discovery_url, extra=native_config)


@pytest.fixture(scope="module")
def user(native, provider_server):
    """One browser logged in (through /t/env) as alice with EXTRA_CLAIMS, shared by the module."""
    provider_server.reset()
    provider_server.configure(extra_claims=EXTRA_CLAIMS)
    try:
        browser = Browser()
        login = Login(browser, native, "/t/env")
        env = login.run()
    finally:
        provider_server.reset()
    assert env["REMOTE_USER"] == "alice-0001"
    return types.SimpleNamespace(browser=browser, login=login, env=env)


def env_of(browser, apache, path, **kw):
    r = browser.get(apache.url(path), **kw)
    assert r.status_code == 200, "%s answered %d:\n%s" % (path, r.status_code, r.text[:500])
    return r.json()


def raw_env_of(browser, apache, path):
    """The environment's raw bytes, through hex.cgi."""
    r = browser.get(apache.url(path))
    assert r.status_code == 200, "%s answered %d:\n%s" % (path, r.status_code, r.text[:500])
    return {k: bytes.fromhex(v) for k, v in r.json().items()}


def idtoken_vars(env):
    """Everything the module may have passed: IDTOKEN_* variables and HTTP_IDTOKEN_* headers."""
    return {k: v for k, v in env.items() if k.upper().startswith(("IDTOKEN_", "HTTP_IDTOKEN_"))}


def claim_env(env):
    return {k: v for k, v in env.items() if k.startswith("IDTOKEN_CLAIM_")}


def claim_headers(env):
    return {k: v for k, v in env.items() if k.startswith("HTTP_IDTOKEN_CLAIM_")}


def authorize_query(response, provider):
    assert response.status_code == 302, "expected a login redirect, got %d:\n%s" % (
        response.status_code, response.text[:500])
    location = response.headers["Location"]
    assert location.startswith(provider.discovery()["authorization_endpoint"] + "?"), location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in query.values()), "a parameter appears twice: %r" % query
    return {k: v[0] for k, v in query.items()}


# ---------------------------------------------------------------------------------------------------
# Require idtoken-claim, alone and in <RequireAll>/<RequireAny>/<RequireNone>
# ---------------------------------------------------------------------------------------------------

def expected_status(name):
    if name.endswith("-yes"):
        return 200
    return 403 if name.startswith("forbidden") else 401


@pytest.mark.parametrize("name", sorted(REQUIRE_BLOCKS))
def test_require_idtoken_claim(native, user, name):
    r = user.browser.get(native.url("/t/req/%s/env" % name))
    want = expected_status(name)
    assert r.status_code == want, "Require %r: expected %d, got %d:\n%s" % (
        REQUIRE_BLOCKS[name], want, r.status_code, r.text[:300])
    if want == 200:
        assert r.json()["REMOTE_USER"] == "alice-0001"
    else:
        assert "REMOTE_USER" not in r.text and "alice@example.org" not in r.text
        assert "Location" not in r.headers, "a refused user must not be sent to log in again"


def test_require_idtoken_claim_without_a_session_starts_a_login(native, provider, browser):
    """Authentication comes before authorization: no session means a login, not a 401."""
    for name in ("member-yes", "member-no", "forbidden-no", "none-yes"):
        authorize_query(browser.get(native.url("/t/req/%s/env" % name)), provider)


def test_refused_require_is_logged_with_the_user(native, user):
    offset = native.log_size()
    assert user.browser.get(native.url("/t/req/member-no/env")).status_code == 401
    assert wait_module_log(native, offset, r"alice-0001.*groups:root.*not satisfied"), \
        native.log_since(offset)


# ---------------------------------------------------------------------------------------------------
# Claims to the application: how, and in which encoding
# ---------------------------------------------------------------------------------------------------

def test_claims_default_both_utf8(native, user):
    for path in ("/t/env", "/t/as-both/env", "/t/enc-none/env"):
        env = env_of(user.browser, native, path)
        assert env["IDTOKEN_CLAIM_nickname"] == "Zoë Ünal", path
        assert env["HTTP_IDTOKEN_CLAIM_NICKNAME"] == "Zoë Ünal", path
        assert env["IDTOKEN_CLAIM_locality"] == "Łódź", path
        assert env["IDTOKEN_CLAIM_email"] == "alice@example.org", path
        assert env["HTTP_IDTOKEN_CLAIM_GROUPS"] == "staff,admins", path
        # Names with characters a header or variable cannot hold: '-' and '_' in their place.
        assert env["IDTOKEN_CLAIM_https___example_com_role"] == "boss", path
        assert env["HTTP_IDTOKEN_CLAIM_HTTPS___EXAMPLE_COM_ROLE"] == "boss", path
        assert env["IDTOKEN_CLAIM_pr_nom"] == "Zoë", path
        assert env["HTTP_IDTOKEN_CLAIM_PR_NOM"] == "Zoë", path
        # An object as JSON.
        assert json.loads(env["IDTOKEN_CLAIM_realm_access"]) == {"roles": ["editor", "viewer"]}, path
        assert "IDTOKEN_TOKEN" not in env and "IDTOKEN_PAYLOAD" not in env, path
    raw = raw_env_of(user.browser, native, "/t/enc-none/hex")
    assert raw["IDTOKEN_CLAIM_nickname"] == "Zoë Ünal".encode("utf-8")
    assert raw["HTTP_IDTOKEN_CLAIM_NICKNAME"] == "Zoë Ünal".encode("utf-8")


def b64url_text(value):
    assert re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", value), "not base64url: %r" % value
    return b64url_decode(value.rstrip("=")).decode("utf-8")


def test_claims_base64url(native, user):
    env = env_of(user.browser, native, "/t/enc-b64/env")
    assert env["REMOTE_USER"] == "alice-0001"
    assert b64url_text(env["IDTOKEN_CLAIM_nickname"]) == "Zoë Ünal"
    assert b64url_text(env["HTTP_IDTOKEN_CLAIM_NICKNAME"]) == "Zoë Ünal"
    assert b64url_text(env["IDTOKEN_CLAIM_locality"]) == "Łódź"
    assert b64url_text(env["IDTOKEN_CLAIM_email"]) == "alice@example.org"
    assert b64url_text(env["HTTP_IDTOKEN_CLAIM_GROUPS"]) == "staff,admins"
    assert json.loads(b64url_text(env["IDTOKEN_CLAIM_realm_access"])) == {"roles": ["editor", "viewer"]}
    # Every claim is encoded, in both forms.
    for k, v in idtoken_vars(env).items():
        b64url_text(v)


def test_nested_location_inherits_the_encoding_and_overrides_it(native, user):
    plain = env_of(user.browser, native, "/t/enc-b64/plain/env")
    assert plain["IDTOKEN_CLAIM_nickname"] == "Zoë Ünal"
    assert plain["HTTP_IDTOKEN_CLAIM_NICKNAME"] == "Zoë Ünal"
    headers_only = env_of(user.browser, native, "/t/enc-b64/headers/env")
    assert not claim_env(headers_only), claim_env(headers_only)
    assert b64url_text(headers_only["HTTP_IDTOKEN_CLAIM_NICKNAME"]) == "Zoë Ünal"


def test_claims_latin1(native, user):
    raw = raw_env_of(user.browser, native, "/t/enc-latin1/hex")
    for name in ("IDTOKEN_CLAIM_nickname", "HTTP_IDTOKEN_CLAIM_NICKNAME"):
        assert raw[name] == b"Zo\xeb \xdcnal", (name, raw[name])
    for name in ("IDTOKEN_CLAIM_locality", "HTTP_IDTOKEN_CLAIM_LOCALITY"):
        assert raw[name] == b"?\xf3d?", (name, raw[name])
    assert raw["IDTOKEN_CLAIM_email"] == b"alice@example.org"
    assert raw["REMOTE_USER"] == b"alice-0001"


def test_pass_claims_as_headers(native, user):
    env = env_of(user.browser, native, "/t/as-headers/env")
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["HTTP_IDTOKEN_CLAIM_EMAIL"] == "alice@example.org"
    assert env["HTTP_IDTOKEN_CLAIM_NICKNAME"] == "Zoë Ünal"
    assert not claim_env(env), claim_env(env)


def test_pass_claims_as_environment(native, user):
    env = env_of(user.browser, native, "/t/as-env/env")
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org"
    assert env["IDTOKEN_CLAIM_groups"] == "staff,admins"
    assert not claim_headers(env), claim_headers(env)


def test_pass_claims_as_none(native, user):
    env = env_of(user.browser, native, "/t/as-none/env")
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["AUTH_TYPE"] == "IDToken"
    assert not idtoken_vars(env), idtoken_vars(env)
    # Claims not passed to the application still decide `Require idtoken-claim`.
    env = env_of(user.browser, native, "/t/as-none/admins/env")
    assert not idtoken_vars(env), idtoken_vars(env)
    assert user.browser.get(native.url("/t/as-none/root/env")).status_code == 401


def test_pass_id_token_payload(native, user):
    env = env_of(user.browser, native, "/t/tok-payload/env")
    payload = jws_parts(user.login.id_token)[1]
    assert json.loads(env["IDTOKEN_PAYLOAD"]) == payload
    assert json.loads(env["HTTP_IDTOKEN_PAYLOAD"]) == payload
    assert payload["nickname"] == "Zoë Ünal" and payload["sub"] == "alice-0001"
    assert "IDTOKEN_TOKEN" not in env and "HTTP_IDTOKEN_TOKEN" not in env
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org"  # the claims as well
    off = env_of(user.browser, native, "/t/tok-payload/off/env")
    assert "IDTOKEN_PAYLOAD" not in off and "HTTP_IDTOKEN_PAYLOAD" not in off


def test_pass_id_token_serialized(native, user, provider):
    env = env_of(user.browser, native, "/t/tok-serialized/env")
    assert env["IDTOKEN_TOKEN"] == user.login.id_token
    assert env["HTTP_IDTOKEN_TOKEN"] == user.login.id_token
    assert verify_jws(env["IDTOKEN_TOKEN"], provider.jwks())["sub"] == "alice-0001"
    assert "IDTOKEN_PAYLOAD" not in env
    env_only = env_of(user.browser, native, "/t/tok-serialized/env-only/env")
    assert env_only["IDTOKEN_TOKEN"] == user.login.id_token
    assert not [k for k in env_only if k.startswith("HTTP_IDTOKEN")], env_only


def test_spoofed_token_headers_are_removed(native, user):
    forged = {"IDToken-Token": "forged.token.x", "IDToken-Payload": '{"sub":"admin"}',
              "IDToken-Claim-nickname": "evil"}
    env = env_of(user.browser, native, "/t/env", headers=forged)
    assert "HTTP_IDTOKEN_TOKEN" not in env and "HTTP_IDTOKEN_PAYLOAD" not in env
    assert env["HTTP_IDTOKEN_CLAIM_NICKNAME"] == "Zoë Ünal"
    env = env_of(user.browser, native, "/t/as-env/env", headers=forged)
    assert not claim_headers(env) and "HTTP_IDTOKEN_TOKEN" not in env


# ---------------------------------------------------------------------------------------------------
# Without a session: optional login, 401, 410
# ---------------------------------------------------------------------------------------------------

def test_optional_login_lets_an_anonymous_request_through(native, provider, browser):
    r = browser.get(native.url("/t/opt/env"), headers={"IDToken-Claim-email": "evil@x", "IDToken-Token": "x"})
    assert r.status_code == 200, r.text[:500]
    env = r.json()
    assert env.get("REMOTE_USER", "") == ""
    assert not idtoken_vars(env), idtoken_vars(env)
    assert not set_cookies(r), "an anonymous pass starts no login: %s" % set_cookies(r)
    # A script is let through as well.
    assert browser.get(native.url("/t/opt/env"), headers={"Accept": "application/json"}).status_code == 200
    assert provider.stats()["authorize"] == 0


def test_optional_login_knows_a_logged_in_user(native, user):
    env = env_of(user.browser, native, "/t/opt/env")
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["AUTH_TYPE"] == "IDToken"
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org"
    assert env["HTTP_IDTOKEN_CLAIM_EMAIL"] == "alice@example.org"
    assert env_of(user.browser, native, "/t/opt/claim/env")["REMOTE_USER"] == "alice-0001"


def test_optional_login_with_a_claim_requirement_refuses_anonymous(native, provider, browser):
    r = browser.get(native.url("/t/opt/claim/env"))
    assert r.status_code == 401, "anonymous on 'pass' + Require idtoken-claim: %d\n%s" % (r.status_code, r.text[:300])
    assert "Location" not in r.headers


def test_nested_location_overrides_the_unauth_action(native, provider, browser):
    q = authorize_query(browser.get(native.url("/t/opt/login/env")), provider)
    assert q["client_id"] == "test-client"


@pytest.mark.parametrize("path,status", [("/t/deny401/env", 401), ("/t/deny410/env", 410)])
def test_unauth_action_status(native, user, provider, browser, path, status):
    for headers in ({}, {"Accept": "application/json"}):
        r = browser.get(native.url(path), headers=headers)
        assert r.status_code == status, r.text[:300]
        assert "Location" not in r.headers
        assert not [c for c in set_cookies(r) if c.name.startswith("idtoken_")], set_cookies(r)
    assert provider.stats()["authorize"] == 0
    # With a session the location serves as usual.
    assert env_of(user.browser, native, path)["REMOTE_USER"] == "alice-0001"


# ---------------------------------------------------------------------------------------------------
# Extra parameters of the login request
# ---------------------------------------------------------------------------------------------------

def test_auth_request_params_only_where_configured(native, provider, browser):
    plain = authorize_query(browser.get(native.url("/t/env")), provider)
    assert plain["scope"].split() == ["openid", "email", "profile"]
    for name in ("prompt", "max_age", "acr_values", "login_hint"):
        assert name not in plain, plain

    q = authorize_query(Browser().get(native.url("/t/params/env")), provider)
    assert q["prompt"] == "login"
    assert q["max_age"] == "120"
    assert q["acr_values"] == "urn:a urn:b"             # form-decoded: '+' is a space
    assert q["login_hint"] == "alice@example.org"       # %40 decoded
    assert q["scope"].split() == ["openid", "email", "profile", "groups"]
    # The module's own parameters are untouched.
    assert q["response_type"] == "id_token" and q["response_mode"] == "form_post"
    assert q["client_id"] == "test-client" and q["redirect_uri"] == native.url("/protected/callback")

    # An inner block's list replaces the outer one.
    inner = authorize_query(Browser().get(native.url("/t/params/inner/env")), provider)
    assert inner["prompt"] == "consent"
    for name in ("max_age", "acr_values", "login_hint"):
        assert name not in inner, inner
    assert inner["scope"].split() == ["openid", "email", "profile"]


def test_login_through_a_location_with_extra_params(native, provider, browser):
    # /t/params asks for acr_values "urn:a urn:b": the token must assert one of them (Core 3.1.3.7 step 12).
    provider.configure(extra_claims={"acr": "urn:b"})
    login = Login(browser, native, "/t/params/env")
    env = login.run()
    assert login.params["prompt"] == "login"
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["REQUEST_URI"] == "/t/params/env"  # back where the login started


def test_requested_acr_not_asserted_is_refused(native, provider):
    provider.configure(extra_claims={"acr": "urn:password"})
    login = Login(Browser(), native, "/t/params/env").start().at_provider()
    offset = native.log_size()
    r = login.callback()
    assert r.status_code == 401, r.text[:500]
    assert not [c for c in set_cookies(r) if "idtoken_session" in c.name and not c.clears]
    assert wait_module_log(native, offset, r"acr"), native.log_since(offset)


def test_max_age_of_a_location_is_enforced_on_auth_time(native, provider):
    """max_age=120 asked for by /t/params: a login the provider reports as 10 minutes old is refused
    there, and accepted where no max_age was asked for."""
    provider.configure(extra_claims={"auth_time": int(time.time()) - 600, "acr": "urn:a"})
    stale = Login(Browser(), native, "/t/params/env").start().at_provider()
    offset = native.log_size()
    r = stale.callback()
    assert r.status_code == 401, r.text[:500]
    assert not [c for c in set_cookies(r) if "idtoken_session" in c.name and not c.clears]
    assert wait_module_log(native, offset, r"auth_time|max_age|too old"), native.log_since(offset)
    assert Login(Browser(), native, "/t/env").run()["REMOTE_USER"] == "alice-0001"


# ---------------------------------------------------------------------------------------------------
# REMOTE_USER from another claim, and the list delimiter
# ---------------------------------------------------------------------------------------------------

def test_remote_user_claim_with_a_regex(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra="\n".join([
        r"IDTokenRemoteUserClaim email ^([^@]+)@",
        "IDTokenClaimDelimiter ;",
    ]))
    env = Login(Browser(), a).run()
    assert env["REMOTE_USER"] == "alice"
    assert env["IDTOKEN_CLAIM_sub"] == "alice-0001"
    assert env["IDTOKEN_CLAIM_groups"] == "staff;admins"
    assert env["HTTP_IDTOKEN_CLAIM_GROUPS"] == "staff;admins"

    # A token whose claim does not match gives no session.
    provider.configure(extra_claims={"email": "no-at-sign"})
    browser = Browser()
    login = Login(browser, a).start().at_provider()
    r = login.callback()
    assert r.status_code == 401, r.text[:500]
    assert "idtoken_session" not in browser.cookie_names()


# ---------------------------------------------------------------------------------------------------
# Two virtual hosts, a provider each
# ---------------------------------------------------------------------------------------------------

def write_key(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    return path


@pytest.fixture
def other_provider():
    p = Provider("--test-controls", "--auto-login", client_id="other-client")
    yield p
    p.stop()


def test_two_name_based_virtual_hosts_with_a_provider_each(apache_factory, provider, other_provider, tmp_path):
    key_a, key_b = write_key(tmp_path / "a.key"), write_key(tmp_path / "b.key")
    other_provider.configure(username="bob")

    def vhosts(apache):
        return "\n".join([
            "<VirtualHost 127.0.0.1:%d>" % apache.port,
            "  ServerName localhost",
            "  IDTokenDiscoveryURL %s" % provider.discovery_url,
            "  IDTokenClientID test-client",
            "  IDTokenSessionKeyFile %s" % key_a,
            "</VirtualHost>",
            "<VirtualHost 127.0.0.1:%d>" % apache.port,
            "  ServerName 127.0.0.1",
            "  IDTokenDiscoveryURL %s" % other_provider.discovery_url,
            "  IDTokenClientID other-client",
            "  IDTokenSessionKeyFile %s" % key_b,
            "</VirtualHost>",
        ])

    a = apache_factory(provider.discovery_url, extra=vhosts)
    url_a = "http://localhost:%d" % a.port
    url_b = "http://127.0.0.1:%d" % a.port

    browser_a, browser_b = Browser(), Browser()
    qa = authorize_query(browser_a.get(url_a + "/protected/env"), provider)
    assert qa["client_id"] == "test-client" and qa["redirect_uri"] == url_a + "/protected/callback"
    qb = authorize_query(browser_b.get(url_b + "/protected/env"), other_provider)
    assert qb["client_id"] == "other-client" and qb["redirect_uri"] == url_b + "/protected/callback"

    def login(browser, base):
        r = browser.get(base + "/protected/env")
        page = browser.get(r.headers["Location"])
        assert page.status_code == 200, page.text[:500]
        cb = browser.submit(page)
        assert cb.status_code == 303, cb.text[:500]
        env = browser.get(base + "/protected/env")
        assert env.status_code == 200, env.text[:500]
        return env.json()

    assert login(browser_a, url_a)["REMOTE_USER"] == "alice-0001"
    assert login(browser_b, url_b)["REMOTE_USER"] == "bob-0001"
    assert provider.stats()["tokens"] == 1 and other_provider.stats()["tokens"] == 1

    # A's session cookie carried over to B (and B's to A) is no session there: a login at B's provider.
    cookie_a, cookie_b = browser_a.cookie("idtoken_session"), browser_b.cookie("idtoken_session")
    assert cookie_a and cookie_b
    r = requests.get(url_b + "/protected/env", cookies={"idtoken_session": cookie_a}, allow_redirects=False,
                     headers={"Accept": "text/html"}, timeout=30)
    authorize_query(r, other_provider)
    r = requests.get(url_a + "/protected/env", cookies={"idtoken_session": cookie_b}, allow_redirects=False,
                     headers={"Accept": "text/html"}, timeout=30)
    authorize_query(r, provider)
    # Each still works at home.
    assert env_of(browser_a, a, "/protected/env")["REMOTE_USER"] == "alice-0001"


# ---------------------------------------------------------------------------------------------------
# Beside mod_ssl and mod_auth_openidc
# ---------------------------------------------------------------------------------------------------

OPENIDC = APACHE_MODULES / "mod_auth_openidc.so"
SSL = APACHE_MODULES / "mod_ssl.so"


@pytest.fixture
def self_signed(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return cert, key


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_with_mod_ssl_and_mod_auth_openidc(apache_factory, provider, self_signed):
    if not OPENIDC.exists():
        pytest.fail("%s is missing: apt-get install libapache2-mod-auth-openidc (scripts/install-deps.sh)" % OPENIDC)
    cert, key = self_signed
    https_port = free_port()

    def config(apache):
        return "\n".join([
            "LoadModule ssl_module %s" % SSL,
            "LoadModule auth_openidc_module %s" % OPENIDC,
            "Listen 127.0.0.1:%d" % https_port,
            "<VirtualHost 127.0.0.1:%d>" % https_port,
            "  ServerName localhost:%d" % https_port,
            "  SSLEngine on",
            "  SSLCertificateFile %s" % cert,
            "  SSLCertificateKeyFile %s" % key,
            "</VirtualHost>",
            # mod_auth_openidc protects a location of its own, with its own AuthType and Require.
            "OIDCProviderMetadataURL %s" % provider.discovery_url,
            "OIDCClientID test-client",
            "OIDCRedirectURI /oidc/redirect_uri",
            "OIDCCryptoPassphrase e2e-openidc-passphrase",
            "OIDCResponseType id_token",
            "OIDCResponseMode form_post",
            "ScriptAlias /oidc/env %s/cgi/env.cgi" % apache.folder,
            "<Location /oidc>",
            "  AuthType openid-connect",
            "  Require valid-user",
            "</Location>",
        ])

    a = apache_factory(provider.discovery_url, extra=config, start=False)
    code, out = a.configtest()
    assert code == 0 and "Syntax OK" in out, out
    apache_factory.start(a)

    # Over http, as everywhere else.
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"

    # Over https: redirect URI and cookies follow the scheme.
    base = "https://localhost:%d" % https_port
    browser = Browser(verify=False)
    q = authorize_query(browser.get(base + "/protected/env"), provider)
    assert q["redirect_uri"] == base + "/protected/callback"
    page = browser.get(browser.get(base + "/protected/env").headers["Location"])
    cb = browser.submit(page)
    assert cb.status_code == 303, cb.text[:500]
    assert urllib.parse.urljoin(base + "/", cb.headers["Location"]) == base + "/protected/env"
    sessions = [c for c in set_cookies(cb) if "idtoken_session" in c.name]
    assert [c.name for c in sessions] == ["__Host-idtoken_session"], sessions
    s = sessions[0]
    assert s.has("secure") and s.has("httponly") and s.get("path") == "/" and not s.has("domain"), s
    r = browser.get(base + "/protected/env")
    assert r.status_code == 200, r.text[:500]
    env = r.json()
    assert env["REMOTE_USER"] == "alice-0001"
    assert env["HTTPS"] == "on"
    assert env["IDTOKEN_CLAIM_email"] == "alice@example.org"


# ---------------------------------------------------------------------------------------------------
# make install DESTDIR=...
# ---------------------------------------------------------------------------------------------------

def test_make_install_into_destdir(apache_factory, provider, tmp_path):
    destdir = tmp_path / "root"
    libexec = subprocess.run(["apxs", "-q", "LIBEXECDIR"], capture_output=True, text=True,
                             check=True).stdout.strip()
    # -o: the built files count as current, so this only copies (it never starts a build).
    r = subprocess.run(["make", "-o", "build/libIDToken.so", "-o", "build/mod_auth_idtoken.so", "install",
                        "DESTDIR=%s" % destdir], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    modules = destdir / libexec.lstrip("/")
    for name in ("mod_auth_idtoken.so", "libIDToken.so"):
        installed = modules / name
        assert installed.is_file(), "%s not installed:\n%s" % (installed, r.stdout)
        assert installed.read_bytes() == (REPO / "build" / name).read_bytes(), name
        assert oct(installed.stat().st_mode & 0o777) == "0o644", name
    mods = destdir / "etc" / "apache2" / "mods-available"
    load = mods / "auth_idtoken.load"
    assert load.is_file(), sorted(p.relative_to(destdir).as_posix() for p in destdir.rglob("*"))
    lines = [l for l in load.read_text().splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert lines == ["LoadModule auth_idtoken_module %s/mod_auth_idtoken.so" % libexec], lines
    conf = mods / "auth_idtoken.conf"
    assert conf.is_file(), "auth_idtoken.conf was not installed"

    # An Apache that loads the module from where it was installed, its .conf included: it finds
    # libIDToken.so beside it (rpath $ORIGIN), not the one in build/.
    a = apache_factory(provider.discovery_url, module=modules / "mod_auth_idtoken.so",
                       extra="Include %s" % conf, start=False)
    code, out = a.configtest()
    assert code == 0 and "Syntax OK" in out, out
    apache_factory.start(a)
    maps = open("/proc/%d/maps" % a.pid).read()
    assert str(modules / "libIDToken.so") in maps, "the installed libIDToken.so is not the one loaded"
    assert str(REPO / "build" / "libIDToken.so") not in maps
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"
