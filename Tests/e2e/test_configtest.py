"""`apache2 -t` (apachectl configtest) on good and bad module settings."""

import pytest

from harness import Browser, Login, mpm, one_process_settings


def test_good_configuration_passes(apache_factory, provider):
    a = apache_factory(provider.discovery_url, start=False)
    code, out = a.configtest()
    assert code == 0, out
    assert "Syntax OK" in out


def test_discovery_url_that_is_not_a_url_fails(apache_factory, provider):
    a = apache_factory("not-a-url", start=False)
    code, out = a.configtest()
    assert code != 0, out
    assert "Syntax OK" not in out
    assert "IDTokenDiscoveryURL" in out, out


def test_missing_session_key_file_fails_and_says_how_to_make_one(apache_factory, provider):
    a = apache_factory(provider.discovery_url, start=False, write_key=False)
    assert not a.key_file.exists()
    code, out = a.configtest()
    assert code != 0, out
    assert "Syntax OK" not in out
    assert str(a.key_file) in out or "IDTokenSessionKeyFile" in out, out
    assert "openssl rand" in out, out


# ---------------------------------------------------------------------------------------------------
# Every kind of directive refuses a bad value, naming itself; the line is appended to the standard
# configuration (per-directory ones inside <Location /protected>).
# ---------------------------------------------------------------------------------------------------

def in_location(*lines):
    return "\n".join(["<Location /protected>", *lines, "</Location>"])


BAD_VALUES = [
    ("IDTokenDiscoveryURL not-a-url", "IDTokenDiscoveryURL"),
    ("IDTokenDiscoveryURL ftp://login.example.com/.well-known/openid-configuration", "IDTokenDiscoveryURL"),
    ("IDTokenClockSkew -1", "IDTokenClockSkew"),
    ("IDTokenClockSkew 601", "IDTokenClockSkew"),
    ("IDTokenSessionStore disk", "IDTokenSessionStore"),
    ("IDTokenSignatureAlgorithms none", "IDTokenSignatureAlgorithms"),
    ("IDTokenSignatureAlgorithms RS256 XS999", "IDTokenSignatureAlgorithms"),
    ("IDTokenCookieSameSite sometimes", "IDTokenCookieSameSite"),
    ("IDTokenLogoutRedirectAllowed https://x/path", "IDTokenLogoutRedirectAllowed"),
    ('IDTokenRemoteUserClaim "email ("', "IDTokenRemoteUserClaim"),
    ("IDTokenRemoteUserClaim email (", "IDTokenRemoteUserClaim"),
    ("IDTokenHTTPTimeout 0", "IDTokenHTTPTimeout"),
    ("IDTokenHTTPTimeout 10 3 1", "IDTokenHTTPTimeout"),
    ("IDTokenClaimDelimiter 123456789", "IDTokenClaimDelimiter"),
    ("IDTokenSessionIdleTimeout 1", "IDTokenSessionIdleTimeout"),
    ("IDTokenCookiePath protected", "IDTokenCookiePath"),
    ("IDTokenSessionCapToTokenExpiry maybe", "IDTokenSessionCapToTokenExpiry"),
    ("IDTokenScope \"openid e\\\"mail\"", "IDTokenScope"),
    ("IDTokenTrustedProxies proxy.example.org", "IDTokenTrustedProxies"),
    ("IDTokenTrustedProxies 10.0.0.0/33", "IDTokenTrustedProxies"),
    ("IDTokenForwardedHeaders X-Real-IP", "IDTokenForwardedHeaders"),
    ("IDTokenSessionInfo sometimes", "IDTokenSessionInfo"),
    ("IDTokenSessionInfoOrigins https://spa.example.org/app", "IDTokenSessionInfoOrigins"),
    (in_location("IDTokenSilentLogin maybe"), "IDTokenSilentLogin"),
    ("IDTokenSilentLogin On", "IDTokenSilentLogin not allowed here"),
    (in_location("IDTokenUnauthAction maybe"), "IDTokenUnauthAction"),
    (in_location("IDTokenPassClaimsAs cookies"), "IDTokenPassClaimsAs"),
    (in_location("IDTokenClaimEncoding utf-16"), "IDTokenClaimEncoding"),
    (in_location("IDTokenPassIDToken always"), "IDTokenPassIDToken"),
    (in_location("IDTokenAuthRequestParams state=x"), "IDTokenAuthRequestParams"),
    (in_location("IDTokenAuthRequestParams prompt=login response_type=code"), "IDTokenAuthRequestParams"),
    (in_location("IDTokenAuthRequestParams nonce=abc"), "IDTokenAuthRequestParams"),
    (in_location("IDTokenAuthRequestParams redirect_uri=https://evil.example/"), "IDTokenAuthRequestParams"),
    (in_location("IDTokenAuthRequestParams prompt"), "IDTokenAuthRequestParams"),
    (in_location("IDTokenAuthRequestParams max_age=soon"), "IDTokenAuthRequestParams"),
    (in_location("IDTokenAuthRequestFromQuery prompt"), "IDTokenAuthRequestFromQuery"),
    # Per-directory directives outside a <Location>/<Directory>: Apache's own message.
    ("IDTokenUnauthAction pass", "IDTokenUnauthAction not allowed here"),
    ("IDTokenPassClaimsAs headers", "IDTokenPassClaimsAs not allowed here"),
    ("IDTokenClaimEncoding base64url", "IDTokenClaimEncoding not allowed here"),
    ("IDTokenPassIDToken payload", "IDTokenPassIDToken not allowed here"),
    ("IDTokenAuthRequestParams prompt=login", "IDTokenAuthRequestParams not allowed here"),
    ("IDTokenAuthRequestFromQuery login_hint", "IDTokenAuthRequestFromQuery not allowed here"),
    # Require idtoken-claim: read by the module when Apache reads the line.
    (in_location("Require idtoken-claim groups"), "idtoken-claim"),
    (in_location('Require idtoken-claim "email~("'), "idtoken-claim"),
    (in_location("Require idtoken-claim email~("), "idtoken-claim"),
    (in_location("Require idtoken-claim groups:admins .roles:x"), "idtoken-claim"),
    (in_location("Require idtoken-claim"), "idtoken-claim"),
    (in_location("<RequireAll>", "Require valid-user", "Require idtoken-claim groups", "</RequireAll>"),
     "idtoken-claim"),
    # The store's own directives, read by the module.
    ("IDTokenCache file(1K)", "IDTokenCache"),
    ("IDTokenCache file(64Q)", "IDTokenCache"),
    ("IDTokenCache file(65G)", "IDTokenCache"),
    ("IDTokenCache file:/tmp/x(64M", "IDTokenCache"),
    ("IDTokenCache nosuchprovider", "IDTokenCache"),
    ("IDTokenCacheFull sometimes", "IDTokenCacheFull"),
    ("IDTokenMetrics sometimes", "IDTokenMetrics"),
    ("<VirtualHost 127.0.0.1:1>\nIDTokenMetrics Off\n</VirtualHost>", "IDTokenMetrics cannot occur within"),
    ("<VirtualHost 127.0.0.1:1>\nIDTokenCache file\n</VirtualHost>", "IDTokenCache cannot occur within"),
]


@pytest.mark.parametrize("line,expected", BAD_VALUES, ids=[b[0].replace("\n", " ") for b in BAD_VALUES])
def test_bad_value_fails_and_names_the_directive(apache_factory, provider, line, expected):
    a = apache_factory(provider.discovery_url, start=False, extra=line)
    code, out = a.configtest()
    assert code != 0, out
    assert "Syntax OK" not in out, out
    assert expected in out, out


def assert_refused(a, *expected):
    code, out = a.configtest()
    assert code != 0, out
    assert "Syntax OK" not in out, out
    for text in expected:
        assert text in out, "%r not in:\n%s" % (text, out)
    return out


def test_hmac_algorithm_without_a_client_secret_fails(apache_factory, provider):
    a = apache_factory(provider.discovery_url, start=False, extra="IDTokenSignatureAlgorithms RS256 HS256")
    assert_refused(a, "IDTokenSignatureAlgorithms", "HS256", "IDTokenClientSecret")


def test_hmac_algorithm_with_a_short_client_secret_fails(apache_factory, provider):
    a = apache_factory(provider.discovery_url, start=False,
                       extra="IDTokenSignatureAlgorithms HS256\nIDTokenClientSecret only-sixteen-byt")
    assert_refused(a, "IDTokenClientSecret")


def test_redirect_uri_outside_every_protected_location_fails(apache_factory, provider):
    def directives(a):
        return a.module_directives().replace("IDTokenRedirectURI /protected/callback",
                                             "IDTokenRedirectURI /elsewhere/callback")

    a = apache_factory(provider.discovery_url, start=False, directives=directives)
    assert_refused(a, "IDTokenRedirectURI", "/elsewhere/callback", "/protected")


def test_redirect_uri_in_a_sibling_with_a_common_prefix_fails(apache_factory, provider):
    """/protected-callback is not inside <Location /protected> (Apache matches whole segments)."""
    def directives(a):
        return a.module_directives().replace("IDTokenRedirectURI /protected/callback",
                                             "IDTokenRedirectURI /protected-callback")

    a = apache_factory(provider.discovery_url, start=False, directives=directives)
    assert_refused(a, "IDTokenRedirectURI")


def test_authtype_idtoken_in_a_vhost_without_settings_fails(apache_factory, provider):
    def vhost(a):
        return "\n".join([
            "<VirtualHost 127.0.0.1:%d>" % a.port,
            "  ServerName app.localhost",
            "  <Location /app>",
            "    AuthType IDToken",
            "    Require valid-user",
            "  </Location>",
            "</VirtualHost>",
        ])

    a = apache_factory(provider.discovery_url, start=False, directives="", standard_location=False, extra=vhost)
    out = assert_refused(a, "AuthType IDToken", "<Location /app>", "virtual host", "IDTokenDiscoveryURL")
    assert "app.localhost" in out, out


def test_vhost_without_settings_inherits_the_main_servers(apache_factory, provider):
    """The counterpart: a vhost that sets nothing itself uses the main server's settings."""
    def vhost(a):
        return "\n".join([
            "<VirtualHost 127.0.0.1:%d>" % a.port,
            "  ServerName app.localhost",
            "  <Location /app>",
            "    AuthType IDToken",
            "    Require valid-user",
            "  </Location>",
            "</VirtualHost>",
        ])

    a = apache_factory(provider.discovery_url, start=False, extra=vhost)
    code, out = a.configtest()
    assert code == 0 and "Syntax OK" in out, out


def test_complete_configuration_with_many_directives_passes(apache_factory, provider):
    issuer = provider.issuer

    def directives(a):
        return "\n".join([
            a.module_directives(),
            "IDTokenIssuer %s" % issuer,
            "IDTokenAuthorizationEndpoint %s/authorize" % issuer,
            "IDTokenJWKSURI %s/jwks" % issuer,
            "IDTokenEndSessionEndpoint %s/end_session" % issuer,
            'IDTokenClientSecret "a client secret of at least thirty-two bytes"',
            "IDTokenScope openid email profile",
            "IDTokenScope groups",
            "IDTokenSignatureAlgorithms RS256 PS256 ES256 EdDSA HS256",
            "IDTokenTrustedAudiences other-client",
            "IDTokenClockSkew 30",
            "IDTokenMaxAge 3600",
            "IDTokenStateLifetime 300",
            "IDTokenMaxStateCookies 3",
            "IDTokenMetadataLifetime 3600",
            "IDTokenKeysLifetime 600",
            "IDTokenKeyRefetchInterval 10",
            "IDTokenSessionLifetime 7200",
            "IDTokenHTTPTimeout 5 2",
            "IDTokenSessionStore cache",
            "IDTokenSessionIdleTimeout 600",
            "IDTokenSessionRefreshInterval 30",
            "IDTokenSessionCapToTokenExpiry On",
            "IDTokenCookiePath /",
            "IDTokenCookieDomain localhost",
            "IDTokenCookieSameSite Strict",
            "IDTokenClaimsKeep sub email name groups realm_access",
            "IDTokenClaimsDrop address",
            "IDTokenLogoutRedirectAllowed https://app.example.org http://localhost:8080",
            "IDTokenLogoutIDTokenHint Off",
            r"IDTokenRemoteUserClaim email ^([^@]+)@example\.org$",
            "IDTokenClaimDelimiter ;",
            "IDTokenTrustedProxies 127.0.0.1 10.0.0.0/8 ::1 2001:db8::/32",
            "IDTokenForwardedHeaders X-Forwarded-Proto X-Forwarded-Host Forwarded",
            "IDTokenSessionInfo WithIDToken",
            "IDTokenSessionInfoOrigins https://spa.example.org",
            "IDTokenCache file:idtoken-test-store(1M)",
            "IDTokenCacheFull refuse",
            "IDTokenMetrics Off",
        ])

    def extra(a):
        return "\n".join([
            "<Location /protected/admin>",
            "  IDTokenUnauthAction 401",
            "  IDTokenSilentLogin On",
            "  IDTokenPassClaimsAs headers",
            "  IDTokenClaimEncoding base64url",
            "  IDTokenPassIDToken serialized",
            "  IDTokenAuthRequestParams prompt=login max_age=120 scope=groups acr_values=urn:a+urn:b",
            "  AuthzSendForbiddenOnFailure On",
            "  <RequireAll>",
            "    Require idtoken-claim groups:admins realm_access.roles:editor",
            r"    Require idtoken-claim email~@example\.org$",
            "    <RequireAny>",
            '      Require idtoken-claim "https://example.com/role":boss',
            '      Require idtoken-claim "name:Alice Example"',
            "    </RequireAny>",
            "    <RequireNone>",
            "      Require idtoken-claim groups:banned",
            "    </RequireNone>",
            "  </RequireAll>",
            "</Location>",
            "<Location /protected/admin/sub>",
            "  IDTokenClaimEncoding latin1",
            "  IDTokenPassIDToken payload",
            "</Location>",
            "<Location /optional>",
            "  AuthType IDToken",
            "  IDTokenUnauthAction pass",
            "  IDTokenPassClaimsAs environment",
            "  Require valid-user",
            "</Location>",
            "<Directory %s/htdocs/private>" % a.folder,
            "  AuthType IDToken",
            "  IDTokenUnauthAction 410",
            "  IDTokenClaimEncoding none",
            "  Require idtoken-claim groups:staff",
            "</Directory>",
        ])

    a = apache_factory(provider.discovery_url, start=False, directives=directives, extra=extra)
    code, out = a.configtest()
    assert code == 0, out
    assert "Syntax OK" in out, out


# ---------------------------------------------------------------------------------------------------
# The store: cache sessions need one every process shares; IDTokenCacheFull needs the file store
# ---------------------------------------------------------------------------------------------------

def test_cache_sessions_without_a_shared_store_are_refused_under_several_processes(apache_factory, provider):
    a = apache_factory(provider.discovery_url, start=False, extra="IDTokenSessionStore cache\nIDTokenCache none")
    out = assert_refused(a, "IDTokenSessionStore cache", "IDTokenCache is none", "IDT0308")
    assert "%s MPM" % mpm() in out, out


def test_cache_sessions_without_a_shared_store_start_with_one_process(apache_factory, provider):
    """One child serves everything: its memory is the whole store (allowed, as httpd -X is)."""
    a = apache_factory(provider.discovery_url, start=False,
                       extra="IDTokenSessionStore cache\nIDTokenCache none\n" + one_process_settings(mpm()))
    code, out = a.configtest()
    assert code == 0 and "Syntax OK" in out, out
    apache_factory.start(a)
    browser = Browser()
    Login(browser, a).run()
    assert browser.get(a.url("/protected/env")).status_code == 200


def test_cache_sessions_with_a_shared_store_start_under_several_processes(apache_factory, provider):
    for store in ("IDTokenCache file", "IDTokenCache shmcb"):
        a = apache_factory(provider.discovery_url, start=False, extra="IDTokenSessionStore cache\n" + store)
        code, out = a.configtest()
        assert code == 0 and "Syntax OK" in out, "%s:\n%s" % (store, out)


@pytest.mark.parametrize("store", ["IDTokenCache shmcb", "IDTokenCache none"])
def test_full_store_policy_with_another_store_is_refused(apache_factory, provider, store):
    a = apache_factory(provider.discovery_url, start=False, extra=store + "\nIDTokenCacheFull refuse")
    assert_refused(a, "IDTokenCacheFull", "IDTokenCache file")


def test_store_file_that_cannot_be_made_stops_the_start_with_a_clear_message(apache_factory, provider):
    a = apache_factory(provider.discovery_url, start=False, extra="IDTokenCache file:/nonexistent-dir/store(1M)")
    with pytest.raises(RuntimeError) as failed:
        apache_factory.start(a)
    assert "IDT0311" in str(failed.value) and "/nonexistent-dir/store" in str(failed.value), str(failed.value)[-2000:]
