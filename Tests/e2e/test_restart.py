"""Sessions across graceful restarts and a full stop/start (the session key comes from the key file)."""

from harness import Browser, Login


def assert_logged_in(browser, apache):
    r = browser.get(apache.url("/protected/env"))
    assert r.status_code == 200, "not logged in any more (%d):\n%s" % (r.status_code, r.text[:500])
    assert r.json()["REMOTE_USER"] == "alice-0001"


def test_session_survives_two_graceful_restarts(apache_factory, provider):
    a = apache_factory(provider.discovery_url)
    browser = Browser()
    Login(browser, a).run()
    pid = a.pid
    for _ in range(2):
        a.graceful()
        assert a.pid == pid  # the same parent: a graceful restart, not a new server
        assert_logged_in(browser, a)
    # And a new login still works after them.
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"


def test_session_survives_stop_and_start(apache_factory, provider):
    a = apache_factory(provider.discovery_url)
    browser = Browser()
    Login(browser, a).run()
    a.stop()
    a.start()
    assert_logged_in(browser, a)
