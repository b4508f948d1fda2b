#!/usr/bin/env python3
"""Instructions per protected request and per login, counted by valgrind's callgrind: figures that do
not move with the load of a shared machine, for profiling and for comparing builds (see README.md here).

Each configuration of bench/run.py runs as one httpd in single-process mode (`apache2 -X`, prefork)
under callgrind, counting only inside ap_process_connection (start-up and shutdown left out). Three runs
per configuration, each starting with a real login (discovery and keys fetched) and 100 warm-up requests:

    run 1: nothing more                 (the baseline)
    run 2: + N protected requests on one keep-alive connection   -> (run 2 - run 1) / N per request
    run 3: + L logins per algorithm (redirect GET + callback POST, tokens minted ahead) -> per login

    python3 bench/instructions.py                          # every configuration, 2000 requests, 100 logins
    python3 bench/instructions.py idtoken-cookie plain --requests 500 --annotate 25

--annotate N prints the N functions with the most inclusive instructions of run 2 (callgrind_annotate),
which is where to look first.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402
from run import (ALGS, CONFIGS, RESOURCE, BenchApache, FillerCookie, Minter, Provider, RawClient,  # noqa: E402
                 SetCookie, cookie_header, real_login)
from harness import wait_for  # noqa: E402

# plain Apache gets a cookie header exactly as long as idtoken-cookie's real session cookie (measured
# first when both run), so that Apache's own parsing of the header is not counted as the module's.
# Without idtoken-cookie in the run, this stand-in (about what the demo provider's default token seals to).
SMALL_SESSION = run.TYPICAL_SESSION
# The session cookies of idtoken-cookie's last real login: plain gets a cookie header exactly as long.
SEEN_SESSION = {}
TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.M)


class CallgrindApache(BenchApache):
    """BenchApache run as `valgrind --tool=callgrind apache2 -X` with the prefork MPM: one process, one
    thread serving (the event MPM's listener never hands a connection to a worker under valgrind).
    Instructions are collected inside ap_process_connection only, so start-up and shutdown stay out."""

    # bench/hot_symbols.py counts everything, with the linker's names.
    callgrind_options = ["--toggle-collect=ap_process_connection"]

    def write_config(self, directives=None, extra=""):
        super().write_config(directives, extra)
        threaded = ("ThreadLimit", "ThreadsPerChild", "MinSpareThreads", "MaxSpareThreads")
        # valgrind runs as www-data from the start: an httpd that switched user itself could no longer
        # write callgrind's output file.
        lines = [l.replace("mpm_event", "mpm_prefork") for l in self.conf.read_text().splitlines()
                 if not l.startswith(threaded + ("User ", "Group "))]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self):
        """As www-data from the start: so everything it reads must be readable by www-data, wherever the
        checkout lies (a clone under /root, 0700): the module and its library come from
        run.private_module() (a folder of their own under /tmp), the rest is in this server's folder."""
        self._check_module_built()
        self.out = self.folder / "callgrind.out"
        self.valgrind_log = self.folder / "valgrind.log"
        as_www_data = []
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "www-data:www-data", str(self.folder)], check=True)
            as_www_data = ["setpriv", "--reuid=www-data", "--regid=www-data", "--init-groups"]
        with open(self.valgrind_log, "wb") as err:
            self.proc = subprocess.Popen(
                [*as_www_data, "valgrind", "--tool=callgrind", *self.callgrind_options,
                 "--callgrind-out-file=%s" % self.out, "/usr/sbin/apache2", "-X", "-f", str(self.conf)],
                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        try:
            wait_for(self._answers, 180, "httpd under valgrind to answer")
        except Exception as e:
            self.stop()
            raise RuntimeError("%s: %s\n%s" % (self.kind, e, self.logs())) from e
        return self

    def logs(self, limit=2500):
        """The ends of the error log and of valgrind's log, for a server that died or misbehaved."""
        out = []
        for name, path in (("error log", self.log_file), ("valgrind log", getattr(self, "valgrind_log", None))):
            try:
                text = path.read_text(errors="replace") if path else ""
            except FileNotFoundError:
                text = "(not written)"
            except OSError as e:
                text = "(unreadable: %s)" % e
            out.append("--- %s %s (last %d characters):\n%s" % (name, path, limit, text[-limit:] or "(empty)"))
        if getattr(self, "proc", None) is not None and self.proc.poll() is not None:
            out.append("--- exit status of valgrind/httpd: %s" % self.proc.returncode)
        return "\n".join(out)

    def stop(self):
        """SIGTERM: httpd -X exits and callgrind writes its totals."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.pid = None

    def instructions(self):
        m = TOTALS.search(self.out.read_text(errors="replace")) if self.out.exists() else None
        if not m:
            raise RuntimeError("%s: no callgrind totals in %s\n%s" % (self.kind, self.out, self.logs()))
        return int(m.group(1))


def protected_requests(inst, cookies, n):
    client = RawClient(inst)
    headers = {"Cookie": cookie_header(cookies)} if cookies else {}
    bad = 0
    for _ in range(n):
        status, _, _ = client.request("GET", RESOURCE, headers)
        bad += status != 200
    client.close()
    return bad


def logins(inst, minter, alg, n):
    """n logins as bench/run.py makes them: the redirect GETs, tokens minted for their nonces, the
    callback POSTs. Returns the failures."""
    client = RawClient(inst)
    pending, failed = [], 0
    for _ in range(n):
        status, msg, _ = client.request("GET", RESOURCE)
        if status != 302:
            failed += 1
            continue
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(msg["Location"]).query)
        cookies = [SetCookie(v) for v in msg.get_all("Set-Cookie") or []]
        pending.append((query, "; ".join("%s=%s" % (c.name, c.value) for c in cookies if not c.clears)))
    forms = [(urllib.parse.urlsplit(q["redirect_uri"][0]).path, c,
              urllib.parse.urlencode({"id_token": minter.mint(q["nonce"][0], alg), "state": q["state"][0]}))
             for q, c in pending]
    for path, cookies, body in forms:
        status, _, _ = client.request("POST", path, {"Cookie": cookies,
                                                     "Content-Type": "application/x-www-form-urlencoded"}, body)
        failed += status not in (302, 303)
    client.close()
    return failed


def one_run(kind, provider, minter, requests, logins_alg=None, n_logins=0, module=None, redis=None):
    """One httpd under callgrind: a login (unless plain), 100 warm-up requests, `requests` protected
    requests, n_logins logins with logins_alg. Returns (instructions, failures, callgrind file)."""
    inst = CallgrindApache(kind, provider, module=module, redis=redis)
    inst.start()
    try:
        if kind == "plain":
            cookies = [FillerCookie(SEEN_SESSION.get("idtoken-cookie", SMALL_SESSION))]
        else:
            cookies = real_login(inst)[0]
            SEEN_SESSION.setdefault(kind, cookies)
        bad = protected_requests(inst, cookies, 100 + requests)
        if n_logins:
            bad += logins(inst, minter, logins_alg, n_logins)
        if inst.proc.poll() is not None:
            raise RuntimeError("%s: httpd under valgrind exited (%s) before it was stopped\n%s" % (
                kind, inst.proc.returncode, inst.logs()))
        inst.stop()
        # Run 2's is kept for callgrind_annotate.
        kept = Path("/tmp/mod_auth_idtoken-callgrind-%s%s%s.out" % (
            kind, "-login-" + logins_alg if n_logins else "", "" if requests or n_logins else "-base"))
        shutil.copy(inst.out, kept)
        return inst.instructions(), bad, kept
    finally:
        inst.stop()
        inst.cleanup()


def annotate(path, top):
    """The top functions by inclusive, then by their own instructions."""
    out = []
    for inclusive in ("yes", "no"):
        r = subprocess.run(["callgrind_annotate", "--inclusive=" + inclusive, "--threshold=100", str(path)],
                           capture_output=True, text=True)
        lines = [l for l in r.stdout.splitlines() if re.match(r"^\s*[\d,]+ \(", l)][:top]
        if shutil.which("swift-demangle"):
            lines = subprocess.run(["swift-demangle", "--simplified"], input="\n".join(lines), capture_output=True,
                                   text=True).stdout.splitlines()
        out.append("-- %s instructions\n" % ("inclusive" if inclusive == "yes" else "own") + "\n".join(lines))
    return "\n".join(out)


def function_counts(path, inclusive):
    """{function: instructions} of one callgrind file, own or inclusive."""
    r = subprocess.run(["callgrind_annotate", "--inclusive=" + inclusive, "--threshold=100", str(path)],
                       capture_output=True, text=True)
    counts = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*([\d,]+) \([^)]*\)\s+(?:\*\s+)?(.+)$", line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r" \[[^\]]*\]$", "", m.group(2))  # the object's path differs from run to run
            counts[name] = counts.get(name, 0) + int(m.group(1).replace(",", ""))
    return counts


def per_request_profile(base, more, n, top):
    """The functions a protected request (or a login) costs, each: the longer run's counts minus run 1's,
    divided by N.
    The login, warm-up and one-time work (first use of a type, a cache filled) cancel out, which the
    whole-run annotation mixes in."""
    out = []
    for inclusive in ("yes", "no"):
        a, b = function_counts(base, inclusive), function_counts(more, inclusive)
        rows = sorted(((b.get(k, 0) - a.get(k, 0)) / n, k) for k in set(a) | set(b))
        rows = [r for r in reversed(rows) if r[0] >= 1][:top]
        lines = ["%10.0f  %s" % r for r in rows]
        if shutil.which("swift-demangle"):
            lines = subprocess.run(["swift-demangle", "--simplified"], input="\n".join(lines), capture_output=True,
                                   text=True).stdout.splitlines()
        out.append("-- %s instructions each\n" % ("inclusive" if inclusive == "yes" else "own") + "\n".join(lines))
    return "\n".join(out)


def measure(args):
    """Every configuration's three kinds of run: {config: {"request", "login RS256", ..., "bad"}}."""
    provider = Provider("--test-controls", "--auto-login", client_id=run.CLIENT_ID)
    minter = Minter(provider)
    # The module finds its library beside itself ($ORIGIN): both are copied into a folder of their own
    # under this run's /tmp folder, which www-data (httpd under valgrind) can read wherever the
    # checkout lies.
    library = None
    if args.symbols:
        # Function names only: valgrind 3.19 gives up on the DWARF of today's Swift compiler.
        library = Path(tempfile.mkdtemp(prefix="symbols-")) / "libIDToken.so"
        subprocess.run(["strip", "--strip-debug", "-o", str(library), str(run.UNSTRIPPED_LIBRARY)], check=True)
    module = run.private_module(library)
    # idtoken-redis's store (Redis's own instructions are not counted: only httpd runs under callgrind).
    redis = run.Redis() if "idtoken-redis" in args.configs else None
    results = {}
    # plain after idtoken-cookie, so that its filler cookie is as long as the real session cookie.
    order = sorted(args.configs, key=lambda k: (k == "plain" and "idtoken-cookie" in args.configs, 0))
    try:
        for kind in order:
            base, bad, base_dump = one_run(kind, provider, minter, 0, module=module, redis=redis)
            more, b, dump = one_run(kind, provider, minter, args.requests, module=module, redis=redis)
            row = {"request": (more - base) / args.requests, "bad": bad + b}
            if args.annotate:
                print("== %s: top functions, inclusive, whole run (login + %d requests)\n%s" % (
                    kind, 100 + args.requests, annotate(dump, args.annotate)), flush=True)
            if args.per_request:
                print("== %s: per protected request (run 2 - run 1) / %d\n%s" % (
                    kind, args.requests, per_request_profile(base_dump, dump, args.requests, args.per_request)), flush=True)
            if kind != "plain":
                for alg in ALGS:
                    total, b, login_dump = one_run(kind, provider, minter, 0, alg, args.logins, module, redis)
                    row["login " + alg] = (total - base) / args.logins
                    row["bad"] += b
                    if args.per_login:
                        print("== %s: per %s login, the redirect GET and the callback POST (run 3 - run 1) / %d\n%s" % (
                            kind, alg, args.logins, per_request_profile(base_dump, login_dump, args.logins,
                                                                       args.per_login)), flush=True)
            results[kind] = row
            run.log("%s: %s" % (kind, {k: round(v) for k, v in row.items()}))
    finally:
        provider.stop()
        if redis:
            redis.stop()
    return {k: results[k] for k in args.configs if k in results}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", nargs="*", metavar="CONFIG", help="some of: %s (default: all)" % " ".join(CONFIGS))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--logins", type=int, default=100)
    ap.add_argument("--annotate", type=int, default=0, metavar="N")
    ap.add_argument("--per-request", type=int, default=0, metavar="N",
                    help="print the N functions costing most per protected request (run 2 minus run 1)")
    ap.add_argument("--per-login", type=int, default=0, metavar="N",
                    help="print the N functions costing most per login (run 3 minus run 1), for each algorithm")
    ap.add_argument("--symbols", action="store_true",
                    help="load the unstripped .build/release/libIDToken.so, so the annotation names Swift functions")
    args = ap.parse_args(argv)
    args.configs = args.configs or CONFIGS
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        ap.error("unknown configuration(s): %s" % " ".join(sorted(unknown)))
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    run.ensure_tools()
    results = run.in_own_tmp("mod_auth_idtoken-callgrind-", measure, args)
    plain = results.get("plain", {}).get("request")
    on, off = results.get("idtoken-cookie"), results.get("idtoken-nometrics")
    print("\ninstructions (callgrind, apache2 -X)  per request  module's own  login RS256  login ES256  failures")
    for kind, row in results.items():
        own = row["request"] - plain if plain is not None and kind != "plain" else None
        print("%-36s %11s %13s %12s %12s %9d" % (
            kind, "{:,.0f}".format(row["request"]), "{:+,.0f}".format(own) if own is not None else "-",
            "{:,.0f}".format(row["login RS256"]) if "login RS256" in row else "-",
            "{:,.0f}".format(row["login ES256"]) if "login ES256" in row else "-", row["bad"]))
    if on and off:
        # The metrics' cost, exactly: the same requests with IDTokenMetrics On (the default) and Off.
        print("\nmetrics (IDTokenMetrics On - Off): %+.0f instructions per protected request (of %s), %s per login RS256, "
              "%s per login ES256" % (on["request"] - off["request"], "{:,.0f}".format(on["request"]),
                                      "{:+,.0f}".format(on["login RS256"] - off["login RS256"]) if "login RS256" in off else "-",
                                      "{:+,.0f}".format(on["login ES256"] - off["login ES256"]) if "login ES256" in off else "-"))
    return 1 if any(r["bad"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
