"""End to end in a real headless Chromium: `regsyncd serve` with its panel, two real registries.

Through the panel only: add both registries, create a task with the wizard (its preview lists
the real source), run it, see it succeed; the target then holds the image. A screenshot of each
page goes to artifacts/screenshots/; with REGSYNC_UPDATE_DOCS=1 the dashboard's also replaces
docs/dashboard.png (the README's).
Chromium and chromedriver are the Debian packages (`make system-deps`): nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from support.images import manifest_digest, push_image
from support.registry import RegistryServer, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")
WAIT = 20.0


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: run `make system-deps`")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SHOTS / "last.png"))  # where a failure left the browser
        driver.quit()


@pytest.fixture
def panel_url(tmp_path: Path) -> Iterator[str]:
    """`regsyncd serve` with the panel; its URL once it answers."""
    ui_port = free_port()
    log = (tmp_path / "regsyncd.log").open("w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("regsyncd")), "serve", "--db",
         str(tmp_path / "regsync.db"), "--listen", f"127.0.0.1:{free_port()}",
         "--ui-port", str(ui_port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ui_port}"
    try:
        _until(lambda: daemon.poll() is not None or _answers(url), "the panel to answer")
        if daemon.poll() is not None:
            pytest.fail(f"regsyncd exited: {(tmp_path / 'regsyncd.log').read_text()[-2000:]}")
        yield url
    finally:
        daemon.terminate()
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if result := check():
                return result
        except WebDriverException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _attempt(step: Callable[[], bool]) -> bool:
    """One try of a step that waits on its own: a timeout of it is 'not yet', not a failure."""
    try:
        return step()
    except AssertionError:
        return False


class Page:
    """Small helpers over Quasar's markup: fields by label, buttons by text."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.driver = driver
        self.base = base

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def visible(self, xpath: str, timeout: float = WAIT) -> WebElement:
        found: WebElement = _until(lambda: self._shown(xpath), xpath, timeout)
        return found

    def _shown(self, xpath: str) -> WebElement | None:
        return next((e for e in self.driver.find_elements(By.XPATH, xpath) if e.is_displayed()),
                    None)

    def see(self, text: str) -> None:
        self.visible(f"//*[contains(normalize-space(text()), {text!r})]")

    def field(self, label: str, value: str) -> None:
        xpath = (f"//label[.//div[contains(@class,'q-field__label') and "
                 f"normalize-space()={label!r}]]//*[self::input or self::textarea]")

        def typed() -> bool:  # Vue may re-render the box between finding and typing: again
            box = self.visible(xpath)
            box.clear()
            box.send_keys(value)
            return box.get_attribute("value") == value

        _until(typed, f"{label} to hold {value!r}")

    def choose(self, label: str, option: str) -> None:
        """Pick an option and wait until the field shows it: a click that lands while Quasar's
        menu is still opening is lost, so open and click again until the choice holds."""
        field = (f"//label[.//div[contains(@class,'q-field__label') and "
                 f"normalize-space()={label!r}]]")
        shown = f"{field}//*[contains(@class,'q-field__native')][normalize-space()={option!r}]"
        choice = f"//div[@role='option']//*[normalize-space()={option!r}]"

        def picked() -> bool:
            if self._shown(choice) is None:  # open the menu, unless a lost click left it open
                self.visible(field, timeout=5).click()
            self.visible(choice, timeout=5).click()
            _until(lambda: self.driver.find_elements(By.XPATH, shown), f"{label} = {option}",
                   timeout=3)
            return True

        _until(lambda: _attempt(picked), f"{label} to show {option}", timeout=2 * WAIT)

    def button(self, text: str) -> None:
        xpath = f"//button[.//*[normalize-space()={text!r}]]"

        def clicked() -> bool:  # a stale button was not clicked (re-rendered): find it again
            self.visible(xpath).click()
            return True

        _until(clicked, f"a click on {text!r}")

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        time.sleep(0.3)  # let Quasar finish its transitions
        self.driver.save_screenshot(str(path))
        return path


def test_wizard_task_runs_to_success(browser: webdriver.Chrome, panel_url: str,
                                     registry: RegistryServer,
                                     registry2: RegistryServer) -> None:
    digest = push_image(registry, "team/app", "1.0", layers=[b"layer one", b"layer two"])
    page = Page(browser, panel_url)
    page.open("/")
    page.see("No executions yet")

    page.open("/registries")
    for name, server in (("src", registry), ("dst", registry2)):
        page.button("Add registry")
        page.field("Name", name)
        page.field("URL", server.url)
        page.button("Save")
        page.see(f"Registry {name} saved")
    page.button("Test")
    page.see("reachable, credentials accepted")
    page.shot("registries")

    page.open("/tasks/new")
    page.field("Task name", "app-mirror")
    page.choose("Source registry", "src")
    page.field("Source repository", "team/app")
    page.button("Next")
    page.choose("Target registry", "dst")
    page.field("Target repository", "mirror/app")
    page.button("Next")
    page.see("1 of 1 tags kept")  # the daemon listed the real source
    page.shot("wizard")
    page.button("Next")
    page.button("Next")
    page.field("Cron schedule (empty = manual only)", "0 3 * * *")
    page.see("Next runs (UTC")
    page.see("03:00:00 UTC")  # the real daemon's scheduler answered, in UTC
    page.button("Save task")
    page.see("src/team/app -> dst/mirror/app")  # back on the tasks page
    page.see("0 3 * * *")
    page.button("Run now")
    page.see("Task app-mirror started")
    page.shot("tasks")

    page.open("/executions")
    page.see("succeeded")
    page.shot("executions")
    page.visible("//a[starts-with(normalize-space(), '#')]").click()
    page.see("copied")
    page.shot("execution")
    assert manifest_digest(registry2, "mirror/app", "1.0") == digest

    page.open("/")
    page.see("Latest executions")
    page.see("succeeded")
    shot = page.shot("dashboard")
    if os.environ.get("REGSYNC_UPDATE_DOCS"):  # refresh the README's picture on purpose only
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")
