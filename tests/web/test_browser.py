"""Headless Chromium against a real ``pillarbox serve``: the setup wizard, admin
login, adding a domain and an account, logout, the account pages. Screenshots of
the main pages go to tests/artifacts/ (git-ignored).

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package;
skipped without them.
"""

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import ServerProcess, run_cli
from tests.web.helpers import web_config
from tests.web.test_wizard import setup_url

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromium-driver not installed"
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    assert CHROMIUM and CHROMEDRIVER
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--ignore-certificate-errors",
        "--window-size=1000,1200",
        f"--user-data-dir={tmp_path / f'chrome-{uuid.uuid4().hex}'}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def fill(driver: Any, form: Any, **values: str) -> None:
    for name, value in values.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)


def submit(form: Any) -> None:
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def wait_for(driver: Any, text: str) -> None:
    """Wait until the page (after a click's navigation) contains ``text``."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(lambda d: text in d.title or text in d.page_source)


def form_with(driver: Any, action_value: str) -> Any:
    for f in driver.find_elements(By.TAG_NAME, "form"):
        if f.find_elements(By.CSS_SELECTOR, f"input[name=action][value='{action_value}']"):
            return f
    raise AssertionError(f"no form with action {action_value}")


def test_wizard_then_admin_and_account_pages(browser: Any, tmp_path: Path) -> None:
    cfg, pa, _, ps = web_config(tmp_path)
    proc = ServerProcess(["serve"], config=cfg)
    try:
        proc.wait_for("pillarbox started")
        admin = f"http://127.0.0.1:{pa}/admin/"
        browser.get(admin)
        assert "not been set up" in browser.page_source
        browser.get(setup_url(proc))
        shot(browser, "wizard")
        form = browser.find_element(By.TAG_NAME, "main").find_element(By.TAG_NAME, "form")
        fill(browser, form, hostname="mx.browser.example", address="me@browser.example")
        submit(form)
        wait_for(browser, "Pillarbox is set up")
        admin_pw = browser.find_element(By.ID, "admin-password").text
        account_pw = browser.find_element(By.ID, "account-password").text
        shot(browser, "wizard-done")
        proc.wait_for("configuration applied")

        browser.get(admin)
        form = browser.find_element(By.TAG_NAME, "main").find_element(By.TAG_NAME, "form")
        fill(browser, form, password=admin_pw)
        submit(form)
        wait_for(browser, "Overview")
        shot(browser, "admin-overview")

        browser.get(admin + "domains")
        form = form_with(browser, "add")
        fill(browser, form, domain="second.example")
        submit(form)
        wait_for(browser, "Domain added.")
        shot(browser, "admin-domains")
        browser.find_element(By.LINK_TEXT, "second.example").click()
        wait_for(browser, "_mta-sts.second.example.")
        shot(browser, "admin-domain")

        browser.get(admin + "accounts")
        form = form_with(browser, "add")
        fill(browser, form, account="carol", address="carol@second.example", password="carol-pw-12")
        submit(form)
        wait_for(browser, "Account added.")
        shot(browser, "admin-accounts")
        browser.find_element(By.LINK_TEXT, "carol").click()
        wait_for(browser, "Remove account carol")
        shot(browser, "admin-account")
        browser.get(admin + "aliases")
        shot(browser, "admin-aliases")

        browser.find_element(By.CSS_SELECTOR, "header form button").click()
        wait_for(browser, "Admin login")
        browser.get(admin + "accounts")
        assert "Admin login" in browser.title  # the session is gone

        account = f"https://127.0.0.1:{ps}/account/"
        browser.get(account)
        form = browser.find_element(By.TAG_NAME, "main").find_element(By.TAG_NAME, "form")
        fill(browser, form, username="me@browser.example", password=account_pw)
        submit(form)
        wait_for(browser, "Your account")
        shot(browser, "account")
        browser.get(account + "settings")
        assert re.search(r"mail\.browser\.example", browser.page_source)
        shot(browser, "account-settings")
        # No inline script anywhere: the CSP would block it, and none is needed.
        assert "<script" not in browser.page_source
        assert proc.tracebacks() == []
        assert run_cli(["status"], config=cfg).returncode == 0
    finally:
        proc.stop()
