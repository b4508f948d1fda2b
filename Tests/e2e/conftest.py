"""Fixtures for the end-to-end tests of mod_auth_idtoken (see README.md beside this file)."""

import pytest

from harness import Apache, Browser, Provider, Redis, child_crashes

# ---------------------------------------------------------------------------------------------------
# The demo provider
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def provider_server():
    """demo/provider/idp.py --test-controls --auto-login --client-id test-client, for the whole run."""
    p = Provider("--test-controls", "--auto-login", client_id="test-client")
    yield p
    p.stop()


@pytest.fixture
def provider(provider_server):
    """The session's provider, reset (config, stats, keys) before the test."""
    provider_server.reset()
    yield provider_server


# ---------------------------------------------------------------------------------------------------
# Apache
# ---------------------------------------------------------------------------------------------------

_running = []  # every Apache started by a fixture, for the crash check
_checked = {}  # id(apache) -> how far (bytes) the crash check has read its error log


def _new_crashes(apache) -> list:
    """The crash lines `apache` logged since the check last looked (each line is reported once)."""
    offset = _checked.get(id(apache), 0)
    try:
        with open(apache.log_file, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return []
    _checked[id(apache)] = offset + len(data)
    return child_crashes(data.decode("utf-8", "replace"))


def _retire(apaches) -> list:
    """Stops each Apache, then reads what its children logged up to the end (a fixture's instances
    are stopped before the autouse check's teardown runs, so that check alone would miss them), then
    removes its folder. Returns the crash lines."""
    crashes = []
    for a in apaches:
        try:
            a.stop()
        finally:
            crashes += _new_crashes(a)
            a.cleanup()
            if a in _running:
                _running.remove(a)
            _checked.pop(id(a), None)
    return crashes


def _assert_no_crashes(crashes):
    assert not crashes, "an Apache child crashed during this test:\n" + "\n".join(crashes)


def _start(apache):
    _running.append(apache)
    try:
        apache.start()
    except Exception:
        _retire([apache])
        raise
    return apache


@pytest.fixture(scope="session")
def apache_server(provider_server):
    """The shared Apache with the standard configuration, protected by the session's provider."""
    a = _start(Apache(provider_server.discovery_url))
    yield a
    _assert_no_crashes(_retire([a]))


@pytest.fixture
def apache(apache_server, provider):
    """The shared Apache, for a test that also gets a freshly reset provider."""
    yield apache_server


def _factory():
    made = []

    def make(discovery_url, start=True, **kw):
        a = Apache(discovery_url, **kw)
        made.append(a)
        if start:
            _start(a)
        return a

    make.start = _start  # for an Apache made with start=False, e.g. after a configtest

    def cleanup():
        _assert_no_crashes(_retire(made))

    return make, cleanup


@pytest.fixture
def apache_factory():
    """make(discovery_url=..., directives=..., extra=..., start=True) -> a new Apache, stopped after the test.
    make.start(apache) starts one made with start=False."""
    make, cleanup = _factory()
    yield make
    cleanup()


@pytest.fixture(scope="module")
def module_apache_factory():
    """The same as apache_factory, for an Apache that a whole test module shares (stopped after it)."""
    make, cleanup = _factory()
    yield make
    cleanup()


# ---------------------------------------------------------------------------------------------------
# Redis, the store several Apache servers share in cache mode
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server():
    """redis-server --save "" --appendonly no --bind 127.0.0.1 --port <free>, for the whole run."""
    r = Redis()
    yield r
    r.stop()


@pytest.fixture
def redis(redis_server):
    """The session's Redis, emptied before the test."""
    redis_server.flushall()
    yield redis_server


@pytest.fixture(autouse=True)
def no_crashed_children(request):
    """After each test: no Apache child died of a signal (a trap in the module kills the child and httpd
    logs only 'AH00052: child pid N exit signal ...'). This covers the Apaches still running then (the
    shared ones); the factories check theirs as they stop them, before this teardown runs."""
    yield
    crashes = []
    for a in list(_running):
        crashes += _new_crashes(a)
    _assert_no_crashes(crashes)


# ---------------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.session.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs headless Chromium through Selenium")
    config.addinivalue_line("markers", "interop: against a real OpenID Provider installed from Debian's packages "
                                       "(LemonLDAP::NG: bash Tests/interop/lemonldap/install.sh)")

