"""Behind a TLS-terminating reverse proxy (issue 15, item 1): IDTokenTrustedProxies.

Topology (everything on the loopback):

    Chromium ──https──> front httpd (mod_ssl + mod_proxy_http)  https://app.example.test:<F>
                          127.0.0.1:<F>, terminates TLS, sets X-Forwarded-Proto/-Port, mod_proxy
                          appends X-Forwarded-Host; ProxyPreserveHost Off
                        ──http──> backend httpd with the module   http://localhost:<B>
                          IDTokenTrustedProxies 127.0.0.1 (the front's address as the backend sees it)
    spoofing client ──http, from 127.0.0.2──> backend directly, forged X-Forwarded-* and Forwarded, and an
                          X-Forwarded-For that mod_remoteip (on the backend, trusting 127.0.0.2 for
                          it) turns into REMOTE_ADDR 127.0.0.1: the module still sees the peer 127.0.0.2
    demo provider  http://127.0.0.1:<P>  (auto-login; the form_post crosses from it to the front)

Chromium maps app.example.test to 127.0.0.1 (--host-resolver-rules) and takes the test's self-signed
certificate (--ignore-certificate-errors)."""

import json
import urllib.parse

import pytest

from harness import (browser_json, chromium, load_modules, module_log_lines, raw_request, self_signed_certificate,
                     wait_browser, wait_for)

FRONT_HOST = "app.example.test"


@pytest.fixture(scope="module")
def proxied(provider_server, module_apache_factory, tmp_path_factory):
    """(backend, front, front port): the module behind a TLS-terminating httpd."""
    # mod_remoteip beside it, trusting 127.0.0.2 too for X-Forwarded-For: the module compares the
    # connection's peer (c->client_ip), never the client address mod_remoteip makes of the header.
    backend = module_apache_factory(provider_server.discovery_url, extra="\n".join([
        "IDTokenTrustedProxies 127.0.0.1",
        load_modules("remoteip"),
        "RemoteIPHeader X-Forwarded-For",
        "RemoteIPInternalProxy 127.0.0.1 127.0.0.2",
    ]))
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("front-cert"), host=FRONT_HOST)
    from harness import free_port
    port = free_port()
    front = module_apache_factory(provider_server.discovery_url, directives="", standard_location=False, extra="\n".join([
        load_modules("ssl", "proxy", "proxy_http", "headers"),
        "Listen 127.0.0.1:%d" % port,
        "<VirtualHost 127.0.0.1:%d>" % port,
        "  ServerName %s:%d" % (FRONT_HOST, port),
        "  SSLEngine on",
        "  SSLCertificateFile %s" % cert,
        "  SSLCertificateKeyFile %s" % key,
        # What a TLS terminator says of the browser's request; a client's own Forwarded goes.
        "  RequestHeader set X-Forwarded-Proto https",
        "  RequestHeader set X-Forwarded-Port %d" % port,
        "  RequestHeader unset Forwarded",
        "  ProxyPass / http://127.0.0.1:%d/" % backend.port,
        "</VirtualHost>",
    ]))
    return backend, front, port


def front_url(port, path):
    return "https://%s:%d%s" % (FRONT_HOST, port, path)


FORGED = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Port", "444"),
          ("Forwarded", "for=198.51.100.7;proto=https;host=evil.example"), ("X-Forwarded-For", "127.0.0.1")]


def get_from(apache, path, source, headers=()):
    lines = ["GET %s HTTP/1.1" % path, "Host: localhost:%d" % apache.port, "Connection: close", "Accept: text/html",
             *("%s: %s" % kv for kv in headers)]
    r = raw_request(apache.port, ("\r\n".join(lines) + "\r\n\r\n").encode(), source=source)
    assert r.status is not None, r.raw[:300]
    return r


@pytest.mark.browser
def test_chromium_logs_in_and_out_through_a_tls_terminating_proxy(proxied, provider, tmp_path):
    """The module builds the redirect URI, the return URL, the logout URL and the cookies' Secure/__Host-
    from the proxy's headers: https://app.example.test:<F>, not the backend's http://localhost:<B>. The
    backend says once at start-up which proxies it trusts."""
    backend, front, port = proxied
    lines = [line for line in backend.error_log().splitlines() if "IDT0220" in line]
    assert len(lines) == 1 and "X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port believed from 127.0.0.1 only" in lines[0], \
        backend.error_log()[-3000:]
    offset = backend.log_size()
    driver = chromium(tmp_path, "--ignore-certificate-errors", "--host-resolver-rules=MAP %s 127.0.0.1" % FRONT_HOST)
    try:
        page = front_url(port, "/protected/env?via=proxy")
        driver.get(page)
        wait_browser(driver, lambda d: d.current_url == page and "REMOTE_USER" in d.page_source, backend)
        env = browser_json(driver)
        assert env["REMOTE_USER"] == "alice-0001" and env["QUERY_STRING"] == "via=proxy"
        assert env["HTTP_X_FORWARDED_HOST"] == "%s:%d" % (FRONT_HOST, port)
        cookies = {c["name"]: c for c in driver.get_cookies()}
        assert cookies["__Host-idtoken_session"]["secure"] is True, cookies
        assert not any(n.startswith("idtoken_") for n in cookies), "plain-http cookie names behind an https proxy: %s" % cookies
        # The provider posted its answer to the front, which passed it on.
        access = (front.folder / "access.log").read_text()
        assert "POST /protected/callback HTTP/1.1\" 303" in access, access[-2000:]
        # Logout: the return URL is absolute on the browser's origin, and the provider sends it back there.
        driver.get(front_url(port, "/protected/callback?logout=" + urllib.parse.quote("/public/env", safe="")))
        back = front_url(port, "/public/env?state=")
        wait_browser(driver, lambda d: d.current_url.startswith(back) and "REQUEST_URI" in d.page_source, backend)
        assert provider.stats()["end_session"][-1]["post_logout_redirect_uri"] == front_url(port, "/public/env")
        assert "__Host-idtoken_session" not in {c["name"] for c in driver.get_cookies()}
    finally:
        driver.quit()
    # No line about forwarded headers per request.
    assert not module_log_lines(backend.log_since(offset), "forwarded|trusted"), module_log_lines(backend.log_since(offset), "forwarded|trusted")


def test_forged_forwarded_headers_from_an_untrusted_peer_change_nothing(proxied):
    """A client talking to the backend directly (from 127.0.0.2, not the trusted proxy's 127.0.0.1) sends
    X-Forwarded-Proto/-Host/-Port and Forwarded: the redirect URI, the cookie names and logout's own
    origin stay the backend's. The same headers from the trusted address are believed (the control)."""
    backend, _, _ = proxied
    offset = backend.log_size()
    # mod_remoteip made the spoofer 127.0.0.1 for the application...
    env = json.loads(get_from(backend, "/public/env", "127.0.0.2", FORGED).body)
    assert env["REMOTE_ADDR"] == "127.0.0.1", env["REMOTE_ADDR"]

    def login_start(source):
        r = get_from(backend, "/protected/env", source, FORGED)
        assert r.status == 302, r.text[:500]
        location = dict(r.headers)["Location"]
        return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["redirect_uri"][0], r.set_cookies()[-1].name

    # ... but not for the module, which compares the connection's peer.
    redirect_uri, cookie = login_start("127.0.0.2")
    assert redirect_uri == "http://localhost:%d/protected/callback" % backend.port
    assert cookie.startswith("idtoken_state_"), cookie
    # Logout to the forged origin is an open redirect refused, not the site's own origin.
    refused = get_from(backend, "/protected/callback?logout=" + urllib.parse.quote("https://evil.example:444/", safe=""),
                       "127.0.0.2", FORGED)
    assert refused.status == 400, refused.text[:300]
    # The control: from the trusted address the same X-Forwarded-* are believed (Forwarded is not, as
    # IDTokenForwardedHeaders does not name it).
    redirect_uri, cookie = login_start("127.0.0.1")
    assert redirect_uri == "https://evil.example:444/protected/callback"
    assert cookie.startswith("__Host-idtoken_state_")
    # Nothing logged per request about the headers, trusted or not.
    wait_for(lambda: backend.log_size() > offset, 5, "the requests' log lines")
    assert not module_log_lines(backend.log_since(offset), "forwarded|trusted")
