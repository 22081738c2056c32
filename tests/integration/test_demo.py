"""`make run` as a user runs it (its script, which `make run` calls after installing the tools):
the provider's answer, then Gatekeeper denying the unsigned Pod and admitting the signed ones,
and nothing of it left afterwards — neither at once (SIGNET_DEMO_ONCE=1) nor after a Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, str(ROOT / "scripts" / "demo.py")]


def running(session: int, work: str) -> list[str]:
    """The live processes of the demo: in its session, or naming its work dir (zombies, already
    dead and waiting for init to reap them, do not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            sid = os.getsid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue  # gone meanwhile
        if "\nState:\tZ" in status:
            continue
        if sid == session or work in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def work_dir(out: str) -> str:
    match = re.search(r"^work dir: (\S+)", out, re.MULTILINE)
    assert match, out
    return match.group(1)


def test_the_demo_shows_signet_verify_then_gatekeeper_deny_and_admit() -> None:
    started = time.monotonic()
    # Its own session, as a terminal's job is, so that every process it starts can be found.
    with subprocess.Popen(
        DEMO,
        env={**os.environ, "SIGNET_DEMO_ONCE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as demo:
        out, err = demo.communicate(timeout=180)
    assert demo.returncode == 0, out[-3000:] + err[-3000:]
    assert re.search(r"/demo/app:signed: verified by dev-team \(sigstore-bundle\)", out), out
    assert re.search(r"/demo/app:classic: verified by dev-team \(cosign-classic\)", out), out
    assert re.search(r"/demo/app:unsigned: REJECTED: NO_SIGNATURE -> sign ", out), out
    assert "no answer:" in out  # without a client certificate

    pushed = dict(re.findall(r"^pushed (\S+) -> (sha256:[0-9a-f]{64})$", out, re.MULTILINE))
    host = next(iter(pushed)).split("/")[0]
    repo = f"{host}/demo/app"
    # The denial is kubectl's own output: Gatekeeper's webhook, Signet's reason and the fix,
    # for the digest the pinning mutator resolved.
    unsigned = f"{repo}@{pushed[f'{repo}:unsigned']}"
    assert (
        f"$ kubectl run unsigned --image={repo}:unsigned --restart=Never\n"
        '  Error from server (Forbidden): admission webhook "validation.gatekeeper.sh" denied '
        f"the request: [require-dev-team] container <unsigned> image <{unsigned}>: not signed by "
        f"<dev-team>: NO_SIGNATURE -> sign {unsigned} with a dev-team key"
    ) in out, out
    for tag in ("signed", "classic"):
        assert (
            f"$ kubectl run {tag} --image={repo}:{tag} --restart=Never\n  pod/{tag} created\n"
        ) in out, out
        assert re.search(
            rf"^  {tag} +{re.escape(repo)}@{pushed[f'{repo}:{tag}']} +Pending$", out, re.MULTILINE
        ), out
    assert "export KUBECONFIG=" in out
    assert re.search(r"^torn down in [0-9.]+ s$", out, re.MULTILINE), out

    work = work_dir(out)
    assert not running(demo.pid, work), running(demo.pid, work)
    assert not Path(work).exists()
    print(f"the demo took {time.monotonic() - started:.1f} s")


def test_ctrl_c_while_the_control_plane_starts_tears_everything_down(tmp_path: Path) -> None:
    log = tmp_path / "demo.out"
    with (
        log.open("w") as out,
        subprocess.Popen(
            DEMO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        ) as demo,
    ):
        try:
            deadline = time.monotonic() + 120
            # Interrupt once etcd and kube-apiserver run and Gatekeeper is starting.
            while not any("kube-apiserver" in line for line in running(demo.pid, "/nonexistent/")):
                assert demo.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            work = work_dir(log.read_text())
            time.sleep(1)
            os.killpg(demo.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: to all of them
            assert demo.wait(timeout=30) == 130, log.read_text()
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
    text = log.read_text()
    assert "\ninterrupted\n" in text, text
    assert re.search(r"^torn down in [0-9.]+ s$", text, re.MULTILINE), text
    assert not running(demo.pid, work), running(demo.pid, work)
    assert not Path(work).exists()
