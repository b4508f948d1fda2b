"""The module's own store (IDTokenCache file): 50,000 logins' writes straight into the table (the C test
in Tests/store), thousands of logins through the module into a store sized for them, and what a full
store does under each IDTokenCacheFull policy. Restarts are in test_restart.py, the refusal of cache
sessions without a shared store in test_configtest.py."""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import (REPO, TRACE_WORK, Browser, Login, cache_mode, many_logins, mpm, sessions_valid,
                     wait_module_log, wait_work)

# The notice every start logs: "... room for about N sessions of 1590 bytes sealed; E entries; ...".
ROOM = re.compile(r"IDT0314: IDTokenCache file:(\S+): (\d+) bytes, room for about (\d+) sessions")
COUNTS = re.compile(r"; store: (\d+) entries, (\d+) evicted, (\d+) refused")

only_once = pytest.mark.skipif(mpm() != "event", reason="takes no part of httpd's MPM: run under the event "
                                                        "MPM only")


def announced(apache):
    """(path, size in bytes, room in sessions) from the start-up line."""
    found = ROOM.findall(apache.error_log())
    assert found, "no IDT0314 start-up line:\n" + apache.error_log()[-2000:]
    path, size, room = found[-1]
    return path, int(size), int(room)


def counts(apache, offset=0):
    """(entries, evicted, refused) of the file store, from the latest trace line since `offset`."""
    found = COUNTS.findall(apache.log_since(offset))
    assert found, "no '; store: ...' counts on a trace line (LogLevel auth_idtoken:trace1)"
    return tuple(int(n) for n in found[-1])


# ---------------------------------------------------------------------------------------------------
# The table alone
# ---------------------------------------------------------------------------------------------------

@only_once
def test_table_takes_fifty_thousand_logins_and_keeps_them():
    """Tests/store/store_test.c against apache/idtoken_table.c: 50,000 logins' writes (the nonce mark,
    a 1590-byte session, its sid and sub index entries; 20 logins a second of simulated time) into a
    table of the default size, every session read back intact; then logins until the first session
    gives way (the oldest); each policy on a small table; the file checks (kept, replaced when another
    size, not 0600, damaged, a symbolic link); 3000 rounds of bytes scribbled over it, each followed by
    a repair after which every block is accounted for."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed (build-essential)"
    with tempfile.TemporaryDirectory(prefix="e2e-store-") as folder:
        binary = "%s/store_test" % folder
        built = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary,
                                str(REPO / "Tests" / "store" / "store_test.c")], capture_output=True, text=True)
        assert built.returncode == 0, built.stdout + built.stderr
        r = subprocess.run([binary, folder], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("ok"), r.stdout + r.stderr
    capacity, size = (int(n) for n in re.search(r"capacity: (\d+) sessions in (\d+) bytes", r.stdout).groups())
    assert capacity >= 50000, r.stdout
    assert size == DEFAULT_SIZE, "the C test's table is not the module's default size"
    print(r.stdout.strip())


DEFAULT_SIZE = 128 << 20


def test_default_store_has_the_size_the_c_test_fills(apache):
    """The shared Apache uses the default store: 128M, announced with room for over 50,000 sessions."""
    path, size, room = announced(apache)
    assert path.endswith("/idtoken-store") and size == DEFAULT_SIZE and room >= 50000, (path, size, room)


# ---------------------------------------------------------------------------------------------------
# Through the module
# ---------------------------------------------------------------------------------------------------

def test_logins_through_the_module_fit_the_room_the_start_up_line_announces(apache_factory, provider):
    """A 1M store announces its room; 85% of it in logins (each of a user of its own, concurrently,
    within seconds, so every login's single-use mark is still live too) all succeed, nothing gives way,
    and the first sessions are still valid. Logging in on until the first session gives way measures the
    capacity through the module. About 450 logins, 5 to 15 s: under every MPM, since what it shows
    (every process writing one table) differs most between them. (4M and 1,700 logins took 55 s on a
    loaded CI machine, three times over; the C test fills the default 128M.)"""
    a = apache_factory(provider.discovery_url, extra=cache_mode(None, "IDTokenCache file(1M)", TRACE_WORK))
    _, size, room = announced(a)
    assert (1 << 20) >= size > (1 << 20) - 8192 and room > 350, (size, room)
    fill = int(room * 0.85)
    results = many_logins(a, provider, fill)
    bad = [(i, status, body[:200]) for i, (status, sid, body) in enumerate(results) if status != 303 or not sid]
    assert not bad, "%d of %d logins failed, first: %s" % (len(bad), fill, bad[:3])
    first = [sid for _, sid, _ in results[:200]]
    assert all(sessions_valid(a, first)), "a session among the first 200 is gone after %d logins" % fill
    entries, evicted, refused = counts(a)
    assert (evicted, refused) == (0, 0), "after %d logins in a store with room for %d" % (fill, room)

    # On until the first one gives way: the oldest, and only it (one login's writes may need two).
    offset, total = a.log_size(), fill
    while not wait_module_log(a, offset, r"IDT0315", timeout=0.2):
        assert total < 2 * room, "nothing gave way after %d logins" % total
        results += many_logins(a, provider, 10, first=total)
        total += 10
    line = wait_module_log(a, offset, r"IDT0315")[0]
    assert "sessions gave way" in line and "IDTokenCacheFull evict-idle" in line, line
    _, evicted, refused = counts(a, offset)
    assert evicted >= 1 and refused == 0
    valid = sessions_valid(a, [sid for _, sid, _ in results[:evicted + 100]])
    # The callbacks run 8 at a time, so sessions are written in about, not exactly, the order the logins
    # started: the ones that gave way are the oldest written, among the first evicted + 16 started.
    gone = [i for i, ok in enumerate(valid) if not ok]
    assert len(gone) <= evicted + 4 and all(i < evicted + 16 for i in gone), \
        "the sessions that gave way must be the oldest: %d evicted, gone: %s" % (evicted, gone)
    print("store of %d bytes, announced room %d: %d logins before the first eviction (%.0f per MiB, every "
          "login's mark still live)" % (size, room, total, total / (size / 1048576)))


# ---------------------------------------------------------------------------------------------------
# A full store: each policy
# ---------------------------------------------------------------------------------------------------

TINY = "IDTokenCache file(64K)"


def fill_until(apache, provider, pattern, browsers, limit=80):
    """Logs a new browser in until the module logs `pattern`; returns the new browsers' last login.
    Each browser's connection is closed after its login: under prefork a kept-alive idle connection
    holds a whole child for KeepAliveTimeout."""
    offset = apache.log_size()
    for _ in range(limit):
        browser = Browser()
        login = Login(browser, apache).start().at_provider()
        r = login.callback()
        browser.session.close()
        browsers.append((browser, r))
        if wait_module_log(apache, offset, pattern, timeout=0.05):
            return r
    pytest.fail("the module never logged %r after %d logins" % (pattern, limit))


def test_full_store_evict_idle_drops_the_session_idle_longest(apache_factory, provider):
    """Default policy. Five sessions left idle, then one refreshed after them: new logins fill the
    store until sessions give way: the first idle one goes (its browser is sent to log in again), the
    refreshed one stays, every login succeeds, the warning says so once, and the counter moves."""
    a = apache_factory(provider.discovery_url, extra=cache_mode(None, TINY, TRACE_WORK,
                                                                "IDTokenSessionRefreshInterval 1"))
    idle = [Browser() for _ in range(5)]
    for b in idle:
        Login(b, a).run()
        b.session.close()
    active = Browser()
    Login(active, a).run()
    active.session.close()
    time.sleep(1.1)
    offset = a.log_size()
    assert active.get(a.url("/protected/env")).status_code == 200
    # Rewritten in the store (a cache session's cookie does not change): look, write, tombstone check.
    assert wait_work(a, offset)[-1].store_calls == 3, "the active session should have been refreshed"

    browsers = []
    last = fill_until(a, provider, r"IDT0315", browsers)
    assert all(resp.status_code == 303 for _, resp in browsers), [resp.status_code for _, resp in browsers]
    assert last.status_code == 303
    line = wait_module_log(a, 0, r"IDT0315")[0]
    assert "sessions gave way" in line, line
    assert idle[0].get(a.url("/protected/env")).status_code == 302, "the session idle longest should be gone"
    assert active.get(a.url("/protected/env")).status_code == 200, "the refreshed session must stay"
    _, evicted, refused = counts(a)
    assert evicted >= 1 and refused == 0
    # One line per minute: more evictions meanwhile are counted, not logged.
    offset = a.log_size()
    # (A login may make several sessions give way at once: the counter moves by one or more.)
    fill_until(a, provider, r"store: \d+ entries, (%s) evicted" % "|".join(str(n) for n in range(evicted + 1, evicted + 20)),
               browsers)
    assert not wait_module_log(a, offset, r"IDT0315", timeout=0.2), "a second IDT0315 line within the minute"


def test_full_store_refuse_answers_503_and_keeps_every_session(apache_factory, provider):
    """IDTokenCacheFull refuse: logins fill the store until one is refused: that login gets 503 with
    the module's error page (temporarily_unavailable) and a log line, the warning names the policy,
    the counter moves, and every session logged in before is still valid."""
    a = apache_factory(provider.discovery_url, extra=cache_mode(None, TINY, TRACE_WORK, "IDTokenCacheFull refuse"))
    browsers = []
    last = fill_until(a, provider, r"IDT0315", browsers)
    assert last.status_code == 503, "%d:\n%s" % (last.status_code, last.text[:500])
    assert "temporarily_unavailable" in last.text or "cannot be completed right now" in last.text, last.text[:500]
    line = wait_module_log(a, 0, r"IDT0315")[0]
    assert "writes were refused" in line and "IDTokenCacheFull refuse" in line, line
    refusal = wait_module_log(a, 0, r"temporarily|could not be stored|is full while marking")
    assert refusal, "the refused login must be logged"
    kept = [b for b, resp in browsers if resp.status_code == 303]
    assert len(kept) >= 10
    for b in kept:
        assert b.get(a.url("/protected/env")).status_code == 200, "a session was dropped under refuse"
        b.session.close()
    _, evicted, refused = counts(a)
    assert refused >= 1 and evicted == 0


@pytest.mark.skipif(os.environ.get("E2E_FULL_CAPACITY") != "1",
                    reason="50,000 logins take minutes: E2E_FULL_CAPACITY=1 runs it (not in CI, which runs the "
                           "50,000 writes of the C test and the 4M store through the module)")
def test_fifty_thousand_logins_through_the_module_into_the_default_store(apache_factory, provider):
    """The issue's figure as an admin meets it: 50,000 users log in through the module into the default
    store (128M), in batches of 5,000 (each batch's states still fresh at its callbacks), and the first
    sessions are all still valid, nothing evicted or refused."""
    a = apache_factory(provider.discovery_url, extra=cache_mode(None, TRACE_WORK))
    first = []
    for at in range(0, 50_000, 5_000):
        results = many_logins(a, provider, 5_000, first=at)
        bad = [(i, status) for i, (status, sid, _) in enumerate(results) if status != 303 or not sid]
        assert not bad, "batch at %d: %d failed, first %s" % (at, len(bad), bad[:3])
        if at == 0:
            first = [sid for _, sid, _ in results[:500]]
    assert all(sessions_valid(a, first)), "a session among the first 500 is gone after 50,000 logins"
    entries, evicted, refused = counts(a)
    assert (evicted, refused) == (0, 0)
    print("50,000 logins through the module: %d entries, %d evicted, %d refused" % (entries, evicted, refused))
