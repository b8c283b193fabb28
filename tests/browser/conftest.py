"""Headless Chromium (Debian's package) driven by Playwright against pytest-django's live server.

Screenshots of the pages the tests visit go to the git-ignored ``screenshots/`` folder at the
top of the checkout so a reviewer can look at them. With ``HOOKSTREAM_DOCS_SCREENSHOTS=1`` the
shots that the README shows are also written to ``docs/`` (``shot(..., docs=…)``):

    HOOKSTREAM_DOCS_SCREENSHOTS=1 pytest tests/browser
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
DOCS = Path(__file__).resolve().parents[2] / "docs"
# The README's images: one screen, not the whole page, so that they stay small.
DOCS_VIEWPORT = {"width": 1280, "height": 800}

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


def shot(page, name: str, *, docs: str | None = None, focus: str | None = None) -> Path:
    """Save a full-page screenshot as ``screenshots/<name>.png``.

    ``docs``: with ``HOOKSTREAM_DOCS_SCREENSHOTS`` set, also save ``docs/<docs>.png`` for the
    README, 1280×800 from the top of the page, or centred on the element ``focus`` selects;
    animations are finished first (a live row's highlight would otherwise be caught midway).
    """
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("HOOKSTREAM_DOCS_SCREENSHOTS"):
        viewport = page.viewport_size
        page.set_viewport_size(DOCS_VIEWPORT)
        try:
            if focus:
                page.locator(focus).evaluate("element => element.scrollIntoView({block: 'center'})")
            else:
                page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(DOCS / f"{docs}.png"), animations="disabled")
        finally:
            page.set_viewport_size(viewport)
    return path
