"""Playwright driving Debian's Chromium against the live server, and the screenshots each test saves."""

import logging
import os
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]

log = logging.getLogger(__name__)


class Chromium:
    """One Chromium for the session, started again when it has exited.

    Chromium can exit during a page load (seen once on the first page of a CI run),
    and every later browser test would then fail on the dead browser. Chromium's own
    output goes to the driver's stderr (Playwright's `pw:browser` debug channel), so a
    failing test shows why it exited.
    """

    def __init__(self, playwright) -> None:
        self.playwright = playwright
        self.current = None

    def get(self):
        if self.current is not None and self.current.is_connected():
            return self.current
        if self.current is not None:
            log.warning("Chromium exited during the browser tests; starting a new one")
        self.current = self.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        return self.current

    def close(self) -> None:
        if self.current is not None and self.current.is_connected():
            self.current.close()


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/bootstrap --test)")
    # The driver reads DEBUG once as it starts. Stages and other tools must not see it.
    before = os.environ.get("DEBUG")
    os.environ["DEBUG"] = "pw:browser"
    try:
        manager = sync_playwright()
        playwright = manager.start()
    finally:
        if before is None:
            del os.environ["DEBUG"]
        else:
            os.environ["DEBUG"] = before
    browser = Chromium(playwright)
    yield browser
    browser.close()
    manager.__exit__(None, None, None)


@pytest.fixture
def open_page(chromium, live_server, admin):
    """Return a function that signs `username` in on a new page of the live server."""
    from playwright.sync_api import Error as PlaywrightError

    contexts = []

    def sign_in(username: str, password: str, width: int, height: int):
        context = chromium.get().new_context(viewport={"width": width, "height": height})
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

    def open_as(username: str = "admin", password: str = "admin-password", width: int = 1360, height: int = 900):
        try:
            return sign_in(username, password, width, height)
        except PlaywrightError:
            # Only a browser that exited while signing in gets a second try. Any other
            # failure of the sign-in is the product's, so it fails the test.
            if chromium.current is not None and chromium.current.is_connected():
                raise
            return sign_in(username, password, width, height)

    yield open_as
    for context in contexts:
        try:
            context.close()
        except PlaywrightError:
            # The context's browser has exited, so there is nothing left to close.
            pass


def save_screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot under tests/screenshots/ (ignored by git) and return its path."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
