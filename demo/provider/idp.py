#!/usr/bin/env python3
"""A small OpenID Provider for demos and end-to-end tests of mod_auth_idtoken.

It speaks the Implicit Flow with Form Post only (response_type=id_token, response_mode=form_post),
signs ID tokens with RSA (RS*/PS*), EC (ES256/384/512) and Ed25519 (EdDSA) keys generated at start,
gives every login a session id (`sid`), has an end_session_endpoint (RP-initiated logout), and, with
--test-controls, lets tests make it misbehave (bad tokens; a discovery document or key set that is slow,
huge or broken) and send back-channel logout tokens to a relying party.
Python 3 standard library + `cryptography`.

    python3 demo/provider/idp.py --port 9000 [--host 127.0.0.1] [--issuer URL] [--client-id ID]
                                 [--redirect-uri URI ...] [--auto-login] [--test-controls] [--verbose]

It is a test tool: it keeps no users, checks no password, and must never face the Internet.
"""

import argparse
import base64
import copy
import html
import json
import secrets
import sys
import threading
import time
import zlib
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# ---------------------------------------------------------------------------------------------------
# JOSE: keys, JWK encoding, signing
# ---------------------------------------------------------------------------------------------------

RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGS = {"ES256": ("ec-256", ec.SECP256R1, hashes.SHA256, "P-256"),
           "ES384": ("ec-384", ec.SECP384R1, hashes.SHA384, "P-384"),
           "ES512": ("ec-521", ec.SECP521R1, hashes.SHA512, "P-521")}
ALL_ALGS = RSA_ALGS + tuple(EC_ALGS) + ("EdDSA",)
DIGESTS = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}

# OpenID Connect Back-Channel Logout 1.0 §2.4: the one event a Logout Token carries.
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

MISBEHAVIOURS = (None, "wrong_nonce", "expired", "bad_signature", "wrong_issuer", "wrong_audience",
                 "no_kid", "unknown_kid", "error_response", "missing_sub", "future_iat", "login_required")

# What a provider answers prompt=none when it cannot log the user in without showing something
# (OpenID Connect Core 3.1.2.6).
PROMPT_NONE_ERRORS = ("login_required", "interaction_required", "consent_required", "account_selection_required")

# The provider's own cookie: which of its sessions (sid) this browser holds.
SESSION_COOKIE = "demo_idp_session"

# How the discovery document or the key set can fail (POST /_test/fault), for tests of a relying
# party's behaviour while its provider is down, slow or broken.
FAULTS = (None, "slow", "trickle", "close", "error_500", "garbage", "deep_json", "huge", "huge_chunked",
          "gzip_bomb")
FAULT_TARGETS = ("discovery", "jwks")
HUGE_BYTES = 50 * 1024 * 1024


def new_sid() -> str:
    return secrets.token_urlsafe(16)


_GZIP_BOMB = []


def gzip_bomb() -> bytes:
    """HUGE_BYTES of spaces, gzip-compressed (about 50 KB), compressed piece by piece and once."""
    if not _GZIP_BOMB:
        z = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
        piece = b" " * (1024 * 1024)
        out = [z.compress(piece) for _ in range(HUGE_BYTES // len(piece))]
        out.append(z.flush())
        _GZIP_BOMB.append(b"".join(out))
    return _GZIP_BOMB[0]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_bytes(value: int, size: int = 0) -> bytes:
    """Unsigned big-endian; minimal length, or left-padded to `size` bytes (RFC 7518 §6.2.1.2)."""
    length = max(size, (value.bit_length() + 7) // 8, 1)
    return value.to_bytes(length, "big")


def public_jwk(key, kid: str, alg: str = None) -> dict:
    """The public half of `key` as a JWK (RFC 7517/7518/8037)."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        jwk = {"kty": "RSA", "use": "sig", "kid": kid,
               "n": b64url(int_bytes(numbers.n)), "e": b64url(int_bytes(numbers.e))}
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
        jwk = {"kty": "EC", "use": "sig", "kid": kid, "crv": crv,
               "x": b64url(int_bytes(numbers.x, size)), "y": b64url(int_bytes(numbers.y, size))}
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        from cryptography.hazmat.primitives import serialization
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "use": "sig", "kid": kid, "crv": "Ed25519", "x": b64url(raw)}
    else:
        raise TypeError("unsupported key type")
    if alg:
        jwk["alg"] = alg
    return jwk


def sign(alg: str, key, signing_input: bytes) -> bytes:
    if alg.startswith("RS"):
        return key.sign(signing_input, padding.PKCS1v15(), DIGESTS[alg[2:]]())
    if alg.startswith("PS"):
        digest = DIGESTS[alg[2:]]()
        return key.sign(signing_input, padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size),
                        digest)
    if alg in EC_ALGS:
        der = key.sign(signing_input, ec.ECDSA(EC_ALGS[alg][2]()))
        r, s = decode_dss_signature(der)
        size = (key.curve.key_size + 7) // 8
        return int_bytes(r, size) + int_bytes(s, size)  # RFC 7518 §3.4: raw R || S, fixed size
    if alg == "EdDSA":
        return key.sign(signing_input)
    raise ValueError("unsupported alg " + alg)


def new_key(kind: str):
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind in EC_ALGS:
        return ec.generate_private_key(EC_ALGS[kind][1]())
    if kind == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


class KeyRing:
    """The signing keys. RSA can be rotated; reset() brings back the keys made at start."""

    def __init__(self):
        self.initial = {"RSA": ("rsa-1", new_key("RSA"))}
        for alg, (kid, _, _, _) in EC_ALGS.items():
            self.initial[alg] = (kid, new_key(alg))
        self.initial["EdDSA"] = ("ed-1", new_key("EdDSA"))
        self.current = dict(self.initial)
        # Never reused, even across reset(): a relying party may have cached "rsa-2" already.
        self.rotations = 1

    def reset(self):
        self.current = dict(self.initial)

    def rotate_rsa(self) -> str:
        self.rotations += 1
        kid = "rsa-%d" % self.rotations
        self.current["RSA"] = (kid, new_key("RSA"))
        return kid

    def for_alg(self, alg: str):
        """(kid, private key) that signs `alg`."""
        if alg in RSA_ALGS:
            return self.current["RSA"]
        return self.current[alg]

    def jwks(self) -> dict:
        keys = [public_jwk(self.current["RSA"][1], self.current["RSA"][0])]  # no alg: RS* and PS*
        for alg in EC_ALGS:
            kid, key = self.current[alg]
            keys.append(public_jwk(key, kid, alg))
        kid, key = self.current["EdDSA"]
        keys.append(public_jwk(key, kid, "EdDSA"))
        return {"keys": keys}


def compact_jws(header: dict, claims: dict, alg: str, key, unsigned: bool = False) -> str:
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    signature = b"" if unsigned else sign(alg, key, signing_input.encode("ascii"))
    return signing_input + "." + b64url(signature)


# ---------------------------------------------------------------------------------------------------
# The provider's state
# ---------------------------------------------------------------------------------------------------

DEFAULT_CONFIG = {"alg": "RS256", "misbehave": None, "extra_claims": {}, "username": None,
                  "discovery_overrides": {}, "auto_login": None, "session": None,
                  "prompt_none_error": "login_required", "frontchannel_logout_uri": None}


class Provider:
    def __init__(self, issuer, client_id, redirect_uris, auto_login, test_controls):
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uris = list(redirect_uris or [])
        self.auto_login = auto_login
        self.test_controls = test_controls
        self.keys = KeyRing()
        self.lock = threading.Lock()
        self.faults = {}
        self.fault_delay = 30.0
        self.fault_over = threading.Event()
        self.reset()

    def set_faults(self, faults: dict, delay: float = 30.0):
        """Called with the lock held. Answers held back by the faults before are released at once."""
        self.fault_over.set()
        self.fault_over = threading.Event()
        self.faults = dict(faults)
        self.fault_delay = delay

    def reset(self):
        with self.lock:
            self.set_faults({})
            self.config = copy.deepcopy(DEFAULT_CONFIG)
            self.stats = {"jwks": 0, "discovery": 0, "authorize": 0, "login": 0, "tokens": 0,
                          "end_session": [], "last_sid": None, "sids": [], "backchannel_logout": 0,
                          "faults_served": 0, "prompts": [], "frontchannel": []}
            # The provider's sessions, by sid: the user each browser's cookie stands for.
            self.sessions = {}
            self.keys.reset()

    def count(self, what):
        with self.lock:
            self.stats[what] += 1

    def discovery(self) -> dict:
        """The discovery document, with the test config's `discovery_overrides` merged over it (a member
        set to null is removed): a provider that publishes, say, a plain-http jwks_uri."""
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "jwks_uri": self.issuer + "/jwks",
            "end_session_endpoint": self.issuer + "/end_session",
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": True,
            "frontchannel_logout_session_supported": True,
            "response_types_supported": ["id_token"],
            "response_modes_supported": ["form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ALL_ALGS),
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "email",
                                 "email_verified", "name", "groups"],
            "grant_types_supported": ["implicit"],
        }
        with self.lock:
            overrides = copy.deepcopy(self.config.get("discovery_overrides") or {})
        for name, value in overrides.items():
            if value is None:
                document.pop(name, None)
            else:
                document[name] = value
        return document

    def default_claims(self, username: str, nonce) -> dict:
        now = int(time.time())
        username = username or "alice"
        claims = {
            "iss": self.issuer,
            "sub": "%s-0001" % username,
            "aud": self.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if username == "alice":
            claims.update(email="alice@example.org", name="Alice Example")
        else:
            claims.update(email="%s@example.org" % username, name="%s Example" % username.capitalize())
        claims.update(email_verified=True, groups=["staff", "admins"])
        return claims

    def issue(self, username: str, nonce: str) -> dict:
        """The fields of the form_post answer for a login, following the current test config."""
        with self.lock:
            config = copy.deepcopy(self.config)
        misbehave = config["misbehave"]
        if misbehave == "error_response":
            return {"error": "access_denied", "error_description": "The user denied the request"}
        if misbehave == "login_required":
            return {"error": "login_required", "error_description": "The user must log in"}
        alg = config["alg"]
        claims = self.default_claims(config["username"] or username, nonce)
        # A new session at the provider for every login: its id goes into the token (OpenID Connect
        # Front-/Back-Channel Logout `sid`), so a test can later log exactly this session out.
        claims["sid"] = new_sid()
        claims.update(config["extra_claims"] or {})
        kid, key = self.keys.for_alg(alg)
        header = {"alg": alg, "kid": kid, "typ": "JWT"}
        now = int(time.time())
        if misbehave == "wrong_nonce":
            claims["nonce"] = "not-" + (nonce or "") + "-" + secrets.token_urlsafe(8)
        elif misbehave == "expired":
            claims.update(iat=now - 7200, auth_time=now - 7200, exp=now - 3600)
        elif misbehave == "wrong_issuer":
            claims["iss"] = "https://impostor.example.com"
        elif misbehave == "wrong_audience":
            claims["aud"] = "some-other-client"
        elif misbehave == "missing_sub":
            claims.pop("sub", None)
        elif misbehave == "future_iat":
            claims.update(iat=now + 3600, auth_time=now + 3600, exp=now + 3900)
        elif misbehave == "no_kid":
            header.pop("kid")
        elif misbehave == "unknown_kid":
            header["kid"] = "unknown-" + secrets.token_hex(4)
        elif misbehave == "bad_signature":
            # A well-formed signature by a key of the same type that was never published.
            key = new_key("RSA" if alg in RSA_ALGS else alg)
        with self.lock:
            self.stats["tokens"] += 1
            if "sid" in claims:
                self.stats["last_sid"] = claims["sid"]
                self.stats["sids"].append(claims["sid"])
                self.sessions[claims["sid"]] = config["username"] or username
        return {"id_token": compact_jws(header, claims, alg, key), "_sid": claims.get("sid")}

    def mint(self, body: dict) -> str:
        """POST /_test/mint: a token with the given claims over the defaults, for tests."""
        alg = body.get("alg") or "RS256"
        if alg not in ALL_ALGS and not body.get("unsigned"):
            raise ValueError("unsupported alg %r" % alg)
        claims = self.default_claims(body.get("username"), body.get("nonce"))
        claims["sid"] = new_sid()
        claims.update(body.get("claims") or {})
        for name in body.get("remove_claims") or []:
            claims.pop(name, None)
        if body.get("unsigned"):
            kid, key = None, None
        else:
            kid, key = self.keys.for_alg(alg)
            if body.get("forge"):
                key = new_key("RSA" if alg in RSA_ALGS else alg)
        header = {"alg": alg, "kid": kid, "typ": "JWT"}
        if not kid:
            header.pop("kid")
        if "kid" in body:
            if body["kid"] is None:
                header.pop("kid", None)
            else:
                header["kid"] = body["kid"]
        header.update(body.get("header") or {})
        raw_header, raw_payload = body.get("raw_header"), body.get("raw_payload")
        if raw_header is not None or raw_payload is not None:
            # Segments signed exactly as given (base64url): bytes json.dumps would never produce, such
            # as invalid UTF-8 or JSON nested deeper than Python's own recursion limit.
            signing_input = ((raw_header if raw_header is not None else b64url(json.dumps(header).encode())) + "." +
                             (raw_payload if raw_payload is not None else b64url(json.dumps(claims).encode())))
            signature = b"" if body.get("unsigned") else sign(alg, key, signing_input.encode("ascii"))
            return signing_input + "." + b64url(signature)
        return compact_jws(header, claims, alg, key, unsigned=bool(body.get("unsigned")))

    def logout_token(self, body: dict) -> str:
        """A Logout Token (OpenID Connect Back-Channel Logout 1.0 §2.4) for POST /_test/backchannel_logout:
        header typ logout+jwt; iss, aud, iat, exp, jti, events, and the sid and/or sub given; then
        `extra_claims` over them and `remove_claims` taken out, to make invalid ones."""
        alg = body.get("alg") or "RS256"
        if alg not in ALL_ALGS:
            raise ValueError("unsupported alg %r" % alg)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 120,
                  "jti": secrets.token_urlsafe(16), "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}
        for name in ("sid", "sub"):
            if body.get(name) is not None:
                claims[name] = body[name]
        extra = body.get("extra_claims") or {}
        if not isinstance(extra, dict):
            raise ValueError("extra_claims must be an object")
        claims.update(extra)
        for name in body.get("remove_claims") or []:
            claims.pop(name, None)
        kid, key = self.keys.for_alg(alg)
        if body.get("forge"):
            key = new_key("RSA" if alg in RSA_ALGS else alg)  # same type and kid, never published
        header = {"alg": alg, "kid": kid, "typ": "logout+jwt"}
        header.update(body.get("header") or {})
        return compact_jws(header, claims, alg, key)

    def check_authorize(self, params: dict):
        """None when the authorization request is acceptable, else a message for the 400 page."""
        def one(name):
            values = params.get(name)
            if not values:
                return None
            if len(values) > 1:
                raise ValueError("parameter %s given more than once" % name)
            return values[0]
        try:
            client_id, redirect_uri = one("client_id"), one("redirect_uri")
            response_type, response_mode = one("response_type"), one("response_mode")
            scope, nonce = one("scope"), one("nonce")
            one("state")
        except ValueError as e:
            return str(e)
        if client_id is None:
            return "client_id is missing"
        if client_id != self.client_id:
            return "unknown client_id %r" % client_id
        if redirect_uri is None:
            return "redirect_uri is missing"
        if self.redirect_uris:
            if redirect_uri not in self.redirect_uris:
                return "redirect_uri %r is not registered for this client" % redirect_uri
        else:
            parts = urllib.parse.urlsplit(redirect_uri)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                return "redirect_uri %r is not an absolute http(s) URL" % redirect_uri
        if response_type != "id_token":
            return "unsupported response_type %r (only id_token)" % response_type
        if response_mode != "form_post":
            return "unsupported response_mode %r (only form_post)" % response_mode
        if scope is None or "openid" not in scope.split():
            return "scope must contain openid"
        if not nonce:
            return "nonce is required for response_type id_token"
        return None


# ---------------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------------

def esc(value) -> str:
    return html.escape(str(value), quote=True)


def form_post_page(action: str, fields: dict) -> str:
    inputs = "".join('<input type="hidden" name="%s" value="%s"/>' % (esc(k), esc(v))
                     for k, v in fields.items() if v is not None)
    return ('<html><head><title>Submit This Form</title></head>'
            '<body onload="javascript:document.forms[0].submit()">'
            '<form method="post" action="%s">%s<noscript><button type="submit">Continue</button>'
            '</noscript></form></body></html>' % (esc(action), inputs))


def login_page(params: dict) -> str:
    hidden = "".join('<input type="hidden" name="%s" value="%s"/>' % (esc(k), esc(v[0]))
                     for k, v in params.items() if v)
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Demo provider: sign in</title>'
            '<style>body{font-family:sans-serif;max-width:24em;margin:4em auto}'
            'label{display:block;margin:.6em 0}input{width:100%%}</style></head><body>'
            '<h1>Sign in</h1><p>Demo provider: any password works.</p>'
            '<form method="post" action="/authorize/login">%s'
            '<label>Username <input type="text" name="username" id="username" value="alice" '
            'autocomplete="username"/></label>'
            '<label>Password <input type="password" name="password" id="password" '
            'autocomplete="current-password"/></label>'
            '<button type="submit" id="login">Sign in</button></form></body></html>' % hidden)


def simple_page(title: str, message: str) -> str:
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>%s</title></head>'
            '<body><h1>%s</h1><p>%s</p></body></html>' % (esc(title), esc(title), esc(message)))


# ---------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------

class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A back-channel POST is answered, never redirected: a 3xx is reported as it is."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-idp/1"
    provider: Provider = None
    verbose = False

    def log_message(self, format, *args):
        if self.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a relying party's timeout, say): nothing to answer

    # -- helpers --
    def send(self, status, body, content_type="text/html; charset=utf-8", headers=None):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj, indent=1), "application/json")

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def read_form(self) -> dict:
        return urllib.parse.parse_qs(self.read_body().decode("utf-8", "replace"), keep_blank_values=True)

    def read_json(self):
        raw = self.read_body()
        return json.loads(raw) if raw.strip() else {}

    # -- routing --
    def do_GET(self):
        self.route("GET")

    def do_HEAD(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        p = self.provider
        try:
            if path == "/.well-known/openid-configuration" and method == "GET":
                p.count("discovery")
                body = json.dumps(p.discovery(), indent=1).encode()
                if not self.faulty("discovery", body, "application/json"):
                    self.send(200, body, "application/json")
                return None
            if path == "/jwks" and method == "GET":
                p.count("jwks")
                with p.lock:
                    jwks = p.keys.jwks()
                body = json.dumps(jwks, indent=1).encode()
                if not self.faulty("jwks", body, "application/jwk-set+json"):
                    self.send(200, body, "application/jwk-set+json")
                return None
            if path == "/authorize":
                return self.authorize(query if method == "GET" else self.read_form())
            if path == "/authorize/login" and method == "POST":
                return self.login(self.read_form())
            if path == "/end_session" and method == "GET":
                return self.end_session(query)
            if path == "/logout" and method == "GET":
                return self.logout_page()
            if path.startswith("/_test/") and p.test_controls:
                return self.control(method, path)
            if path == "/" and method == "GET":
                return self.send(200, simple_page("Demo OpenID Provider",
                                                  "Discovery: %s/.well-known/openid-configuration" % p.issuer))
            self.send(404, simple_page("Not found", path))
        except (ValueError, TypeError, KeyError) as e:
            self.send_json(400, {"error": "bad_request", "error_description": str(e)})

    def faulty(self, target, body: bytes, content_type: str) -> bool:
        """Answers GET `target` as the fault set for it says (True), or leaves it to the caller (False).
        Large bodies are streamed, never built in memory; a client that gives up ends the answer."""
        p = self.provider
        with p.lock:
            fault, delay, over = p.faults.get(target), p.fault_delay, p.fault_over
            if fault:
                p.stats["faults_served"] += 1
        if not fault:
            return False
        try:
            if fault == "slow":
                # Not a byte before `delay` (or until the fault is cleared), then the real answer.
                over.wait(delay)
                self.send(200, body, content_type)
            elif fault == "trickle":
                # The headers at once, then one byte a second: only a total timeout ends this.
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    if over.wait(1.0):
                        break
                self.close_connection = True
            elif fault == "close":
                self.close_connection = True  # the request read, the connection closed unanswered
            elif fault == "error_500":
                self.send(500, simple_page("Internal Server Error", "The provider is having a bad day."))
            elif fault == "garbage":
                junk = b"\x00\xff\xfe{\"issuer\": \x80\x81<html>\r\n\x1b[31m" + secrets.token_bytes(2048)
                self.send(200, junk, content_type)
            elif fault == "deep_json":
                # Valid JSON nested far beyond any sane document (half a MiB, under the 1 MiB cap).
                depth = 256 * 1024
                self.send(200, b"[" * depth + b"]" * depth, content_type)
            elif fault == "huge":
                self.stream(HUGE_BYTES, content_type, declared=True)
            elif fault == "huge_chunked":
                self.stream(HUGE_BYTES, content_type, declared=False)
            elif fault == "gzip_bomb":
                self.send(200, gzip_bomb(), content_type, headers={"Content-Encoding": "gzip"})
        except (BrokenPipeError, ConnectionResetError):
            pass
        # A client that gave up on a fault may have gone: never wait for its next request.
        self.close_connection = True
        return True

    def stream(self, size: int, content_type: str, declared: bool):
        """`size` bytes of a JSON string that never ends: with a Content-Length, or chunked."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if declared:
            self.send_header("Content-Length", str(size))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b'{"issuer": "' + b"x" * (64 * 1024 - 12)
        sent = 0
        while sent < size:
            piece = block[:size - sent] if sent == 0 else b"x" * min(len(block), size - sent)
            self.wfile.write(piece if declared else b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        if not declared:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def session_user(self):
        """The user of the provider session this browser's cookie names, or None."""
        p = self.provider
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                with p.lock:
                    return p.sessions.get(value)
        return None

    def authorize(self, params):
        p = self.provider
        p.count("authorize")
        problem = p.check_authorize(params)
        if problem:
            return self.send(400, simple_page("Invalid authorization request", problem))
        prompt = (params.get("prompt") or [""])[0].split()
        with p.lock:
            auto_login = p.config.get("auto_login")
            has_session, prompt_none_error = p.config.get("session"), p.config.get("prompt_none_error")
            p.stats["prompts"].append(" ".join(prompt) or None)
        if "none" in prompt:
            # A silent login: answered at once when the browser has a session here (its cookie, or the
            # test config's "session": true), else with an error and never a page.
            user = self.session_user()
            if has_session is False or (has_session is None and user is None):
                state = params.get("state", [None])[0]
                fields = {"error": prompt_none_error or "login_required", "error_description": "prompt=none: no session"}
                if state is not None:
                    fields["state"] = state
                return self.send(200, form_post_page(params["redirect_uri"][0], fields))
            return self.answer(params, user or "alice")
        if p.auto_login if auto_login is None else auto_login:
            return self.answer(params, "alice")
        self.send(200, login_page(params))

    def login(self, form):
        p = self.provider
        username = (form.pop("username", [""])[0] or "").strip()
        form.pop("password", None)
        problem = p.check_authorize(form)
        if problem:
            return self.send(400, simple_page("Invalid authorization request", problem))
        if not username or not all(c.isalnum() or c in "._-" for c in username):
            return self.send(200, login_page(form))
        p.count("login")
        self.answer(form, username)

    def answer(self, params, username):
        p = self.provider
        fields = p.issue(username, params["nonce"][0])
        sid = fields.pop("_sid", None)
        state = params.get("state", [None])[0]
        if state is not None:
            fields["state"] = state
        # The browser now has a session here: a later prompt=none is answered at once.
        headers = {"Set-Cookie": "%s=%s; Path=/; HttpOnly; SameSite=Lax" % (SESSION_COOKIE, sid)} if sid else None
        self.send(200, form_post_page(params["redirect_uri"][0], fields), headers=headers)

    def logout_page(self):
        """GET /logout: the user signs out at the provider. Its session ends, and every relying party
        with a front-channel logout URI (the test config's) is told in an iframe with iss and sid
        (OpenID Connect Front-Channel Logout 1.0), as Entra ID and others do."""
        p = self.provider
        sid = None
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                sid = value
        with p.lock:
            uri = p.config.get("frontchannel_logout_uri")
            known = sid in p.sessions
            p.sessions.pop(sid, None)
        frames = ""
        if uri and known:
            sep = "&" if urllib.parse.urlsplit(uri).query else "?"
            target = uri + sep + urllib.parse.urlencode({"iss": p.issuer, "sid": sid})
            with p.lock:
                p.stats["frontchannel"].append(target)
            frames = '<iframe src="%s" width="300" height="60" title="relying party"></iframe>' % esc(target)
        page = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Signed out</title></head><body>'
                '<h1 id="signed-out">Signed out</h1><p>You are signed out of the demo provider%s.</p>%s</body></html>'
                % (" and its applications" if frames else "", frames))
        self.send(200, page, headers={"Set-Cookie": "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" % SESSION_COOKIE})

    def end_session(self, query):
        p = self.provider
        record = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
        with p.lock:
            p.stats["end_session"].append(record)
        target = query.get("post_logout_redirect_uri", [None])[0]
        if target:
            parts = urllib.parse.urlsplit(target)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return self.send(400, simple_page("Invalid logout request", "bad post_logout_redirect_uri"))
            state = query.get("state", [None])[0]
            if state is not None:
                sep = "&" if parts.query else "?"
                target = target + sep + urllib.parse.urlencode({"state": state})
            return self.send(302, simple_page("Logged out", "Redirecting"), headers={"Location": target})
        self.send(200, simple_page("Logged out", "You are logged out of the demo provider."))

    def backchannel_logout(self, body: dict):
        """POST /_test/backchannel_logout: make a Logout Token and POST it to the relying party's
        back-channel URI as a real provider does (§2.5: application/x-www-form-urlencoded
        `logout_token=...`); answer with what the relying party said. The provider's lock is not held
        while posting: the relying party may fetch /jwks meanwhile."""
        p = self.provider
        uri = body.get("uri")
        parts = urllib.parse.urlsplit(uri or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("uri must be the relying party's absolute http(s) back-channel logout URL")
        with p.lock:
            token = p.logout_token(body)
            p.stats["backchannel_logout"] += 1
        data = urllib.parse.urlencode({"logout_token": token}).encode("ascii")
        request = urllib.request.Request(uri, data=data, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "*/*", "User-Agent": "demo-idp/1"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
        try:
            with opener.open(request, timeout=15) as answer:
                status, headers, text = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as e:
            status, headers, text = e.code, e.headers, e.read()
        except OSError as e:
            return self.send_json(502, {"error": "unreachable",
                                        "error_description": "POST %s failed: %s" % (uri, e),
                                        "logout_token": token})
        return self.send_json(200, {"status": status, "body": text.decode("utf-8", "replace"),
                                    "headers": {k.lower(): v for k, v in headers.items()},
                                    "logout_token": token})

    def control(self, method, path):
        p = self.provider
        if path == "/_test/stats" and method == "GET":
            with p.lock:
                return self.send_json(200, copy.deepcopy(p.stats))
        if method != "POST":
            return self.send_json(405, {"error": "use POST"})
        body = self.read_json()
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        if path == "/_test/config":
            config = copy.deepcopy(DEFAULT_CONFIG)
            config.update(body)
            unknown = set(config) - set(DEFAULT_CONFIG)
            if unknown:
                raise ValueError("unknown settings %s" % sorted(unknown))
            if config["alg"] not in ALL_ALGS:
                raise ValueError("unsupported alg %r" % config["alg"])
            if config["misbehave"] not in MISBEHAVIOURS:
                raise ValueError("unknown misbehave %r" % config["misbehave"])
            if not isinstance(config["extra_claims"] or {}, dict):
                raise ValueError("extra_claims must be an object")
            if not isinstance(config["discovery_overrides"] or {}, dict):
                raise ValueError("discovery_overrides must be an object")
            if config["auto_login"] not in (None, True, False):
                raise ValueError("auto_login must be true, false or null")
            if config["session"] not in (None, True, False):
                raise ValueError("session must be true, false or null")
            if config["prompt_none_error"] not in PROMPT_NONE_ERRORS:
                raise ValueError("prompt_none_error must be one of %s" % ", ".join(PROMPT_NONE_ERRORS))
            uri = config["frontchannel_logout_uri"]
            if uri is not None:
                parts = urllib.parse.urlsplit(uri if isinstance(uri, str) else "")
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise ValueError("frontchannel_logout_uri must be an absolute http(s) URL")
            with p.lock:
                p.config = config
            return self.send_json(200, config)
        if path == "/_test/fault":
            faults = {k: v for k, v in body.items() if k != "delay"}
            unknown = set(faults) - set(FAULT_TARGETS)
            if unknown:
                raise ValueError("unknown fault targets %s" % sorted(unknown))
            for target, fault in faults.items():
                if fault not in FAULTS:
                    raise ValueError("unknown fault %r for %s" % (fault, target))
            delay = body.get("delay", 30)
            if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 600:
                raise ValueError("delay must be a number of seconds from 0 to 600")
            with p.lock:
                p.set_faults({k: v for k, v in faults.items() if v}, float(delay))
            return self.send_json(200, {"faults": p.faults, "delay": p.fault_delay})
        if path == "/_test/rotate":
            if body.get("kty", "RSA") != "RSA":
                raise ValueError("only RSA keys rotate")
            with p.lock:
                kid = p.keys.rotate_rsa()
            return self.send_json(200, {"kid": kid})
        if path == "/_test/mint":
            batch = body.get("batch")
            if batch is not None:
                # Many tokens in one round trip, for tests that log in thousands of times.
                if not isinstance(batch, list) or len(batch) > 10000 or not all(isinstance(b, dict) for b in batch):
                    raise ValueError("batch must be a list of at most 10000 mint bodies")
                with p.lock:
                    tokens = [p.mint(b) for b in batch]
                return self.send_json(200, {"id_tokens": tokens})
            with p.lock:
                token = p.mint(body)
            return self.send_json(200, {"id_token": token})
        if path == "/_test/reset":
            p.reset()
            return self.send_json(200, {"reset": True})
        if path == "/_test/backchannel_logout":
            return self.backchannel_logout(body)
        self.send_json(404, {"error": "no such control"})


def main(argv=None):
    ap = argparse.ArgumentParser(description="Demo OpenID Provider (Implicit Flow with Form Post).")
    ap.add_argument("--port", type=int, default=9000, help="port to listen on (0: any free port)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--issuer", help="issuer URL (default http://HOST:PORT)")
    ap.add_argument("--client-id", default="demo-client")
    ap.add_argument("--redirect-uri", action="append", default=[],
                    help="an allowed redirect_uri (repeatable); without any, every http(s) URL is allowed")
    ap.add_argument("--auto-login", action="store_true", help="log in as alice without a login page")
    ap.add_argument("--test-controls", action="store_true", help="enable the /_test/* endpoints")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    host = args.host if ":" not in args.host else "[%s]" % args.host
    issuer = (args.issuer or "http://%s:%d" % (host, port)).rstrip("/")
    Handler.provider = Provider(issuer, args.client_id, args.redirect_uri, args.auto_login, args.test_controls)
    Handler.verbose = args.verbose
    print("demo provider ready at %s" % issuer, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
