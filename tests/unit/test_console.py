"""The web console over the fake registry: login, CSRF, headers, escaping, checks, proposals."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from signet import cli
from signet.audit import Decision, DecisionLog, SignerFact
from signet.console import ConsoleSettings, create_console
from signet.console.auth import COOKIE
from signet.crypto.keyfile import generate, public_pem
from signet.service import runtime
from signet.trust.config import load
from tests.unit.fakes import HOST, FakeRegistry, new_key

TOKEN = b"correct-horse-battery-staple-42"
ORIGIN = "https://testserver"
HOSTILE = 'evil.test/a:"><script>window.__pwned=1</script><img src=x onerror=alert(1)>'
GET_PAGES = ("/", "/check", "/signers", "/config", "/history?digest=sha256:00")
POST_PAGES = ("/check", "/config/propose", "/config/download", "/logout")


@dataclass
class Console:
    client: TestClient
    config: Path
    signed: str
    unsigned: str
    digest: str

    def csrf(self, path: str = "/check") -> str:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', self.client.get(path).text)
        assert found, path
        return found.group(1)

    def login(self) -> None:
        csrf = self.csrf("/login")
        answer = self.client.post(
            "/login", data={"token": TOKEN.decode(), "csrf": csrf}, headers={"Origin": ORIGIN}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text

    def post(self, path: str, **fields: str) -> httpx.Response:
        answer: httpx.Response = self.client.post(
            path, data={"csrf": self.csrf(), **fields}, headers={"Origin": ORIGIN}
        )
        return answer


def _trust_file(folder: Path, pem: bytes, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    indented = "\n".join("          " + line for line in pem.decode().splitlines())
    path = folder / "trust.yaml"
    path.write_text(
        "version: 1\nattestors:\n  - name: team-0\n    keys:\n      - id: key-0\n"
        f"        pem: |\n{indented}\n{extra}"
    )
    return path


def _write_log(directory: Path, digest: str) -> None:
    audit = DecisionLog(directory, generate("p256"), replica="r1")
    now = time.time()
    signer = SignerFact("team-0", "key-0", "cosign-classic")
    audit.submit(
        [
            Decision(now - 60, "req-1", f"{HOST}/team/app:v1", digest, ("team-0",), (signer,)),
            Decision(now - 30, "req-2", HOSTILE, None, reasons=("INVALID_REFERENCE",)),
            Decision(now - 10, "req-3", f"{HOST}/team/app:old", None, reasons=("NO_SIGNATURE",)),
        ]
    )
    audit.close()


def _console(tmp_path: Path, **settings: object) -> Iterator[Console]:
    key = new_key()
    fake = FakeRegistry()
    digest = fake.signed_image("team/app", "v1", key)
    fake.push_image("team/app", "unsigned", "u")
    config = _trust_file(tmp_path / "trust", public_pem(key))
    trust = load(config)
    built = runtime.build(lambda: trust, transport=fake.transport())
    _write_log(tmp_path / "log", digest)
    options: dict[str, object] = {"decision_log": tmp_path / "log", "read_only": False}
    options.update(settings)
    console_settings = ConsoleSettings(TOKEN, **options)  # type: ignore[arg-type]
    app = create_console(built.engine, lambda: trust, config, console_settings)
    with TestClient(app, base_url=ORIGIN, follow_redirects=False) as client:
        yield Console(client, config, f"{HOST}/team/app:v1", f"{HOST}/team/app:unsigned", digest)
    built.cpu.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from _console(tmp_path)


@pytest.fixture
def logged_in(console: Console) -> Console:
    console.login()
    return console


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", GET_PAGES)
def test_every_page_needs_a_login(console: Console, path: str) -> None:
    browser = console.client.get(path, headers={"Accept": "text/html"})
    assert browser.status_code == 303 and browser.headers["location"] == "/login"
    assert console.client.get(path).status_code == 401


@pytest.mark.parametrize("path", POST_PAGES)
def test_every_post_needs_a_login(console: Console, path: str) -> None:
    csrf = console.csrf("/login")  # a login form's session is not logged in
    answer = console.client.post(path, data={"csrf": csrf}, headers={"Origin": ORIGIN})
    assert answer.status_code == 403
    assert "not logged in" in answer.text


def test_a_wrong_token_is_refused(console: Console) -> None:
    csrf = console.csrf("/login")
    answer = console.client.post(
        "/login",
        data={"token": "wrong-token-of-some-length", "csrf": csrf},
        headers={"Origin": ORIGIN},
    )
    assert answer.status_code == 401
    assert "That token is not right." in answer.text
    assert console.client.get("/", headers={"Accept": "text/html"}).status_code == 303


def test_a_bearer_token_reads_pages(console: Console) -> None:
    good = console.client.get("/signers", headers={"Authorization": f"Bearer {TOKEN.decode()}"})
    assert good.status_code == 200 and "key-0" in good.text
    bad = console.client.get("/signers", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_the_session_cookie_is_httponly_secure_strict(console: Console) -> None:
    csrf = console.csrf("/login")
    answer = console.client.post(
        "/login", data={"token": TOKEN.decode(), "csrf": csrf}, headers={"Origin": ORIGIN}
    )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/", "Max-Age="):
        assert attribute.lower() in cookie.lower(), cookie


def test_a_tampered_cookie_is_refused(logged_in: Console) -> None:
    value = logged_in.client.cookies[COOKIE]
    logged_in.client.cookies.set(COOKIE, value[:-1] + ("0" if value[-1] != "0" else "1"))
    assert logged_in.client.get("/", headers={"Accept": "text/html"}).status_code == 303


def test_a_session_expires(tmp_path: Path) -> None:
    now = [time.time()]
    for console in _console(tmp_path, clock=lambda: now[0], session_seconds=60.0):
        console.login()
        assert console.client.get("/signers").status_code == 200
        now[0] += 61
        assert console.client.get("/signers").status_code == 401


def test_logging_out_ends_the_session_even_for_a_kept_cookie(logged_in: Console) -> None:
    kept = logged_in.client.cookies[COOKIE]
    assert logged_in.post("/logout").status_code == 303
    logged_in.client.cookies.set(COOKIE, kept)
    assert logged_in.client.get("/signers").status_code == 401


# -- CSRF and origin ------------------------------------------------------------------------


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(logged_in: Console) -> None:
    for data in ({"image": logged_in.signed}, {"image": logged_in.signed, "csrf": "00" * 32}):
        answer = logged_in.client.post("/check", data=data, headers={"Origin": ORIGIN})
        assert answer.status_code == 403
        assert "CSRF token is missing or wrong" in answer.text


def test_a_cross_origin_post_is_refused(logged_in: Console) -> None:
    csrf = logged_in.csrf()
    cases = [
        ({"Origin": "https://evil.example"}, "came from https://evil.example"),
        ({"Origin": "null"}, "came from null"),
        ({"Sec-Fetch-Site": "cross-site", "Origin": ORIGIN}, "from a cross-site page"),
        ({}, "cannot be checked"),
    ]
    for headers, message in cases:
        answer = logged_in.client.post(
            "/check", data={"image": logged_in.signed, "csrf": csrf}, headers=headers
        )
        assert answer.status_code == 403, headers
        assert message in answer.text, answer.text
    same = logged_in.client.post(
        "/check",
        data={"image": logged_in.signed, "csrf": csrf},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"},
    )
    assert same.status_code == 200


def test_the_login_post_needs_its_csrf_token(console: Console) -> None:
    console.csrf("/login")
    answer = console.client.post(
        "/login", data={"token": TOKEN.decode()}, headers={"Origin": ORIGIN}
    )
    assert answer.status_code == 403


# -- headers and escaping ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/", "/signers", "/config", "/console.css", "/nowhere"])
def test_every_response_carries_the_security_headers(logged_in: Console, path: str) -> None:
    headers = logged_in.client.get(path).headers
    csp = headers["content-security-policy"]
    for directive in (
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ):
        assert directive in csp
    assert "script-src" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"


def test_a_hostile_image_name_is_escaped_everywhere(logged_in: Console) -> None:
    pages = [
        logged_in.client.get("/").text,
        logged_in.client.get("/", params={"q": HOSTILE}).text,
        logged_in.client.get("/history", params={"image": HOSTILE}).text,
        logged_in.post("/check", image=HOSTILE).text,
    ]
    for body in pages:
        assert "<script>" not in body and "<img" not in body
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in body
        assert "onerror=alert(1)&gt;" in body
    assert "/history?image=evil.test%2Fa%3A%22%3E%3Cscript%3E" in pages[0]


# -- pages ----------------------------------------------------------------------------------


def test_recent_decisions_filter_and_search(logged_in: Console) -> None:
    every = logged_in.client.get("/").text
    assert "3 decisions matched" in every
    assert every.index("team/app:old") < every.index("team/app:v1")  # newest first
    by_reason = logged_in.client.get("/", params={"reason": "NO_SIGNATURE"}).text
    assert "1 decisions matched" in by_reason and "team/app:old" in by_reason
    searched = logged_in.client.get("/", params={"q": "team-0"}).text
    assert "1 decisions matched" in searched and "team/app:v1" in searched
    by_digest = logged_in.client.get("/history", params={"digest": logged_in.digest}).text
    assert "1 decisions matched" in by_digest
    wrong = logged_in.client.get("/", params={"since": "yesterday"}).text
    assert "Since: &#x27;yesterday&#x27; is not a time" in wrong


def test_a_signed_image_is_checked_now(logged_in: Console) -> None:
    body = logged_in.post("/check", image=logged_in.signed).text
    assert "Verified by: team-0" in body
    assert logged_in.digest in body


def test_an_unsigned_image_shows_its_reason_and_remediation(logged_in: Console) -> None:
    body = logged_in.post("/check", image=logged_in.unsigned).text
    assert "NO_SIGNATURE" in body
    assert "No trusted attestor verified this image." in body
    assert re.search(r"<td>sign [^<]*sha256:[0-9a-f]{64}", body), body


def test_a_read_only_console_does_not_check(tmp_path: Path) -> None:
    for console in _console(tmp_path, read_only=True):
        console.login()
        assert "read-only" in console.client.get("/check").text
        csrf = console.csrf("/signers")
        answer = console.client.post(
            "/check", data={"image": console.signed, "csrf": csrf}, headers={"Origin": ORIGIN}
        )
        assert answer.status_code == 403


def test_signers_show_keys_lifecycle_and_use(logged_in: Console) -> None:
    body = logged_in.client.get("/signers").text
    assert "key-0" in body and ">valid<" in body
    assert re.search(r"<td>\d{4}-\d\d-\d\dT[\d:]+Z</td><td>1</td>", body), body


def test_the_config_in_force_is_shown(logged_in: Console) -> None:
    body = logged_in.client.get("/config").text
    assert load(logged_in.config).fingerprint in body
    assert str(logged_in.config) in body and "BEGIN PUBLIC KEY" in body


def _cli_message(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:
    folder = tmp_path / "cli"
    folder.mkdir()
    (folder / "proposed.yaml").write_text(text)
    code = cli.main(["verify", "127.0.0.1:9/x:y", "--config", str(folder / "proposed.yaml")])
    assert code == 2
    return capsys.readouterr().err.strip().replace(f"{folder}/", "")


@pytest.mark.parametrize(
    "text",
    [
        "version: 2\nattestors: []\n",
        "version: 1\nattestors:\n  - name: a\n    keys:\n      - file: keys/missing.pub\n",
        "version: 1\nattestors: [\n",
        "version: 1\nattestors:\n  - name: Bad Name\n    keys: []\n",
    ],
)
def test_a_proposal_s_errors_are_named_as_the_cli_names_them(
    logged_in: Console, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    expected = _cli_message(tmp_path, text, capsys)
    answer = logged_in.post("/config/propose", config=text)
    assert answer.status_code == 422
    assert html.escape(expected, quote=True) in answer.text, (expected, answer.text)


def test_a_valid_proposal_resolves_key_files_against_the_config_folder_and_downloads(
    logged_in: Console,
) -> None:
    keys = logged_in.config.parent / "keys"
    keys.mkdir()
    (keys / "new.pub").write_bytes(public_pem(new_key()))
    text = "version: 1\r\nattestors:\r\n  - name: new-team\r\n    keys:\r\n      - file: keys/new.pub\r\n"
    answer = logged_in.post("/config/propose", config=text)
    assert answer.status_code == 200, answer.text
    assert "The proposal is valid" in answer.text
    assert "It differs from the config in force." in answer.text
    download = logged_in.post("/config/download", config=text)
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="proposed.yaml"'
    assert download.headers["content-type"].startswith("application/yaml")
    assert download.text == text.replace("\r\n", "\n")
    assert "content-security-policy" in download.headers


def test_an_invalid_proposal_does_not_download(logged_in: Console) -> None:
    answer = logged_in.post("/config/download", config="version: 2\n")
    assert answer.status_code == 422
    assert "content-disposition" not in answer.headers


def test_a_pkcs11_key_in_a_proposal_is_not_loaded(logged_in: Console) -> None:
    text = (
        "version: 1\nattestors:\n  - name: hsm\n    keys:\n"
        '      - pkcs11: "pkcs11:token=t;object=o?module-path=/tmp/evil.so"\n'
    )
    answer = logged_in.post("/config/propose", config=text)
    assert answer.status_code == 422
    assert (
        "signet verify: proposed.yaml: attestor &#x27;hsm&#x27;: a pkcs11 key is not checked"
        in answer.text
    )


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        (
            "version: 1\nattestors:\n  - name: v\n    keys:\n      - kms: hashivault://k\n",
            "attestor &#x27;v&#x27;: a kms key is not checked here (that would call the server",
        ),
        (
            "version: 1\nkms:\n  hashivault: {address: http://169.254.169.254, token_file: t}\n",
            "kms: not checked here (that would call the server it names)",
        ),
    ],
)
def test_a_kms_key_in_a_proposal_calls_no_server(
    logged_in: Console, text: str, refusal: str
) -> None:
    answer = logged_in.post("/config/propose", config=text)
    assert answer.status_code == 422
    assert f"signet verify: proposed.yaml: {refusal}" in answer.text


def test_an_oversized_form_is_refused(logged_in: Console) -> None:
    answer = logged_in.post("/config/propose", config="x" * (2 * 1024 * 1024))
    assert answer.status_code == 403
