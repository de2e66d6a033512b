"""Playwright driving Debian's Chromium against the live server, and the screenshots each test saves."""

from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/bootstrap --test)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-background-networking"])
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser, live_server, admin):
    """Return a function that signs `username` in on a new page of the live server."""
    contexts = []

    def open_as(username: str = "admin", password: str = "admin-password", width: int = 1360, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.goto(f"{live_server}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server}/")
        return page

    yield open_as
    for context in contexts:
        context.close()


def save_screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot under tests/screenshots/ (ignored by git) and return its path."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
