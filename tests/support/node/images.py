"""Container images for the node, built without a registry or a Docker engine.

- The base: a Debian bookworm root filesystem with python3, made by `mmdebstrap` from Debian's
  packages. It stands in for the Dockerfile's `python:3.11.7-slim-bookworm` (which no registry
  here serves): same Debian release, same Python minor (Debian's 3.11). One adaptation makes it
  behave like that base for `pip install --prefix=/usr/local`: pip puts such an install in
  /usr/local/lib/python3.11/site-packages, which the python:slim interpreter (built with prefix
  /usr/local) reads but Debian's /usr/bin/python3 does not (it reads .../dist-packages there), so
  site-packages is made a link to dist-packages.
- The provider image: the Dockerfile's stages carried out instruction by instruction
  (dockerfile.py) on that base. RUN lines run verbatim under `chroot` with the base's own python3
  and a `pip` that is pip's wheel run by that python3, offline (no index, in an empty network
  namespace), from a wheelhouse of PyPI's cp311 manylinux wheels that the venv's pip downloads on
  the host. The rootfs's own interpreter does the install, so scripts get its shebang
  (#!/usr/bin/python3) and compiled extensions are checked against its ABI, as in the image.
  The final stage is a buildah container (vfs storage in the caller's folder), committed as
  `localhost/signet:test` and written as a docker-archive for `ctr images import`.
- The sandbox image: Kubernetes' pause (`make tools` compiles it) from scratch.

Everything lands in ~/.cache/signet-tools/node-images, keyed by its inputs, so a warm run only
checks hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable
from pathlib import Path

from . import dockerfile
from .dockerfile import Instruction, Stage

ROOT = dockerfile.ROOT
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "signet-tools"
IMAGES = CACHE / "node-images"
PROVIDER_IMAGE = "localhost/signet:test"
PAUSE = ROOT / ".tools" / "pause-v1.34.4" / "pause"
PAUSE_IMAGE = "localhost/signet-pause:v1.34.4"
PYTHON = "3.11"  # bookworm's python3; the wheels are chosen for it
# `pip download` judges dependency markers by the interpreter running it, not the target's, so
# what bookworm's 3.11.2 needs besides is named here (redis: `python_full_version < "3.11.3"`).
FOR_BOOKWORMS_PYTHON = ("async-timeout==5.0.1",)
GLIBC_MINOR = 36  # bookworm's glibc 2.36: manylinux_2_17 .. manylinux_2_36 wheels run on it
ROOTFS_ARGS = [
    "--variant=essential",
    "--include=python3",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "bookworm",
]
# The base image's own configuration (python:slim sets these; the Dockerfile relies on PATH).
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
BUILD_DIR = "/.signet-build"  # inside a stage while it builds: pip's wheel and the wheelhouse
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")  # the checkout's build debris

timings: dict[str, float] = {}  # what the last calls spent, by step (for the tests' report)


def _digest(parts: Iterable[bytes]) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(hashlib.sha256(part).digest())
    return sha.hexdigest()[:16]


def _tree(path: Path) -> Iterable[bytes]:
    if path.is_file():
        yield path.name.encode()
        yield path.read_bytes()
        return
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(path)
        if file.is_file() and not any(
            part == "__pycache__" or part.endswith((".egg-info", ".pyc")) for part in relative.parts
        ):
            yield str(relative).encode()
            yield file.read_bytes()


def _run(argv: list[str], *, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {result.returncode}\n{result.stderr[-4000:]}")
    return result.stdout


def _publish(built: Path, target: Path) -> Path:
    """Move `built` to `target` atomically and drop builds of the same kind unused for an hour
    (not at once: another test run on the machine may be importing one)."""
    kind = target.name.split("-", 1)[0]
    os.replace(built, target)
    for old in target.parent.glob(f"{kind}-*"):
        if old != target and old.suffix == target.suffix:
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > 3600:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
    return target


def debian_rootfs() -> Path:
    """The base root filesystem as a tar (cached: mmdebstrap takes ~20 s)."""
    version = _run(["mmdebstrap", "--version"]).strip()
    key = _digest([version.encode(), *(arg.encode() for arg in ROOTFS_ARGS)])
    target = IMAGES / f"rootfs-{key}.tar"
    if target.exists():
        return target
    started = time.monotonic()
    IMAGES.mkdir(parents=True, exist_ok=True)
    partial = IMAGES / f".rootfs-{key}.{os.getpid()}.tar"
    _run(["mmdebstrap", "--quiet", *ROOTFS_ARGS, str(partial)], timeout=900)
    timings["rootfs"] = time.monotonic() - started
    return _publish(partial, target)


def wheelhouse() -> Path:
    """The project's dependencies (and the build backend, and pip) as cp311 wheels from PyPI."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pip_version = _run([sys.executable, "-m", "pip", "--version"]).split()[1]
    requirements = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["pkcs11"],  # the Dockerfile's extra
        *project["build-system"]["requires"],
        *FOR_BOOKWORMS_PYTHON,
        f"pip=={pip_version}",
    ]
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(GLIBC_MINOR, 16, -1)]
    key = _digest([json.dumps([requirements, platforms, PYTHON]).encode()])
    target = IMAGES / f"wheels-{key}"
    if target.exists():
        return target
    started = time.monotonic()
    partial = IMAGES / f".wheels-{key}.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    _run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
            "--implementation", "cp", "--python-version", PYTHON,
            "--abi", f"cp{PYTHON.replace('.', '')}", "--abi", "abi3", "--abi", "none",
            *(f"--platform={platform}" for platform in [*platforms, "manylinux2014_x86_64"]),
            "--dest", str(partial), *requirements,
        ]
    )  # fmt: skip
    timings["wheels"] = time.monotonic() - started
    return _publish(partial, target)


# containers/image keeps a blob-info cache here for root whatever buildah's --root says.
BLOB_INFO_CACHE = Path("/var/lib/containers")


class Buildah:
    """buildah with its own vfs storage and network config under `directory` (left alone: the
    machine's /var/lib/containers, /run/containers and /etc/cni)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.made_blob_info_cache = not BLOB_INFO_CACHE.exists()
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / "containers.conf"
        conf.write_text(
            f'[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "{directory / "net.d"}"\n'
        )
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.base = [
            "buildah", "--root", str(directory / "root"), "--runroot", str(directory / "run"),
            "--storage-driver", "vfs",
        ]  # fmt: skip

    def __call__(self, *args: str) -> str:
        return _run([*self.base, *args], env=self.env).strip()

    def publish(self, container: str, name: str, kind: str, key: str) -> Path:
        """Commit `container` as `name`, write it as a docker-archive into the cache."""
        self("commit", "--quiet", "--format", "docker", container, name)
        partial = IMAGES / f".{kind}-{key}.{os.getpid()}.tar"
        partial.unlink(missing_ok=True)
        self("push", "--quiet", name, f"docker-archive:{partial}:{name}")
        self("rm", container)
        return _publish(partial, IMAGES / f"{kind}-{key}.tar")

    def remove_storage(self) -> None:
        mounts = Path("/proc/self/mountinfo").read_text()
        if f" {self.directory}/" in mounts:
            raise RuntimeError(f"something is still mounted under {self.directory}")
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.made_blob_info_cache:
            shutil.rmtree(BLOB_INFO_CACHE, ignore_errors=True)


def pause_image(work: Path) -> Path:
    """The sandbox image: pause from scratch, as Kubernetes' own (user 65535)."""
    if not PAUSE.exists():
        raise RuntimeError(f"{PAUSE} is missing: run `make tools`")
    key = _digest([PAUSE.read_bytes(), PAUSE_IMAGE.encode()])
    target = IMAGES / f"pause-{key}.tar"
    if target.exists():
        return target
    IMAGES.mkdir(parents=True, exist_ok=True)
    buildah = Buildah(work / "buildah-pause")
    try:
        container = buildah("from", "scratch")
        buildah("copy", container, str(PAUSE), "/pause")
        buildah(
            "config", "--entrypoint", '["/pause"]', "--cmd", "[]", "--user", "65535:65535",
            container,
        )  # fmt: skip
        return buildah.publish(container, PAUSE_IMAGE, "pause", key)
    finally:
        buildah.remove_storage()


def provider_key() -> str:
    """What the provider image is made of: the Dockerfile and what it copies, the base, and this
    builder."""
    here = Path(__file__).parent
    return _digest(
        [
            *_tree(ROOT / "Dockerfile"),
            *_tree(ROOT / "pyproject.toml"),
            *_tree(ROOT / "provider"),
            *_tree(here / "images.py"),
            *_tree(here / "dockerfile.py"),
            json.dumps([ROOTFS_ARGS, BASE_ENV]).encode(),
        ]
    )


def provider_image(work: Path) -> Path:
    """`localhost/signet:test` as a docker-archive, built from the Dockerfile (cached)."""
    key = provider_key()
    target = IMAGES / f"signet-{key}.tar"
    if target.exists():
        timings["image"] = 0.0
        target.touch()  # in use: not one to drop
        return target
    rootfs, wheels = debian_rootfs(), wheelhouse()
    started = time.monotonic()
    stages = dockerfile.parse()
    built: dict[str, Path] = {}
    for index, stage in enumerate(stages[:-1]):
        root = work / f"stage-{index}"
        _extract_base(rootfs, root)
        _build_stage(stage, root, built, wheels)
        built[stage.name or str(index)] = root
    buildah = Buildah(work / "buildah")
    try:
        container = buildah("from", "scratch")
        root = Path(buildah("mount", container))
        _extract_base(rootfs, root)
        config = _build_stage(stages[-1], root, built, wheels)
        buildah("umount", container)
        buildah("config", *config, container)
        published = buildah.publish(container, PROVIDER_IMAGE, "signet", key)
    finally:
        buildah.remove_storage()
        for root in built.values():
            shutil.rmtree(root, ignore_errors=True)
    timings["image"] = time.monotonic() - started
    return published


def _extract_base(rootfs: Path, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _run(["tar", "-x", "--numeric-owner", "-f", str(rootfs), "-C", str(root)])
    local = root / "usr" / "local" / "lib" / f"python{PYTHON}"
    local.mkdir(parents=True, exist_ok=True)
    (local / "dist-packages").mkdir(exist_ok=True)
    if not (local / "site-packages").is_symlink():
        (local / "site-packages").symlink_to("dist-packages")


def _inside(root: Path, path: str, workdir: str) -> Path:
    absolute = path if path.startswith("/") else f"{workdir.rstrip('/')}/{path}"
    return root / absolute.lstrip("/")


def _build_stage(stage: Stage, root: Path, built: dict[str, Path], wheels: Path) -> list[str]:
    """Carry out `stage`'s instructions in `root`; the image configuration they ask for, as
    `buildah config` options."""
    config = [f"--env={name}={value}" for name, value in BASE_ENV.items()]
    env = dict(BASE_ENV)
    workdir = "/"
    for instruction in stage.instructions:
        keyword, arguments = instruction.keyword, instruction.arguments
        if keyword == "WORKDIR":
            workdir = arguments if arguments.startswith("/") else f"{workdir}/{arguments}"
            _inside(root, workdir, "/").mkdir(parents=True, exist_ok=True)
            config.append(f"--workingdir={workdir}")
        elif keyword == "COPY":
            _copy(instruction, root, built, workdir)
        elif keyword == "RUN":
            _run_in(root, arguments, workdir, env, wheels)
        elif keyword == "ENV":
            name, _, value = arguments.partition("=")
            env[name] = value
            config.append(f"--env={name}={value}")
        elif keyword == "USER":
            config.append(f"--user={arguments}")
        elif keyword == "EXPOSE":
            config.extend(
                f"--port={port if '/' in port else f'{port}/tcp'}" for port in arguments.split()
            )
        elif keyword in ("ENTRYPOINT", "CMD"):
            config.append(f"--{keyword.lower()}={json.dumps(dockerfile.exec_form(instruction))}")
        else:
            raise ValueError(f"the node's image builder does not carry out {keyword} {arguments}")
    return config


def _copy(instruction: Instruction, root: Path, built: dict[str, Path], workdir: str) -> None:
    flags, sources, destination = dockerfile.copy_arguments(instruction)
    unknown = set(flags) - {"from"}
    if unknown:
        raise ValueError(f"COPY flags the node's image builder does not know: {unknown}")
    context = built[flags["from"]] if "from" in flags else ROOT
    target = _inside(root, destination, workdir)
    into = destination.endswith("/") or len(sources) > 1
    for source in sources:
        origin = _inside(context, source, "/") if "from" in flags else context / source
        place = target / origin.name if into and not origin.is_dir() else target
        if origin.is_dir():
            _merge(origin, place, skip="from" not in flags)
        else:
            place.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, place)


def _merge(source: Path, target: Path, *, skip: bool) -> None:
    """Copy a tree onto `target`, into what is already there (links to folders in the target
    followed, as COPY does onto an image's existing folders)."""
    for directory, folders, files in os.walk(source):
        here = Path(directory)
        there = target / here.relative_to(source)
        there.mkdir(parents=True, exist_ok=True)
        ignored = set(SKIP(directory, [*folders, *files])) if skip else set()
        links = [name for name in folders if (here / name).is_symlink()]
        folders[:] = [name for name in folders if name not in ignored and name not in links]
        for name in [*files, *links]:
            origin, place = here / name, there / name
            if name in ignored:
                continue
            if origin.is_symlink():
                if place.is_symlink() or place.is_file():
                    place.unlink()
                if not place.exists():
                    place.symlink_to(os.readlink(origin))
            else:
                shutil.copy2(origin, place)


def _run_in(root: Path, command: str, workdir: str, env: dict[str, str], wheels: Path) -> None:
    """A RUN line, verbatim, under chroot in an empty network namespace: `pip` is pip's wheel run
    by the base's python3, installing from the wheelhouse only."""
    build = root / BUILD_DIR.lstrip("/")
    shutil.copytree(wheels, build / "wheels")
    pip_wheel = next((build / "wheels").glob("pip-*.whl")).name
    (build / "bin").mkdir()
    shim = build / "bin" / "pip"
    shim.write_text(f'#!/bin/sh\nexec python3 {BUILD_DIR}/wheels/{pip_wheel}/pip "$@"\n')
    shim.chmod(0o755)
    variables = {
        **env,
        "PATH": f"{BUILD_DIR}/bin:{env['PATH']}",
        "HOME": "/root",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": f"{BUILD_DIR}/wheels",
        "PIP_ROOT_USER_ACTION": "ignore",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    try:
        _run(
            [
                "unshare", "--net", "chroot", str(root), "/usr/bin/env", "-i",
                *(f"{name}={value}" for name, value in variables.items()),
                "/bin/sh", "-ec", f"cd {workdir}\n{command}",
            ],
            timeout=600,
        )  # fmt: skip
    finally:
        shutil.rmtree(build, ignore_errors=True)
