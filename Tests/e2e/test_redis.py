"""The module's own Redis store (IDTokenCache redis:... and redis-sentinel:...), against real redis-server
and redis-sentinel processes on 127.0.0.1: a password and an ACL user (a wrong one refused with a clear
line, no secret in the log), TLS with a CA the test makes (a name or a CA that does not match refused),
database numbers and key prefixes that keep sites apart, the single-use mark of a login response atomic
across two servers (the same response posted to both at once, many times: accepted once), a Sentinel
failover followed (the master killed under a stream of requests; the gap measured), and Redis down and
back: cookie sessions go on, cache sessions get 503 with one log line, logins as IDTokenReplayCheckFailure
says."""

import os
import secrets
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from harness import (Browser, Login, Redis, Sentinel, free_port, issue_certificate, make_ca, module_log_lines,
                     wait_for, wait_module_log)

SESSION = "idtoken_session"


def redis_lines(address, *more):
    return "\n".join(["IDTokenCache redis:%s" % address, *more])


def write_secret(folder, name, text):
    path = Path(folder) / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


def get_env(browser, apache):
    return browser.get(apache.url("/protected/env"))


def assert_logged_in(browser, apache, user="alice-0001"):
    r = get_env(browser, apache)
    assert r.status_code == 200, "not logged in at %s (%d):\n%s\n--- log:\n%s" % (
        apache.url(), r.status_code, r.text[:300], apache.error_log()[-3000:])
    assert r.json()["REMOTE_USER"] == user
    return r


@pytest.fixture
def folder(tmp_path):
    os.chmod(tmp_path, 0o755)
    return tmp_path


def startup_lines(apache, number):
    """Start-up lines (logged without the module's tag) with that number."""
    return [line for line in apache.error_log().splitlines() if number in line]


def session_keys(redis, db=None, prefix=""):
    return {k for k in redis.keys(db=db) if k.startswith((prefix + "idtoken:s:").encode())}


# ---------------------------------------------------------------------------------------------------
# Authentication: requirepass and an ACL user
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("user", [None, "idtoken"])
def test_password_from_a_file_logs_in_and_a_wrong_one_is_refused_without_showing_it(apache_factory, provider, folder, user):
    """requirepass (the default user) or an ACL user with a password: the module logs in with the
    password read from IDTokenRedisPasswordFile; with a wrong one the request gets 503, the log one
    line naming the user and Redis's WRONGPASS, and neither password appears anywhere in the log."""
    password, wrong = "pw-" + secrets.token_hex(12), "wrong-" + secrets.token_hex(12)
    if user:
        args = ["--aclfile", str(write_acl(folder, user, password))]
        auth = (user, password)
    else:
        args, auth = ["--requirepass", password], (password,)
    redis = Redis(*args, auth=auth)
    try:
        good = write_secret(folder, "redis.pw", password)
        bad = write_secret(folder, "wrong.pw", wrong)
        lines = [redis_lines(redis.address, "IDTokenRedisPasswordFile %s" % good), "IDTokenSessionStore cache"]
        if user:
            lines.append("IDTokenRedisUser %s" % user)
        a = apache_factory(provider.discovery_url, extra="\n".join(lines))
        browser = Browser()
        Login(browser, a).run()
        assert_logged_in(browser, a)
        assert session_keys(redis), "the session is not in Redis: %s" % redis.keys()
        startup = startup_lines(a, "IDT0325")
        assert startup and ("with the password in %s" % good) in startup[0], startup

        b = apache_factory(provider.discovery_url, key_file=a.key_file,
                           extra="\n".join(l.replace(str(good), str(bad)) for l in lines))
        offset = b.log_size()
        r = get_env(browser, b)
        assert r.status_code == 503, (r.status_code, r.text[:300])
        assert "temporarily_unavailable" in r.text
        found = wait_module_log(b, offset, "IDT0320")
        assert len(found) == 1, b.log_since(offset)
        assert "WRONGPASS" in found[0], found
        assert ("user '%s'" % user if user else "the default user") in found[0], found
        for apache in (a, b):
            text = apache.error_log()
            assert password not in text and wrong not in text, "a password reached the error log"
    finally:
        redis.stop()


def write_acl(folder, user, password):
    """An ACL file: no default user, `user` with `password` and every command on every key."""
    path = Path(folder) / "users.acl"
    path.write_text("user default off\nuser %s on >%s ~* &* +@all\n" % (user, password))
    return path


def test_acl_user_limited_to_its_prefix(apache_factory, provider, folder):
    """An ACL user allowed only keys under `shop:` and only the commands the module sends: with
    IDTokenRedisKeyPrefix shop: every login and session works and every key starts with the prefix;
    without the prefix Redis refuses (NOPERM), the request gets 503 and the log says what Redis refused
    (one line a minute, however many requests)."""
    password = "pw-" + secrets.token_hex(12)
    acl = Path(folder) / "users.acl"
    acl.write_text("user default on nopass ~* &* +@all\n"
                   "user shop on >%s ~shop:* resetchannels -@all +get +set +del +ping +select\n" % password)
    redis = Redis("--aclfile", str(acl))
    try:
        pw = write_secret(folder, "redis.pw", password)
        base = [redis_lines(redis.address, "IDTokenRedisUser shop", "IDTokenRedisPasswordFile %s" % pw),
                "IDTokenSessionStore cache"]
        a = apache_factory(provider.discovery_url, extra="\n".join(base + ["IDTokenRedisKeyPrefix shop:"]))
        browser = Browser()
        Login(browser, a).run()
        assert_logged_in(browser, a)
        keys = redis.keys()
        assert keys and all(k.startswith(b"shop:idtoken:") for k in keys), keys

        b = apache_factory(provider.discovery_url, extra="\n".join(base))
        offset = b.log_size()
        for _ in range(5):
            r = get_env(Browser(), b)
            assert r.status_code == 302  # no session: a login starts (nothing read from the store yet)
        login = Login(Browser(), b).start().at_provider()
        r = login.callback()
        assert r.status_code == 503, (r.status_code, r.text[:300])
        refused = wait_module_log(b, offset, "IDT0323")
        assert len(refused) == 1 and "NOPERM" in refused[0], b.log_since(offset)
    finally:
        redis.stop()


# ---------------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------------

@pytest.fixture
def pki(folder):
    """A CA, a server certificate for localhost and 127.0.0.1, one for another name only, a client
    certificate, and a second CA that signed none of them."""
    ca = make_ca(folder, "Test CA")
    other_ca = make_ca(folder, "Other CA")
    return {
        "ca": ca, "other_ca": other_ca,
        "server": issue_certificate(folder, ca, "redis-local", ["DNS:localhost", "IP:127.0.0.1"]),
        "elsewhere": issue_certificate(folder, ca, "redis-elsewhere", ["DNS:redis.example.test"]),
        "client": issue_certificate(folder, ca, "apache-client", [], client=True),
    }


def tls_redis(pki, server="server", auth_clients="no"):
    cert, key = pki[server]
    tls_port = free_port()
    return Redis("--tls-port", tls_port, "--tls-cert-file", cert, "--tls-key-file", key,
                 "--tls-ca-cert-file", pki["ca"][0], "--tls-auth-clients", auth_clients, tls_port=tls_port)


def test_tls_with_the_tests_ca_and_a_client_certificate(apache_factory, provider, pki):
    """Redis on tls-port only reachable with a client certificate (tls-auth-clients yes): the module
    connects over TLS to localhost:<tls-port>, checks the server's certificate against the test's CA and
    its name, shows its own certificate, and the session lives there."""
    redis = tls_redis(pki, auth_clients="yes")
    try:
        cert, key = pki["client"]
        a = apache_factory(provider.discovery_url, extra="\n".join([
            redis_lines("localhost:%d" % redis.tls_port, "IDTokenRedisTLS on", "IDTokenRedisTLSCAFile %s" % pki["ca"][0],
                        "IDTokenRedisTLSCertificate %s %s" % (cert, key)),
            "IDTokenSessionStore cache"]))
        browser = Browser()
        Login(browser, a).run()
        assert_logged_in(browser, a)
        assert session_keys(redis)
        startup = startup_lines(a, "IDT0325")
        assert startup and "TLS (%s, name verified, client certificate)" % pki["ca"][0] in startup[0], startup
    finally:
        redis.stop()


@pytest.mark.parametrize("case", ["name", "ca", "no client certificate"])
def test_tls_refuses_a_server_it_cannot_trust(apache_factory, provider, pki, case):
    """A certificate for another name (redis.example.test, reached as 127.0.0.1), a CA the module was not
    given, or a server that wants a client certificate the module has none of: no connection, 503, and
    the log says why; a name given with IDTokenRedisTLSServerName that the certificate carries is
    accepted."""
    redis = tls_redis(pki, server="elsewhere" if case == "name" else "server",
                      auth_clients="yes" if case == "no client certificate" else "no")
    try:
        ca = pki["other_ca" if case == "ca" else "ca"][0]
        lines = [redis_lines("127.0.0.1:%d" % redis.tls_port, "IDTokenRedisTLS on", "IDTokenRedisTLSCAFile %s" % ca),
                 "IDTokenSessionStore cache"]
        a = apache_factory(provider.discovery_url, extra="\n".join(lines))
        login = Login(Browser(), a).start().at_provider()
        offset = a.log_size()
        r = login.callback()
        assert r.status_code == 503, (r.status_code, r.text[:300])
        found = wait_module_log(a, offset, "IDT0320")
        assert len(found) == 1, a.log_since(offset)
        expect = {"name": "IP address mismatch", "ca": "the server's certificate is not trusted",
                  "no client certificate": "TLS"}[case]
        assert expect in found[0], found[0]
        assert not session_keys(redis)
        if case == "name":
            b = apache_factory(provider.discovery_url, extra="\n".join(lines + ["IDTokenRedisTLSServerName redis.example.test"]))
            browser = Browser()
            Login(browser, b).run()
            assert_logged_in(browser, b)
    finally:
        redis.stop()


# ---------------------------------------------------------------------------------------------------
# Database numbers and key prefixes
# ---------------------------------------------------------------------------------------------------

def test_database_numbers_and_prefixes_keep_sites_apart(apache_factory, provider, redis):
    """Four servers with one key file, one provider and one client on one Redis: databases 1 and 2, and
    in database 2 two prefixes. Each writes only where it is told, and a session made on one is no
    session on any other (a new login starts there)."""
    settings = [("IDTokenRedisDatabase 1", 1, ""), ("IDTokenRedisDatabase 2", 2, ""),
                ("IDTokenRedisDatabase 2\nIDTokenRedisKeyPrefix site-a:", 2, "site-a:"),
                ("IDTokenRedisDatabase 2\nIDTokenRedisKeyPrefix site-b:", 2, "site-b:")]
    first = None
    servers = []
    for lines, db, prefix in settings:
        a = apache_factory(provider.discovery_url, key_file=first.key_file if first else None,
                           extra=redis_lines(redis.address, lines, "IDTokenSessionStore cache"))
        first = first or a
        servers.append((a, db, prefix))
    for i, (a, db, prefix) in enumerate(servers):
        before = {d: redis.keys(db=d) for d in (0, 1, 2)}
        browser = Browser()
        Login(browser, a).run()
        assert_logged_in(browser, a)
        new = {d: redis.keys(db=d) - before[d] for d in (0, 1, 2)}
        assert not new[0] and not new[3 - db], "written outside database %d: %s" % (db, new)
        assert new[db] and all(k.startswith((prefix + "idtoken:").encode()) for k in new[db]), new[db]
        for j, (other, _, _) in enumerate(servers):
            if j != i:
                r = get_env(browser, other)
                assert r.status_code == 302, "server %d's session accepted by server %d" % (i, j)


def test_a_session_too_big_for_cookies_overflows_to_redis_and_is_read_back_whole(apache_factory, provider, redis):
    """A token with 19 KB of random group names (cookie sessions): its session cannot go in cookies, so it goes to
    Redis under an ID; its sealed value is longer than one read of the connection (16 KiB), and a second
    server with the same key file reads it back whole over TLS-less TCP."""
    import random
    rnd = random.Random(16)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    # Random names, which deflate cannot shrink much: the token stays under the 32 KiB a token may have.
    groups = ["".join(rnd.choice(alphabet) for _ in range(36)) for _ in range(500)]
    a = apache_factory(provider.discovery_url, extra=redis_lines(redis.address))
    b = apache_factory(provider.discovery_url, key_file=a.key_file, extra=redis_lines(redis.address))
    provider.configure(extra_claims={"groups": groups})
    browser = Browser()
    Login(browser, a).run()
    assert len(browser.cookie(SESSION)) == 43, "the session should have overflowed to the store"
    stored = [k for k in session_keys(redis)]
    assert len(stored) == 1 and len(redis.command("GET", stored[0])) > 16384
    env = assert_logged_in(browser, b).json()
    assert env["IDTOKEN_CLAIM_groups"].endswith(groups[-1])


# ---------------------------------------------------------------------------------------------------
# The single-use mark: atomic across servers
# ---------------------------------------------------------------------------------------------------

RACE_PAIRS = 100


def race(a, b, pairs):
    """Posts each login response to both servers at the same moment (a barrier per pair); the number of
    303 (accepted) per pair."""
    wins = []
    for login in pairs:
        cookies = {c.name: c.value for c in login.browser.session.cookies}
        barrier = threading.Barrier(2)
        statuses = [None, None]

        def post(k, server):
            s = requests.Session()
            try:
                barrier.wait(10)
                r = s.post(server.url("/protected/callback"), data=login.form["fields"], cookies=cookies,
                           allow_redirects=False, timeout=30)
                statuses[k] = r.status_code
            except Exception as e:  # counted as no win, and shown
                statuses[k] = repr(e)
            finally:
                s.close()

        threads = [threading.Thread(target=post, args=(k, server)) for k, server in enumerate((a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(s in (303, 400) for s in statuses), statuses
        wins.append(statuses.count(303))
    return wins


def started_logins(a, n):
    """n logins up to the provider's answer; each browser's connection closed (under prefork a kept-alive
    connection holds a child)."""
    logins = []
    for _ in range(n):
        browser = Browser()
        browser.session.headers["Connection"] = "close"
        login = Login(browser, a).start().at_provider()
        browser.session.close()
        logins.append(login)
    return logins


def test_the_same_login_response_posted_to_two_servers_at_once_is_accepted_once(apache_factory, provider, redis):
    """Two servers sharing one Redis (cookie sessions: only the marks are in Redis), RACE_PAIRS login
    responses each posted to both at the same moment: each is accepted by exactly one (SET NX), the other
    refuses it as replayed. The control: two servers with a store each accept every response twice,
    which shows the posts really reach both servers with a response each can accept."""
    a = apache_factory(provider.discovery_url, extra=redis_lines(redis.address))
    b = apache_factory(provider.discovery_url, key_file=a.key_file, extra=redis_lines(redis.address))
    wins = race(a, b, started_logins(a, RACE_PAIRS))
    assert wins == [1] * RACE_PAIRS, wins
    assert len(module_log_lines(a.error_log() + b.error_log(), "replayed")) == RACE_PAIRS

    c = apache_factory(provider.discovery_url)
    d = apache_factory(provider.discovery_url, key_file=c.key_file)
    control = race(c, d, started_logins(c, 5))
    assert control == [2] * 5, control


# ---------------------------------------------------------------------------------------------------
# Sentinel
# ---------------------------------------------------------------------------------------------------

class Stream:
    """A thread sending GET /protected/env with one session, one request at a time, recording
    (time answered, status) in `results` and when each was sent in `sent`, until stopped."""

    def __init__(self, apache, browser):
        self.url = apache.url("/protected/env")
        self.cookies = {c.name: c.value for c in browser.session.cookies}
        self.results = []
        self.sent = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        s = requests.Session()
        while not self.stopped.is_set() and len(self.results) < 20000:
            self.sent.append(time.monotonic())
            try:
                r = s.get(self.url, cookies=self.cookies, allow_redirects=False, timeout=30,
                          headers={"Accept": "text/html"})
                self.results.append((time.monotonic(), r.status_code))
            except requests.RequestException as e:
                self.results.append((time.monotonic(), repr(e)))
            time.sleep(0.01)
        s.close()

    def stop(self):
        self.stopped.set()
        self.thread.join(60)


@pytest.fixture
def sentinel_set():
    """A master, a replica of it and a Sentinel watching them (down after 1 s)."""
    master = Redis("--appendonly", "no", "--save", "")
    replica = Redis("--appendonly", "no", "--save", "", "--replicaof", "127.0.0.1", master.port)
    sentinel = None
    try:
        wait_for(lambda: b"master_link_status:up" in replica.command("INFO", "replication"), 20, "the replica to sync")
        sentinel = Sentinel(master.port)
        wait_for(lambda: sentinel.replicas_known() >= 1, 30, "Sentinel to find the replica")
        yield master, replica, sentinel
    finally:
        for p in (sentinel, replica, master):
            if p:
                p.stop()


@pytest.mark.parametrize("how", ["master killed", "SENTINEL FAILOVER"])
def test_sentinel_failover_is_followed(apache_factory, provider, sentinel_set, how, record_property):
    """IDTokenCache redis-sentinel:mymaster@<sentinel>: the module asks Sentinel for the master. A stream
    of requests with a cache session runs while the master is killed (SIGKILL) or handed over (SENTINEL
    FAILOVER); service resumes on the promoted replica, with the session made before (replicated), and
    the log names the new master. The gap (from the kill to the first request served again) is printed;
    it is mostly Sentinel's down-after time (1 s here) and its election."""
    master, replica, sentinel = sentinel_set
    a = apache_factory(provider.discovery_url, extra="\n".join([
        "IDTokenCache redis-sentinel:%s@%s" % (sentinel.name, sentinel.address), "IDTokenSessionStore cache"]))
    browser = Browser()
    Login(browser, a).run()
    assert_logged_in(browser, a)
    wait_for(lambda: session_keys(replica), 10, "the session to reach the replica")
    offset = a.log_size()
    stream = Stream(a, browser)
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        if how == "master killed":
            master.kill()
        else:
            assert sentinel.command("SENTINEL", "FAILOVER", sentinel.name) == "OK"
        try:
            wait_for(lambda: sentinel.master()[1] == replica.port, 60, "Sentinel to promote the replica")
            promoted = time.monotonic()
            wait_for(lambda: stream.results[-1][0] > promoted and stream.results[-1][1] == 200, 60,
                     "requests to be served again")
        except TimeoutError as e:
            raise AssertionError("%s; the last requests: %s\n--- Sentinel:\n%s\n--- httpd:\n%s" % (
                e, stream.results[-5:], sentinel.log()[-3000:], a.log_since(offset)[-5000:])) from e
        # A child asks Sentinel at most once a second, and only while it serves requests: the stream
        # goes on until one has logged the move (reads may have been served meanwhile by the old master,
        # now a replica). Generous: on a loaded machine this took over 10 s once.
        # (A child that had not asked before logs the old master first: the line looked for names the new.)
        moved = wait_module_log(a, offset, r"IDT0327: .* the master is at 127\.0\.0\.1:%d " % replica.port, timeout=45)
    finally:
        stream.stop()
    after = [(t, s) for t, s in stream.results if t > t0]
    failed = [(t, s) for t, s in after if s != 200]
    assert all(s in (200, 503) for _, s in after), set(s for _, s in after)
    gap = (max(t for t, _ in failed) - t0) if failed else 0.0
    record_property("failover_gap_s", round(gap, 2))
    print("\nfailover (%s): %d requests failed (503), gap %.2f s" % (how, len(failed), gap))
    assert stream.results[-1][1] == 200
    assert moved, a.log_since(offset)
    # The other children follow when a request of theirs fails (each asks Sentinel at most once a
    # second): until then one may still answer 503, as CI saw 0.1 s after the first child moved.
    try:
        wait_for(lambda: all(get_env(browser, a).status_code == 200 for _ in range(8)), 30,
                 "every child to follow the new master", interval=0.2)
    except TimeoutError as e:
        raise AssertionError("%s\n--- httpd:\n%s" % (e, a.log_since(offset)[-5000:])) from e
    # The session made before the failover is served by the new master; a new login works there too.
    assert_logged_in(browser, a)
    fresh = Browser()
    Login(fresh, a).run()
    assert_logged_in(fresh, a)
    assert len(session_keys(replica)) >= 2


# ---------------------------------------------------------------------------------------------------
# Redis down, and back
# ---------------------------------------------------------------------------------------------------

def test_cookie_sessions_go_on_while_redis_is_down_and_logins_follow_the_replay_setting(apache_factory, provider, folder):
    """Cookie sessions: only the single-use marks are in Redis. With Redis stopped a logged-in user goes
    on; a new login gets 503 (IDTokenReplayCheckFailure refuse, the default) or, with `accept`, is let
    through with a warning. Logins work again once Redis is back."""
    redis = Redis()
    try:
        strict = apache_factory(provider.discovery_url, extra=redis_lines(redis.address))
        lenient = apache_factory(provider.discovery_url, key_file=strict.key_file,
                                 extra=redis_lines(redis.address, "IDTokenReplayCheckFailure accept"))
        browser = Browser()
        Login(browser, strict).run()
        port = redis.port
        redis.shutdown()
        for _ in range(3):
            assert_logged_in(browser, strict)
            assert_logged_in(browser, lenient)
        offset = strict.log_size()
        r = Login(Browser(), strict).start().at_provider().callback()
        assert r.status_code == 503, (r.status_code, r.text[:300])
        assert wait_module_log(strict, offset, "IDTokenReplayCheckFailure refuse")
        offset = lenient.log_size()
        other = Browser()
        r = Login(other, lenient).start().at_provider().callback()
        assert r.status_code == 303, (r.status_code, r.text[:300])
        warned = wait_module_log(lenient, offset, "accepted without its single-use mark")
        assert warned and "warn" in warned[0], warned
        assert_logged_in(other, lenient)
        redis.port = port
        redis.start()
        fresh = Browser()
        wait_for(lambda: Login(fresh, strict).start().at_provider().callback().status_code == 303, 10,
                 "logins to work again")
    finally:
        redis.stop()


LOAD_THREADS = 4


def test_cache_sessions_get_503_with_one_log_line_while_redis_is_down_and_come_back(apache_factory, provider, folder):
    """Cache sessions on a Redis that keeps its data (append-only file), under a load of four threads of
    requests: Redis stopped, every request gets 503 (not a login redirect) and the log gets one line for
    the server, not one per request; Redis started again, the same sessions are served again and one
    line says it is back. No request gets anything but 200 or 503."""
    redis = Redis("--appendonly", "yes", "--appendfsync", "always", "--save", "")
    try:
        a = apache_factory(provider.discovery_url, extra=redis_lines(redis.address, "IDTokenSessionStore cache"))
        browsers = [Browser() for _ in range(LOAD_THREADS)]
        for i, b in enumerate(browsers):
            Login(b, a).run()
        streams = [Stream(a, b) for b in browsers]
        try:
            time.sleep(0.5)
            offset = a.log_size()
            port = redis.port
            redis.shutdown()
            t_down = time.monotonic()
            time.sleep(3)
            t_up = time.monotonic()
            redis.port = port
            redis.start()
            wait_for(lambda: all(s.results and s.results[-1][1] == 200 and s.results[-1][0] > t_up for s in streams),
                     20, "every stream to be served again")
            time.sleep(0.3)
        finally:
            for s in streams:
                s.stop()
        results = [x for s in streams for x in s.results]
        assert {s for _, s in results} <= {200, 503}, {s for _, s in results}
        # Sent after Redis had stopped, answered before it started again (a loaded machine may answer
        # a request sent before the stop long after it).
        down = [r for s in streams for sent, r in zip(s.sent, s.results) if sent > t_down and r[0] < t_up]
        assert len(down) >= 20 and all(s == 503 for _, s in down), down[:5]
        text = a.log_since(offset)
        assert len(module_log_lines(text, "IDT0320")) == 1, text[-3000:]
        assert len(module_log_lines(text, "IDT0322")) == 1, text[-3000:]
        assert not module_log_lines(text, "IDT0321")
        for b in browsers:
            assert_logged_in(b, a)
        r = browsers[0].get(a.url("/protected/env"))
        assert r.status_code == 200
    finally:
        redis.stop()


def test_a_redis_that_stops_answering_costs_a_request_its_timeout_not_a_hang(apache_factory, provider):
    """Redis frozen (SIGSTOP: connections stay open, nothing answers), IDTokenRedisTimeout 300 ms: a
    request with a cache session is answered 503 while Redis is still frozen, the log saying the command
    got no answer in time; Redis thawed, the session is served again."""
    redis = Redis()
    try:
        a = apache_factory(provider.discovery_url, extra=redis_lines(redis.address, "IDTokenRedisTimeout 300 300",
                                                                      "IDTokenSessionStore cache"))
        browser = Browser()
        Login(browser, a).run()
        assert_logged_in(browser, a)
        offset = a.log_size()
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            answered = {}
            t = threading.Thread(target=lambda: answered.setdefault("r", get_env(browser, a)))
            t.start()
            t.join(20)  # far longer than the timeout; Redis stays frozen all along
            assert "r" in answered, "the request waited for a frozen Redis instead of its IDTokenRedisTimeout"
            assert answered["r"].status_code == 503, answered["r"].status_code
            found = wait_module_log(a, offset, "IDT0320")
            assert found and "no answer in time (IDTokenRedisTimeout)" in found[0], a.log_since(offset)
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        wait_for(lambda: get_env(browser, a).status_code == 200, 10, "the session to be served again")
    finally:
        redis.stop()


# ---------------------------------------------------------------------------------------------------
# The directives at configtest
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lines,message", [
    (["IDTokenCache redis:"], "IDTokenCache redis:: no address"),
    (["IDTokenCache redis:127.0.0.1:0"], "the port must be a number from 1 to 65535"),
    (["IDTokenCache redis:a:1,b:2"], "one server (for several, use redis-sentinel:)"),
    (["IDTokenCache redis-sentinel:127.0.0.1:26379"], "redis-sentinel: takes the master's name"),
    (["IDTokenCache redis:127.0.0.1", "IDTokenRedisDatabase -1"], "IDTokenRedisDatabase: a database number"),
    (["IDTokenCache redis:127.0.0.1", "IDTokenRedisTimeout 5"], "IDTokenRedisTimeout: milliseconds from 10 to 60000"),
    (["IDTokenCache redis:127.0.0.1", "IDTokenRedisKeyPrefix \"a b\""], "IDTokenRedisKeyPrefix: up to 64 printable"),
    (["IDTokenCache redis:127.0.0.1", "IDTokenRedisPasswordFile /nonexistent/redis.pw"],
     "IDTokenRedisPasswordFile /nonexistent/redis.pw: cannot open it"),
    (["IDTokenCache redis:127.0.0.1", "IDTokenRedisUser idtoken"], "IDTokenRedisUser idtoken needs IDTokenRedisPasswordFile"),
    (["IDTokenCache redis:127.0.0.1", "IDTokenRedisTLSCAFile /etc/ssl/certs/ca-certificates.crt"], "need IDTokenRedisTLS on"),
    (["IDTokenCache redis:127.0.0.1", "IDTokenRedisTLS on", "IDTokenRedisTLSCAFile /nonexistent/ca.pem"],
     "IDTokenRedisTLSCAFile /nonexistent/ca.pem: no certificate in it can be read"),
    (["IDTokenRedisDatabase 2"], "IDTokenRedisDatabase applies to the module's Redis store only"),
    (["IDTokenCache redis:127.0.0.1", "IDTokenCacheFull refuse"], "Redis evicts entries by its own maxmemory-policy"),
    (["IDTokenReplayCheckFailure sometimes"], "IDTokenReplayCheckFailure: must be refuse"),
])
def test_configtest_names_the_redis_directive_that_is_wrong(apache_factory, provider_server, lines, message):
    a = apache_factory(provider_server.discovery_url, start=False, extra="\n".join(lines))
    code, out = a.configtest()
    assert code != 0 and message in out, out


def test_configtest_reads_the_password_file_and_tls_files(apache_factory, provider_server, pki, folder):
    """A complete Redis configuration passes configtest without connecting (nothing listens there): the
    files are read, the password is not printed."""
    password = "pw-" + secrets.token_hex(12)
    pw = write_secret(folder, "redis.pw", password)
    cert, key = pki["client"]
    a = apache_factory(provider_server.discovery_url, start=False, extra="\n".join([
        "IDTokenCache redis-sentinel:mymaster@127.0.0.1:1,[::1]:2", "IDTokenRedisUser idtoken",
        "IDTokenRedisPasswordFile %s" % pw, "IDTokenRedisTLS on", "IDTokenRedisTLSCAFile %s" % pki["ca"][0],
        "IDTokenRedisTLSCertificate %s %s" % (cert, key), "IDTokenRedisTLSServerName redis.example.test",
        "IDTokenRedisDatabase 3", "IDTokenRedisTimeout 250 500", "IDTokenRedisKeyPrefix shop:",
        "IDTokenSessionStore cache"]))
    code, out = a.configtest()
    assert code == 0, out
    assert password not in out
