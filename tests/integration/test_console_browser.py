"""The web console in a real headless Chromium, over a real engine, registry and cosign signature.

HTTPS with the dev certificates (and --ignore-certificate-errors): the session cookie is Secure
and `__Host-`, as in production, so the browser must store and send it exactly as it would there.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from signet.audit import Decision, DecisionLog
from signet.console import ConsoleSettings, create_console
from signet.crypto.keyfile import generate
from signet.http.devcerts import write_dev_certs
from signet.oci.client import Limits
from signet.service import runtime
from signet.service.engine import EngineSettings
from signet.trust.config import load
from tests.support import cosign
from tests.support.browser import chromium, png_colours, serving
from tests.support.images import push_image
from tests.support.registry import run_registry

from .helpers import write_trust

pytestmark = pytest.mark.integration

COSIGN = "v3.1.3"
TOKEN = "browser-console-token-0123456789"
HOSTILE = 'evil.test/a:"><script>window.__pwned=1</script><img src=x onerror=alert(1)>'


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """The console's URL, and a signed and an unsigned image in a real registry."""
    with run_registry(tmp_path / "registry") as registry:
        keys = cosign.generate_key_pair(COSIGN, tmp_path / "keys")
        digest = push_image(registry.url, "app", "signed", seed="console-signed")
        push_image(registry.url, "app", "unsigned", seed="console-unsigned")
        cosign.sign(COSIGN, keys.private, f"{registry.host}/app@{digest}")
        config = write_trust(tmp_path / "trust", {"ci": [keys.public]}, [registry.host])
        trust = load(config)
        log = DecisionLog(tmp_path / "log", generate("p256"), replica="r1")
        log.submit(
            [Decision(time.time() - 5, "req-1", HOSTILE, None, reasons=("INVALID_REFERENCE",))]
        )
        log.close()
        built = runtime.build(
            lambda: trust,
            settings=EngineSettings(deadline=20.0, flight_deadline=20.0),
            limits=Limits(request_timeout=10.0),
        )
        settings = ConsoleSettings(TOKEN.encode(), decision_log=tmp_path / "log", read_only=False)
        app = create_console(built.engine, lambda: trust, config, settings)
        certs = write_dev_certs(tmp_path / "certs")
        with serving(app, certs.server_cert, certs.server_key) as url:
            yield url, f"{registry.host}/app:signed", f"{registry.host}/app:unsigned"
        built.cpu.close()


def _wait_text(driver: WebDriver, text: str) -> None:
    # The page may be replaced between finding <main> and reading it: look again then.
    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: text in d.find_element(By.TAG_NAME, "main").text, f"{text!r} never appeared"
    )


def _no_alert(driver: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def test_the_console_in_a_real_browser(console: tuple[str, str, str], tmp_path: Path) -> None:
    url, signed, unsigned = console
    with chromium(tmp_path / "profile") as driver:
        driver.get(f"{url}/")
        assert driver.current_url == f"{url}/login"  # sent to log in
        driver.find_element(By.ID, "token").send_keys("not-the-token-at-all" + Keys.ENTER)
        _wait_text(driver, "That token is not right.")
        driver.find_element(By.ID, "token").send_keys(TOKEN + Keys.ENTER)
        _wait_text(driver, "decisions matched")

        # The hostile name is text: no script ran, no image loaded, no alert.
        main = driver.find_element(By.TAG_NAME, "main")
        assert HOSTILE in main.text
        assert driver.execute_script("return typeof window.__pwned") == "undefined"
        assert driver.find_elements(By.CSS_SELECTOR, "main img") == []
        assert driver.find_elements(By.CSS_SELECTOR, "main script") == []
        _no_alert(driver)
        shot = tmp_path / "decisions.png"
        assert driver.save_screenshot(str(shot))
        width, height, colours = png_colours(shot.read_bytes())
        assert width >= 800 and height >= 600 and colours > 3, (width, height, colours)
        assert shot.stat().st_size > 5000

        # Keyboard: from the skip link, tab to the check form and submit it with Enter.
        driver.get(f"{url}/check")
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        assert driver.switch_to.active_element.text == "Skip to main content"
        for _ in range(20):
            active = driver.switch_to.active_element
            if active.get_attribute("id") == "check-image":
                break
            active.send_keys(Keys.TAB)
        else:
            pytest.fail("tabbing never reached the image field")
        driver.switch_to.active_element.send_keys(signed + Keys.ENTER)
        _wait_text(driver, "Verified by: ci")
        assert "sha256:" in driver.find_element(By.TAG_NAME, "main").text

        field = driver.find_element(By.ID, "check-image")
        field.clear()
        field.send_keys(unsigned + Keys.ENTER)
        _wait_text(driver, "NO_SIGNATURE")
        main_text = driver.find_element(By.TAG_NAME, "main").text
        assert "No trusted attestor verified this image." in main_text
        assert "sign " in main_text and "@sha256:" in main_text  # the remediation names the digest
        driver.find_element(By.CSS_SELECTOR, "main section").screenshot(str(tmp_path / "check.png"))
        assert png_colours((tmp_path / "check.png").read_bytes())[2] > 2

        # A broken proposal: the CLI's message.
        driver.get(f"{url}/config")
        proposal = driver.find_element(By.ID, "proposal")
        proposal.clear()
        proposal.send_keys("version: 2\nattestors: []\n")
        driver.find_element(By.CSS_SELECTOR, "form[action='/config/propose'] button").click()
        WebDriverWait(driver, 30).until(
            expected_conditions.presence_of_element_located((By.ID, "proposal-error"))
        )
        error = driver.find_element(By.ID, "proposal-error").text
        assert error == "signet verify: proposed.yaml: version must be 1, not 2", error
        _no_alert(driver)
        assert driver.execute_script("return typeof window.__pwned") == "undefined"
