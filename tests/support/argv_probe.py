"""Run a container's composed argv in a private network namespace, as its Pod would, and probe it.

    unshare --net --fork --kill-child python -m tests.support.argv_probe SPEC.json

SPEC: {"argv": [...], "env": {...}, "health": port, "https": port, "ca": path, "client_cert":
path, "client_key": path}. Inside the namespace (loopback only, so the server's 0.0.0.0 and fixed
ports are its own): bring `lo` up, start the argv, wait for `/readyz` on the health port, post
one Gatekeeper request over mTLS, then SIGTERM it.
Prints one JSON line: what each step saw, and the process's exit code and output.
"""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

READY_TIMEOUT = 30.0


def _ready(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def _validate(spec: dict[str, Any]) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=spec["ca"])
    context.check_hostname = False  # the chart's certificate names the Service, not 127.0.0.1
    context.load_cert_chain(spec["client_cert"], spec["client_key"])
    body = {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": ["not a reference"]},
    }
    request = urllib.request.Request(
        f"https://127.0.0.1:{spec['https']}/validate",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:
        return {"status": answer.status, "body": json.loads(answer.read())}


def _run(spec: dict[str, Any], log: IO[bytes]) -> dict[str, Any]:
    process = subprocess.Popen(
        spec["argv"], env=spec["env"], cwd="/", stdout=log, stderr=subprocess.STDOUT
    )
    result: dict[str, Any] = {}
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        status = _ready(spec["health"])
        if status == 200:
            result["readyz"] = 200
            break
        time.sleep(0.2)
    if result.get("readyz") == 200:
        try:
            result["validate"] = _validate(spec)
        except (OSError, ValueError) as exc:
            result["validate"] = {"error": repr(exc)}
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.seek(0)
    result["exit_code"] = process.returncode
    result["output"] = log.read().decode(errors="replace")[-4000:]
    return result


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Output to a file, not a pipe: the server's worker processes may hold a pipe open after
    # it exited, and reading to its end would wait for them.
    with tempfile.TemporaryFile() as log:
        result = _run(spec, log)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
