#!/usr/bin/env python3
"""Where a protected request's CPU time goes, by sampling: `perf record -e cpu-clock` on the children of
one httpd per configuration while wrk runs (event MPM, bench/run.py's configuration), then perf's
report by shared object and by function. The software clock event works in virtual machines without
hardware counters; it sees what instructions cannot: lock waits, the kernel's share, cache misses as
time. Complements bench/instructions.py (instructions) and bench/switches.py (switches, futex calls).

    python3 bench/perf_profile.py                         # plain idtoken-cookie
    python3 bench/perf_profile.py plain idtoken-cache --seconds 8 --top 40
    python3 bench/perf_profile.py idtoken-cookie openidc-cookie --logins 300   # logins, not wrk

perf slows the server a little (its own figures are printed beside, not to be compared with
bench/run.py's); the shares are what to read. The unstripped library is loaded so that Swift functions
have names (.build/release/libIDToken.so, from `make`). Needs perf (linux-perf) and wrk.
"""

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402
from run import BenchApache, Provider, children_of, run_wrk  # noqa: E402


def report(data, sort, top):
    r = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", sort, "--stdio", "-g", "none"],
                       capture_output=True, text=True)
    lines = [l for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")][:top]
    if shutil.which("swift-demangle"):
        lines = subprocess.run(["swift-demangle", "--simplified"], input="\n".join(lines), capture_output=True,
                               text=True).stdout.splitlines()
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", nargs="*", default=["plain", "idtoken-cookie"])
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--logins", type=int, default=0,
                    help="profile this many RS256 logins (run.py's login_bench: the redirect GETs and the "
                         "callback POSTs, one connection) instead of wrk's protected requests")
    args = ap.parse_args(argv)
    unknown = set(args.configs) - set(run.CONFIGS)
    if unknown:
        ap.error("unknown configuration(s): %s" % " ".join(sorted(unknown)))
    if shutil.which("perf") is None:
        raise SystemExit("needs perf (apt-get install linux-perf)")
    run.ensure_tools()
    out_dir = Path(tempfile.mkdtemp(prefix="perf-profile-"))

    def work():
        library = Path(tempfile.mkdtemp(prefix="symbols-")) / "libIDToken.so"
        subprocess.run(["strip", "--strip-debug", "-o", str(library), str(run.UNSTRIPPED_LIBRARY)], check=True)
        module = run.private_module(library)
        provider = Provider("--test-controls", "--auto-login", client_id=run.CLIENT_ID)
        try:
            for kind in args.configs:
                inst = BenchApache(kind, provider, module=module)
                inst.start()
                try:
                    minter = run.Minter(provider)
                    if args.logins:
                        run.login_bench(inst, minter, "RS256", 20)  # warm-up
                    else:
                        cookies = run.session_or_filler(inst)
                        run_wrk(inst, cookies, 2, 2, 24)  # warm-up
                    data = out_dir / ("%s.data" % kind)
                    pids = ",".join(str(p) for p in children_of(inst.pid))
                    rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", "-g", "-o", str(data),
                                            "-p", pids], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1)
                    if args.logins:
                        b = run.login_bench(inst, minter, "RS256", args.logins)
                        print("== %s: %d RS256 logins, %.0f µs of server CPU each (GET %.0f + POST %.0f, under "
                              "perf; the minting between them is not recorded by the server)" % (
                                  kind, b["n"], b["cpu_us"] or 0, b["cpu_get_us"] or 0, b["cpu_post_us"] or 0),
                              flush=True)
                    else:
                        w = run_wrk(inst, cookies, args.seconds, 2, 24)
                    rec.send_signal(signal.SIGINT)
                    rec.wait(60)
                    if not args.logins:
                        print("== %s: %d requests, %.0f/s, %.1f µs of server CPU each (under perf)" % (
                            kind, w["requests"], w["rps"], w["cpu_us"] or 0), flush=True)
                    print("-- by shared object\n" + report(data, "dso", 12), flush=True)
                    print("-- by function\n" + report(data, "dso,sym", args.top) + "\n", flush=True)
                finally:
                    run.stop_instance(inst)
        finally:
            provider.stop()

    run.in_own_tmp("mod_auth_idtoken-perf-", work)
    print("perf data kept in %s (perf report -i FILE)" % out_dir)


if __name__ == "__main__":
    main()
