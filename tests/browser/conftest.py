"""Headless Chromium (Debian's package) driven by Playwright against pytest-django's live server.

Screenshots of the pages the tests visit go to the git-ignored ``screenshots/`` folder at the
top of the checkout so a reviewer can look at them.
"""

import os
from pathlib import Path

import pytest

from tests.support import require_service

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# between browser steps are ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser():
    require_service("Chromium", Path(CHROMIUM).exists(), "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def log_in(page, tenant) -> None:
    """Log in through the login form as the tenant's user (password ``<name>-password-123``)."""
    name = tenant.user.username
    page.goto("/login/")
    page.fill("#id_username", name)
    page.fill("#id_password", f"{name}-password-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as ``screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
