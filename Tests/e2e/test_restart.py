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


def test_cache_session_survives_a_hard_restart(apache_factory, provider):
    a = apache_factory(provider.discovery_url, extra=cache_mode())
    browser = Browser()
    Login(browser, a).run()
    a.restart()
    assert_logged_in(browser, a)


def test_damaged_store_file_is_replaced_with_a_warning(apache_factory, provider):
    """The header is checked at every start: a file that is not what httpd would have made is replaced
    by an empty one (the sessions in it are gone: a new login), and the log says why."""
    a = apache_factory(provider.discovery_url, extra=cache_mode())
    browser = Browser()
    Login(browser, a).run()
    path = re.findall(r"IDT0314: IDTokenCache file:(\S+):", a.error_log())[-1]
    a.stop()
    with open(path, "r+b") as f:
        f.write(b"NOTASTORE")
    a.start()
    assert re.search(r"IDT0312: IDTokenCache file:%s was replaced \(not a store file" % re.escape(path),
                     a.error_log()), a.error_log()[-2000:]
    assert store_entries(a)[-1] == 0
    assert browser.get(a.url("/protected/env")).status_code == 302
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"


def test_cache_session_survives_a_graceful_restart_under_load(apache_factory, provider):
    """A graceful restart while logins go on: old and new children write the one file at once, under
    the one mutex (kept across generations); afterwards every session, from before and during, works."""
    import threading
    a = apache_factory(provider.discovery_url, extra=cache_mode())
    before = Browser()
    Login(before, a).run()
    during, errors = [], []

    def log_in_repeatedly():
        # Up to the callback only: the protected page is a CGI, and mod_cgid's daemon, restarted by each
        # graceful restart, may fail a request meanwhile (AH01261), which is not the store's doing.
        # A new connection for each request: a graceful restart closes idle kept-alive ones, and a
        # client (unlike a browser) does not retry a POST on one closed under it.
        for _ in range(15):
            b = Browser()
            b.session.headers["Connection"] = "close"
            try:
                r = Login(b, a).start().at_provider().callback()
                b.session.close()  # (under prefork an idle kept-alive connection holds a child)
                if r.status_code == 303 and b.cookie("idtoken_session"):
                    during.append(b)
                else:
                    errors.append("callback answered %d: %s" % (r.status_code, r.text[:300]))
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
