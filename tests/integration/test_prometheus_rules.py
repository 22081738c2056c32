"""The chart's PrometheusRule, checked by the real promtool: `promtool check rules` accepts the
rules as rendered, and `promtool test rules` runs prometheus_rules_test.yaml, in which each alert
fires when it should and stays quiet when it should not. The series those tests feed are named
and labelled as a real `signet serve` exports them (checked here against its /metrics)."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from signet.crypto.keyfile import encrypt_cosign_key, generate
from tests.support import cosign
from tests.support.images import push_image
from tests.support.procs import free_port
from tests.support.provider import run_provider
from tests.support.registry import Registry

from .helpers import write_trust
from .test_chart import ROOT, only, render

pytestmark = pytest.mark.integration

PROMTOOL = ROOT / ".tools" / "promtool-v0.316.0" / "promtool"
UNIT_TESTS = Path(__file__).with_name("prometheus_rules_test.yaml")
RULES = "signet-rules.yaml"  # the name UNIT_TESTS' rule_files expects beside it
# What Prometheus (through the operator's ServiceMonitor) adds to every series it scrapes.
TARGET_LABELS = frozenset(
    {"namespace", "service", "pod", "instance", "job", "endpoint", "container"}
)

Exported = dict[str, list[dict[str, str]]]  # sample name -> the label sets scraped under it


def write_rules(directory: Path) -> list[dict[str, Any]]:
    """The rendered PrometheusRule's spec as a Prometheus rules file; returns its rules."""
    (rule,) = only(render("prometheusRule.enabled=true"), "PrometheusRule")
    (directory / RULES).write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def unit_tests() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(UNIT_TESTS.read_text())
    return document


def test_promtool_checks_the_rendered_rules(tmp_path: Path) -> None:
    rules = write_rules(tmp_path)
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", RULES, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout, result.stdout


def test_each_alert_fires_when_it_should_and_not_otherwise(
    tmp_path: Path, unit_tests: dict[str, Any]
) -> None:
    alerts = {rule["alert"] for rule in write_rules(tmp_path)}
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    result = promtool("test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # ... and each alert has been seen both firing and quiet there.
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in unit_tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == alerts, f"no case where these fire: {sorted(alerts - firing)}"
    assert quiet == alerts, f"no case where these stay quiet: {sorted(alerts - quiet)}"


def test_the_unit_tests_feed_series_as_signet_exports_them(
    exported: Exported, unit_tests: dict[str, Any]
) -> None:
    for case in unit_tests["tests"]:
        for item in case["input_series"]:
            name, labels = parse_series(item["series"])
            own = {k: v for k, v in labels.items() if k not in TARGET_LABELS}
            if name == "up":  # Prometheus's own, one per target
                assert own == {}, item["series"]
                continue
            assert name in exported, f"Signet exports no {name}; it exports {sorted(exported)}"
            assert set(own) in [set(seen) for seen in exported[name]], (
                f"{item['series']}: Signet labels {name} with {exported[name]}"
            )
            for key, value in own.items():
                seen = {s[key] for s in exported[name]}
                if key == "host" or (key == "code" and re.fullmatch(r"[1-5]\d\d", value)):
                    continue  # any registry; any HTTP status (Signet counts each as it came)
                assert value in seen, f"{item['series']}: Signet's {name} has {key} in {seen}"


def stored(labels: dict[str, str]) -> dict[str, str]:
    """A scraped sample's labels as Prometheus stores them: without honor_labels (the chart's
    ServiceMonitor leaves it false), one that clashes with a target label (Signet's `endpoint`
    on signet_requests_total) is renamed exported_<name>."""
    return {(f"exported_{k}" if k in TARGET_LABELS else k): v for k, v in labels.items()}


def parse_series(series: str) -> tuple[str, dict[str, str]]:
    match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}", series)
    assert match, series
    return match.group(1), dict(re.findall(r'([a-zA-Z_]\w*)="([^"]*)"', match.group(2)))


class _Unavailable(BaseHTTPRequestHandler):
    """A registry down for maintenance: 503 to everything."""

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def exported(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """What a real `signet serve` exports on its health port (the one the ServiceMonitor
    scrapes) once it has refused and admitted images, met a registry answering 503 and one that
    is not there, answered a bad request, and reloaded a bad then a good trust config."""
    work = tmp_path_factory.mktemp("metrics")
    signer = cosign.generate_key_pair("v3.1.3", work / "signer")
    digest = push_image(registry.url, "rules/app", "signed", seed="rules-signed")
    push_image(registry.url, "rules/app", "unsigned", seed="rules-unsigned")
    cosign.sign("v3.1.3", signer.private, f"{registry.host}/rules/app@{digest}")
    unavailable = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=unavailable.serve_forever, daemon=True).start()
    down = f"127.0.0.1:{unavailable.server_address[1]}"
    absent = f"127.0.0.1:{free_port()}"
    trust = write_trust(work / "trust", {"team": [signer.public]}, [registry.host, down, absent])
    good = trust.read_text()
    health = free_port()
    try:
        (work / "log.key").write_bytes(encrypt_cosign_key(generate("p256"), b""))
        flags = (
            *("--health-port", str(health), "--registry-breaker-failures", "2"),
            *("--decision-log", str(work / "log"), "--decision-log-key", str(work / "log.key")),
        )
        with run_provider(trust, work / "provider", *flags) as provider:
            with provider.client(timeout=30) as client:

                def validate(*keys: str) -> dict[str, Any]:
                    body = {
                        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
                        "kind": "ProviderRequest",
                        "request": {"keys": list(keys)},
                    }
                    answer: dict[str, Any] = client.post(
                        f"{provider.url}/validate", json=body
                    ).json()["response"]
                    return answer

                # OK, NO_SIGNATURE and INVALID_REFERENCE, with no systemError (outcome ok) ...
                answered = validate(
                    f"{registry.host}/rules/app:signed",
                    f"{registry.host}/rules/app:unsigned",
                    "not a reference!",
                )
                assert answered["systemError"] == "", answered
                # ... a 503 and a connection error (REGISTRY_UNAVAILABLE, outcome error) ...
                assert validate(f"{down}/rules/app:v1", f"{absent}/rules/app:v1")["systemError"]
                for _ in range(2):  # the 503s open the down registry's breaker
                    validate(f"{down}/rules/app:v2")
                client.post(f"{provider.url}/validate", content=b"not JSON")  # ... a bad request

            def scrape() -> Exported:
                text = httpx.get(f"http://127.0.0.1:{health}/metrics", timeout=5).text
                found: Exported = {}
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        found.setdefault(sample.name, []).append(stored(sample.labels))
                return found

            reloads = "signet_trust_reloads_total"
            trust.write_text("version: 1\nattestors: [{name: team, keys: [], surprise: 1}]\n")
            eventually(scrape, lambda s: {"result": "error"} in s.get(reloads, []))
            trust.write_text(good + "# edited\n")
            yield eventually(scrape, lambda s: {"result": "ok"} in s.get(reloads, []))
    finally:
        unavailable.shutdown()
        unavailable.server_close()


def eventually(probe: Callable[[], Exported], done: Callable[[Exported], bool]) -> Exported:
    deadline = time.monotonic() + 20
    while True:
        found = probe()
        if done(found) or time.monotonic() > deadline:
            assert done(found), found
            return found
        time.sleep(0.2)
