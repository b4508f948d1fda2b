#!/usr/bin/env python3
"""Where a protected request's time goes beyond instructions: context switches and futex calls per
request, for plain Apache, mod_auth_idtoken and mod_auth_openidc under the same wrk load (event MPM, the
configuration of bench/run.py). A lock that threads contend on shows as futex calls and voluntary
switches per request above plain Apache's; the machine's other work shows as involuntary switches.

    python3 bench/switches.py                                    # plain, idtoken-cookie, idtoken-cache, openidc-cookie
    python3 bench/switches.py --configs plain,idtoken-cookie --seconds 5 --runs 3

Each configuration, in a fresh httpd per run: one login, then wrk for --seconds while the children's
per-thread switch counters (/proc/PID/task/TID/status) are read before and after; then wrk again for
--seconds with `strace -f -c -e trace=futex` attached to each child (strace slows the server several
times over: the futex count per request is what to read, not the speed). Figures per request, the
median of the runs with each run's value beside it. Nothing is asserted: a reading, for bench/README.md.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402
from run import BenchApache, Minter, Provider, children_of, median, run_wrk  # noqa: E402

DEFAULT_CONFIGS = "plain,idtoken-cookie,idtoken-cache,openidc-cookie"


def switches(pids):
    """{(pid, tid): (voluntary, involuntary)} of every thread of these processes."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                text = Path("/proc/%d/task/%s/status" % (pid, tid)).read_text()
            except OSError:
                continue
            v = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", text, re.M)
            n = re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", text, re.M)
            if v and n:
                out[(pid, tid)] = (int(v.group(1)), int(n.group(1)))
    return out


def switch_delta(a, b):
    vol = sum(b[k][0] - a.get(k, (0, 0))[0] for k in b)
    invol = sum(b[k][1] - a.get(k, (0, 0))[1] for k in b)
    return vol, invol


def futex_calls(pids, work, show=False):
    """Runs work() with strace counting futex calls in every thread of these processes; the count.
    show: every system call counted (`strace -c`'s table per child), printed."""
    tracers = []
    outs = []
    for pid in pids:
        out = Path("/tmp/switches-strace-%d.txt" % pid)
        outs.append(out)
        tracers.append(subprocess.Popen(["strace", "-f", "-c", *([] if show else ["-e", "trace=futex"]), "-o", str(out), "-p", str(pid)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # strace attaches to every thread
    try:
        result = work()
    finally:
        for t in tracers:
            t.send_signal(signal.SIGINT)
        for t in tracers:
            try:
                t.wait(30)
            except subprocess.TimeoutExpired:
                t.kill()
    calls = 0
    for out in outs:
        if show and out.exists():
            print(out.read_text())
        try:
            m = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?futex$", out.read_text(), re.M)
        except OSError:
            m = None
        calls += int(m.group(1)) if m else 0
        out.unlink(missing_ok=True)
    return calls, result


def one(kind, provider, module, args):
    inst = BenchApache(kind, provider, module=module)
    inst.start()
    try:
        cookies = run.session_or_filler(inst)
        run_wrk(inst, cookies, 1, args.threads, args.connections)  # warm-up
        kids = children_of(inst.pid)
        before = switches(kids)
        w = run_wrk(inst, cookies, args.seconds, args.threads, args.connections)
        vol, invol = switch_delta(before, switches(kids))
        n = max(1, w["requests"])
        calls, traced = futex_calls(children_of(inst.pid), lambda: run_wrk(inst, cookies, args.seconds, args.threads,
                                                                            args.connections), args.all_calls)
        return {"rps": w["rps"], "voluntary": vol / n, "involuntary": invol / n,
                "futex": calls / max(1, traced["requests"]), "traced_requests": traced["requests"]}
    finally:
        run.stop_instance(inst)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=24)
    ap.add_argument("--all-calls", action="store_true", help="trace every system call and print strace's table")
    args = ap.parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(run.CONFIGS)
    if unknown:
        ap.error("unknown configuration(s): %s" % ", ".join(sorted(unknown)))
    run.ensure_tools()

    def work():
        module = run.private_module()
        provider = Provider("--test-controls", "--auto-login", client_id=run.CLIENT_ID)
        Minter(provider)
        rows = {k: [] for k in configs}
        try:
            for i in range(args.runs):
                for kind in configs:
                    rows[kind].append(one(kind, provider, module, args))
                    run.log("run %d, %s: %r" % (i + 1, kind, {k: round(v, 3) for k, v in rows[kind][-1].items()}))
        finally:
            provider.stop()
        return rows

    rows = run.in_own_tmp("mod_auth_idtoken-switches-", work)
    print("\nper protected request (median of %d runs; each run's value in brackets)" % args.runs)
    print("%-16s %22s %30s %30s %30s" % ("", "requests/s (untraced)", "voluntary switches", "involuntary switches",
                                          "futex calls (under strace)"))
    for kind, rs in rows.items():
        def cell(key, spec):
            vals = [r[key] for r in rs]
            return ("%s [%s]" % (spec % median(vals), " ".join(spec % v for v in vals)))
        print("%-16s %22s %30s %30s %30s" % (kind, cell("rps", "%.0f"), cell("voluntary", "%.3f"),
                                              cell("involuntary", "%.3f"), cell("futex", "%.3f")))


if __name__ == "__main__":
    main()
