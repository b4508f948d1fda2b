"""The .deb on this machine's own Apache, as an admin uses it (issue 18): `apt-get install ./...deb`
(dependencies resolved by apt), `a2enmod auth_idtoken`, a site with the README's minimal configuration
against the demo provider, `apache2ctl configtest`, start, a login in headless Chromium; then a rebuilt
package with a higher version installed over it, httpd stopped and started as the maintainer script
does, and the session made before still works; then `apt-get purge`, after which nothing of the package
is left. Runs as root on the system Apache (installed by scripts/install-deps.sh), on a free port; the
system's ports.conf and sites are put back afterwards. It needs build/ (make module)."""

import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from harness import Provider, free_port, raw_request, wait_for  # noqa: E402

PACKAGE = "libapache2-mod-auth-idtoken"
ETC = Path("/etc/apache2")
SITE = "idtoken-package-test"


def run(*cmd, check=True, env=None, timeout=300):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive", **(env or {})))
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    return r


def build_deb(out, version=None):
    env = {"DEB_OUT": str(out)}
    if version:
        env["DEB_VERSION"] = version
    r = run(str(ROOT / "scripts" / "build-deb.sh"), env=env)
    deb = Path(r.stdout.strip().splitlines()[-1])
    assert deb.exists(), r.stdout
    return deb


def installed_version():
    r = run("dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE, check=False)
    return r.stdout.split()[-1] if r.returncode == 0 and "install ok installed" in r.stdout else None


def apache_running():
    return run("pgrep", "-f", "^/usr/sbin/apache2 -k start", check=False).returncode == 0


def apachectl(*args):
    return run("apache2ctl", *args, check=False, timeout=120)


def stop_apache():
    apachectl("stop")
    wait_for(lambda: not apache_running(), 60, "the system Apache to stop")


@pytest.fixture
def system_apache(tmp_path):
    """The system Apache with ports.conf on a free port and only our site; everything put back after."""
    if os.geteuid() != 0 or not Path("/usr/sbin/apache2ctl").exists():
        pytest.fail("needs root and Debian's apache2 (scripts/install-deps.sh installs it)")
    if installed_version() is not None:
        run("apt-get", "purge", "-y", PACKAGE)
    if apache_running():
        stop_apache()
    port = free_port()
    saved = tmp_path / "saved"
    saved.mkdir()
    shutil.copy2(ETC / "ports.conf", saved / "ports.conf")
    enabled_sites = sorted(p.name for p in (ETC / "sites-enabled").iterdir())
    enabled_mods = {p.name.split(".")[0] for p in (ETC / "mods-enabled").glob("*.load")}
    for name in enabled_sites:
        run("a2dissite", "-q", name.removesuffix(".conf"))
    (ETC / "ports.conf").write_text("Listen 127.0.0.1:%d\n" % port)
    try:
        yield port
    finally:
        if apache_running():
            stop_apache()
        if installed_version() is not None:
            run("apt-get", "purge", "-y", PACKAGE, check=False)
        run("a2dissite", "-q", SITE, check=False)
        for p in (ETC / "sites-available" / (SITE + ".conf"), ETC / "idtoken-package-test.key"):
            p.unlink(missing_ok=True)
        shutil.copy2(saved / "ports.conf", ETC / "ports.conf")
        for p in (ETC / "mods-enabled").glob("*.load"):
            if p.name.split(".")[0] not in enabled_mods:
                run("a2dismod", "-q", "-f", p.name.split(".")[0], check=False)
        for name in enabled_sites:
            run("a2ensite", "-q", name.removesuffix(".conf"), check=False)


def minimal_site(port, discovery_url):
    """The README's minimal configuration (without its LoadModule line: a2enmod loads the module)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Minimal configuration", 1)[1].split("```apache", 1)[1].split("```", 1)[0]
    lines = [line for line in block.strip().splitlines() if not line.startswith("LoadModule")]
    conf = "\n".join(lines)
    conf = conf.replace("https://login.example.com/.well-known/openid-configuration", discovery_url)
    conf = conf.replace("my-client-id", "test-client")
    conf = conf.replace("/etc/apache2/idtoken.key", str(ETC / "idtoken-package-test.key"))
    cgi = "ScriptAlias /app/ /usr/lib/cgi-bin/idtoken-package-test-env.cgi/"
    return "<VirtualHost 127.0.0.1:%d>\nServerName localhost:%d\n%s\n%s\n</VirtualHost>\n" % (port, port, cgi, conf)


ENV_CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "REMOTE_USER=$REMOTE_USER"
echo "EMAIL=$IDTOKEN_CLAIM_email"
"""


@pytest.fixture
def provider():
    p = Provider("--test-controls", "--auto-login", client_id="test-client")
    yield p
    p.stop()


def test_install_login_upgrade_and_purge(system_apache, provider, tmp_path, driver):
    from selenium.webdriver.common.by import By

    port = system_apache
    deb = build_deb(tmp_path / "v1")
    run("lintian", "--fail-on", "error,warning", str(deb))

    # Install: dependencies through apt; the module is not enabled until the admin asks.
    run("apt-get", "install", "-y", str(deb))
    assert installed_version() is not None
    files = [f for f in run("dpkg", "-L", PACKAGE).stdout.splitlines() if Path(f).is_file()]
    assert "/usr/lib/apache2/modules/mod_auth_idtoken.so" in files
    assert "/usr/lib/%s/libIDToken.so" % PACKAGE in files
    assert "/etc/apache2/mods-available/auth_idtoken.load" in files
    assert not (ETC / "mods-enabled" / "auth_idtoken.load").exists()

    run("a2enmod", "-q", "auth_idtoken")
    run("a2enmod", "-q", "cgid")
    (ETC / "idtoken-package-test.key").write_text(run("openssl", "rand", "-base64", "32").stdout)
    os.chmod(ETC / "idtoken-package-test.key", 0o600)
    cgi = Path("/usr/lib/cgi-bin/idtoken-package-test-env.cgi")
    cgi.parent.mkdir(parents=True, exist_ok=True)
    cgi.write_text(ENV_CGI)
    cgi.chmod(0o755)
    try:
        (ETC / "sites-available" / (SITE + ".conf")).write_text(minimal_site(port, provider.discovery_url))
        run("a2ensite", "-q", SITE)
        assert apachectl("configtest").returncode == 0, apachectl("configtest").stderr
        r = apachectl("start")
        assert r.returncode == 0, r.stdout + r.stderr
        wait_for(apache_running, 60, "the system Apache to start")

        # A login in Chromium, cross-site: the demo provider is http://127.0.0.1:P, the site localhost.
        url = "http://localhost:%d/app/" % port
        driver.get(url)
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(driver, 60).until(lambda d: "REMOTE_USER=" in d.find_element(By.TAG_NAME, "body").text)
        assert "REMOTE_USER=alice-0001" in driver.find_element(By.TAG_NAME, "body").text
        cookie = {c["name"]: c["value"] for c in driver.get_cookies()}["idtoken_session"]
        log = Path("/var/log/apache2/error.log").read_text(errors="replace")
        assert "IDT0002" in log and "mod_auth_idtoken" in log
        assert Path("/var/cache/apache2/idtoken-store").exists(), "the store is not where auth_idtoken.conf puts it"

        # Upgrade: a later package over it, httpd stopped and started (a reload would keep the old
        # library); the session made before still opens.
        newer = build_deb(tmp_path / "v2", version=installed_version() + "+upgrade1")
        run("apt-get", "install", "-y", str(newer))
        assert installed_version().endswith("+upgrade1")
        stop_apache()
        assert apachectl("start").returncode == 0
        wait_for(apache_running, 60, "the system Apache to start again")
        r = raw_request(port, ("GET /app/ HTTP/1.1\r\nHost: localhost:%d\r\nCookie: idtoken_session=%s\r\n"
                               "Connection: close\r\n\r\n" % (port, cookie)).encode())
        assert r.status == 200 and "REMOTE_USER=alice-0001" in r.text, (r.status, r.text[:500])

        # Purge: nothing of ours left.
        stop_apache()
        run("apt-get", "purge", "-y", PACKAGE)
        assert installed_version() is None
        left = [f for f in files if Path(f).exists()]
        assert left == [], left
        assert not list((ETC / "mods-enabled").glob("auth_idtoken.*"))
        assert not Path("/usr/lib/%s" % PACKAGE).exists()
        assert not Path("/var/cache/apache2/idtoken-store").exists()
        assert run("a2query", "-m", "auth_idtoken", check=False).returncode != 0
    finally:
        cgi.unlink(missing_ok=True)


# Headless Chromium, as in the end-to-end tests.
from test_browser import driver  # noqa: E402,F401
