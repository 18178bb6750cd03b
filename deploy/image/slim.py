"""Make the image's virtual environment small and quick to start (run by the Containerfile's build stage).

    python slim.py /opt/anomaly

Each step says what it removes and why nothing at run time needs it; BENCHMARKS.md ("Container image")
has what each one saves. Run with the environment's own interpreter, after ``pip install --no-compile``.

1. The packages' own test suites, type stubs (``.pyi``) and Cython / C sources and headers
   (``.pyx``, ``.pxd``, ``.c``, ``.h``): for building against a package or checking it, never imported.
2. botocore's service models except the ones the tool calls (``BOTOCORE_SERVICES``: S3 and SQS) and
   the credential providers use (STS for IAM roles / IRSA / web identity, SSO, SSO-OIDC, sign-in):
   botocore ships ~450 services' models (~26 MB) and reads one only when a client of that service is
   made. A client of another service would fail with ``UnknownServiceError``: the tool makes none
   (tests/deploy/test_image.py checks every service the package names is kept).
3. Symbol tables of the Python extension modules (``strip --strip-unneeded``; PyAV's alone are
   ~25 MB): only the dynamic symbols are used to load them. The libraries vendored by auditwheel
   (``*.libs/``) are left alone: their ELF headers were rewritten by patchelf and ``strip`` breaks
   them (numpy's OpenBLAS then fails to load: "ELF load command address/offset not page-aligned").
   Every stripped module is loaded afterwards; one that does not load fails the build.
4. Bytecode, compiled at build time for what the commands import (the whole of ``anomaly_cli`` plus
   every module a trace run imports: every ``anomaly_cli`` module but the synthetic-recording
   generator and the demo (``UNTRACED``), the screening processes' preload, a screening process's start and two
   items (WAV, m4a), a download from S3 and over https with retries,
   boto3's S3/SQS/STS clients making a request, pymongo selecting a server, ``anomaly --help``, and
   the report's charts when matplotlib is installed). The image runs read-only with
   ``PYTHONDONTWRITEBYTECODE``: a module without bytecode would be compiled at every start. Modules
   no command imports get none (~20 MB less); were one imported, it is compiled in memory, which
   costs time, never correctness. The pyc are ``unchecked-hash``: the image never changes, so they
   are valid whatever mtimes a copy between stages gives the sources. The container test records
   every module the worker compiles at start (none is the expectation).
"""

from __future__ import annotations

import os
import py_compile
import shutil
import subprocess
import sys
from importlib.util import source_from_cache
from pathlib import Path

BOTOCORE_SERVICES = ("s3", "sqs", "sts", "sso", "sso-oidc", "signin")
UNUSED_SUFFIXES = (".pyi", ".pyx", ".pxd", ".c", ".h")

#: anomaly_cli's modules left out of the trace (their own bytecode is compiled, like all of
#: anomaly_cli's): the synthetic-recording generator imports scipy.signal, and with it scipy.stats,
#: optimize, linalg... (~10 MB of bytecode), and so does the demo, which imports it at the top. In
#: the image only `model evaluate --synthetic` runs the generator (the demo needs the demo extra,
#: which no image has), a run of minutes to which compiling those modules adds ~1-2 s.
UNTRACED = ("anomaly_cli.synth", "anomaly_cli.ops.demo")

TRACE = (
    f"UNTRACED = {UNTRACED!r}\n"
    + r"""
import importlib, importlib.util, sys
from pathlib import Path
import anomaly_cli
top = Path(anomaly_cli.__file__).parent
for path in sorted(top.rglob("*.py")):  # the files, not pkgutil.walk_packages: it imports every package
    name = ".".join(("anomaly_cli", *path.relative_to(top).with_suffix("").parts)).removesuffix(".__init__")
    if name.startswith(UNTRACED) or name.endswith("__main__"):
        continue
    try:
        importlib.import_module(name)
    except ImportError as e:  # an optional extra that is not installed (demo, report, train)
        print(f"  trace: {name} not imported ({e})", file=sys.stderr)
from anomaly_cli.worker.child import CPU_PRELOAD
for m in CPU_PRELOAD:
    importlib.import_module(m)
# a screening process's start and two items (WAV through libsndfile, m4a through PyAV): the lazy
# imports on that path, and a smoke test of the stripped extension modules
import numpy as np
from anomaly_cli.audio.formats import encode
from anomaly_cli.worker import child
child.initialize("", None)
tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(3 * 16000) / 16000)).astype("float32")
for fmt in ("wav", "m4a"):
    s = child.screen_within_budget(encode(tone, 16000, fmt), 600.0)
    assert s.status == "ok", (fmt, s)
# a worker's downloads (S3 and https, with tenacity's retries): nothing answers, the path is what counts
import os
from anomaly_cli.adapters.storage import Fetcher
from anomaly_cli.config import load_settings
os.environ.update({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "ap-south-1",
                   "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
                   "AUDIO_URL_ALLOWLIST": "s3://b,https://example.org", "FETCH_RETRIES": "2"})
fetcher = Fetcher(load_settings(env_file=None), sleep=lambda s: None)
for url in ("s3://b/k.wav", "https://example.org/k.wav"):
    try:
        fetcher.fetch(url)
    except Exception:  # noqa: BLE001
        pass
import boto3
from botocore.config import Config
cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=0.2, read_timeout=0.2)
calls = {"s3": lambda c: c.get_object(Bucket="b", Key="k"), "sqs": lambda c: c.receive_message(QueueUrl="http://127.0.0.1:9/1/q"),
         "sts": lambda c: c.get_caller_identity()}
for name, call in calls.items():
    c = boto3.session.Session().client(name, region_name="ap-south-1", endpoint_url="http://127.0.0.1:9",
                                       aws_access_key_id="x", aws_secret_access_key="y", config=cfg)
    try:
        call(c)
    except Exception:  # noqa: BLE001 - nothing listens: the request path is what is wanted
        pass
import pymongo
try:
    pymongo.MongoClient("mongodb://127.0.0.1:9", serverSelectionTimeoutMS=200).admin.command("ping")
except Exception:  # noqa: BLE001
    pass
if importlib.util.find_spec("matplotlib"):
    from anomaly_cli.report import charts
    fig = charts._figure(3, 2)
    fig.add_subplot().bar([1, 2], [3, 4])
    charts._svg(fig, "trace", "trace", "trace")
"""
)


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def drop_unused(site: Path) -> None:
    for d in sorted(site.rglob("tests")):
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
    for f in site.rglob("*"):
        if f.suffix in UNUSED_SUFFIXES and f.is_file():
            f.unlink()


def drop_botocore_models(site: Path) -> None:
    data = site / "botocore" / "data"
    if not data.is_dir():
        return
    for s in BOTOCORE_SERVICES:
        assert (data / s).is_dir(), f"botocore has no model for {s}"
    for d in data.iterdir():
        if d.is_dir() and d.name not in BOTOCORE_SERVICES:
            shutil.rmtree(d)


def strip_extensions(site: Path, python: str) -> None:
    strip = shutil.which("strip")
    if strip is None:
        print("slim: no strip (binutils) in the build stage: extension modules stay unstripped (~35 MB more)")
        return
    mods = [p for p in site.rglob("*.so") if not any(part.endswith(".libs") for part in p.parts) and p.is_file()]
    subprocess.run([strip, "--strip-unneeded", *map(str, mods)], check=True)
    check = (
        "import ctypes, os, sys\n"
        "bad = []\n"
        "for p in sys.argv[1:]:\n"
        "    try: ctypes.CDLL(p)\n"
        "    except OSError as e: bad.append(str(e))\n"
        "print('\\n'.join(bad)); sys.stdout.flush(); os._exit(1 if bad else 0)\n"
    )
    done = subprocess.run([python, "-c", check, *map(str, mods)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"slim: stripped extension modules that no longer load:\n{done.stdout}{done.stderr}")
    print(f"slim: {len(mods)} extension modules stripped, each loads")


def compile_bytecode(site: Path, python: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["HOME"] = "/tmp"  # matplotlib's cache; the build stage's, never copied
    subprocess.run([python, "-c", TRACE], check=True, env=env, cwd="/tmp")
    anomaly = str(Path(python).with_name("anomaly"))
    subprocess.run([anomaly, "--help"], check=True, env=env, cwd="/tmp", capture_output=True)
    subprocess.run([anomaly, "work", "--help"], check=True, env=env, cwd="/tmp", capture_output=True)
    sources = {Path(source_from_cache(str(p))) for p in site.rglob("*.pyc")}
    sources |= set((site / "anomaly_cli").rglob("*.py"))
    for p in site.rglob("*.pyc"):
        p.unlink()
    for src in sorted(sources):
        if src.is_file():
            py_compile.compile(str(src), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    print(f"slim: bytecode for {len(sources)} modules")


def main() -> None:
    prefix = Path(sys.argv[1])
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    python = str(prefix / "bin" / "python")
    before = size_mb(prefix)
    drop_unused(site)
    drop_botocore_models(site)
    strip_extensions(site, python)
    compile_bytecode(site, python)
    print(f"slim: {prefix} {before:.1f} MB -> {size_mb(prefix):.1f} MB (sources and bytecode)")
    biggest = sorted(((size_mb(p), p.name) for p in site.iterdir() if p.is_dir()), reverse=True)[:12]
    print("slim: largest: " + ", ".join(f"{n} {mb:.1f}" for mb, n in biggest))


if __name__ == "__main__":
    main()
