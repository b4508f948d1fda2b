"""Sessions across graceful restarts and a full stop/start: cookie sessions (the key comes from the key
file) and cache sessions in the default store (IDTokenCache file, which outlives both)."""

import os
import re

import pytest

from harness import Browser, Login, cache_mode

STORES = {"cookie": "", "cache": cache_mode()}


def assert_logged_in(browser, apache):
    r = browser.get(apache.url("/protected/env"))
    assert r.status_code == 200, "not logged in any more (%d):\n%s" % (r.status_code, r.text[:500])
    assert r.json()["REMOTE_USER"] == "alice-0001"


def store_entries(apache):
    """The entry count each start-up line (IDT0314) announced, in order."""
    return [int(n) for n in re.findall(r"IDT0314: .*?; (\d+) entries;", apache.error_log())]


@pytest.mark.parametrize("store", STORES)
def test_session_survives_two_graceful_restarts(apache_factory, provider, store):
    a = apache_factory(provider.discovery_url, extra=STORES[store])
    browser = Browser()
    Login(browser, a).run()
    pid = a.pid
    for _ in range(2):
        a.graceful()
        assert a.pid == pid  # the same parent: a graceful restart, not a new server
        assert_logged_in(browser, a)
    # And a new login still works after them.
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"
    if store == "cache":
        entries = store_entries(a)
        assert len(entries) == 3 and entries[0] == 0 and entries[1] > 0, entries


@pytest.mark.parametrize("store", STORES)
def test_session_survives_stop_and_start(apache_factory, provider, store):
    a = apache_factory(provider.discovery_url, extra=STORES[store])
    browser = Browser()
    Login(browser, a).run()
    a.stop()
    a.start()
    assert_logged_in(browser, a)
    if store == "cache":
        # The parent made it, 0600; the children (User www-data) use the mapping they inherit.
        path = re.findall(r"IDT0314: IDTokenCache file:(\S+):", a.error_log())[-1]
        st = os.stat(path)
        assert st.st_mode & 0o777 == 0o600 and st.st_uid == os.geteuid(), oct(st.st_mode)
        assert store_entries(a)[-1] > 0


def test_cache_session_survives_a_graceful_restart_under_load(apache_factory, provider):
    """A graceful restart while logins go on: old and new children write the one file at once, under
    the one mutex (kept across generations); afterwards every session, from before and during, works."""
    import threading
    a = apache_factory(provider.discovery_url, extra=cache_mode())
    before = Browser()
    Login(before, a).run()
    during, errors = [], []

    def log_in_repeatedly():
        for _ in range(15):
            b = Browser()
            try:
                Login(b, a).run()
                b.session.close()  # (under prefork an idle kept-alive connection holds a child)
                during.append(b)
            except Exception as e:  # noqa: BLE001 - collected and reported below
                errors.append(repr(e))
    t = threading.Thread(target=log_in_repeatedly)
    t.start()
    a.graceful()
    a.graceful()
    t.join(120)
    assert not errors, errors[:3]
    assert len(during) == 15
    for b in [before] + during:
        assert_logged_in(b, a)
