#!/usr/bin/env python3
"""Memory of ONE mod_auth_idtoken instance beside ONE mod_auth_openidc instance, as in production: the
parent and its 2 children share libIDToken.so, and nothing else on the machine maps it (bench/run.py
starts several idtoken instances at once, which then share the library's page-cache pages and divide
its PSS among more processes).

Each run starts both instances fresh (bench/run.py's configuration: event MPM, 2 children), makes one
real login through each, LOGINS logins per algorithm (RS256, ES256) and REQUESTS protected requests
(wrk, keep-alive), then reads for the parent and each child /proc/PID/smaps_rollup (RSS, PSS) and
/proc/PID/smaps (RSS and PSS of the mappings of libIDToken.so, text apart). Prints the median over
the runs with the spread (min-max) and, with --json, every figure.

    python3 bench/memory.py                       # 3 runs, 5 logins per alg, 3000 requests
    python3 bench/memory.py --runs 5 --requests 5000 --json /tmp/memory.json
    python3 bench/memory.py --library .build/release/libIDToken.so   # another build of the library
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402
from run import ALGS, BenchApache, Minter, Provider, children_of, login_bench, real_login, run_wrk  # noqa: E402

CONFIGS = ["idtoken-cookie", "openidc-cookie"]


def rollup(pid):
    values = run.smaps_rollup(pid)
    return {"rss": values.get("Rss", 0), "pss": values.get("Pss", 0)}


def mappings_of(pid, name):
    """RSS and PSS (kB) of the mappings of the file whose path ends in `name`: text (executable) and all."""
    out = {"text_rss": 0, "text_pss": 0, "rss": 0, "pss": 0}
    with open("/proc/%d/smaps" % pid) as f:
        mine = exe = False
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                mine = len(head) >= 6 and head[5].endswith(name)
                exe = "x" in head[1]
            elif mine and head and head[0] in ("Rss:", "Pss:"):
                key = head[0][:-1].lower()
                out[key] += int(head[1])
                if exe:
                    out["text_" + key] += int(head[1])
    return out


def measure_instance(inst):
    library = "libIDToken.so" if inst.family == "idtoken" else "mod_auth_openidc.so"
    per = []
    for role, pid in [("parent", inst.pid)] + [("child", p) for p in children_of(inst.pid)]:
        per.append({"role": role, "pid": pid, **rollup(pid), "lib": mappings_of(pid, library)})
    children = [p for p in per if p["role"] == "child"]
    mean = lambda f: statistics.mean(f(c) for c in children)  # noqa: E731
    return {"processes": per,
            "child_pss_kb": mean(lambda c: c["pss"]),
            "child_rss_kb": mean(lambda c: c["rss"]),
            "child_lib_text_rss_kb": mean(lambda c: c["lib"]["text_rss"]),
            "child_lib_rss_kb": mean(lambda c: c["lib"]["rss"]),
            "child_lib_pss_kb": mean(lambda c: c["lib"]["pss"]),
            "parent_lib_text_rss_kb": per[0]["lib"]["text_rss"]}


def one_run(args, provider, minter, module):
    instances = {}
    try:
        for kind in CONFIGS:
            instances[kind] = BenchApache(kind, provider, module=module).start()
        out = {}
        for kind, inst in instances.items():
            cookies = real_login(inst)[0]
            for alg in ALGS:
                res = login_bench(inst, minter, alg, args.logins, keep_alive=False)
                if res["failures"]:
                    raise RuntimeError("%s %s logins failed: %s" % (kind, alg, res["failures"][:3]))
            served = 0
            while served < args.requests:
                res = run_wrk(inst, cookies, 1, 2, 8)
                if res["errors"] or not res["requests"]:
                    raise RuntimeError("%s: wrk errors %s" % (kind, res))
                served += res["requests"]
        time.sleep(0.5)
        for kind, inst in instances.items():
            out[kind] = measure_instance(inst)
        return out
    finally:
        for inst in instances.values():
            run.stop_instance(inst)


def spread(values):
    return "%.2f (%.2f-%.2f)" % (statistics.median(values), min(values), max(values))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--logins", type=int, default=5, help="logins per alg (after one real login)")
    p.add_argument("--requests", type=int, default=3000, help="protected requests at least (wrk)")
    p.add_argument("--library", help="this libIDToken.so instead of build/'s")
    p.add_argument("--json")
    args = p.parse_args(argv)
    run.ensure_tools()

    def work():
        module = run.private_module(args.library)
        provider = Provider("--test-controls", "--auto-login", client_id=run.CLIENT_ID)
        try:
            minter = Minter(provider)
            return [one_run(args, provider, minter, module) for _ in range(args.runs)]
        finally:
            provider.stop()

    runs = run.in_own_tmp("mod_auth_idtoken-memory-", work)
    mb = lambda kb: kb / 1024.0  # noqa: E731
    print("median (min-max) of %d runs, MB; %d logins per alg, >= %d requests" % (args.runs, args.logins,
                                                                                   args.requests))
    rows = [("child PSS", "child_pss_kb"), ("child RSS", "child_rss_kb"),
            ("child RSS of the module's library, text", "child_lib_text_rss_kb"),
            ("child RSS of the module's library, all", "child_lib_rss_kb"),
            ("child PSS of the module's library, all", "child_lib_pss_kb"),
            ("parent RSS of the module's library, text", "parent_lib_text_rss_kb")]
    print("%-42s %-22s %-22s" % ("", *CONFIGS))
    for label, key in rows:
        print("%-42s %-22s %-22s" % (label, *(spread([mb(r[k][key]) for r in runs]) for k in CONFIGS)))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
