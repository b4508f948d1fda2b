"""Logins in real headless Chromium: the provider's login page, the cross-site form_post, the page; each
IDTokenCookieSameSite value, the login loop guard, a long return URL, step-up, the Back button.

The provider is http://127.0.0.1:<p> and the site http://localhost:<a>: two different sites, so the
form_post POST is cross-site and the state cookie survives it only because it is SameSite=None; Secure
(Chromium treats localhost as a secure context)."""

import json
import os
import shutil

import pytest

from harness import Provider, module_log_lines

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
                # Back must load the page again, as it does for a no-store page, not show a kept copy.
                "--disable-features=BackForwardCache",
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


# ---------------------------------------------------------------------------------------------------
# Issue 14: every login completes (the auto-login provider: each test is a few seconds)
# ---------------------------------------------------------------------------------------------------

def body_text(driver):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.TAG_NAME, "body").text


def served(driver, wait, url):
    """Waits until the browser shows the env page at `url`; returns its JSON."""
    wait.until(lambda d: d.current_url == url and "REMOTE_USER" in body_text(d))
    return page_json(driver)


@pytest.mark.parametrize("same_site", ["Strict", "Lax", "None"])
def test_each_cookie_samesite_value_logs_in_and_the_next_request_is_served(provider, apache_factory, driver, same_site):
    """Every documented value of IDTokenCookieSameSite works in a real browser. Strict used to loop for
    ever: the session cookie set on the answer to the provider's cross-site POST was not sent on the
    redirect that followed it; the login now ends on a page of the site that moves on by itself."""
    a = apache_factory(provider.discovery_url, extra="IDTokenCookieSameSite %s" % same_site)
    wait = Waiter(driver, a)
    driver.get(a.url("/protected/env?first=1"))
    env = served(driver, wait, a.url("/protected/env?first=1"))
    assert env["REMOTE_USER"] == "alice-0001" and env["QUERY_STRING"] == "first=1"
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert cookies["idtoken_session"]["sameSite"] == same_site, cookies["idtoken_session"]
    assert provider.stats()["authorize"] == 1, "one trip to the provider, no loop"
    # The next request is served from the session, without the provider.
    driver.get(a.url("/protected/env?next=1"))
    assert served(driver, wait, a.url("/protected/env?next=1"))["REMOTE_USER"] == "alice-0001"
    assert provider.stats()["authorize"] == 1
    assert not module_log_lines(a.error_log(), "login loop")


def test_a_browser_that_refuses_the_session_cookie_gets_the_loop_page(provider, apache_factory, driver):
    """A session cookie the browser refuses (here for another domain: IDTokenCookieDomain example.org on
    localhost) used to send it round between the site and the provider for ever. After three round trips
    it gets a page saying what is wrong, and the log one line naming the setting."""
    a = apache_factory(provider.discovery_url, extra="IDTokenCookieDomain example.org")
    wait = Waiter(driver, a)
    driver.get(a.url("/protected/env"))
    wait.until(lambda d: "login_loop" in body_text(d))
    assert driver.current_url == a.url("/protected/env")
    assert "Allow cookies for this site" in body_text(driver)
    assert provider.stats()["authorize"] == 3, provider.stats()
    assert "idtoken_session" not in {c["name"] for c in driver.get_cookies()}
    lines = module_log_lines(a.error_log(), "login loop")
    assert len(lines) == 1, lines
    assert "IDTokenCookieDomain example.org does not match the host localhost" in lines[0], lines[0]


def test_a_long_query_string_survives_the_login(provider, apache_factory, driver):
    """A 3.5 KB query string used to make the state cookie (which held it) larger than browsers keep:
    the login ended on "This login attempt expired". It is now kept in the shared store."""
    a = apache_factory(provider.discovery_url)
    wait = Waiter(driver, a)
    query = "q=" + "0123456789abcdef" * 219
    assert len(query) > 3500
    url = a.url("/protected/env?" + query)
    driver.get(url)
    env = served(driver, wait, url)
    assert env["QUERY_STRING"] == query
    assert provider.stats()["authorize"] == 1
    assert not module_log_lines(a.error_log(), "returns to")


def test_step_up_at_a_stricter_location_logs_in_again_and_comes_back(provider, apache_factory, driver):
    """Logged in at /protected, the browser goes to /protected/admin, which asks prompt=login max_age=300:
    a new login with those parameters happens, and the browser comes back to /protected/admin."""
    def extra(a):
        return "\n".join(["ScriptAlias /protected/admin/env %s/cgi/env.cgi" % a.folder,
                          "<Location /protected/admin>", "  IDTokenAuthRequestParams prompt=login max_age=300",
                          "</Location>"])
    a = apache_factory(provider.discovery_url, extra=extra)
    wait = Waiter(driver, a)
    driver.get(a.url("/protected/env"))
    served(driver, wait, a.url("/protected/env"))
    assert provider.stats()["authorize"] == 1
    offset = a.log_size()
    driver.get(a.url("/protected/admin/env?x=1"))
    env = served(driver, wait, a.url("/protected/admin/env?x=1"))
    assert env["REMOTE_USER"] == "alice-0001"
    assert provider.stats()["authorize"] == 2, "the stricter location sends the browser to log in again"
    assert module_log_lines(a.log_since(offset), "prompt=login.*login started for /protected/admin/env")
    # The new session serves both locations.
    driver.get(a.url("/protected/admin/env?again=1"))
    served(driver, wait, a.url("/protected/admin/env?again=1"))
    driver.get(a.url("/protected/env?again=1"))
    served(driver, wait, a.url("/protected/env?again=1"))
    assert provider.stats()["authorize"] == 2


def test_back_after_login_goes_to_the_page_again(login_page_provider, apache_factory, driver):
    """The Back button after a login takes the browser to the provider's authorization URL again; a
    provider that remembers the user answers it at once with the same state, and the page posts the spent
    response once more. The browser that completed that login is sent on to its page, not shown a 400."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    login_page_provider.reset()
    a = apache_factory(login_page_provider.discovery_url)
    wait = Waiter(driver, a)
    driver.get(a.url("/public/env"))
    driver.get(a.url("/protected/env?from=back"))
    wait.until(EC.presence_of_element_located((By.NAME, "username")))
    driver.find_element(By.ID, "login").click()
    served(driver, wait, a.url("/protected/env?from=back"))
    # The provider now has a session for the user: it answers the authorization URL at once.
    login_page_provider.configure(auto_login=True)
    offset = a.log_size()
    driver.back()
    wait.until(lambda d: module_log_lines(a.log_since(offset), "posted again"))
    env = served(driver, wait, a.url("/protected/env?from=back"))
    assert env["REMOTE_USER"] == "alice-0001"
    stats = login_page_provider.stats()
    assert stats["authorize"] == 2 and stats["tokens"] == 2, "Back did not make the provider answer again: %s" % stats
    assert not module_log_lines(a.log_since(offset), "state cookie missing|replayed")
