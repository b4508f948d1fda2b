"""Fixtures for the end-to-end tests of mod_auth_idtoken (see README.md beside this file)."""

import pytest

from harness import Apache, Browser, Provider, Redis

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


def _start(apache):
    _running.append(apache)
    try:
        apache.start()
    except Exception:
        apache.cleanup()
        _running.remove(apache)
        raise
    return apache


@pytest.fixture(scope="session")
def apache_server(provider_server):
    """The shared Apache with the standard configuration, protected by the session's provider."""
    a = _start(Apache(provider_server.discovery_url))
    yield a
    a.cleanup()
    _running.remove(a)


@pytest.fixture
def apache(apache_server, provider):
    """The shared Apache, for a test that also gets a freshly reset provider."""
    yield apache_server


@pytest.fixture
def apache_factory():
    """make(discovery_url=..., directives=..., extra=..., start=True) -> a new Apache, stopped after the test."""
    made = []

    def make(discovery_url, start=True, **kw):
        a = Apache(discovery_url, **kw)
        made.append(a)
        if start:
            _start(a)
        return a

    yield make
    for a in made:
        a.cleanup()
        if a in _running:
            _running.remove(a)


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
    logs only 'AH00052: child pid N exit signal ...')."""
    before = {id(a): a.log_size() for a in _running}
    yield
    crashes = []
    for a in list(_running):
        new = a.log_since(before.get(id(a), 0))
        crashes += [line for line in new.splitlines() if "exit signal" in line]
    assert not crashes, "an Apache child crashed during this test:\n" + "\n".join(crashes)


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

