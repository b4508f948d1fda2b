#!/usr/bin/env python3
"""Stop/start stress of mod_auth_idtoken: httpd stopped, restarted and started again many times while
requests and logins are in flight, under each MPM, looking for a child that dies of a signal (see
README.md here, "Stop/start stress").

For each MPM (event, worker, prefork) one httpd with the module (the e2e harness's configuration, its
children recycled every --max-connections-per-child connections) and the demo provider, then cycles
until --cycles or --seconds is reached. Each cycle puts load on the server (wrk on a protected 1 KB
page with a session cookie, and --login-clients threads doing whole logins: the redirect, a token
minted for its nonce, the callback POST), waits a random moment, and then, rotating:

    stop           apache2 -k stop while requests are in flight, then -k start
    graceful       apache2 -k graceful (children of the old generation finish, new ones start)
    graceful-stop  apache2 -k graceful-stop, then -k start
    restart        apache2 -k restart (every child killed, the parent reloads the modules)

The sessions alternate between sealed cookies and the shared file store at each full start, so the
store's mapping and mutex go through child exits and restarts too. CoreDumpDirectory points at a folder of
this run (core files allowed, as E2E_CORE_DIR does for the e2e tests); after every cycle the error log
is scanned for "exit signal" / "Segmentation fault" / "seg fault" lines and the folder for core files
(renamed core.MPM.CYCLE.ACTION, kept with the error logs when anything crashed). At the end a table:
MPM, cycles, crash lines, core files. Exit code 1 on any crash line or core file.

    python3 bench/stopstart.py                                   # 100 cycles per MPM, at most 10 min each
    python3 bench/stopstart.py --mpm event --cycles 300 --seconds 900
    python3 bench/stopstart.py --quick                           # 4 cycles per MPM: the smoke test's run
    python3 bench/stopstart.py --mpm event --cycles 1 --self-check   # must FAIL: SIGSEGV sent to a child
    python3 bench/stopstart.py --plain --mpm event --actions stop,restart --cycles 300   # without the module

Crashes with a core file get gdb's backtrace of the crashed thread. One kind is httpd's own: the event
MPM's close_worker_sockets() race at an ungraceful stop or restart (see HTTPD_RACE_TOP below and
README.md); it shows up with --plain too. It is counted in its own column and fails the run unless
--allow-httpd-race (the smoke test passes that flag).

The module and its library are copied into the run's own folder first, so a rebuild of build/ during a
run changes nothing (--replace-every N copies them again by copy-and-rename every N cycles, as the
Makefile installs them, to see what a graceful restart does with a library replaced on disk). --symbols
loads the unstripped .build/release/libIDToken.so instead (only when it is the build of
build/libIDToken.so), so that a core file gives gdb Swift function names.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (bench/run.py: logins, the minter, the wrk script)
from run import CLIENT_ID, RESOURCE, RESOURCE_SIZE, SESSION_COOKIE, Minter, SetCookie, cookie_header, log  # noqa: E402

sys.path.insert(0, str(BENCH.parent / "Tests" / "e2e"))
import harness  # noqa: E402
from harness import APACHE, MPMS, Apache, Provider, child_pids, pid_alive, wait_for  # noqa: E402

ACTIONS = ["stop", "graceful", "graceful-stop", "restart"]
# What a crash looks like in the error log: a child killed by a signal (AH00051/AH00052, every MPM;
# SIGTERM, SIGHUP, SIGUSR1 and SIGKILL are not logged) or the parent's own fatal-signal handler (AH00060).
CRASH = re.compile(r"exit signal|Segmentation fault|seg fault or similar nasty error")
# A child that did not exit when told: httpd escalates to SIGKILL after 9 s (a hang at exit?).
SIGKILLED = re.compile(r"still did not exit, sending a SIGKILL")
SLOW_EXIT = re.compile(r"still did not exit, sending a SIGTERM")


# ---------------------------------------------------------------------------------------------------
# The module, copied into a folder of the run
# ---------------------------------------------------------------------------------------------------

def install_module(folder, symbols=False):
    """mod_auth_idtoken.so and libIDToken.so side by side in `folder` (the module finds its library
    through $ORIGIN), each copied then renamed as the Makefile does: a file httpd has mapped is never
    written in place. Returns the module's path."""
    folder.mkdir(mode=0o755, exist_ok=True)
    folder.chmod(0o755)
    lib = run.LIBRARY
    if symbols:
        unstripped = run.UNSTRIPPED_LIBRARY
        check = folder / "stripped.tmp"
        subprocess.run(["strip", "--strip-unneeded", "-o", str(check), str(unstripped)], check=True)
        same = check.read_bytes() == lib.read_bytes()
        check.unlink()
        if not same:
            raise SystemExit("--symbols: %s is not the build of %s (stripped, they differ): rebuild first" % (
                unstripped, lib))
        lib = unstripped
    for src, name in ((lib, "libIDToken.so"), (run.MODULE, run.MODULE.name)):
        tmp = folder / (name + ".tmp")
        shutil.copyfile(src, tmp)
        tmp.chmod(0o755)
        tmp.rename(folder / name)
    return folder / run.MODULE.name


# ---------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------

class StressApache(Apache):
    """The e2e harness's Apache under a given MPM, with a protected 1 KB page, short timeouts towards the
    provider, children recycled after a number of connections, LogLevel info, and sessions in cookies or
    in the file store (`store`, switched before a full start)."""

    def __init__(self, provider, mpm_name, module, max_conns, store="cookie", plain=False):
        self.kind = "idtoken-" + store
        self.session_rx = SESSION_COOKIE["idtoken"]
        self.store = store
        self.max_conns = max_conns
        self.plain = plain
        saved = os.environ.get("E2E_MPM")
        os.environ["E2E_MPM"] = mpm_name  # read once, by the harness's constructor
        try:
            super().__init__(provider.discovery_url, client_id=CLIENT_ID, module=module,
                             directives=self.directives, extra=self.extra, standard_location=not plain)
        finally:
            if saved is None:
                os.environ.pop("E2E_MPM", None)
            else:
                os.environ["E2E_MPM"] = saved
        protected = self.folder / "htdocs" / "protected"
        protected.mkdir(mode=0o755)
        body = ("<html><body><pre>" + "x" * RESOURCE_SIZE)[:RESOURCE_SIZE - len("</pre></body></html>\n")]
        (protected / "1k.html").write_text(body + "</pre></body></html>\n")

    def write_config(self, directives=None, extra=""):
        super().write_config(directives, extra)
        # No mod_cgid (no CGI is asked for here): every child of httpd is then an MPM child.
        drop = ("LoadModule cgid_module", "ScriptSock ")
        if self.plain:
            # The same server without mod_auth_idtoken: /protected is an ordinary folder.
            drop += ("LoadModule auth_idtoken_module", "LogLevel info auth_idtoken:")
        lines = [l for l in self.conf.read_text().splitlines() if not l.startswith(drop)]
        self.conf.write_text("\n".join(lines) + "\n")

    @staticmethod
    def directives(a):
        if a.plain:
            return ""
        lines = [a.module_directives(), "IDTokenHTTPTimeout 4 2"]
        if a.store == "cache":
            lines.append(harness.cache_mode())
        return "\n".join(lines)

    @staticmethod
    def extra(a):
        return "\n".join(["LogLevel info" if a.plain else "LogLevel info auth_idtoken:info",
                          "MaxConnectionsPerChild %d" % a.max_conns])

    def rewrite(self, store):
        self.store = store
        self.kind = "idtoken-" + store
        self.write_config(self.directives, self.extra)

    @property
    def host(self):
        return "localhost:%d" % self.port

    def ctl(self, *args, timeout=60):
        return self._ctl(*args, timeout=timeout)

    def processes(self):
        """Every process of this server still alive (found by its configuration file in the command line)."""
        mine = []
        conf = str(self.conf).encode()
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open("/proc/%s/cmdline" % name, "rb") as f:
                        if conf in f.read():
                            mine.append(int(name))
                except OSError:
                    pass
        return mine


# ---------------------------------------------------------------------------------------------------
# Load: wrk with a session, and login clients
# ---------------------------------------------------------------------------------------------------

class Logins:
    """`clients` threads, each doing whole logins on new connections for as long as it runs: GET the
    protected page (302 to the provider), a token minted for the redirect's nonce, the callback POST,
    the page again with the new session. Failures while the server stops are expected: only counted."""

    def __init__(self, inst, provider, clients):
        self.inst = inst
        self.minter = Minter(provider)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.ok = self.failed = 0
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(30)

    def _request(self, method, path, headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.inst.port, timeout=10)
        try:
            h = {"Host": self.inst.host, "User-Agent": run.USER_AGENT, "Accept": run.ACCEPT, "Connection": "close"}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, r.msg, r.read()
        finally:
            conn.close()

    def _one(self, alg):
        if self.inst.plain:  # no module: the same connection churn, one GET per connection
            status, _, data = self._request("GET", RESOURCE)
            return status == 200 and len(data) == RESOURCE_SIZE
        status, msg, _ = self._request("GET", RESOURCE)
        if status != 302:
            return False
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(msg["Location"]).query)
        state = "; ".join("%s=%s" % (c.name, c.value) for c in (SetCookie(v) for v in msg.get_all("Set-Cookie") or [])
                          if not c.clears)
        body = urllib.parse.urlencode({"id_token": self.minter.mint(query["nonce"][0], alg),
                                       "state": query["state"][0]})
        path = urllib.parse.urlsplit(query["redirect_uri"][0]).path
        status, msg, _ = self._request("POST", path, {"Cookie": state,
                                                      "Content-Type": "application/x-www-form-urlencoded"}, body)
        session = [c for c in (SetCookie(v) for v in msg.get_all("Set-Cookie") or [])
                   if self.inst.session_rx.match(c.name) and not c.clears]
        if status not in (302, 303) or not session:
            return False
        status, _, data = self._request("GET", RESOURCE, {"Cookie": cookie_header(session)})
        return status == 200 and len(data) == RESOURCE_SIZE

    def _loop(self, i):
        n = 0
        while not self.stop_event.is_set():
            n += 1
            try:
                good = self._one(run.ALGS[(i + n) % len(run.ALGS)])
            except Exception:  # the server went away mid-login: expected here
                good = False
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
            if not good:
                self.stop_event.wait(0.05)


def session_for(inst):
    """Session cookies from one real login, or None (a server that is not fully up yet)."""
    try:
        return run.real_login(inst, check=False)[0]
    except Exception:
        return None


def start_wrk(inst, cookies, seconds, connections):
    cmd = ["wrk", "-t", "1", "-c", str(connections), "-d", "%ds" % max(1, seconds), "--timeout", "5s",
           "-s", str(run.WRK_SCRIPT), "-H", "Host: %s" % inst.host, "-H", "User-Agent: %s" % run.USER_AGENT]
    if cookies:
        cmd += ["-H", "Cookie: %s" % cookie_header(cookies)]
    cmd.append("http://127.0.0.1:%d%s" % (inst.port, RESOURCE))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)


def finish_wrk(proc, timeout):
    """wrk's request count (its own -d ends it; killed by its pid if it overstays)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    for line in (out or "").splitlines():
        if line.startswith("BENCH requests "):
            return int(line.split()[2])
    return 0


# ---------------------------------------------------------------------------------------------------
# One MPM
# ---------------------------------------------------------------------------------------------------

def core_files(folder):
    return sorted(p for p in folder.iterdir() if p.name == "core" or p.name.startswith("core."))


# httpd's own race at an ungraceful stop or restart (event and worker MPMs, 2.4.x and trunk alike): the
# main thread's signal_threads(ST_UNGRACEFUL) -> close_worker_sockets() closes the socket each worker
# last published in worker_sockets[], unsynchronised, while a worker may just have finished that
# connection and given its pool (which holds the apr_socket_t) back, or the listener may be destroying
# the idle pools: a use after free in the main thread, nothing of any module on its stack. Frame 0 is
# one of these, every other frame of the crashing thread is APR, the MPM, ap_run_mpm or main.
HTTPD_RACE_TOP = ("apr_os_sock_get", "apr_socket_close", "apr_socket_timeout_set", "apr_pool_cleanup_run",
                  "apr_pool_cleanup_kill")
HTTPD_RACE_FRAMES = re.compile(r"libapr-1\.so|mod_mpm_(event|worker)\.so|server/mpm/(event|worker)/|"
                               r" in apr_[a-z_]+ \(| ap_run_mpm \(| main \(")


def backtrace(core, module_dir):
    """gdb's backtrace of the thread that crashed, and that thread's LWP (None without gdb)."""
    if shutil.which("gdb") is None:
        return None, None
    r = subprocess.run(["gdb", "-batch", "-nx", "-ex", "set complaints 0",
                        "-ex", "set solib-search-path %s" % module_dir, "-ex", "thread", "-ex", "bt 40", APACHE, str(core)],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    lwp = re.search(r"Current thread is \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)\)", r.stdout)
    lines = r.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("#0 ")]
    # `thread` prints frame 0 too: the backtrace is what follows the last "#0".
    frames = [line for line in lines[starts[-1]:] if re.match(r"#\d+ ", line)] if starts else []
    return frames, int(lwp.group(1)) if lwp else None


def is_httpd_stop_race(frames, lwp, crash_line):
    """True when a core's backtrace is httpd's close_worker_sockets race (see HTTPD_RACE_TOP): the
    child's main thread (LWP = the pid in the crash line), frame 0 one of those APR calls, and no
    frame outside APR and the MPM."""
    pid = re.search(r"child pid (\d+) exit signal", crash_line)
    if not frames or lwp is None or not pid or int(pid.group(1)) != lwp:
        return False
    if not any(" %s (" % name in frames[0] for name in HTTPD_RACE_TOP):
        return False
    return all(HTTPD_RACE_FRAMES.search(f) for f in frames[1:])


def classify(result, module_dir):
    """Each crash with its core file (matched by pid through the cycle) gets its backtrace; those that
    are httpd's own stop race move to result["httpd_race"]. A crash without a core stays a crash."""
    if not result["cores"] or not result["crash_lines"]:
        return
    kept = []
    cores = list(result["cores"])
    for line in result["crash_lines"]:
        cycle = line.split(" ", 2)[1]
        core = next((c for c in cores if ".%04d." % int(cycle) in c), None)
        frames, lwp = backtrace(core, module_dir) if core else (None, None)
        entry = {"line": line, "core": core, "backtrace": frames}
        if core and is_httpd_stop_race(frames, lwp, line):
            cores.remove(core)
            result["httpd_race"].append(entry)
        else:
            kept.append(line)
            result["backtraces"].append(entry)
    result["crash_lines"] = kept
    result["cores"] = cores


def stop_and_wait(inst, action, result):
    """apache2 -k stop | graceful-stop; waits for the parent to exit (httpd kills slow children itself
    after 9 s; graceful-stop waits GracefulShutdownTimeout first). A parent that outstays that is killed
    by its pid and counted; so is any process of the server left after it."""
    pid = inst.pid
    r = inst.ctl("-k", action, timeout=60)
    if r.returncode != 0:
        result["control_failures"].append("%s: apache2 -k %s: %s%s" % (result["cycles"], action, r.stdout, r.stderr))
    try:
        wait_for(lambda: not pid_alive(pid), 30, "httpd (pid %d) to exit" % pid, interval=0.02)
    except TimeoutError:
        result["killed"].append("cycle %d: the parent (pid %d) did not exit after -k %s" % (
            result["cycles"], pid, action))
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10, "httpd to die")
    time.sleep(0.05)
    for left in inst.processes():
        result["killed"].append("cycle %d: pid %d left behind after -k %s" % (result["cycles"], left, action))
        try:
            os.kill(left, signal.SIGKILL)
        except OSError:
            pass
    inst.pid = None
    try:
        inst.pid_file.unlink()  # a parent that was killed leaves it behind
    except FileNotFoundError:
        pass


def restart_and_wait(inst, action):
    """apache2 -k graceful | restart; waits for the new generation to answer."""
    if action == "graceful":
        inst.graceful()
        return
    before = inst.generation_count()
    r = inst.ctl("-k", action)
    assert r.returncode == 0, "apache2 -k %s failed: %s%s" % (action, r.stdout, r.stderr)
    wait_for(lambda: inst._raise_if_dead() or inst.generation_count() > before, 30,
             "httpd to finish a %s" % action)
    wait_for(inst._answers, 20, "httpd to answer after a %s" % action)


def scan(inst, offset, core_dir, mpm_name, cycle, action, result):
    """New crash lines since `offset` and new core files (renamed after the cycle); returns the new offset."""
    text = inst.log_since(offset)
    crashes = [line for line in text.splitlines() if CRASH.search(line)]
    for line in crashes:
        result["crash_lines"].append("cycle %d (%s): %s" % (cycle, action, line))
    result["sigkilled"] += len(SIGKILLED.findall(text))
    result["slow_exits"] += len(SLOW_EXIT.findall(text))
    for i, core in enumerate(core_files(core_dir)):
        if re.match(r"core\.(event|worker|prefork)\.", core.name):
            continue  # renamed in an earlier cycle
        kept = core_dir / ("core.%s.%04d.%s.%d" % (mpm_name, cycle, action, i))
        core.rename(kept)
        result["cores"].append(str(kept))
    if crashes and not result.get("log_copy"):
        result["log_copy"] = str(core_dir / ("error.%s.log" % mpm_name))
    if result.get("log_copy"):
        shutil.copyfile(inst.log_file, result["log_copy"])
    return offset + len(text.encode("utf-8", "replace"))


def live_children(parent):
    """httpd's children that a signal can still kill, youngest first. With MaxConnectionsPerChild the
    oldest are the likeliest to be exiting: a zombie, or a process already in exit(), ignores SIGSEGV,
    and httpd reaps it without a line."""
    found = []
    for pid in child_pids(parent):
        try:
            fields = run._stat_fields(pid)
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            found.append((int(fields[19]), pid))  # field 22: start time in clock ticks
    return [pid for _, pid in sorted(found, reverse=True)]


def parent_of(pid):
    """The parent pid of `pid`, or None once it is gone (reaped)."""
    try:
        return int(run._stat_fields(pid)[1])
    except (OSError, IndexError, ValueError):
        return None


def self_check(inst, offset, result):
    """Sends SIGSEGV to a child and waits, before the stop, until httpd has reaped it and logged its line:
    httpd logs a child's signal when its main loop reaps it (about once a second), and a stop before
    that reaps it silently. Dumping the core can take long on a busy machine (a pipe in
    kernel.core_pattern makes the child wait for its reader), so the wait follows the child, up to 60 s.
    A child that was already leaving ignores the signal and exits without the line (CI saw it once);
    then the next child is tried, up to three. Without any line the run fails, as it should."""
    tried = []
    for _ in range(3):
        # Listed again each time: the child that was leaving has been replaced meanwhile.
        victim = next((pid for pid in live_children(inst.pid) if pid not in tried), None)
        if victim is None:
            break
        tried.append(victim)
        try:
            os.kill(victim, signal.SIGSEGV)
        except ProcessLookupError:
            continue
        result["self_check_pid"] = victim
        try:
            wait_for(lambda: parent_of(victim) != inst.pid, 60, "child %d to be reaped" % victim, interval=0.05)
        except TimeoutError:
            pass
        line = "child pid %d exit signal" % victim
        try:
            wait_for(lambda: line in inst.log_since(offset), 3, line, interval=0.05)
            return
        except TimeoutError:
            log("self-check: no line about child %d after SIGSEGV (it was leaving?); trying another" % victim)


def one_mpm(mpm_name, provider, module, core_dir, args):
    result = {"mpm": mpm_name, "cycles": 0, "actions": {a: 0 for a in ACTIONS}, "crash_lines": [], "cores": [],
              "httpd_race": [], "backtraces": [],
              "sigkilled": 0, "slow_exits": 0, "killed": [], "control_failures": [], "logins_ok": 0,
              "logins_failed": 0, "wrk_requests": 0, "seconds": 0.0, "self_check_pid": None}
    started = time.monotonic()
    rng = random.Random(args.seed)
    inst = StressApache(provider, mpm_name, module, args.max_connections_per_child, plain=args.plain)
    logins = None
    offset = 0
    try:
        inst.start()
        log("%s: httpd pid %d on port %d (%s)" % (mpm_name, inst.pid, inst.port, inst.folder))
        logins = Logins(inst, provider, args.login_clients).start()
        starts = 1
        while result["cycles"] < args.cycles and time.monotonic() - started < args.seconds:
            cycle = result["cycles"] + 1
            action = args.actions[(cycle - 1) % len(args.actions)]
            if args.replace_every and cycle % args.replace_every == 0:
                install_module(module.parent, args.symbols)  # new inodes, same content
            cookies = None if args.plain else session_for(inst)
            hold = rng.uniform(args.min_hold, args.max_hold)
            wrk = start_wrk(inst, cookies, hold + 1.5, args.connections)
            time.sleep(hold)
            if args.self_check and cycle == 1:
                self_check(inst, offset, result)
            if action in ("stop", "graceful-stop"):
                stop_and_wait(inst, action, result)
                starts += 1
                # The next start serves its sessions from the other store: its shared memory and mutex
                # go through the children's exits too.
                if not args.plain:
                    inst.rewrite("cache" if starts % 2 == 0 else "cookie")
                inst.start()
            else:
                restart_and_wait(inst, action)
            result["wrk_requests"] += finish_wrk(wrk, hold + 15)
            result["cycles"] = cycle
            result["actions"][action] += 1
            offset = scan(inst, offset, core_dir, mpm_name, cycle, action, result)
            if cycle % 10 == 0 or result["crash_lines"] or result["cores"]:
                log("%s: %d cycles, %d crash lines, %d core files, %d logins (%d failed while stopping)" % (
                    mpm_name, cycle, len(result["crash_lines"]), len(result["cores"]), logins.ok, logins.failed))
            if (result["crash_lines"] or result["cores"]) and args.stop_at_first:
                break
    finally:
        if logins is not None:
            logins.stop()
            result["logins_ok"], result["logins_failed"] = logins.ok, logins.failed
        if inst.pid is not None and pid_alive(inst.pid):
            try:
                stop_and_wait(inst, "stop", result)
            except Exception as e:  # keep going: the folder and the scan below still matter
                log("%s: final stop: %s" % (mpm_name, e))
        time.sleep(0.2)
        offset = scan(inst, offset, core_dir, mpm_name, result["cycles"], "final stop", result)
        classify(result, module.parent)
        if result["crash_lines"] or result["cores"] or os.environ.get("E2E_KEEP_FILES"):
            shutil.copyfile(inst.log_file, core_dir / ("error.%s.log" % mpm_name))
        inst.cleanup()
    result["seconds"] = time.monotonic() - started
    return result


def stress(args):
    core_dir = Path(args.core_dir) if args.core_dir else Path(tempfile.mkdtemp(prefix="mod_auth_idtoken-cores-"))
    core_dir.mkdir(parents=True, exist_ok=True)
    core_dir.chmod(0o1777)  # the children (www-data) dump there
    return run.in_own_tmp("mod_auth_idtoken-stopstart-", _stress, args, core_dir), core_dir


def _stress(args, core_dir):
    saved = os.environ.get("E2E_CORE_DIR")
    os.environ["E2E_CORE_DIR"] = str(core_dir)  # CoreDumpDirectory, and RLIMIT_CORE unlimited for httpd
    module = install_module(Path(tempfile.mkdtemp(prefix="module-")), args.symbols)
    provider = Provider("--test-controls", "--auto-login", client_id=CLIENT_ID)
    results = []
    try:
        for name in args.mpm:
            results.append(one_mpm(name, provider, module, core_dir, args))
            if args.stop_at_first and (results[-1]["crash_lines"] or results[-1]["cores"]):
                break
    finally:
        provider.stop()
        if any(r["crash_lines"] or r["cores"] or r["httpd_race"] for r in results):
            for f in module.parent.glob("*.so"):  # the exact binaries, for gdb
                shutil.copyfile(f, core_dir / f.name)
        if saved is None:
            os.environ.pop("E2E_CORE_DIR", None)
        else:
            os.environ["E2E_CORE_DIR"] = saved
    return results


# ---------------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------------

def table(results):
    head = "%-8s %7s %36s %12s %11s %11s %9s %10s %9s %7s" % (
        "MPM", "cycles", "stop/graceful/graceful-stop/restart", "crash lines", "core files", "httpd race",
        "SIGKILLs", "logins ok", "wrk req", "s")
    out = [head]
    for r in results:
        out.append("%-8s %7d %36s %12d %11d %11d %9d %10d %9d %7.0f" % (
            r["mpm"], r["cycles"], "/".join(str(r["actions"][a]) for a in ACTIONS), len(r["crash_lines"]),
            len(r["cores"]), len(r["httpd_race"]), r["sigkilled"], r["logins_ok"], r["wrk_requests"], r["seconds"]))
    out.append("(crash lines and core files: crashes not known to be httpd's own; httpd race: a crash whose core "
               "shows httpd's close_worker_sockets race at an ungraceful stop, counted apart)")
    return "\n".join(out)


def core_pattern_note():
    try:
        pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    except OSError:
        return None
    if pattern.startswith("|"):
        return ("note: kernel.core_pattern is %r: core files go to that program, not to CoreDumpDirectory; "
                "only the error log can show a crash here" % pattern)
    if "/" in pattern:
        return "note: kernel.core_pattern is %r: core files go there, not to CoreDumpDirectory" % pattern
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mpm", action="append", choices=MPMS, help="an MPM to run (repeatable; default: all three)")
    ap.add_argument("--cycles", type=int, default=100, help="stop/restart cycles per MPM (default 100)")
    ap.add_argument("--seconds", type=float, default=600, help="at most this long per MPM (default 600)")
    ap.add_argument("--actions", default=",".join(ACTIONS),
                    help="the actions to rotate through, comma-separated (default: %s)" % ",".join(ACTIONS))
    ap.add_argument("--login-clients", type=int, default=2, help="threads doing logins all along (default 2)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    ap.add_argument("--min-hold", type=float, default=0.3, help="load at least this long before the action (s)")
    ap.add_argument("--max-hold", type=float, default=1.2, help="and at most this long (s)")
    ap.add_argument("--max-connections-per-child", type=int, default=300,
                    help="MaxConnectionsPerChild: children also exit on their own under load (default 300; 0: never)")
    ap.add_argument("--replace-every", type=int, default=0, metavar="N",
                    help="every N cycles, copy the module and library again (copy + rename), as a rebuild does")
    ap.add_argument("--plain", action="store_true",
                    help="the same servers without mod_auth_idtoken (wrk, and the login clients doing plain GETs): "
                         "is a crash httpd's own?")
    ap.add_argument("--symbols", action="store_true", help="load the unstripped .build/release/libIDToken.so")
    ap.add_argument("--core-dir", help="where children dump core (default: a new /tmp/mod_auth_idtoken-cores-*)")
    ap.add_argument("--stop-at-first", action="store_true", help="stop at the first crash")
    ap.add_argument("--allow-httpd-race", action="store_true",
                    help="do not fail on crashes whose core file shows httpd's own close_worker_sockets race "
                         "(needs gdb and core files; a crash without a core still fails)")
    ap.add_argument("--self-check", action="store_true",
                    help="send SIGSEGV to a child in the first cycle: the run must then fail (checks the detector)")
    ap.add_argument("--seed", type=int, default=None, help="seed for the random hold times")
    ap.add_argument("--quick", action="store_true", help="4 cycles per MPM (one of each action), 20 s at most each")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)
    args.mpm = args.mpm or list(MPMS)
    args.actions = [a.strip() for a in args.actions.split(",") if a.strip()]
    if not args.actions or set(args.actions) - set(ACTIONS):
        ap.error("--actions: some of %s" % ",".join(ACTIONS))
    if args.quick:
        args.cycles, args.seconds = 4, 20
    if args.cycles < 1 or args.seconds <= 0 or args.login_clients < 0 or args.connections < 1 or \
            not 0 < args.min_hold <= args.max_hold:
        ap.error("--cycles, --seconds, --connections must be positive, 0 < --min-hold <= --max-hold")
    if not run.MODULE.exists():
        raise SystemExit("%s does not exist: build the module first (make)" % run.MODULE)
    if shutil.which("wrk") is None:
        subprocess.run(["bash", str(run.SETUP)], check=True, stdin=subprocess.DEVNULL)
    results, core_dir = stress(args)
    print(table(results))
    crashed = False
    races = sum(len(r["httpd_race"]) for r in results)
    for r in results:
        for line in r["crash_lines"][:20]:
            print("%s crash: %s" % (r["mpm"], line))
        for core in r["cores"]:
            print("%s core file: %s" % (r["mpm"], core))
        for entry in r["backtraces"][:5]:
            print("%s backtrace of the crashed thread (%s):\n  %s" % (
                r["mpm"], entry["core"], "\n  ".join((entry["backtrace"] or ["(no gdb)"])[:16])))
        for entry in r["httpd_race"]:
            print("%s httpd's own stop race%s: %s (core %s; frame 0: %s)" % (
                r["mpm"], " (allowed)" if args.allow_httpd_race else "", entry["line"], entry["core"],
                entry["backtrace"][0]))
        for line in (r["killed"] + r["control_failures"])[:10]:
            print("%s: %s" % (r["mpm"], line))
        crashed = crashed or bool(r["crash_lines"] or r["cores"] or (r["httpd_race"] and not args.allow_httpd_race))
    note = core_pattern_note()
    if note:
        print(note)
    if crashed or races:
        print("kept for gdb: %s, with the error logs and the module and library that ran "
              "(gdb -ex 'set solib-search-path %s' %s CORE)" % (core_dir, core_dir, APACHE))
    elif not any(core_dir.iterdir()) and not args.core_dir:
        shutil.rmtree(core_dir, ignore_errors=True)
    print("verdict: %s%s" % ("CRASHED" if crashed else "OK",
                             " (%d crash(es) of httpd's own stop race, allowed)" % races
                             if races and args.allow_httpd_race else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "core_dir": str(core_dir), "crashed": crashed},
                                              indent=1))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
