"""One login in real headless Chromium: the provider's login page, the cross-site form_post, the page.

The provider is http://127.0.0.1:<p> and the site http://localhost:<a>: two different sites, so the
form_post POST is cross-site and the state cookie survives it only because it is SameSite=None; Secure
(Chromium treats localhost as a secure context)."""

import json
import os
import shutil

import pytest

from harness import Provider

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def login_page_provider():
    """A provider WITHOUT --auto-login: it shows its login page."""
    p = Provider("--test-controls", client_id="test-client")
    yield p
    p.stop()


@pytest.fixture
def driver(tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are needed (scripts/install-deps.sh installs them)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--user-data-dir=%s" % (tmp_path / "profile")):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
                         options=options)
    d.set_page_load_timeout(60)
    yield d
    d.quit()
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def page_json(driver):
    """The JSON document the browser shows (Chromium wraps it in a <pre>)."""
    from selenium.webdriver.common.by import By
    pres = driver.find_elements(By.TAG_NAME, "pre")
    text = pres[0].text if pres else driver.find_element(By.TAG_NAME, "body").text
    return json.loads(text)


class Waiter:
    """WebDriverWait (generous: the machine may be busy building) that says where the browser was."""

    def __init__(self, driver, apache):
        from selenium.webdriver.support.ui import WebDriverWait
        self.driver, self.apache, self.wait = driver, apache, WebDriverWait(driver, 60)

    def until(self, condition):
        from selenium.common.exceptions import TimeoutException
        try:
            return self.wait.until(condition)
        except TimeoutException:
            pytest.fail("browser stuck at %s\n--- page:\n%s\n--- error log:\n%s" % (
                self.driver.current_url, self.driver.page_source[:3000], self.apache.error_log()[-3000:]))


def test_login_in_chromium(login_page_provider, apache_factory, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    login_page_provider.reset()
    a = apache_factory(login_page_provider.discovery_url)
    assert a.url("/").startswith("http://localhost:")
    assert login_page_provider.issuer.startswith("http://127.0.0.1:")

    driver.get(a.url("/protected/env"))
    wait = Waiter(driver, a)
    username = wait.until(EC.presence_of_element_located((By.NAME, "username")))
    assert driver.current_url.startswith(login_page_provider.issuer + "/authorize?")
    username.clear()
    username.send_keys("carol")
    driver.find_element(By.NAME, "password").send_keys("anything")
    driver.find_element(By.ID, "login").click()

    # form_post page -> (onload submit) -> callback -> 303 -> the protected page.
    wait.until(lambda d: d.current_url == a.url("/protected/env"))
    wait.until(lambda d: "REMOTE_USER" in d.find_element(By.TAG_NAME, "body").text)
    env = page_json(driver)
    assert env["REMOTE_USER"] == "carol-0001"
    assert env["AUTH_TYPE"] == "IDToken"
    assert env["IDTOKEN_CLAIM_email"] == "carol@example.org"

    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert "idtoken_session" in cookies, cookies
    assert cookies["idtoken_session"]["httpOnly"] is True
    assert not any(n.startswith("idtoken_state_") for n in cookies), "the state cookie was not cleared"
    assert login_page_provider.stats()["login"] == 1

    # A reload is served from the session, without the provider.
    before = login_page_provider.stats()["authorize"]
    driver.get(a.url("/protected/env?again=1"))
    env = page_json(driver)
    assert env["REMOTE_USER"] == "carol-0001" and env["QUERY_STRING"] == "again=1"
    assert login_page_provider.stats()["authorize"] == before
