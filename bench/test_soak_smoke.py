"""Smoke test of the soak harness: `bench/soak.py --quick` (2x10^4 protected requests, 200 logins) must
run to the end, print the memory curve of every child, and count no error. It asserts no timing and no
memory figure: a short run on a shared 2-core machine says nothing about leaks, only that the harness
still works. Needs build/mod_auth_idtoken.so and wrk (bench/setup.sh installs it when missing)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    if not run.MODULE.exists():
        pytest.fail("%s does not exist: build the module first (make)" % run.MODULE)
    out = tmp_path_factory.mktemp("soak") / "quick.json"
    p = subprocess.run([sys.executable, str(BENCH / "soak.py"), "--quick", "--json", str(out)],
                       capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    print(p.stdout)
    print(p.stderr, file=sys.stderr)
    assert out.exists(), "bench/soak.py --quick wrote no results (exit %d):\n%s\n%s" % (
        p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    results = json.loads(out.read_text())
    results["exit_code"], results["stdout"] = p.returncode, p.stdout
    return results


def test_the_targets_were_reached(quick):
    assert quick["requests"] >= 20_000
    assert quick["logins"] >= 200
    assert len(quick["wrk"]) >= 2  # the warm-up and at least one round's run with its own session


def test_no_errors(quick):
    assert sum(w["non2xx"] for w in quick["wrk"]) == 0, quick["wrk"]
    assert sum(w["socket_errors"] for w in quick["wrk"]) == 0, quick["wrk"]
    assert quick["login_failures"] == []
    assert quick["crashes"] == [] and quick["problems"] == []
    assert quick["exit_code"] == 0, quick["stdout"][-3000:]


def test_the_curve_is_printed_for_every_child(quick):
    samples = quick["samples"]
    assert [s.get("label") for s in samples][:2] == ["start", "after warm-up"]
    assert len(samples) >= 4
    pids = set(samples[0]["children"])
    assert len(pids) == 2, samples[0]  # run.py's MPM: two children, never replaced
    for s in samples:
        assert set(s["children"]) == pids, "a child was replaced: %r" % s
        assert all(c["rss"] > 0 and c["private"] > 0 for c in s["children"].values())
    lines = quick["stdout"].splitlines()
    header = [i for i, line in enumerate(lines) if line.lstrip().startswith("time s")]
    assert header, quick["stdout"]
    assert all("child %s" % pid in lines[header[0]] for pid in pids)
    rows = lines[header[0] + 1:header[0] + 1 + len(samples)]
    assert len(rows) == len(samples) and all(row.count(" / ") == 2 for row in rows), rows
    assert "verdict: OK" in quick["stdout"]
