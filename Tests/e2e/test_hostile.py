"""Hostile requests end to end, sent as raw bytes where an HTTP library would tidy them: callback
bodies that are too large, malformed or of the wrong type; claims holding CR/LF, NUL and other control
characters (which must never split or inject a header for the application); bytes that are not UTF-8;
JSON nested far too deep; thousands of cookies. Every one gets a clear 4xx (or, for cookies, is simply
no session), never a 500, never a session cookie, and no child dies (conftest's crash check reads the
error log after each test; a child killed while answering also leaves the raw request unanswered)."""

import base64
import json
import re
import socket
import threading
import time
import urllib.parse

import pytest

from harness import (APACHE_MODULES, Browser, Login, b64url_decode, builtin_modules, raw_request, set_cookies,
                     wait_module_log)

SOCKET_TIMEOUT = 30
FORM = "application/x-www-form-urlencoded"
CALLBACK = "/protected/callback"

# What the provider adds to the user's claims: each value must reach the application with every
# control character as a space, and no header of its own.
NASTY_CLAIMS = {
    "crlf": "a\r\nX-Injected: 1\r\n\r\nbody",
    "lf": "b\nX-Injected-Lf: 1",
    "cr": "c\rX-Injected-Cr: 1",
    "nul": "d\x00e",
    "del": "f\x7fg",
    "esc": "\x1b[31mred\x1b[0m",
    "tab": "h\ti",
    "c1": "j\x85k\u2028l",  # NEL and LINE SEPARATOR: not HTTP line ends, passed as they are
    "list": ["m\r\nX-Injected-List: 1", "n"],
    "object": {"o": "p\r\nX-Injected-Object: 1"},
    # Odd characters in a name become '-' (or '_'); control characters make the token refused (below).
    "name: X-Injected-Name: 1": "q",
}
CLEANED = {
    "crlf": "a  X-Injected: 1    body",
    "lf": "b X-Injected-Lf: 1",
    "cr": "c X-Injected-Cr: 1",
    "nul": "d e",
    "del": "f g",
    "esc": " [31mred [0m",
    "tab": "h i",
    "c1": "j\x85k\u2028l",
    "list": "m  X-Injected-List: 1,n",
}


# ---------------------------------------------------------------------------------------------------
# A proxied application that records the request exactly as it arrives
# ---------------------------------------------------------------------------------------------------

class RecordingBackend:
    """An HTTP/1.1 server on 127.0.0.1 that answers every request with the raw bytes of its head:
    what an application behind mod_proxy_http would parse, header lines and all."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    @staticmethod
    def _answer(conn):
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head = data.split(b"\r\n\r\n", 1)[0]
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(head) + head)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def load_module(name):
    return "" if "mod_%s" % name in builtin_modules() else "LoadModule %s_module %s" % (
        name, APACHE_MODULES / ("mod_%s.so" % name))


@pytest.fixture(scope="module")
def backend():
    b = RecordingBackend()
    yield b
    b.close()


@pytest.fixture(scope="module")
def hostile(module_apache_factory, provider_server, backend):
    """The standard server plus: /protected/app proxied to the recording backend, with REMOTE_USER
    copied into a header as admins of proxied applications do; hex.cgi (the environment's raw bytes)
    under each claim encoding."""
    def extra(a):
        return "\n".join([
            load_module("proxy"), load_module("proxy_http"), load_module("headers"),
            "<Location /protected/app>",
            "  ProxyPass http://127.0.0.1:%d/app" % backend.port,
            "  RequestHeader set X-Remote-User expr=%{REMOTE_USER}",
            "  IDTokenPassIDToken payload",
            "</Location>",
            'ScriptAliasMatch "^/protected/(b64/|latin1/)?hex$" "%s/cgi/hex.cgi"' % a.folder,
            "<Location /protected/b64>", "  IDTokenClaimEncoding base64url", "</Location>",
            "<Location /protected/latin1>", "  IDTokenClaimEncoding latin1", "</Location>",
        ])
    return module_apache_factory(provider_server.discovery_url, extra=extra)


# ---------------------------------------------------------------------------------------------------
# Raw requests
# ---------------------------------------------------------------------------------------------------

def raw(apache, method, path, headers=(), body=b"", length=True):
    """One request as these exact bytes. headers: (name, value) pairs, str or bytes."""
    def b(x):
        return x if isinstance(x, bytes) else x.encode("latin-1")
    lines = [b"%s %s HTTP/1.1" % (b(method), b(path)), b"Host: localhost:%d" % apache.port, b"Connection: close"]
    lines += [b(k) + b": " + b(v) for k, v in headers]
    if length and body is not None and not any(b(k).lower() in (b"content-length", b"transfer-encoding")
                                                for k, _ in headers):
        lines.append(b"Content-Length: %d" % len(body))
    r = raw_request(apache.port, b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""), timeout=SOCKET_TIMEOUT)
    assert r.status is not None, "no answer at all (a child killed while serving?): %r" % r.raw[:300]
    return r


def cookie_header(browser):
    return "; ".join("%s=%s" % (c.name, c.value) for c in browser.session.cookies)


def started_login(apache):
    """A login the provider answered: (its Login, the browser's Cookie header with the state cookie)."""
    login = Login(Browser(), apache).start().at_provider()
    return login, cookie_header(login.browser)


def error_code(response):
    m = re.search(r"<small>([^<]*)</small>", response.text)
    return m.group(1) if m else None


def assert_refused(r, status, code=None):
    assert r.status == status, "expected %d, got %s:\n%s" % (status, r.status, r.text[:600])
    if code is not None:
        assert error_code(r) == code, r.text[:600]
    for c in r.set_cookies():
        assert not (c.name.startswith("idtoken_session") and c.value and not c.clears), \
            "a refusal set a session cookie: %r" % c


def assert_no_error_lines(apache, offset):
    """Nothing above warning level: a client's garbage is no server error."""
    time.sleep(0.2)
    lines = [l for l in apache.log_since(offset).splitlines() if re.search(r":(error|crit|alert|emerg)\]", l)]
    assert not lines, "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# The callback: size, encoding, content type, framing
# ---------------------------------------------------------------------------------------------------

def form(**fields):
    return "&".join("%s=%s" % kv for kv in fields.items()).encode()


MALFORMED_BODIES = {
    "bad percent-encoding": lambda st: b"id_token=%zz&state=" + st,
    "truncated percent-encoding": lambda st: b"state=" + st + b"&id_token=ab%2",
    "no equals sign": lambda st: b"id_tokenstate" + st,
    "only separators": lambda st: b"&&&&&&",
    "empty": lambda st: b"",
    "repeated state": lambda st: b"state=" + st + b"&state=" + st + b"&id_token=a.b.c",
    "repeated id_token": lambda st: b"id_token=a.b.c&state=" + st + b"&id_token=a.b.c",
    "raw bytes not UTF-8": lambda st: b"id_token=\xff\xfe\xc0\x80&state=" + st,
    "encoded bytes not UTF-8": lambda st: b"id_token=%ff%fe%c0%80&state=" + st,
    "15,000 parameters": lambda st: b"a=1&" * 15000,
    "a 60 KB parameter name": lambda st: b"n" * 60000 + b"=1&state=" + st,
    "no state": lambda st: b"id_token=a.b.c",
}


@pytest.mark.parametrize("name", list(MALFORMED_BODIES))
def test_malformed_callback_body_is_a_bad_request(hostile, provider, name):
    login, cookie = started_login(hostile)
    body = MALFORMED_BODIES[name](login.fields["state"].encode())
    r = raw(hostile, "POST", CALLBACK, [("Content-Type", FORM), ("Cookie", cookie)], body)
    assert_refused(r, 400, "invalid_request")


# Bytes inside a parameter that parses: the value reaches the token or state checks and fails there.
@pytest.mark.parametrize("name,body,status,code", [pytest.param(*case, id=case[0]) for case in [
    ("NUL in the token", lambda f: b"id_token=a\x00b&state=" + f["state"].encode(), 401, "invalid_token"),
    ("CR LF in the token", lambda f: b"id_token=a\r\nX: 1&state=" + f["state"].encode(), 401, "invalid_token"),
    ("encoded NUL after the state", lambda f: form(id_token=f["id_token"], state=f["state"] + "%00"), 400,
     "invalid_state"),
    ("another state", lambda f: form(id_token=f["id_token"], state="A" * 43), 400, "invalid_state"),
]])
def test_hostile_bytes_in_a_callback_parameter_are_refused(hostile, provider, name, body, status, code):
    login, cookie = started_login(hostile)
    r = raw(hostile, "POST", CALLBACK, [("Content-Type", FORM), ("Cookie", cookie)], body(login.fields))
    assert_refused(r, status, code)
    assert login.browser.get(hostile.url("/protected/env")).status_code == 302


def multipart(fields):
    parts = b"".join(b'--XyZ\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (
        k.encode(), v.encode()) for k, v in fields.items())
    return parts + b"--XyZ--\r\n"


# The provider's real answer, in a body of the wrong type: only the Content-Type is wrong.
WRONG_TYPES = {
    "none": (None, lambda f: urllib.parse.urlencode(f).encode()),
    "multipart/form-data": ("multipart/form-data; boundary=XyZ", multipart),
    "application/json": ("application/json", lambda f: json.dumps(f).encode()),
    "text/plain": ("text/plain", lambda f: urllib.parse.urlencode(f).encode()),
    "a form type with junk before it": ("text/x; application/x-www-form-urlencoded",
                                        lambda f: urllib.parse.urlencode(f).encode()),
}


@pytest.mark.parametrize("name", list(WRONG_TYPES))
def test_callback_body_of_the_wrong_type_is_a_bad_request(hostile, provider, name):
    content_type, encode = WRONG_TYPES[name]
    login, cookie = started_login(hostile)
    headers = [("Cookie", cookie)] + ([("Content-Type", content_type)] if content_type else [])
    r = raw(hostile, "POST", CALLBACK, headers, encode(login.fields))
    assert_refused(r, 400, "invalid_request")
    # The same answer as a form logs in: the type alone was refused.
    r = raw(hostile, "POST", CALLBACK, [("Content-Type", FORM + "; charset=UTF-8"), ("Cookie", cookie)],
            urllib.parse.urlencode(login.fields).encode())
    assert r.status == 303, r.text[:500]


def test_callback_body_at_the_limit_is_read_and_one_byte_more_is_too_large(hostile, provider):
    login, cookie = started_login(hostile)
    prefix = b"state=" + login.fields["state"].encode() + b"&id_token="
    at_limit = prefix + b"x" * (64 * 1024 - len(prefix))
    r = raw(hostile, "POST", CALLBACK, [("Content-Type", FORM), ("Cookie", cookie)], at_limit)
    assert_refused(r, 401, "invalid_token")  # read, parsed, and refused as a token
    r = raw(hostile, "POST", CALLBACK, [("Content-Type", FORM), ("Cookie", cookie)], at_limit + b"x")
    assert_refused(r, 413, "invalid_request")


def chunked(data, size=10000):
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
                    for i in range(0, len(data), size)) + b"0\r\n\r\n"


@pytest.mark.parametrize("name,headers,body,status", [pytest.param(*case, id=case[0]) for case in [
    ("1 MB with a Content-Length", [], b"id_token=" + b"x" * (1 << 20), 413),
    ("200 KB chunked", [("Transfer-Encoding", "chunked")], chunked(b"id_token=" + b"x" * 200000), 413),
    # Refused on the declared length, before a byte is read.
    ("60 MB declared, 3 bytes sent", [("Content-Length", "60000000")], b"abc", 413),
    # Beyond httpd's own LimitRequestBody (1 GiB by default since 2.4.54): httpd refuses it first.
    ("10 GB declared, 3 bytes sent", [("Content-Length", "10000000000")], b"abc", 413),
]])
def test_oversized_callback_body_is_too_large(hostile, provider, name, headers, body, status):
    login, cookie = started_login(hostile)
    offset = hostile.log_size()
    r = raw(hostile, "POST", CALLBACK, [("Content-Type", FORM), ("Cookie", cookie)] + headers, body)
    assert_refused(r, status)
    assert_no_error_lines(hostile, offset)
    assert login.browser.get(hostile.url("/protected/env")).status_code == 302


@pytest.mark.parametrize("name,headers,body", [pytest.param(*case, id=case[0]) for case in [
    ("a chunk size that is not hex", [("Transfer-Encoding", "chunked")], b"zz\r\nabc\r\n0\r\n\r\n"),
    ("a chunk longer than said", [("Transfer-Encoding", "chunked")], b"2\r\nabcdef\r\n0\r\n\r\n"),
    ("Content-Length not a number", [("Content-Length", "12abc")], b"id_token=abc"),
    ("a Content-Length too large for any integer", [("Content-Length", "9" * 30)], b"abc"),
]])
def test_badly_framed_callback_body_is_a_bad_request(hostile, provider, name, headers, body):
    login, cookie = started_login(hostile)
    offset = hostile.log_size()
    r = raw(hostile, "POST", CALLBACK, [("Content-Type", FORM), ("Cookie", cookie)] + headers, body)
    assert_refused(r, 400)
    assert_no_error_lines(hostile, offset)


def test_callback_body_cut_short_by_the_client_is_a_bad_request(hostile, provider):
    """The browser goes away mid-body: nothing to decide on, and nothing for the error log above info."""
    login, cookie = started_login(hostile)
    offset = hostile.log_size()
    head = ("POST %s HTTP/1.1\r\nHost: localhost:%d\r\nContent-Type: %s\r\nCookie: %s\r\n"
            "Content-Length: 1000\r\n\r\n" % (CALLBACK, hostile.port, FORM, cookie)).encode()
    with socket.create_connection(("127.0.0.1", hostile.port), timeout=SOCKET_TIMEOUT) as s:
        s.sendall(head + b"id_token=abc")
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    assert status and status.group(1) == b"400", answer[:300]
    assert_no_error_lines(hostile, offset)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "HEAD"])
def test_other_methods_to_the_callback_are_not_allowed(hostile, provider, method):
    login, cookie = started_login(hostile)
    r = raw(hostile, method, CALLBACK, [("Content-Type", FORM), ("Cookie", cookie)],
            urllib.parse.urlencode(login.fields).encode())
    assert_refused(r, 405)


# ---------------------------------------------------------------------------------------------------
# Claims: control characters, bytes that are not UTF-8, deep nesting
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nasty_user(hostile, provider_server):
    """A browser logged in with NASTY_CLAIMS (the provider reset around it)."""
    provider_server.reset()
    provider_server.configure(extra_claims=NASTY_CLAIMS)
    try:
        browser = Browser()
        Login(browser, hostile).run()
    finally:
        provider_server.reset()
    return browser


def header_lines(head: bytes):
    """The header lines of a request head, split only at CRLF as an HTTP/1.1 parser does."""
    return head.split(b"\r\n")[1:]


def test_claims_never_split_or_inject_a_header_for_a_proxied_application(hostile, nasty_user):
    r = nasty_user.get(hostile.url("/protected/app"))
    assert r.status_code == 200, r.text[:500]
    lines = header_lines(r.content)
    names = [line.split(b":", 1)[0].lower() for line in lines]
    assert not [n for n in names if n.startswith(b"x-injected")], r.content.decode("latin-1")
    for line in lines:
        # A bare CR or LF is a line end to lenient parsers; NUL ends strings in C applications.
        assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", line), line
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers.setdefault(name.decode("latin-1").lower(), value.strip())
    for claim, value in CLEANED.items():
        assert headers["idtoken-claim-" + claim].decode("utf-8") == value.strip(" \t"), claim
    assert headers["idtoken-claim-name--x-injected-name--1"] == b"q"
    # An object is passed as JSON text: its control characters are escapes (\r), not bytes.
    assert json.loads(headers["idtoken-claim-object"]) == NASTY_CLAIMS["object"]
    assert headers["x-remote-user"] == b"alice-0001"
    # The whole payload, as JSON text: its control characters are JSON escapes, never raw bytes.
    assert json.loads(headers["idtoken-payload"])["crlf"] == NASTY_CLAIMS["crlf"]


@pytest.mark.parametrize("path,decode", [
    pytest.param("/protected/hex", lambda v: v.decode("utf-8"), id="none"),
    pytest.param("/protected/b64/hex", lambda v: b64url_decode(v.decode("ascii")).decode("utf-8"), id="base64url"),
    pytest.param("/protected/latin1/hex", lambda v: v.decode("latin-1"), id="latin1"),
])
def test_claims_reach_a_cgi_without_control_characters_in_every_encoding(hostile, nasty_user, path, decode):
    r = nasty_user.get(hostile.url(path))
    assert r.status_code == 200, r.text[:500]
    env = {k: bytes.fromhex(v) for k, v in r.json().items()}
    assert not [k for k in env if "INJECTED" in k.upper() and not k.upper().endswith("NAME__X_INJECTED_NAME__1")]
    for claim, value in CLEANED.items():
        for name in ("IDTOKEN_CLAIM_" + claim, "HTTP_IDTOKEN_CLAIM_" + claim.upper()):
            raw_value = env[name]
            assert not re.search(rb"[\x00-\x1f\x7f]", raw_value), (name, raw_value)
            expected = value if "latin1" not in path else value.encode("latin-1", "replace").decode("latin-1")
            assert decode(raw_value) == expected, (name, raw_value)
    assert env["REMOTE_USER"] == b"alice-0001"


SUBJECTS = {"CR LF": "alice\r\nX-Injected: 1", "LF": "alice\nX-Injected: 1", "NUL": "alice\x00bob",
            "DEL": "alice\x7f", "ESC": "\x1b[2Jalice"}


@pytest.mark.parametrize("name", list(SUBJECTS))
def test_a_subject_with_control_characters_is_refused(hostile, provider, name):
    """REMOTE_USER is the `sub` as it is, and admins copy it into headers (X-Remote-User above): a
    control character would split that header, and replacing it could make two users one."""
    provider.configure(extra_claims={"sub": SUBJECTS[name]})
    login = Login(Browser(), hostile).start().at_provider()
    offset = hostile.log_size()
    r = login.callback()
    assert r.status_code == 401, r.text[:500]
    assert not [c for c in set_cookies(r) if c.name.startswith("idtoken_session") and not c.clears]
    assert wait_module_log(hostile, offset, r"\bsub\b")
    assert login.browser.get(hostile.url("/protected/app")).status_code == 302


CLAIM_NAMES = {"CR LF": "name\r\nX-Injected-Name: 1", "NUL": "groups\x00x", "DEL": "groups\x7f", "TAB": "a\tb"}


@pytest.mark.parametrize("name", list(CLAIM_NAMES))
def test_a_claim_name_with_control_characters_is_refused(hostile, provider, name):
    """A claim name becomes a header and variable name, and crosses into C: `groups\\0x` must never read
    as `groups` (for `Require idtoken-claim groups:...`), and replacing the character could merge two
    claims into one. The token is refused."""
    provider.configure(extra_claims={CLAIM_NAMES[name]: "root"})
    login = Login(Browser(), hostile).start().at_provider()
    offset = hostile.log_size()
    r = login.callback()
    assert r.status_code == 401, r.text[:500]
    assert not [c for c in set_cookies(r) if c.name.startswith("idtoken_session") and not c.clears]
    assert wait_module_log(hostile, offset, r"claim name")


def token_with_payload(provider, payload: bytes, header=None):
    """A token signed by the provider's real key over exactly these payload bytes."""
    segment = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    body = {"raw_payload": segment}
    if header is not None:
        body["raw_header"] = base64.urlsafe_b64encode(header).rstrip(b"=").decode()
    return provider.mint(**body)


def valid_payload(provider, login, extra=b""):
    now = int(time.time())
    return (b'{"iss":"%s","sub":"alice-0001","aud":"test-client","exp":%d,"iat":%d,"nonce":"%s"%s}' % (
        provider.issuer.encode(), now + 300, now, login.params["nonce"].encode(), extra))


def test_a_raw_payload_token_logs_in(hostile, provider):
    """The check for the two tests below: a hand-made payload that is valid does log in."""
    login = Login(Browser(), hostile).start().at_provider()
    token = token_with_payload(provider, valid_payload(provider, login, b',"name":"Zo\xc3\xab"'))
    r = login.callback(override={"id_token": token})
    assert r.status_code == 303, r.text[:500]
    env = login.browser.get(hostile.url("/protected/env")).json()
    assert env["IDTOKEN_CLAIM_name"] == "Zoë"


@pytest.mark.parametrize("bytes_", [b"\x80", b"\xff\xfe", b"\xc0\x80", b"\xe2\x82", b"\xed\xa0\x80"],
                         ids=["lone continuation byte", "invalid start byte", "overlong NUL", "truncated sequence",
                              "UTF-16 surrogate as UTF-8"])
def test_a_payload_that_is_not_utf8_is_refused(hostile, provider, bytes_):
    """RFC 8259 §8.1: JSON text is UTF-8. Signed by the provider's real key, so only the bytes are wrong."""
    login = Login(Browser(), hostile).start().at_provider()
    offset = hostile.log_size()
    token = token_with_payload(provider, valid_payload(provider, login, b',"name":"x' + bytes_ + b'y"'))
    r = login.callback(override={"id_token": token})
    assert r.status_code == 401, r.text[:500]
    assert not [c for c in set_cookies(r) if c.name.startswith("idtoken_session") and not c.clears]
    assert wait_module_log(hostile, offset, r"refused")


def test_escaped_lone_surrogates_in_claims_are_refused(hostile, provider):
    """\\ud800 without its pair (RFC 8259 §8.2: unpredictable) is no string the application could use."""
    provider.configure(extra_claims={"name": "x\ud800y\udfffz"})  # json.dumps writes \ud800 escapes
    login = Login(Browser(), hostile).start().at_provider()
    assert "\\ud800" in b64url_decode(login.id_token.split(".")[1]).decode()
    r = login.callback()
    assert r.status_code == 401, r.text[:500]
    assert login.browser.get(hostile.url("/protected/env")).status_code == 302


@pytest.mark.parametrize("where", ["payload", "header"])
def test_deeply_nested_json_in_a_token_is_refused(hostile, provider, where):
    """20,000 levels (the callback body's 64 KiB allows no more): a recursive parser would run out of
    stack and kill the child."""
    depth = 20000
    deep = b"[" * depth + b"]" * depth
    login = Login(Browser(), hostile).start().at_provider()
    if where == "payload":
        token = token_with_payload(provider, valid_payload(provider, login, b',"deep":' + deep))
    else:
        token = token_with_payload(provider, valid_payload(provider, login),
                                   header=b'{"alg":"RS256","kid":"rsa-1","x":' + deep + b"}")
    assert len(token) < 64 * 1024 - 200
    r = login.callback(override={"id_token": token})
    assert r.status_code == 401, r.text[:500]
    assert not [c for c in set_cookies(r) if c.name.startswith("idtoken_session") and not c.clears]


# ---------------------------------------------------------------------------------------------------
# Cookies: thousands of them, too long a header, bytes of every kind
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plain_user(hostile, provider_server):
    provider_server.reset()
    browser = Browser()
    Login(browser, hostile).run()
    return browser


def session_pairs(browser):
    return [(c.name, c.value) for c in browser.session.cookies if c.name.startswith("idtoken_session")]


def get_with_cookie(apache, cookie, path="/protected/env", more=()):
    return raw(apache, "GET", path, [("Accept", "text/html"), ("Cookie", cookie)] + list(more), body=None)


def junk_pairs(n, prefix="c"):
    return ["%s%d=%d" % (prefix, i, i % 10) for i in range(n)]


@pytest.fixture(scope="module")
def roomy(module_apache_factory, provider_server, hostile):
    """A server of the same site that lets through request headers up to 200 KB (httpd's limit is
    8190 bytes per header by default), so that the module meets what httpd would refuse first."""
    return module_apache_factory(provider_server.discovery_url, key_file=hostile.key_file,
                                 extra="LimitRequestFieldSize 200000")


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_session_among_thousands_of_cookies_is_found(roomy, plain_user, where):
    session = ["%s=%s" % p for p in session_pairs(plain_user)]
    junk = junk_pairs(5000)
    pairs = {"first": session + junk, "middle": junk[:2500] + session + junk[2500:], "last": junk + session}[where]
    header = "; ".join(pairs)
    assert len(header) < 64 * 1024
    r = get_with_cookie(roomy, header)
    assert r.status == 200, r.text[:300]
    assert json.loads(r.body)["REMOTE_USER"] == "alice-0001"


def test_a_thousand_cookies_without_a_session_start_a_login(hostile, provider):
    header = "; ".join(junk_pairs(1000))
    assert len(header) < 8190
    r = get_with_cookie(hostile, header)
    assert r.status == 302, r.text[:300]


def test_hundreds_of_stale_state_cookies_are_cleared_and_a_login_still_starts(hostile, provider):
    """Abandoned or forged state cookies: each is deleted, and the new login works beside them."""
    junk = ["idtoken_state_%06d=%s" % (i, "A" * 4) for i in range(300)]
    r = get_with_cookie(hostile, "; ".join(junk))
    assert r.status == 302, r.text[:300]
    cleared = {c.name for c in r.set_cookies() if c.clears}
    assert cleared == {p.split("=")[0] for p in junk}
    fresh = [c for c in r.set_cookies() if c.name.startswith("idtoken_state_") and not c.clears]
    assert len(fresh) == 1


def test_ninety_cookie_header_lines_are_no_trouble(roomy, plain_user):
    """httpd joins repeated Cookie lines with ", " (not "; "), so a session on a line of its own ends
    up inside another cookie's value: no session then, but no error either."""
    session = "; ".join("%s=%s" % p for p in session_pairs(plain_user))
    lines = [("Cookie", "; ".join(junk_pairs(60, prefix="l%02d_" % i))) for i in range(90)]
    r = raw(roomy, "GET", "/protected/env", [("Accept", "text/html")] + lines, body=None)
    assert r.status == 302, r.text[:300]
    r = raw(roomy, "GET", "/protected/env", [("Accept", "text/html"), ("Cookie", session)] + lines, body=None)
    assert r.status in (200, 302), r.text[:300]


def test_a_cookie_header_beyond_httpds_limit_is_refused_by_httpd(hostile, plain_user):
    session = "; ".join("%s=%s" % p for p in session_pairs(plain_user))
    r = get_with_cookie(hostile, "; ".join(junk_pairs(2000)) + "; " + session)
    assert r.status == 400, r.text[:300]


COOKIE_JUNK = {
    "bytes beyond ASCII": b"a=\xff\xfe\x80; b\xc3=\xc3\x28",
    "no names": b"=x; =; ==; ;;;; = = =",
    "quotes and commas": b'a="b; c=d"; e="; f=,,,,; "g"="h"',
    "a 7 KB value": b"idtoken_session=" + b"A" * 7000,
    "a garbled session": b"idtoken_session=AZ%%%%%%$$$$!!!!; idtoken_session_0=x; idtoken_session_1=y",
    "a truncated session": None,  # filled in from the real session
    "a state cookie full of junk": b"idtoken_state_x=\x7e\x21\x40" + b"~" * 4000,
}


@pytest.mark.parametrize("name", list(COOKIE_JUNK))
def test_junk_cookies_are_no_session(hostile, plain_user, name):
    value = COOKIE_JUNK[name]
    if value is None:
        (n, v), = session_pairs(plain_user)[:1]
        value = ("%s=%s" % (n, v[:len(v) // 2])).encode()
    r = get_with_cookie(hostile, value)
    assert r.status == 302, r.text[:300]
    assert not [c for c in r.set_cookies() if c.name.startswith("idtoken_session") and not c.clears]


def test_cookie_header_beyond_the_modules_own_cap_is_no_session(roomy, plain_user):
    """Past 64 KiB the module does not parse the Cookie header at all (see Session/CookieHeader.swift):
    no session, and a login starts, whatever the header holds."""
    session = "; ".join("%s=%s" % p for p in session_pairs(plain_user))
    within = "; ".join(junk_pairs(6000)) + "; " + session
    assert len(within) < 64 * 1024
    r = get_with_cookie(roomy, within)
    assert r.status == 200, r.text[:300]
    beyond = "; ".join(junk_pairs(9000)) + "; " + session
    assert len(beyond) > 64 * 1024
    r = get_with_cookie(roomy, beyond)
    assert r.status == 302, r.text[:300]
    assert not [c for c in r.set_cookies() if c.name.startswith("idtoken_state_") and c.clears]
