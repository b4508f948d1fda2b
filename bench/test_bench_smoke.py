"""Smoke test of the benchmark harness: `bench/run.py --quick` (one short run of one round: 2 s of wrk
per configuration, 10 logins per algorithm) must run to the end and give a number in every cell, with no
failed request or login and no crashed Apache child. It asserts no timing: the figures of a 2-core
machine shared with builds mean nothing here, only that the harness still measures every configuration
and prints every row. The table of several runs (each run's value beside the median) is checked on the
quick run's own figures, given twice to the same code that aggregates and prints them. Needs
build/mod_auth_idtoken.so; installs wrk and mod_auth_openidc if missing (bench/setup.sh)."""

import copy
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
                       capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
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


def header_columns(stdout):
    """The column names of the table's header lines (the table may come in blocks of columns)."""
    found = []
    for line in stdout.splitlines():
        words = line.split()
        if words and all(w in run.CONFIGS for w in words):
            found += words
    return found


def test_every_column_is_printed(quick):
    assert header_columns(quick["stdout"]) == run.CONFIGS, quick["stdout"]


def test_every_row_is_printed(quick):
    """The rows the issue asks for, among them: ratios to plain and to mod_auth_openidc, the login's two
    requests apart, PSS, the kinds of error."""
    labels = [label for label, _, _ in run.table_rows(quick)]
    for wanted in ("  ratio to plain (target: cookie ≥ 0.90, cache ≥ 0.85)", "server CPU / login RS256 (µs): redirect GET",
                   "  callback POST (µs)", "  login = GET + POST (µs)",
                   "  ratio to openidc, same sessions (target ≤ 0.3)", "  PSS ratio to openidc, same sessions",
                   "errors: responses not 2xx (status×count)", "errors: connect/read/write"):
        assert wanted in labels, labels
    lines = quick["stdout"].splitlines()
    for label in labels:
        assert any(line.startswith(label) for line in lines), "row %r is not printed:\n%s" % (label, quick["stdout"])
    assert any(line.startswith("on disk: ") and "libIDToken.so" in line and "mod_auth_openidc.so" in line
               for line in lines), quick["stdout"]
    assert any(line.startswith("targets") for line in lines), quick["stdout"]


def test_each_run_is_recorded(quick):
    """Every figure has its per-run values (one run here), and each run the machine's load at its start and end."""
    assert len(quick["runs"]) == quick["settings"]["runs"] == 1
    for r in quick["runs"]:
        for point in ("load_start", "load_end"):
            assert number(r[point]["loadavg_1min"]) and r[point]["cpus"] >= 1, r[point]
        assert set(r["summary"]) == set(run.CONFIGS)
    for column in run.CONFIGS:
        for key in ("rps", "rps_vs_plain", "cpu_us", "pss_kb_after_load"):
            assert len(quick["per_run"][column][key]) == 1 and number(quick["per_run"][column][key][0]), (column, key)
    assert "run 1: " in quick["stdout"] and "load average (1 min)" in quick["stdout"]


def test_several_runs_are_printed_beside_the_median(quick):
    """The quick run's figures given as two runs (the second's requests/s doubled) to aggregate() and
    table(): each cell shows the median, then both runs' values."""
    results = copy.deepcopy(quick)
    second = copy.deepcopy(results["runs"][0])
    second["run"] = 2
    for rnd in second["rounds"]:
        for w in rnd["wrk"].values():
            w["rps"] *= 2
    second["summary"] = run.summarize_run(second, results["configs"])
    results["runs"].append(second)
    results["settings"]["runs"] = 2
    run.aggregate(results)
    text = run.table(results)
    rps = [line for line in text.splitlines() if line.startswith("protected requests/s")]
    assert rps and all(line.count("(") == line.count(")") >= 1 for line in rps), text
    one = quick["summary"]["idtoken-cookie"]["rps"]
    assert results["per_run"]["idtoken-cookie"]["rps"] == [one, 2 * one]
    assert results["summary"]["idtoken-cookie"]["rps"] == pytest.approx(1.5 * one)
    assert "  run 2: " in text


@pytest.mark.parametrize("column", run.CONFIGS)
def test_throughput_latency_cpu_and_memory_figures(quick, column):
    s = quick["summary"][column]
    for key in ("rps", "rps_vs_plain", "p50_ms", "p99_ms", "cpu_us", "cpu_over_plain_us", "cpu_vs_plain"):
        assert number(s[key]), "%s: %s is %r" % (column, key, s[key])
    assert s["rps"] > 0 and s["cpu_us"] > 0
    for point in ("start", "after_login", "after_warmup", "after_load"):
        for kind in ("rss_kb_", "private_kb_", "pss_kb_"):
            assert number(s[kind + point]) and s[kind + point] > 0, "%s: no %s%s" % (column, kind, point)
    for r in quick["runs"]:
        assert r["memory"]["after_load"][column]["children"] == 2


@pytest.mark.parametrize("column", MODULE_COLUMNS)
def test_login_cpu_and_session_cookie_figures(quick, column):
    s = quick["summary"][column]
    for alg in run.ALGS:
        for key in ("login_cpu_us_", "login_get_us_", "login_post_us_", "login_vs_openidc_"):
            assert number(s[key + alg]) and s[key + alg] > 0, "%s: no %s%s" % (column, key, alg)
    assert number(s["pss_vs_openidc"]) and s["pss_vs_openidc"] > 0
    assert number(s["cookie_small"]) and s["cookie_small"] > 0
    for alg in run.ALGS:
        # Negative only if a login cost less than plain Apache's two requests of the same sizes.
        assert number(s["login_own_vs_openidc_" + alg]), (column, s["login_own_vs_openidc_" + alg])


def test_plain_gets_a_logins_two_requests_without_a_module(quick):
    """plain's login cells: the redirect GET's and the callback POST's requests, same sizes, no module (the
    floor every module's login stands on), every one answered 200."""
    s = quick["summary"]["plain"]
    for alg in run.ALGS:
        for key in ("login_cpu_us_", "login_get_us_", "login_post_us_"):
            assert number(s[key + alg]) and s[key + alg] > 0, "plain: no %s%s" % (key, alg)
    assert s["login_failures"] == 0, quick["login_failures"].get("plain")


@pytest.mark.parametrize("column", MODULE_COLUMNS)
def test_fat_token_session_cookie_figure(quick, column):
    assert column not in quick["fat_login_failures"], quick["fat_login_failures"].get(column)
    assert number(quick["summary"][column]["cookie_fat"])


@pytest.mark.parametrize("column", run.CONFIGS)
def test_no_errors(quick, column):
    """Any response not 2xx and any connect, read or write error fails (a module's bug shows so), unless
    httpd's error log says it closed that many keep-alive connections itself because all of a child's
    workers were busy (the event MPM does so for any module; with fewer wrk connections than threads it
    should not happen); a timeout (no answer within wrk's --timeout, 10 s, on a loaded machine) is
    reported, not failed on."""
    s = quick["summary"][column]
    assert s["wrk_unexplained_errors"] == 0, (
        "%s: %d wrk errors: %d responses not 2xx %s, %d connect, %d read, %d write errors; %d keep-alive "
        "connections closed by httpd with all workers busy (and %d timeouts)" % (
            column, s["wrk_errors"], s["wrk_non2xx"], s["wrk_statuses"], s["wrk_connect_errors"],
            s["wrk_read_errors"], s["wrk_write_errors"], s["wrk_busy_closed"], s["wrk_timeouts"]))
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
        assert len(cost[key]["runs"]) == 1


def test_exit_code(quick):
    assert quick["exit_code"] == 0, quick["stdout"][-3000:]
