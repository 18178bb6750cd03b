"""The image, built and stopped for real (``make test-container``; needs root and podman, takes
minutes, so ``make test`` does not run it).

GIVEN the Containerfile built offline on a Debian base (tests/container/kit.py), a moto server
on the host's loopback holding the queue and the recordings in S3 (downloads slowed by a
forwarding proxy, so items are reliably in flight), and the source rows in a file
WHEN the real ``anomaly work`` runs in the container (host network; a mounted test-only entry
script holds the Mongo double, see entry.py) and ``podman stop`` sends SIGTERM while items are
being downloaded
THEN the container exits 0, every item in flight at the signal has its result, every other
message is visible again at once (not after its 300 s visibility timeout), and each result is
written once. The image's own facts are checked too: non-root, tini as PID 1, STOPSIGNAL,
HEALTHCHECK, MALLOC_ARENA_MAX, no compiler, the model inside the package. Figures (image size,
cold start to ready) go to the run's JSON report for BENCHMARKS.md.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.container import kit

pytestmark = pytest.mark.container
N_ITEMS = 12
DOWNLOAD_DELAY_S = 3.0
UTC = dt.UTC


class SlowS3Proxy:
    """Forwards every request to moto; GETs of the bucket's objects wait ``delay`` first.
    ``active`` holds the object keys being downloaded right now."""

    def __init__(self, upstream: str, bucket: str, delay: float):
        host, port = upstream.rsplit("//", 1)[1].split(":")
        self.active: set[str] = set()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.path.split("?")[0]
                slow = self.command == "GET" and key.startswith(f"/{bucket}/")
                if slow:
                    with proxy.lock:
                        proxy.active.add(key)
                    time.sleep(delay)
                try:
                    conn = http.client.HTTPConnection(host, int(port), timeout=60)
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    if slow:
                        with proxy.lock:
                            proxy.active.discard(key)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward  # noqa: N815 - http.server's names

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self) -> set[str]:
        with self.lock:
            return set(self.active)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def image() -> dict[str, float]:
    if os.geteuid() != 0 or shutil.which("podman") is None:
        pytest.fail("the container test needs root and podman: run `make test-container` (it installs them)")
    base_s = kit.ensure_bases()
    build_s = kit.build_image()
    return {"base_s": base_s, "build_s": build_s}


def inspect(name: str) -> dict[str, Any]:
    return json.loads(kit.podman("image", "inspect", name).stdout)[0]


def test_image_facts(image):
    info = inspect(kit.IMAGE)
    cfg = info["Config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["StopSignal"] in ("SIGTERM", "15")
    assert cfg["Entrypoint"] == ["/usr/bin/tini", "--"]
    assert cfg["Cmd"][:2] == ["anomaly", "work"]
    assert "MALLOC_ARENA_MAX=2" in cfg["Env"]
    assert "find /tmp/anomaly/health" in " ".join(info["Healthcheck"]["Test"])  # top level in podman's inspect
    probe = kit.podman(
        "run", "--rm", "--network", "none", kit.IMAGE, "sh", "-c",
        "command -v gcc cc c++ make || echo no-compiler; id -u; "
        "python -c \"from anomaly_cli.model import artifacts; print(artifacts.resolve('', None))\"",
    ).stdout.split()  # fmt: skip
    assert probe[0] == "no-compiler" and probe[1] == "10001"
    assert "/site-packages/anomaly_cli/models/" in probe[2]  # the model ships inside the package


#: figures of the tests before the stop test, for its BENCHMARKS.md section
FIGURES: dict[str, Any] = {}
REPORT_IMAGE = "localhost/anomaly-cli:report"


def _report_run(image: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``anomaly results report`` in ``image`` (read-only, no network) on the Mongo double (mounted:
    test scaffolding, as for the worker), then one chart drawn as the page draws them."""
    lib = tmp_path / image.rsplit(":", 1)[1] / "lib"
    _copy_distributions(("mongomock-ng", "sentinels", "pytz", "packaging"), lib)
    chart = (
        "from anomaly_cli.report import charts; fig = charts._figure(3, 2); fig.add_subplot().bar([1, 2], [3, 4]); "
        "print('svg', len(charts._svg(fig, 'x', 't', 'd')))"
    )
    return kit.podman(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "-v", f"{lib.parent}:/test:ro",
        "-e", "PYTHONPATH=/test/lib", "-e", "MONGO_URI=mongomock://report", image, "sh", "-c",
        f'anomaly results report 2025-12-20 --no-coverage --out /tmp/r.html && python -c "{chart}"',
        check=False,
    )  # fmt: skip


def test_every_command_has_an_image(image, tmp_path):
    """The default image stops `results report` with the extra to install; the image built with
    ``--build-arg EXTRAS=report`` writes the page and draws its charts."""
    plain = _report_run(kit.IMAGE, tmp_path)
    assert plain.returncode == 3, plain.stdout + plain.stderr
    assert "(the 'report' extra)" in plain.stderr and "--build-arg EXTRAS=report" in plain.stderr
    build_s = kit.build_image(REPORT_IMAGE, "report")
    full = _report_run(REPORT_IMAGE, tmp_path)
    assert full.returncode == 0, full.stdout + full.stderr
    assert "/tmp/r.html" in full.stdout and "svg " in full.stdout, full.stdout
    FIGURES["report_image_mb"] = round(inspect(REPORT_IMAGE)["Size"] / 1e6, 1)
    FIGURES["report_build_s"] = round(build_s, 1)


def _recordings(n: int) -> list[bytes]:
    from tests.faults.crashkit import make_recordings

    return make_recordings(n, 91)


def _source(stack_bucket: str, n: int) -> tuple[list[dict[str, Any]], list[Any], list[str]]:
    """Source documents (one teacher reading row each) and their work items."""
    from bson import ObjectId

    from tests.discovery.conftest import assessment, student_doc, subject
    from tests.worker.conftest import make_item

    docs, items, keys = [], [], []
    t0 = dt.datetime(2025, 12, 20, 5, tzinfo=UTC)
    for i in range(n):
        key = f"2025-12-20/c{i:02d}/reading.wav"
        url = f"s3://{stack_bucket}/{key}"
        oid = ObjectId()
        created = t0 + dt.timedelta(minutes=i)
        sid = f"sub-c{i:02d}"
        docs.append(student_doc(assessment(teacher=[subject(sid=sid, url=url, created=created)]), oid=oid))
        items.append(make_item(url, record_type="teacher", mongo_doc_id=str(oid), subject_id=sid, created=created, n=i))
        keys.append(f"/{stack_bucket}/{key}")
    return docs, items, keys


def test_sigterm_while_items_are_in_flight(image, tmp_path):
    import boto3
    from bson import json_util
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    tag = uuid.uuid4().hex[:8]
    bucket = f"ctr-audio-{tag}"
    sqs = boto3.client("sqs", region_name="ap-south-1", endpoint_url=endpoint)
    s3 = boto3.client("s3", region_name="ap-south-1", endpoint_url=endpoint)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    queue = sqs.create_queue(QueueName=f"ctr-{tag}", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    docs, items, _keys = _source(bucket, N_ITEMS)
    for rec, item in zip(_recordings(N_ITEMS), items):
        s3.put_object(Bucket=bucket, Key=item.audio_s3_url.split("/", 3)[3], Body=rec)
        sqs.send_message(QueueUrl=queue, MessageBody=item.to_body())
    proxy = SlowS3Proxy(endpoint, bucket, DOWNLOAD_DELAY_S)

    # what the container sees: the entry script, the Mongo double's packages, the source rows
    stage = tmp_path / "test"
    (stage / "lib").mkdir(parents=True)
    shutil.copy2(Path(__file__).with_name("entry.py"), stage / "entry.py")
    shutil.copy2(Path(__file__).with_name("sitecustomize.py"), stage / "lib" / "sitecustomize.py")
    (stage / "source.json").write_text(json_util.dumps(docs), encoding="utf-8")
    _copy_distributions(("mongomock-ng", "sentinels", "pytz", "packaging"), stage / "lib")
    out, run_dir = tmp_path / "out", tmp_path / "run"
    for d in (out, run_dir):
        d.mkdir()
        d.chmod(0o777)
    name = f"anomaly-ctr-{tag}"
    env = {
        "AWS_ENDPOINT_URL": proxy.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "ap-south-1",
        "SQS_QUEUE_URL": queue,
        "MONGO_URI": f"mongomock://ctr-{tag}",
        "AUDIO_URL_ALLOWLIST": f"s3://{bucket}",
        "TEST_DATE": "2025-12-20",
        "CPU_WORKERS": "1",
        "MAX_CONCURRENCY": "2",
        "BATCH_SIZE": "2",
        "FLUSH_SECONDS": "0.2",
        "SQS_WAIT_SECONDS": "1",
        "SQS_VISIBILITY_TIMEOUT": "300",
        "LOG_LEVEL": "INFO",
        # test-only: every process records the modules it compiles from source (sitecustomize.py)
        "PYTHONPATH": "/test/lib",
        "ANOMALY_TEST_COMPILED": "/out/compiled.txt",
    }
    env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    started = time.monotonic()
    try:
        kit.podman(
            "run", "-d", "--name", name, "--network", "host", "--read-only",
            "-v", f"{stage}:/test:ro", "-v", f"{out}:/out", "-v", f"{run_dir}:/tmp/anomaly",
            *env_args, kit.IMAGE,
            "python", "/test/entry.py",
            "--health-file=/tmp/anomaly/health", "--ready-file=/tmp/anomaly/ready", "--drain-seconds=60",
        )  # fmt: skip
        ready_s = _wait(lambda: (run_dir / "ready").exists(), 120, "the worker never became ready")
        ready_s -= started
        # items in flight: both download slots busy, and more held than downloading
        _wait(lambda: len(proxy.snapshot()) >= 2 and _counts(sqs, queue)["in_flight"] >= 3, 120, "nothing in flight")
        in_flight = proxy.snapshot()
        t_stop = time.monotonic()
        kit.podman("stop", "--time", "120", name, timeout=300)  # SIGTERM (the image's STOPSIGNAL)
        stop_s = time.monotonic() - t_stop
        after = _counts(sqs, queue)  # at once: a released message is visible without waiting
        state = json.loads(kit.podman("inspect", name).stdout)[0]["State"]
        logs = kit.podman("logs", name).stderr + kit.podman("logs", name).stdout
        compiled_at_start = _compiled(out)
        # two more cold starts on an empty queue: the ready time of three starts, not one
        empty = sqs.create_queue(QueueName=f"ctr-empty-{tag}")["QueueUrl"]
        ready_runs = [ready_s] + [
            _cold_start({**env, "SQS_QUEUE_URL": empty}, stage, f"{name}-cold{i}") for i in (1, 2)
        ]
    except BaseException:
        print(kit.podman("logs", name, check=False).stderr[-5000:])
        raise
    finally:
        kit.podman("rm", "-f", name, check=False)
        proxy.close()
        moto.stop()

    events = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    stopped = next((e for e in events if e.get("event") == "worker_stopped"), None)
    assert state["ExitCode"] == 0, logs[-3000:]
    assert stopped is not None and stopped["reason"] == "signal", logs[-3000:]
    results = json_util.loads((out / "results.json").read_text(encoding="utf-8"))
    by_key = {}
    for r in results:
        by_key.setdefault("/" + r["source"]["audio_s3_url"].split("//", 1)[1], []).append(r)
    # in-flight items finished: each had a download running at SIGTERM and has its result
    assert in_flight and all(k in by_key for k in in_flight), (in_flight, sorted(by_key))
    # written once: one document per recording, screened once, first attempt
    assert all(len(v) == 1 for v in by_key.values())
    assert all(r["processing"]["screen_count"] == 1 and r["processing"]["attempt"] == 1 for r in results)
    assert all(r["processing"]["status"] == "ok" for r in results)
    # the rest released: visible again at once, nothing left invisible for 300 s
    assert after == {"visible": N_ITEMS - len(results), "in_flight": 0, "delayed": 0}, after
    assert len(results) < N_ITEMS  # the signal really came mid-run
    assert stopped["acked"] == len(results) and stopped["acked"] + stopped["released"] == stopped["received"]
    # bytecode compiled at build time: the worker's start compiles none of the image's modules
    assert compiled_at_start == [], "compiled at start (no bytecode in the image):\n" + "\n".join(compiled_at_start)

    size_mb = inspect(kit.IMAGE)["Size"] / 1e6
    report = {
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True, cwd=kit.ROOT
        ).stdout.strip(),
        "date": dt.datetime.now(UTC).isoformat(timespec="seconds"),
        "image_mb": round(size_mb, 1),
        "ready_s": round(ready_s, 2),
        "ready_runs_s": [round(r, 2) for r in ready_runs],
        "ready_median_s": round(sorted(ready_runs)[1], 2),
        "stop_s": round(stop_s, 2),
        "in_flight_at_sigterm": len(in_flight),
        "results": len(results),
        "released_visible": after["visible"],
        "exit_code": state["ExitCode"],
        "build_s": round(image["build_s"], 1),
        "base_s": round(image["base_s"], 1),
        "load_avg": os.getloadavg()[0],
        "compiled_at_start": len(compiled_at_start),
        "composition": _composition(),
        **FIGURES,
    }  # fmt: skip
    (kit.WORK / "last-result.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print("\ncontainer test:", json.dumps(report))
    _record(report)


def _composition() -> dict[str, Any]:
    """Where the image's size goes: its layers and the largest entries of its site-packages."""
    hist = json.loads(kit.podman("history", "--format", "json", kit.IMAGE).stdout)
    layers = [h["size"] / 1e6 for h in hist if h["size"]]
    du = kit.podman(
        "run", "--rm", "--network", "none", kit.IMAGE, "sh", "-c",
        "cd /opt/anomaly/lib/python3*/site-packages && du -sk --apparent-size * | sort -n | tail -10",
    ).stdout.split()  # fmt: skip
    biggest = [(name, int(kb) / 1000) for kb, name in zip(du[::2], du[1::2])][::-1]
    return {
        "base_mb": round(inspect(kit.BASE_IMAGE)["Size"] / 1e6, 1),
        "env_mb": round(max(layers[:-1]), 1),  # the COPY of /opt/anomaly; the last layer is the base
        "biggest": [(n, round(mb, 1)) for n, mb in biggest],
    }


def _record(r: dict[str, Any]) -> None:
    """The last result goes to BENCHMARKS.md (bench/sections/container.md, then the report)."""
    import sys

    c = r["composition"]
    biggest = ", ".join(f"{n} {mb}" for n, mb in c["biggest"])
    runs = ", ".join(f"{x}" for x in r["ready_runs_s"])
    section = f"""## Container image

`make test-container` (tests/container/test_container.py), last run {r["date"]} on commit `{r["commit"]}`:
**passed**. Machine: 2 cores (AMD EPYC), 24 GiB, podman with runc and cgroupfs, base image built with
debootstrap (Debian bookworm, Python 3.11.2, tini), image built (default `EXTRAS`: no `report`, no
`train`) with `--network none` from a host wheelhouse in {r["build_s"]} s (the bases: {r["base_s"]} s, 0 when
already built). 1-min load average {r["load_avg"]:.1f} at the end (shared machine).

| figure | value | goal |
|---|---|---|
| image size (`podman image inspect`, uncompressed) | {r["image_mb"]} MB: base {c["base_mb"]} + environment {c["env_mb"]} | < 400 MB: **{"met" if r["image_mb"] < 400 else "not met"}** |
| cold start: `podman run` to the ready file (model loaded in the screening process), median of 3 | {r["ready_median_s"]} s (runs: {runs}) | < 5 s: **{"met" if r["ready_median_s"] < 5 else "not met"}** |
| modules of the image compiled from source during the worker's run (no bytecode) | {r["compiled_at_start"]} | 0 |
| `podman stop` (SIGTERM) to exit, {r["in_flight_at_sigterm"]} downloads in flight (slowed to 3 s each) | {r["stop_s"]} s | |
| exit code | {r["exit_code"]} | 0 |
| results written (each once; every item in flight at the signal among them) | {r["results"]} of 12 | |
| messages visible again at once after the stop (released) | {r["released_visible"]} | 12 - results |

The cold start counts container creation, Python start-up, the forkserver and one screening process
loading the model; the first run follows the build, the two others start on an empty queue (page cache
warm in all three: a node that has just pulled the image reads it from disk once more). Largest parts of
the environment (MB, `du --apparent-size`): {biggest}.

The ready time hardly depends on this work: `python -m tests.container.kit coldstart
localhost/anomaly-cli:baseline localhost/anomaly-cli:test` (5 starts of each image interleaved, the image
of `e5c3858` against this change's, built before its last rebase onto main, 2026-12-02 17:37 UTC, load 0.4) gave medians of 0.81 s before and
0.76 s after; with 4 busy-looping processes on the 2 cores, 1.20 s and 1.14 s. The 6.51 s recorded before
was one start at load 18; the old image had bytecode for every module already (pip compiles on
install), so there was no compiling at start to remove, and the 0.05 s is within the runs' spread.

What made the image 614.6 MB on commit `e5c3858` and what each step of deploy/image/slim.py and of the extras takes off, measured on the host as MB of
files in the virtual environment, one step after the other (a host venv from the same wheelhouse,
then each step; the image's layer adds ~3 MB of tar headers, and the base):

| step | environment | saved |
|---|---|---|
| before: every dependency, pip's bytecode for every module, pip, setuptools and test suites removed | 478.1 MB | |
| scikit-learn (with joblib, narwhals, cloudpickle) to the `train` extra: `model train` only | 436.6 MB | 41.5 |
| matplotlib (with Pillow, fontTools, kiwisolver, contourpy, cycler, pyparsing) to the `report` extra: `results report` only | 347.1 MB | 89.5 |
| type stubs, Cython and C sources, headers | 341.2 MB | 5.9 |
| botocore models but S3, SQS, STS, SSO, SSO-OIDC, sign-in (~450 services) | 323.3 MB | 17.9 |
| symbol tables of the extension modules (`strip --strip-unneeded`; not the vendored `*.libs`) | 286.8 MB | 36.5 |
| bytecode only for the traced import graph (841 modules; none at all: 246.4 MB) | 262.1 MB | 24.7 |

`--build-arg EXTRAS=report` (every command, the report's charts too; built and run by the same test:
`results report` writes its page and draws a chart in it, read-only, no network): {r.get("report_image_mb", "not measured")} MB,
over the goal: hence the default without it (the matplotlib stack after the same steps: 53.5 MB more files,
261.4 -> 314.9 MB, 978 modules with bytecode).
"""
    root = kit.ROOT
    (root / "bench" / "sections" / "container.md").write_text(section, encoding="utf-8")
    subprocess.run([sys.executable, str(root / "bench" / "run_all.py"), "--report-only"], check=True, cwd=root)


def _compiled(out: Path) -> list[str]:
    """Modules of the image (its environment, the base's standard library) that a process of the
    run compiled from source; the test's own files (/test) are not the image's."""
    path = out / "compiled.txt"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return sorted({line.split(" ", 1)[1] for line in lines if not line.split(" ", 1)[1].startswith("/test/")})


def _cold_start(env: dict[str, str], stage: Path, name: str) -> float:
    """Seconds from ``podman run`` to the ready file (the model loaded in the screening process) on
    an empty queue; the container is stopped and removed after."""
    env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    run_dir = stage.parent / f"run-{name}"
    run_dir.mkdir()
    run_dir.chmod(0o777)
    t0 = time.monotonic()
    try:
        kit.podman(
            "run", "-d", "--name", name, "--network", "host", "--read-only",
            "-v", f"{stage}:/test:ro", "-v", f"{run_dir}:/out", "-v", f"{run_dir}:/tmp/anomaly",
            *env_args, kit.IMAGE,
            "python", "/test/entry.py", "--health-file=/tmp/anomaly/health", "--ready-file=/tmp/anomaly/ready",
        )  # fmt: skip
        return _wait(lambda: (run_dir / "ready").exists(), 120, f"{name} never became ready") - t0
    finally:
        kit.podman("stop", "--time", "30", name, check=False, timeout=120)
        kit.podman("rm", "-f", name, check=False)


def _copy_distributions(names: tuple[str, ...], dest: Path) -> None:
    """The installed files of ``names`` (code and metadata: mongomock-ng checks its own version)."""
    from importlib.metadata import distribution

    for name in names:
        dist = distribution(name)
        for f in dist.files or []:
            src = Path(dist.locate_file(f))
            if src.is_file() and "__pycache__" not in f.parts and not str(f).startswith(".."):
                (dest / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / f)


def _counts(sqs: Any, url: str) -> dict[str, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {
        "visible": int(a["ApproximateNumberOfMessages"]),
        "in_flight": int(a["ApproximateNumberOfMessagesNotVisible"]),
        "delayed": int(a["ApproximateNumberOfMessagesDelayed"]),
    }


def _wait(pred: Any, timeout: float, what: str) -> float:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(what)
