#!/usr/bin/env python3
"""Soak test of mod_auth_idtoken: a long run of protected requests and logins through a real Apache,
with the memory of every child sampled along the way (see README.md here, "Soak").

One Apache with the module (event MPM, 2 children x 32 threads, children never replaced, as in
run.py), the demo provider, then rounds until both targets are met: wrk on a protected 1 KB page with
a fresh session, then a batch of logins (the redirect GET, a token minted for its nonce, the callback
POST) from a few parallel clients, the logins spread over the rounds the requests need. After every
round each child's RSS and private memory (/proc/PID/smaps_rollup) is sampled; the curve is printed
as a table. Exit code 1 on any error: a response that is not 2xx, a socket error, a failed login, a
crashed child or an [error] line in the error log, or a child's private memory growing more than
--max-growth-mb after the warm-up.

    python3 bench/soak.py                 # 10^6 protected requests and 10^4 logins (make soak)
    python3 bench/soak.py --quick         # 2x10^4 requests and 200 logins: a smoke run
    python3 bench/soak.py --requests 5000000 --logins 50000 --json /tmp/soak.json
"""

import argparse
import json
import math
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (bench/run.py: the benchmark's Apache, logins, wrk and /proc helpers)
from run import (ALGS, CLIENT_ID, BenchApache, Minter, child_memory, log, log_problems, login_bench,  # noqa: E402
                 real_login, run_wrk, stop_instance)

sys.path.insert(0, str(BENCH.parent / "Tests" / "e2e"))
from harness import Provider, child_crashes, pid_alive  # noqa: E402


def sample(inst, t0, requests, logins):
    return {"t": time.monotonic() - t0, "requests": requests, "logins": logins,
            "children": {c["pid"]: {"rss": c["rss"], "private": c["private"]} for c in child_memory(inst)}}


def login_batch(inst, minter, n, clients, alg):
    """n logins from `clients` parallel clients, each on its own keep-alive connection. Returns the
    failures (strings)."""
    shares = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    failures = []
    lock = threading.Lock()

    def one(share):
        try:
            res = login_bench(inst, minter, alg, share) if share else {"failures": []}
            found = res["failures"]
        except Exception as e:  # a connection the server dropped, a provider error...
            found = ["%s: %s" % (type(e).__name__, e)] * share
        with lock:
            failures.extend(found)

    threads = [threading.Thread(target=one, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def soak(args):
    run.ensure_tools()
    return run.in_own_tmp("mod_auth_idtoken-soak-", _soak, args)


def _soak(args):
    started = time.monotonic()
    result = {"settings": {k: getattr(args, k) for k in ("requests", "logins", "kind", "segment_seconds",
                                                         "login_batch", "login_clients", "threads",
                                                         "connections", "quick")},
              "samples": [], "wrk": [], "login_failures": [], "problems": []}
    module = run.private_module()  # where www-data can read it, and safe from a rebuild of build/
    provider = Provider("--test-controls", "--auto-login", client_id=CLIENT_ID)
    inst = None
    try:
        inst = BenchApache(args.kind, provider, module=module)
        inst.start()
        log("%s: pid %d on port %d (%s)" % (args.kind, inst.pid, inst.port, inst.folder))
        time.sleep(0.5)
        t0 = time.monotonic()
        result["samples"].append(dict(sample(inst, t0, 0, 0), label="start"))

        # Warm-up, counted but marked: each child fetches discovery and keys and grows its thread pools
        # and allocator arenas; the growth check starts after it.
        minter = Minter(provider)
        requests_done, logins_done = 0, 0
        warm = run_wrk(inst, real_login(inst)[0], 1, args.threads, args.connections)
        requests_done += warm["requests"]
        result["wrk"].append(warm)
        for alg in ALGS:
            failures = login_batch(inst, minter, 20, args.login_clients, alg)
            logins_done += 20
            result["login_failures"] += failures
        time.sleep(0.5)
        result["samples"].append(dict(sample(inst, t0, requests_done, logins_done), label="after warm-up"))
        log_mark = inst.log_size()
        # The targets count from here: the warm-up is extra.
        target_requests, target_logins = requests_done + args.requests, logins_done + args.logins

        rnd = 0
        while requests_done < target_requests or logins_done < target_logins:
            rnd += 1
            if not pid_alive(inst.pid):
                raise RuntimeError("httpd (pid %d) is gone:\n%s" % (inst.pid, inst.error_log()[-2000:]))
            if requests_done < target_requests:
                rate = requests_done / max(1e-9, sum(w["requests"] / max(w["rps"], 1e-9) for w in result["wrk"]))
                seconds = args.segment_seconds
                if rate > 0:
                    seconds = int(min(args.segment_seconds, max(1, (target_requests - requests_done) / rate + 1)))
                # A fresh session for each wrk run: the module re-issues a session older than its refresh
                # interval (60 s) on every request, and wrk would keep sending the old one.
                w = run_wrk(inst, real_login(inst)[0], seconds, args.threads, args.connections)
                logins_done += 1
                requests_done += w["requests"]
                result["wrk"].append(w)
            if logins_done < target_logins:
                batch = args.login_batch
                if batch is None:
                    # Spread the logins over the rounds the requests still need, so both run to the end.
                    rate = requests_done / sum(w["requests"] / max(w["rps"], 1e-9) for w in result["wrk"])
                    rounds_left = max(0.0, (target_requests - requests_done) / (rate * args.segment_seconds))
                    batch = max(50, math.ceil((target_logins - logins_done) / (rounds_left + 1)))
                n = min(batch, target_logins - logins_done)
                failures = login_batch(inst, minter, n, args.login_clients, ALGS[rnd % len(ALGS)])
                logins_done += n
                result["login_failures"] += failures
            s = sample(inst, t0, requests_done, logins_done)
            result["samples"].append(s)
            errors = sum(w["errors"] for w in result["wrk"])
            log("round %d: %s requests, %s logins, %d errors, %d failed logins; private MB per child: %s" % (
                rnd, f"{requests_done:,}", f"{logins_done:,}", errors, len(result["login_failures"]),
                " ".join("%.1f" % (c["private"] / 1024) for c in s["children"].values())))
        time.sleep(1.0)
        result["samples"].append(dict(sample(inst, t0, requests_done, logins_done), label="end, idle"))
        result["problems"] = log_problems(inst, log_mark)
        result["crashes"] = child_crashes(inst.error_log())
        result["requests"], result["logins"] = requests_done, logins_done
    finally:
        if inst is not None:
            stop_instance(inst)
        provider.stop()
    result["seconds"] = time.monotonic() - started
    return result


# ---------------------------------------------------------------------------------------------------
# The curve and the verdict
# ---------------------------------------------------------------------------------------------------

def growth(result):
    """Per child present after the warm-up and at the end: (rss, private) growth in kB."""
    samples = result["samples"]
    warm = next(s for s in samples if s.get("label") == "after warm-up")
    end = samples[-1]
    return {pid: (end["children"][pid]["rss"] - c["rss"], end["children"][pid]["private"] - c["private"])
            for pid, c in warm["children"].items() if pid in end["children"]}


def curve(result):
    samples = result["samples"]
    pids = []
    for s in samples:
        pids += [p for p in s["children"] if p not in pids]
    out = ["RSS / private memory of each child (MB), after each round:"]
    head = "%8s %11s %8s  " % ("time s", "requests", "logins") + "".join(
        ("child %d" % p).rjust(18) for p in pids) + "   note"
    out.append(head)
    for s in samples:
        cells = []
        for p in pids:
            c = s["children"].get(p)
            cells.append(("%.1f / %.2f" % (c["rss"] / 1024, c["private"] / 1024) if c else "—").rjust(18))
        out.append("%8.0f %11s %8s  " % (s["t"], f"{s['requests']:,}", f"{s['logins']:,}") + "".join(cells) +
                   "   " + s.get("label", ""))
    return "\n".join(out)


def verdict(result, args):
    """(lines, ok)."""
    lines, ok = [], True
    wrk = result["wrk"]
    non2xx = sum(w["non2xx"] for w in wrk)
    socket_errors = sum(w["socket_errors"] for w in wrk)
    served = sum(w["requests"] for w in wrk)
    seconds = sum(w["requests"] / w["rps"] for w in wrk if w["rps"])
    lines.append("%s protected requests (%.0f/s while wrk ran), %s logins, %.0f s in all" % (
        f"{result['requests']:,}", served / seconds if seconds else 0, f"{result['logins']:,}", result["seconds"]))
    lines.append("errors: %d responses not 2xx, %d socket errors, %d failed logins, %d crashed children, "
                 "%d [error] lines in the error log" % (non2xx, socket_errors, len(result["login_failures"]),
                                                        len(result["crashes"]), len(result["problems"])))
    if non2xx or socket_errors or result["login_failures"] or result["crashes"] or result["problems"]:
        ok = False
    for line in (result["crashes"] + result["problems"])[:20]:
        lines.append("  " + line)
    for f in result["login_failures"][:10]:
        lines.append("  failed login: %s" % f)
    for pid, (rss, private) in sorted(growth(result).items()):
        lines.append("child %d: growth after the warm-up: RSS %+.1f MB, private %+.2f MB" % (
            pid, rss / 1024, private / 1024))
        if private / 1024 > args.max_growth_mb:
            lines.append("  more than --max-growth-mb %g: a leak?" % args.max_growth_mb)
            ok = False
    lines.append("verdict: %s" % ("OK" if ok else "FAILED"))
    return lines, ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000, help="protected requests (default 10^6)")
    ap.add_argument("--logins", type=int, default=10_000, help="logins (default 10^4)")
    ap.add_argument("--kind", default="idtoken-cookie", choices=["idtoken-cookie", "idtoken-cache"],
                    help="sessions in cookies (default) or in the server's file store")
    ap.add_argument("--segment-seconds", type=int, default=4, help="seconds of wrk per round (default 4)")
    ap.add_argument("--login-batch", type=int, default=None,
                    help="logins per round (default: spread over the rounds the requests need, at least 50)")
    ap.add_argument("--login-clients", type=int, default=4, help="parallel login clients (default 4)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    ap.add_argument("--max-growth-mb", type=float, default=64.0,
                    help="fail when a child's private memory grows more than this after the warm-up (default 64)")
    ap.add_argument("--quick", action="store_true", help="2x10^4 requests and 200 logins, short rounds")
    ap.add_argument("--json", metavar="PATH", help="also write the samples and counts as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.requests, args.logins, args.segment_seconds, args.login_batch = 20_000, 200, 1, 40
    if args.requests < 1 or args.logins < 1 or args.segment_seconds < 1 or (args.login_batch or 1) < 1 or \
            args.login_clients < 1:
        ap.error("every count must be at least 1")
    if args.segment_seconds > run.MAX_WRK_SECONDS:
        ap.error("--segment-seconds must be at most %d (sessions are re-issued after 60 s)" % run.MAX_WRK_SECONDS)
    result = soak(args)
    print(curve(result))
    print()
    lines, ok = verdict(result, args)
    print("\n".join(lines))
    if args.json:
        result["ok"] = ok
        result["samples"] = [dict(s, children={str(k): v for k, v in s["children"].items()})
                             for s in result["samples"]]
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
