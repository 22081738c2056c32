"""The serving certificate's expiry is a metric (the chart's PrometheusRule alerts on it), kept
current when the certificate is reloaded."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography import x509

from signet.crypto.keyfile import generate, public_pem
from signet.http.devcerts import renew_server_cert, write_dev_certs
from signet.http.serve import CertificateReloader, ServeOptions, build, server_ssl_context

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def expiry(health: object) -> float:
    transport = httpx.ASGITransport(app=health)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        text = (await client.get("/metrics")).text
    found = re.search(r"^signet_serving_certificate_expiry_timestamp_seconds (\S+)$", text, re.M)
    assert found, text
    return float(found.group(1))


async def test_the_expiry_of_the_served_certificate_is_exposed_and_follows_a_reload(
    tmp_path: Path,
) -> None:
    certs = write_dev_certs(tmp_path / "certs")
    config = tmp_path / "trust.yaml"
    pem = "".join(
        f"          {line}\n" for line in public_pem(generate("p256")).decode().splitlines()
    )
    config.write_text(f"version: 1\nattestors:\n  - name: a\n    keys:\n      - pem: |\n{pem}")
    context = server_ssl_context(certs.server_cert, certs.server_key, None, False)
    reloader = CertificateReloader(context, certs.server_cert, certs.server_key)
    options = ServeOptions(
        config, cert=certs.server_cert, key=certs.server_key, cpu_processes=False
    )
    _, health, _ = build(options, reloader)

    def not_after() -> float:
        served = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
        return served.not_valid_after_utc.timestamp()

    assert await expiry(health) == not_after()
    before = not_after()
    await anyio.sleep(1.1)  # a new notAfter, to the second
    renew_server_cert(certs)
    assert not_after() > before
    assert reloader.reload_if_changed()
    assert await expiry(health) == not_after()
