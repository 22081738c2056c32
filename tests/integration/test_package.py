"""The package builds from what the Dockerfile copies (pyproject.toml, README.md, provider/) and
installs the way it installs it (`pip install --prefix`), and the installed `signet` runs — also
with the argv, user, environment and mounts the chart's Pod gives it (the image's ENTRYPOINT and
CMD composed with the rendered Deployment's `command`/`args` as the kubelet composes them)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from signet.crypto.keyfile import encrypt_cosign_key, generate, public_pem
from signet.http.devcerts import write_dev_certs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    prefix: Path
    site: str


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    """The package as the Dockerfile installs it (outside pytest's private temporary folder)."""
    work = Path(tempfile.mkdtemp(prefix="signet-install-", dir="/tmp"))
    try:
        yield _install(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install(tmp_path: Path) -> Installed:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):  # as the Dockerfile's COPY lines
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "provider", source / "provider", ignore=shutil.ignore_patterns("*.pyc"))
    prefix = tmp_path / "install"
    # --ignore-installed: without it pip "upgrades" this venv's editable signet, uninstalling it
    # from the venv that every later test starts the provider from. (The image's build stage has
    # no signet installed, so there the flag changes nothing.)
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-installed"]
    build = subprocess.run(
        [*install, "--prefix", str(prefix), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    assert "BuildBackendWarning" not in build.stderr
    site = sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)})
    for path in (tmp_path, *tmp_path.rglob("*")):
        path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    return Installed(prefix, site)


def test_the_installed_package_runs_outside_the_checkout(
    installed: Installed, tmp_path: Path
) -> None:
    prefix, site = installed.prefix, installed.site
    package = Path(site) / "signet"
    assert (package / "cli.py").is_file()
    # Only the installed copy may be importable: no checkout on the path, this venv for the
    # dependencies (the Dockerfile's first stage installs those next to it).
    env = {**os.environ, "PYTHONPATH": site, "PYTHONSAFEPATH": "1"}
    assert _where_signet_imports_from(tmp_path, env).is_relative_to(package)
    script = subprocess.run(
        [str(prefix / "bin" / "signet"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert script.returncode == 0, script.stderr
    assert "serve" in script.stdout
    # and this venv still has its own (editable) signet, which later tests start the provider from
    here = _where_signet_imports_from(tmp_path, {**os.environ, "PYTHONSAFEPATH": "1"})
    assert here.is_relative_to(ROOT / "provider")


def _where_signet_imports_from(cwd: Path, env: dict[str, str]) -> Path:
    where = subprocess.run(
        [sys.executable, "-c", "import signet; print(signet.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    return Path(where.stdout.strip())


# -- the chart's Pod, as the kubelet starts it ------------------------------------------------------

HELM = ROOT / ".tools" / "helm-v3.22.0" / "helm"
CHART = ROOT / "gatekeeper" / "chart" / "signet"


def dockerfile_exec_form(instruction: str) -> list[str] | None:
    """The final stage's `ENTRYPOINT`/`CMD` in exec (JSON) form, as the image records it."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[-1]
    found = None
    for line in final.splitlines():
        if line.startswith(instruction + " "):
            found = json.loads(line[len(instruction) :])
    return found


def kubelet_argv(
    entrypoint: list[str], cmd: list[str], container: dict[str, Any], env: dict[str, str]
) -> list[str]:
    """How Kubernetes composes a container's argv: `command` replaces ENTRYPOINT (and then the
    image's CMD is dropped), `args` replaces CMD; `$(VAR)` expands from the container's env."""
    command, args = container.get("command"), container.get("args")
    if command is not None:
        argv = [*command, *(args or [])]
    else:
        argv = [*entrypoint, *(args if args is not None else cmd)]

    def expand(word: str) -> str:
        return re.sub(
            r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
            lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
            word,
        )

    return [expand(word) for word in argv]


def rendered(values: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [
            *(str(HELM), "template", "signet", str(CHART)),
            *("-f", str(CHART / "ci-values.yaml"), "-f", str(values)),
            *("--namespace", "gatekeeper-system"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_charts_pod_starts_and_serves_as_the_kubelet_runs_it(
    installed: Installed,
) -> None:
    work = Path(tempfile.mkdtemp(prefix="signet-pod-", dir="/tmp"))
    try:
        _run_the_pod(installed, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_charts_pod_starts_with_a_shared_cache_that_is_down(installed: Installed) -> None:
    """The chart's sharedCache args and Secret mounts are what `signet serve` reads, and a store
    that cannot be reached (nothing answers in the Pod's network) does not stop the start."""
    work = Path(tempfile.mkdtemp(prefix="signet-pod-", dir="/tmp"))
    try:
        _run_the_pod(
            installed,
            work,
            {
                "sharedCache": {
                    "url": "redis://127.0.0.1:6379/0",
                    "secret": {"name": "signet-shared-cache", "key": "secret"},
                    "password": {"name": "valkey-auth", "key": "password"},
                }
            },
            {
                "signet-shared-cache": {"secret": b"a secret of at least thirty-two bytes"},
                "valkey-auth": {"password": b"hunter2"},
            },
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_charts_pod_starts_with_a_last_known_good_store(installed: Installed) -> None:
    """lastKnownGood.enabled: the store is created in the chart's emptyDir, which the Pod's
    user can write (the root filesystem is read-only)."""
    work = Path(tempfile.mkdtemp(prefix="signet-pod-", dir="/tmp"))
    try:
        volumes = _run_the_pod(installed, work, {"lastKnownGood": {"enabled": True}})
        assert (volumes["last-known-good"] / "last-known-good.db").stat().st_size > 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_charts_pod_starts_with_its_decision_log_console_and_alerts(
    installed: Installed,
) -> None:
    """decisionLog, console and alerts as the chart renders them: the key and token Secrets
    mounted where the args name them, the log written to its volume and sealed at SIGTERM."""
    work = Path(tempfile.mkdtemp(prefix="signet-pod-", dir="/tmp"))
    try:
        volumes = _run_the_pod(
            installed,
            work,
            {
                "decisionLog": {"enabled": True, "key": {"name": "signet-log-key"}},
                "console": {"enabled": True, "token": {"name": "signet-console"}},
                "alerts": {"alertmanager": "http://127.0.0.1:9093"},
            },
            {
                "signet-log-key": {"cosign.key": encrypt_cosign_key(generate("p256"), b"")},
                "signet-console": {"token": b"a console token of some length\n"},
            },
        )
        (segment, *_) = sorted((volumes["decision-log"]).rglob("segment-*.jsonl"))
        assert b'"INVALID_REFERENCE"' in segment.read_bytes()
        assert b'"checkpoint"' in segment.read_bytes().splitlines()[-1]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_the_pod(
    installed: Installed,
    work: Path,
    values_extra: dict[str, Any] | None = None,
    secrets_extra: dict[str, dict[str, bytes]] | None = None,
) -> dict[str, Path]:
    """Run the rendered Pod's container; return its volumes' folders."""
    # A trust config with a real key (ci-values' is a placeholder), as an admin's values file.
    trust = "version: 1\nattestors:\n  - name: dev-team\n    keys:\n      - pem: |\n"
    trust += "".join(
        f"          {line}\n" for line in public_pem(generate("p256")).decode().splitlines()
    )
    values = work / "values.yaml"
    values.write_text(yaml.safe_dump({"trust": {"config": trust}, **(values_extra or {})}))
    documents = rendered(values)
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    configmaps = {d["metadata"]["name"]: d["data"] for d in documents if d["kind"] == "ConfigMap"}
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    # The Secrets: the serving certificate the chart rendered (tls.mode generate), and those the
    # cluster has: Gatekeeper's webhook Secret (the CA of its client certificate), registry auth.
    gatekeeper = write_dev_certs(work / "gatekeeper")
    secrets: dict[str, dict[str, bytes]] = {
        d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in d["data"].items()}
        for d in documents
        if d["kind"] == "Secret"
    }
    secrets["gatekeeper-webhook-server-cert"] = {"ca.crt": gatekeeper.ca.read_bytes()}
    secrets["signet-registry-credentials"] = {".dockerconfigjson": b'{"auths": {}}'}
    secrets.update(secrets_extra or {})
    # What Gatekeeper trusts the provider by: the validate Provider's caBundle.
    (provider,) = [
        d for d in documents if d["kind"] == "Provider" and d["spec"]["url"].endswith("/validate")
    ]
    (work / "provider-ca.crt").write_bytes(base64.b64decode(provider["spec"]["caBundle"]))
    # Each volume as the kubelet projects it (a folder of files), then mounted by path.
    volumes: dict[str, Path] = {}
    for volume in pod["volumes"]:
        folder = work / "volumes" / volume["name"]
        folder.mkdir(parents=True)
        if "emptyDir" in volume:
            files, items = {}, []
        elif "configMap" in volume:
            files = {k: v.encode() for k, v in configmaps[volume["configMap"]["name"]].items()}
            items = volume["configMap"].get("items")
        else:
            files = secrets[volume["secret"]["secretName"]]
            items = volume["secret"].get("items")
        for item in items or [{"key": k, "path": k} for k in files]:
            (folder / item["path"]).write_bytes(files[item["key"]])
        volumes[volume["name"]] = folder
    mounted = [(m["mountPath"], volumes[m["name"]]) for m in container["volumeMounts"]]
    kubelet_env: dict[str, str] = {}
    if pod.get("automountServiceAccountToken"):
        # What the kubelet adds for a service account token: its projected volume, and the API
        # server's address (nothing answers there in the probe's network: the provider must
        # start from the mounted config all the same).
        account = work / "volumes" / "kube-api-access"
        account.mkdir(parents=True)
        (account / "token").write_text("not-a-real-token")
        (account / "ca.crt").write_bytes(gatekeeper.ca.read_bytes())
        (account / "namespace").write_text("gatekeeper-system")
        mounted.append(("/var/run/secrets/kubernetes.io/serviceaccount", account))
        kubelet_env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    for path in (work, *work.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    mounts = sorted(mounted, key=lambda pair: -len(pair[0]))

    def at_mounts(word: str) -> str:
        for mount_path, folder in mounts:
            word = word.replace(mount_path, str(folder))
        return word

    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    argv = kubelet_argv(
        dockerfile_exec_form("ENTRYPOINT") or [],
        dockerfile_exec_form("CMD") or [],
        container,
        env,
    )
    assert argv.count("serve") == 1, f"the composed argv is {argv}"
    argv = [at_mounts(word) for word in argv]
    # The image's PATH and site-packages (/usr/local there), this venv's dependencies.
    env = {
        **kubelet_env,
        **{k: at_mounts(v) for k, v in env.items()},
        "PATH": f"{installed.prefix / 'bin'}:/usr/bin:/bin",
        "PYTHONPATH": installed.site,
        "PYTHONSAFEPATH": "1",
    }
    argv[0] = str(installed.prefix / "bin" / argv[0])
    # The Pod runs as the image's user (this machine's interpreter lives under /root, which that
    # user cannot read, so the process here runs as the test's user; the real node runs it as
    # 65532).
    security = pod["securityContext"]
    image_user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert image_user is not None
    assert (security["runAsUser"], security["runAsGroup"]) == tuple(map(int, image_user.groups()))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    spec = {
        "argv": argv,
        "env": env,
        "health": ports["health"],
        "https": ports["https"],
        "ca": str(work / "provider-ca.crt"),
        "client_cert": str(gatekeeper.client_cert),
        "client_key": str(gatekeeper.client_key),
    }
    (work / "spec.json").write_text(json.dumps(spec))
    (work / "spec.json").chmod(0o644)
    probe = subprocess.run(
        [
            *("unshare", "--net", "--fork", "--kill-child", sys.executable),
            *("-m", "tests.support.argv_probe", str(work / "spec.json")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result.get("readyz") == 200, result["output"]
    validate = result["validate"]
    assert validate.get("status") == 200, validate
    (item,) = validate["body"]["response"]["items"]
    assert item["value"]["failures"][0]["reason"] == "INVALID_REFERENCE"
    # SIGTERM drains and stops: uvicorn shuts down, then re-raises the signal, so the status is
    # "terminated by SIGTERM" (the kubelet's 143), not a crash.
    assert "Application shutdown complete" in result["output"]
    assert result["exit_code"] in (0, -signal.SIGTERM), result["output"]
    return volumes
