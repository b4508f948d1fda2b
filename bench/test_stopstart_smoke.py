"""Smoke test of the stop/start stress (bench/stopstart.py): four cycles per MPM under load, one of each
action (stop, graceful, graceful-stop, restart), must end with no child killed by a signal and no core
file; and the detector must see a crash when there is one (a child sent SIGSEGV). About 30 s. A crash
whose core file shows httpd's own close_worker_sockets race at an ungraceful stop (bench/README.md,
"Stop/start stress") is reported but does not fail: it is not this module's, and it would make CI flaky.
Needs build/mod_auth_idtoken.so and wrk (bench/setup.sh installs it when missing); gdb to tell that race
apart (without gdb such a crash fails the test, as any other)."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402


def stopstart(*args, timeout=240):
    """Runs stopstart.py with its own core folder (removed afterwards); returns (process, results)."""
    if not run.MODULE.exists():
        pytest.fail("%s does not exist: build the module first (make)" % run.MODULE)
    # Under /tmp, not pytest's tmp_path: the children (www-data) must be able to reach it to dump core.
    cores = Path(tempfile.mkdtemp(prefix="stopstart-smoke-cores-"))
    out = cores / "results.json"
    try:
        p = subprocess.run([sys.executable, str(BENCH / "stopstart.py"), "--core-dir", str(cores), "--json", str(out),
                            *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        print(p.stdout)
        print(p.stderr, file=sys.stderr)
        assert out.exists(), "bench/stopstart.py wrote no results (exit %d):\n%s\n%s" % (
            p.returncode, p.stdout[-3000:], p.stderr[-3000:])
        return p, json.loads(out.read_text())
    finally:
        shutil.rmtree(cores, ignore_errors=True)


def test_stop_and_start_under_load_every_mpm():
    p, results = stopstart("--quick", "--allow-httpd-race")
    by_mpm = {r["mpm"]: r for r in results["results"]}
    assert set(by_mpm) == {"event", "worker", "prefork"}, p.stdout
    for mpm, r in by_mpm.items():
        assert r["cycles"] >= 2 and r["actions"]["stop"] >= 1 and r["actions"]["graceful"] >= 1, (mpm, r["actions"])
        assert r["wrk_requests"] > 0 and r["logins_ok"] > 0, "no load on %s: %r" % (mpm, r)
        assert r["crash_lines"] == [] and r["cores"] == [], "%s: %s" % (mpm, p.stdout[-3000:])
        assert r["control_failures"] == [], r["control_failures"]
    assert p.returncode == 0 and "verdict: OK" in p.stdout, p.stdout[-3000:]
    # The table: a row per MPM with its counts.
    rows = [line.split() for line in p.stdout.splitlines() if line.split()[:1] in (["event"], ["worker"], ["prefork"])]
    assert [row[0] for row in rows][:3] == ["event", "worker", "prefork"], p.stdout


def test_a_crashed_child_is_seen():
    """--self-check sends SIGSEGV to a child in the first cycle: the run must fail and name it, with its
    core file when the kernel writes cores into CoreDumpDirectory, and never take it for httpd's race."""
    p, results = stopstart("--mpm", "event", "--cycles", "1", "--self-check", "--allow-httpd-race")
    r = results["results"][0]
    assert p.returncode == 1 and "verdict: CRASHED" in p.stdout, p.stdout[-3000:]
    assert r["self_check_pid"], r
    victim = "child pid %d exit signal Segmentation fault" % r["self_check_pid"]
    assert sum(victim in line for line in r["crash_lines"]) == 1, r
    # httpd's own stop race may strike another child in the same stop (it did in CI once): that one is
    # allowed, but the child we killed must never be taken for it.
    assert not any(victim in entry["line"] for entry in r["httpd_race"]), r["httpd_race"]
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if not pattern.startswith("|") and "/" not in pattern:
        assert len(r["cores"]) == 1, "no core file although kernel.core_pattern is %r: %r" % (pattern, r)
