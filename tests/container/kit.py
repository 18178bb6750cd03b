"""Podman on these machines (shared/FACTS.md): runc, cgroupfs, no default ulimits, a Debian base
built with debootstrap, builds with no network from a wheelhouse made on the host.

Plain functions (no pytest) so a person can run a step by hand:
``.venv/bin/python -m tests.container.kit base|wheelhouse|image|report``, and paired cold starts
``... kit coldstart IMAGE [IMAGE...]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/debian-python:bookworm"
#: the build stage's base: the same plus binutils (strip), which the runtime must not carry
BUILD_BASE_IMAGE = "localhost/debian-python-build:bookworm"
IMAGE = "localhost/anomaly-cli:test"
#: what the base needs: Python with venv (the Containerfile's contract), CA roots, and tini so
#: that the runtime stage needs no package index (--network none)
BASE_PACKAGES = "python3,python3-venv,ca-certificates,tini"
BUILD_BASE_PACKAGES = "python3,python3-venv,ca-certificates,binutils"
MIRROR = "http://deb.debian.org/debian"
WORK = Path(os.environ.get("ANOMALY_CONTAINER_WORK", "/var/tmp/anomaly-container"))


def containers_conf() -> Path:
    """podman's default RLIMIT_NPROC is refused on these machines: no default ulimits."""
    WORK.mkdir(parents=True, exist_ok=True)
    conf = WORK / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n", encoding="utf-8")
    return conf


def podman(
    *args: str, check: bool = True, capture: bool = True, timeout: float = 1800, **kw
) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONTAINERS_CONF": str(containers_conf())}
    cmd = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", *args]
    return subprocess.run(cmd, check=check, capture_output=capture, text=True, timeout=timeout, env=env, **kw)


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def ensure_base(image: str = BASE_IMAGE, packages: str = BASE_PACKAGES) -> float:
    """A local Debian bookworm base (debootstrap, ~80 s, once); returns seconds spent."""
    if image_exists(image):
        return 0.0
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=WORK))
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={packages}", "bookworm", str(root), MIRROR],
            check=True,
            capture_output=True,
            timeout=1800,
        )
        # what the official slim images leave out too: downloaded packages, package lists,
        # documentation, man pages, translations (~140 of 275 MB)
        for junk in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/locale",
        ):
            for p in (root / junk).glob("*"):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        podman("import", "-", image, stdin=tar.stdout)
        assert tar.wait() == 0
    finally:
        # a debootstrap that failed midway can leave the target's /proc and /sys mounted: never
        # let rmtree walk into them
        for mnt in ("proc", "sys", "dev/pts"):
            subprocess.run(["umount", "-l", str(root / mnt)], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
    return time.monotonic() - t0


def ensure_bases() -> float:
    """The runtime's base and the build stage's (with binutils); returns seconds spent."""
    return ensure_base() + ensure_base(BUILD_BASE_IMAGE, BUILD_BASE_PACKAGES)


def build_context() -> Path:
    """The repository's files as a clone has them (tracked + new, not ignored) plus wheelhouse/,
    built on the host from constraints.txt (the build itself has no network), with the optional
    parts an image can have (the report extra) so that either image builds offline."""
    ctx = WORK / "context"
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for rel in filter(None, files):
        src = ROOT / rel.decode()
        if src.is_file():
            dst = ctx / rel.decode()
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    wheels = WORK / "wheelhouse"
    wheels.mkdir(exist_ok=True)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "-w",
            str(wheels),
            "-c",
            str(ROOT / "constraints.txt"),
            f"{ctx}[report]",
            "setuptools",
            "wheel",
        ],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    for old in wheels.glob("anomaly_cli-*.whl"):  # the build stage makes the project's own wheel
        old.unlink()
    shutil.copytree(wheels, ctx / "wheelhouse")
    return ctx


def build_image(image: str = IMAGE, extras: str = "") -> float:
    """podman build of the Containerfile, offline, on the local bases; returns seconds."""
    ctx = build_context()
    t0 = time.monotonic()
    done = podman(
        "build",
        "--format",
        "docker",  # keeps HEALTHCHECK (the OCI format has no field for it)
        "--network",
        "none",
        "--build-arg",
        f"BASE={BASE_IMAGE}",
        "--build-arg",
        f"BUILD_BASE={BUILD_BASE_IMAGE}",
        "--build-arg",
        f"EXTRAS={extras}",
        "-t",
        image,
        "-f",
        str(ctx / "Containerfile"),
        str(ctx),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"podman build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    took = time.monotonic() - t0
    podman("image", "prune", "-f", check=False)  # the build stage's image: ~1 GB each run otherwise
    return took


def cold_starts(images: list[str], n: int = 5) -> dict[str, list[float]]:
    """Seconds from ``podman run`` to the ready file, ``n`` starts of each image interleaved (same
    load for all), on an empty queue of a moto server on the host (as the container test)."""
    import uuid

    import boto3
    from moto.server import ThreadedMotoServer

    from tests.container import test_container as tc

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    tag = uuid.uuid4().hex[:6]
    queue = boto3.client("sqs", region_name="ap-south-1", endpoint_url=endpoint, **creds).create_queue(
        QueueName=f"cold-{tag}"
    )["QueueUrl"]
    stage = Path(tempfile.mkdtemp(prefix="cold-", dir=WORK)) / "test"
    (stage / "lib").mkdir(parents=True)
    shutil.copy2(Path(__file__).with_name("entry.py"), stage / "entry.py")
    (stage / "source.json").write_text("[]", encoding="utf-8")
    tc._copy_distributions(("mongomock-ng", "sentinels", "pytz", "packaging"), stage / "lib")
    env = {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "ap-south-1", "SQS_QUEUE_URL": queue, "MONGO_URI": f"mongomock://cold-{tag}",
        "AUDIO_URL_ALLOWLIST": "s3://none", "TEST_DATE": "2025-12-20", "CPU_WORKERS": "1",
        "SQS_WAIT_SECONDS": "1", "WORKER_ADHOC_ONLY": "true", "PYTHONPATH": "/test/lib",
    }  # fmt: skip
    runs: dict[str, list[float]] = {image: [] for image in images}
    global IMAGE
    default = IMAGE
    try:
        for i in range(n):
            for image in images:
                IMAGE = image
                runs[image].append(
                    tc._cold_start(env, stage, f"cold-{tag}-{i}-{len(runs[image])}-{images.index(image)}")
                )
    finally:
        IMAGE = default
        moto.stop()
        shutil.rmtree(stage.parent, ignore_errors=True)
    return runs


if __name__ == "__main__":
    step = sys.argv[1] if len(sys.argv) > 1 else "image"
    if step in ("base", "image", "report"):
        print("base", ensure_bases())
    if step == "wheelhouse":
        print(build_context())
    if step == "image":
        print("image", build_image())
    if step == "report":  # the image with `results report` too (--build-arg EXTRAS=report)
        print("image", build_image("localhost/anomaly-cli:report", "report"))
    if step == "coldstart":  # python -m tests.container.kit coldstart IMAGE [IMAGE...]: paired starts
        import statistics

        for image, runs in cold_starts(sys.argv[2:] or [IMAGE]).items():
            print(f"{image}: median {statistics.median(runs):.2f} s, runs {[round(r, 2) for r in runs]}")
        print("load", os.getloadavg())
