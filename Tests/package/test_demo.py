"""The README's first command as a newcomer runs it: `bash scripts/demo.sh` in a fresh checkout, the URL
it prints opened in headless Chromium, a login at the demo provider's own page, the demo app showing the
user; then Ctrl-C (SIGINT to its process group, as a terminal sends it) stops everything, leaving no
process and no open port behind.

The checkout is a `git clone` of this repository's HEAD. Its build/ is copied from this tree (made by
`make module` from the same commit, newer than the clone's sources, so make rebuilds nothing): the build
itself is what scripts/test.sh runs first, and doing it twice would cost ten minutes of CI."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from harness import free_port, port_open, wait_for  # noqa: E402
from test_browser import driver  # noqa: E402,F401


def processes_mentioning(text):
    """PIDs whose command line mentions `text`."""
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if text in (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(p.name))
            except OSError:
                pass
    return found


@pytest.fixture
def checkout(tmp_path):
    if not (ROOT / "build" / "mod_auth_idtoken.so").exists():
        pytest.fail("build/ has no module: run make module first")
    clone = tmp_path / "mod_auth_idtoken"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    (clone / "build").mkdir()
    for name in ("libIDToken.so", "mod_auth_idtoken.so"):  # the library first: the module depends on it
        shutil.copy(ROOT / "build" / name, clone / "build" / name)
        time.sleep(0.01)
    yield clone


def test_demo_sh_serves_the_login_and_stops_on_ctrl_c(checkout, driver):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    apache_port, provider_port = free_port(), free_port()
    # Where demo.sh keeps its Apache's files: under /tmp, where www-data can reach the CGI (pytest's
    # own tmp_path is in a folder of mode 0700).
    run_dir = Path("/tmp/idtoken-demo-test-%d" % apache_port)
    log = checkout / "demo-output.log"
    with open(log, "w") as out:
        # SIGINT as a terminal leaves it: a runner started in the background (a non-interactive shell's
        # `cmd &`) ignores SIGINT, and bash cannot trap a signal ignored when it starts.
        demo = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=checkout, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env=dict(os.environ, APACHE_PORT=str(apache_port), PROVIDER_PORT=str(provider_port),
                                         DEMO_RUN_DIR=str(run_dir)))
    try:
        def printed_url():
            m = re.search(r"Open (http://localhost:\d+/protected/)", log.read_text())
            if demo.poll() is not None:
                pytest.fail("scripts/demo.sh exited with %s:\n%s" % (demo.returncode, log.read_text()[-3000:]))
            return m.group(1) if m else None

        url = wait_for(printed_url, 600, "scripts/demo.sh to print the URL to open")
        assert url == "http://localhost:%d/protected/" % apache_port

        driver.get(url)
        wait = WebDriverWait(driver, 60)
        try:
            username = wait.until(EC.presence_of_element_located((By.NAME, "username")))
        except Exception:
            pytest.fail("no login page at %s:\n%s\n--- demo output:\n%s\n--- error log:\n%s" % (
                driver.current_url, driver.page_source[:2000], log.read_text()[-2000:],
                (run_dir / "error.log").read_text()[-2000:]))
        assert driver.current_url.startswith("http://127.0.0.1:%d/" % provider_port)
        username.clear()
        username.send_keys("newcomer")
        driver.find_element(By.NAME, "password").send_keys("anything")
        driver.find_element(By.ID, "login").click()
        wait.until(lambda d: d.current_url.startswith(url) and d.find_elements(By.ID, "remote-user"))
        assert driver.find_element(By.ID, "remote-user").text == "newcomer-0001"
        assert "Hello" in driver.find_element(By.TAG_NAME, "h1").text
    finally:
        # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=30)
            pytest.fail("scripts/demo.sh did not stop within 60 s of SIGINT:\n%s" % log.read_text()[-3000:])

    wait_for(lambda: not processes_mentioning(str(run_dir)) and not processes_mentioning("--port %d" % provider_port),
             30, "the demo's Apache and provider to exit")
    assert not port_open(apache_port) and not port_open(provider_port)
    shutil.rmtree(run_dir, ignore_errors=True)
