"""The MPM the suite runs under (E2E_MPM=event|worker|prefork, see harness.mpm), and the crash check
every test relies on (conftest.no_crashed_children), under that MPM."""

import os
import signal
import subprocess

from harness import APACHE, Apache, Browser, Login, child_crashes, mpm, wait_for


def test_httpd_runs_the_requested_mpm(apache_factory, provider):
    a = apache_factory(provider.discovery_url, start=False)
    assert a.mpm == mpm()
    r = subprocess.run([APACHE, "-f", str(a.conf), "-V"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("Server MPM:")]
    assert line and line[0].split(":", 1)[1].strip() == a.mpm, r.stdout
    apache_factory.start(a)
    maps = open("/proc/%d/maps" % a.pid).read()
    assert "mod_mpm_%s.so" % a.mpm in maps
    others = [m for m in ("event", "worker", "prefork") if m != a.mpm and "mod_mpm_%s.so" % m in maps]
    assert not others, others
    assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"


def test_the_crash_check_sees_a_child_killed_by_a_signal(provider):
    """A child that dies of a signal (what a trap in the module does) is what the crash check reports,
    for an Apache the fixtures stop before the check's own teardown too (conftest._retire). The crash
    here is on purpose, so the check is called directly and the Apache is not left to the fixtures."""
    import conftest
    a = conftest._start(Apache(provider.discovery_url,
                               extra=lambda a: 'CustomLog %s/pids.log "%%P"' % a.folder))
    try:
        pids = a.folder / "pids.log"
        # The module's request path, so the child that served it has run the Swift code.
        assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"
        served = wait_for(lambda: pids.exists() and pids.read_text().split(), 5, "the access log's pid")
        child = int(served[-1])
        assert child != a.pid
        assert not conftest._new_crashes(a), a.error_log()
        os.kill(child, signal.SIGSEGV)
        wait_for(lambda: child_crashes(a.error_log()), 15, "httpd to log the child's death")
        # httpd replaces the child and goes on serving.
        assert Login(Browser(), a).run()["REMOTE_USER"] == "alice-0001"
    finally:
        crashes = conftest._retire([a])
    assert a not in conftest._running
    assert len(crashes) == 1, crashes
    assert "pid %d" % child in crashes[0] and "Segmentation fault" in crashes[0], crashes
