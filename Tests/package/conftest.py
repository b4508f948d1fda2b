"""The package tests borrow the end-to-end harness (Tests/e2e) and its Chromium fixture."""


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs headless Chromium through Selenium")
