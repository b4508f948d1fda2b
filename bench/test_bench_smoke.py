"""Smoke test of the benchmark harness: `bench/run.py --quick` (one short round: 2 s of wrk per
configuration, 10 logins per algorithm) must run to the end and give a number in every cell, with no
failed request or login and no crashed Apache child. It asserts no timing: the figures of a 2-core
machine shared with builds mean nothing here, only that the harness still measures all seven
configurations. Needs build/mod_auth_idtoken.so; installs wrk and mod_auth_openidc if missing
(bench/setup.sh)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402

MODULE_COLUMNS = run.MODULE_CONFIGS


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    if not run.MODULE.exists():
        pytest.fail("%s does not exist: build the module first (make)" % run.MODULE)
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    p = subprocess.run([sys.executable, str(BENCH / "run.py"), "--quick", "--json", str(out)],
                       capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    print(p.stdout)
    print(p.stderr, file=sys.stderr)
    assert out.exists(), "bench/run.py --quick wrote no results (exit %d):\n%s\n%s" % (
        p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    results = json.loads(out.read_text())
    results["exit_code"] = p.returncode
    results["stdout"] = p.stdout
    return results


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_every_column_is_printed(quick):
    header = [line for line in quick["stdout"].splitlines() if "idtoken-cookie" in line and "plain" in line]
    assert header, "no table header in the output:\n" + quick["stdout"]
    for column in run.CONFIGS:
        assert column in header[0]


@pytest.mark.parametrize("column", run.CONFIGS)
def test_throughput_latency_cpu_and_memory_figures(quick, column):
    s = quick["summary"][column]
    for key in ("rps", "rps_vs_plain", "p50_ms", "p99_ms", "cpu_us", "cpu_over_plain_us"):
        assert number(s[key]), "%s: %s is %r" % (column, key, s[key])
    assert s["rps"] > 0 and s["cpu_us"] > 0
    for point in ("start", "after_login", "after_warmup", "after_load"):
        for kind in ("rss_kb_", "private_kb_"):
            assert number(s[kind + point]) and s[kind + point] > 0, "%s: no %s%s" % (column, kind, point)
    assert quick["memory"]["after_load"][column]["children"] == 2


@pytest.mark.parametrize("column", MODULE_COLUMNS)
def test_login_cpu_and_session_cookie_figures(quick, column):
    s = quick["summary"][column]
    for alg in run.ALGS:
        assert number(s["login_cpu_us_" + alg]) and s["login_cpu_us_" + alg] > 0, "%s: no login CPU for %s" % (
            column, alg)
    assert number(s["cookie_small"]) and s["cookie_small"] > 0


@pytest.mark.parametrize("column", MODULE_COLUMNS)
def test_fat_token_session_cookie_figure(quick, column):
    assert column not in quick["fat_login_failures"], quick["fat_login_failures"].get(column)
    assert number(quick["summary"][column]["cookie_fat"])


@pytest.mark.parametrize("column", run.CONFIGS)
def test_no_errors(quick, column):
    s = quick["summary"][column]
    assert s["wrk_errors"] == 0, "%s: %d wrk errors (non-2xx or socket)" % (column, s["wrk_errors"])
    assert s["login_failures"] == 0, "%s: failed logins: %s" % (column, quick["login_failures"].get(column))
    crashes = [line for line in quick["problems"].get(column, []) if "exit signal" in line]
    assert not crashes, "%s: an Apache child crashed:\n%s" % (column, "\n".join(crashes))


def test_metrics_cost_is_printed(quick):
    """On against Off, round by round: printed with its spread, every figure a number (none asserted)."""
    assert "server CPU / protected request:" in quick["stdout"], quick["stdout"][-2000:]
    cost = quick["metrics_cost"]
    for key in ("cpu_us_per_request", "rps_ratio", "cpu_us_per_login_RS256", "cpu_us_per_login_ES256"):
        for figure in ("median", "min", "max"):
            assert number(cost[key][figure]), "%s %s is %r" % (key, figure, cost[key][figure])


def test_exit_code(quick):
    assert quick["exit_code"] == 0, quick["stdout"][-3000:]
