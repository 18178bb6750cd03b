"""ScreenPool with its real process pool: downloads overlap screening, and stopping settles everything.

The worker's throughput at low concurrency depends on a download thread handing its recording to
the CPU stage and starting the next download at once; these tests watch the order of events
through a recording fetcher (no timing thresholds).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

import numpy as np
import pytest

from anomaly_cli.adapters.storage import FetchedAudio
from anomaly_cli.audio.formats import encode
from anomaly_cli.worker.pool import ScreenPool

MODELS = Path(__file__).resolve().parents[2] / "anomaly_cli" / "models"


class RecordingFetcher:
    """Returns the same WAV for every URL and records when each fetch started."""

    def __init__(self, data: bytes, delay: float = 0.0):
        self.data = data
        self.delay = delay
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()

    def fetch(self, url: str) -> FetchedAudio:
        with self.lock:
            self.started[url] = time.monotonic()
        if self.delay:
            time.sleep(self.delay)
        return FetchedAudio(self.data, url, "https", 1, 0.0)


@pytest.fixture(scope="module")
def wav() -> bytes:
    rng = np.random.default_rng(3)
    return encode((rng.standard_normal(16000 * 20) * 0.1).astype(np.float32), 16000, "wav")


def _pool(fetcher: RecordingFetcher, io_workers: int) -> ScreenPool:
    pool = ScreenPool(
        fetcher, io_workers=io_workers, model_version="v1", max_duration_s=600.0, cpu_workers=1, model_dir=str(MODELS)
    )
    pool.warm_up()
    return pool


def test_a_download_thread_starts_the_next_download_while_the_previous_item_is_screened(wav):
    fetcher = RecordingFetcher(wav)
    pool = _pool(fetcher, io_workers=1)  # one download slot: the old design would screen in it
    try:
        futs = [pool.submit(f"https://audio.example/{i}.wav") for i in range(3)]
        done_at = []
        for f in futs:
            res = f.result(timeout=120)
            done_at.append(time.monotonic())
            assert res.screening is not None and res.screening.status == "ok", res
        # the second and third downloads began before the first screening finished
        assert fetcher.started["https://audio.example/1.wav"] < done_at[0]
        assert fetcher.started["https://audio.example/2.wav"] < done_at[0]
    finally:
        pool.close()


def test_downloads_wait_for_a_place_in_the_cpu_stage_when_it_falls_behind(wav):
    fetcher = RecordingFetcher(wav)
    pool = _pool(fetcher, io_workers=8)
    assert pool.cpu_backlog == 2
    # count recordings handed to the processes and not yet screened
    lock, outstanding, peak = threading.Lock(), [0], [0]
    real_submit = pool._cpu.submit

    def submit(fn, *args):
        with lock:
            outstanding[0] += 1
            peak[0] = max(peak[0], outstanding[0])
        fut = real_submit(fn, *args)

        def done(_):
            with lock:
                outstanding[0] -= 1

        fut.add_done_callback(done)
        return fut

    pool._cpu.submit = submit
    try:
        futs = [pool.submit(f"https://audio.example/{i}.wav") for i in range(8)]
        assert all(f.result(timeout=120).screening is not None for f in futs)
        # all 8 downloads finish at once; without the bound all 8 would be handed over together
        assert len(fetcher.started) == 8
        assert peak[0] == pool.cpu_backlog
        assert pool._cpu_slots._value == pool.cpu_backlog
    finally:
        pool.close()


def test_closing_without_waiting_settles_every_future(wav):
    """Stopping (second signal) while downloads queue behind a busy CPU stage never hangs a batch."""
    fetcher = RecordingFetcher(wav, delay=0.05)
    pool = _pool(fetcher, io_workers=2)
    futs = [pool.submit(f"https://audio.example/{i}.wav") for i in range(12)]
    time.sleep(0.2)
    pool.close(wait=False)
    settled = 0
    for f in futs:
        try:
            res = f.result(timeout=60)
        except CancelledError:
            settled += 1
            continue
        # finished, or ended as an error the batch turns into a retry (never lost)
        assert res.screening is not None or res.error is not None
        settled += 1
    assert settled == 12


def test_native_decoder_chatter_in_a_screening_process_becomes_a_json_event(tmp_path):
    """libmpg123 prints "Warning: Xing stream size off ..." for a cut MP3; the worker's stderr is
    its JSON event stream, so every line of it must still parse."""
    import json
    import subprocess
    import sys

    script = tmp_path / "screen_cut_mp3.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
import numpy as np
from anomaly_cli.audio.formats import encode
from anomaly_cli.log import configure_logging
from anomaly_cli.worker.pool import ScreenPool
from tests.worker.test_pool import RecordingFetcher

if __name__ == "__main__":
    configure_logging("INFO")
    x = (np.random.default_rng(0).standard_normal(16000 * 5) * 0.1).astype(np.float32)
    mp3 = encode(x, 16000, "mp3")
    pool = ScreenPool(RecordingFetcher(mp3[: len(mp3) // 2]), io_workers=1, model_version="v1",
                      max_duration_s=600.0, cpu_workers=1, model_dir={str(MODELS)!r})
    pool.warm_up()
    res = pool.submit("https://audio.example/cut.mp3").result(timeout=120)
    print(res.screening.status, res.screening.audio.get("truncated"))
    pool.close()
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", "True"]  # screened: a cut MP3 is a truncated recording
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # raises on any plain-text line
    native = [e for e in events if e["event"] == "native_library_message"]
    assert native and "Xing" in native[0]["message"] and native[0]["level"] == "WARNING"


def test_screening_processes_never_import_scikit_learn_or_scipy_signal(tmp_path):
    """The worker's memory goal rests on it (~85 MB resident per process, BENCHMARKS.md): the
    screening processes decode, resample, fingerprint and score with numpy, scipy.fft and the
    codecs only. Run in a clean interpreter: this test process has imported everything."""
    import json
    import subprocess
    import sys

    script = tmp_path / "child_modules.py"
    script.write_text(f"""
if __name__ == "__main__":  # nothing at top level: the forkserver imports this file too
    import json
    import sys
    sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
    import numpy as np
    from anomaly_cli.audio.formats import encode
    from anomaly_cli.worker.pool import ScreenPool
    from tests.worker.test_pool import RecordingFetcher

    x = (np.random.default_rng(0).standard_normal(44100 * 3) * 0.1).astype(np.float32)
    pool = ScreenPool(RecordingFetcher(encode(x, 44100, "m4a")), io_workers=1, model_version="v1",
                      max_duration_s=600.0, cpu_workers=1, model_dir={str(MODELS)!r})
    pool.warm_up()
    res = pool.submit("https://audio.example/a.m4a").result(timeout=120)
    heavy = ("sklearn", "scipy.signal", "joblib", "boto3", "pymongo", "typer", "rich")
    loaded = pool._cpu.submit(eval, "sorted(__import__('sys').modules)").result(timeout=60)
    print(json.dumps({{"status": res.screening.status, "rate": res.screening.audio.get("sample_rate"),
                      "heavy": [m for m in loaded if m.startswith(heavy)]}}))
    pool.close()
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == "ok" and report["rate"] == 44100  # it resampled and scored
    assert report["heavy"] == []


def _screening_pids(pool: ScreenPool) -> list[int]:
    return [p.pid for p in pool._cpu._processes.values()]  # type: ignore[union-attr]


def test_a_killed_screening_process_is_replaced_and_its_item_retried_later(wav):
    """GIVEN a warmed-up pool WHEN its screening process is SIGKILLed (as the OOM killer does) THEN
    the item on it is lost as a transient ``screening_process_lost``, one restart is counted, and
    the next item is screened on a new process (without the rebuild every later item failed and
    the worker stopped)."""
    import os
    import signal as sig

    from anomaly_cli import errors

    pool = _pool(RecordingFetcher(wav, delay=0.5), io_workers=1)
    restarts: list[int] = []
    pool.on_restart = lambda: restarts.append(1)
    try:
        before = _screening_pids(pool)
        fut = pool.submit("https://audio.example/a.wav")
        os.kill(before[0], sig.SIGKILL)  # while the item downloads: the hand-over finds a dead pool
        res = fut.result(timeout=120)
        assert res.screening is None and isinstance(res.error, errors.ScreeningProcessLost), res
        assert errors.is_transient(res.error) and res.stage == "inference"
        again = pool.submit("https://audio.example/b.wav").result(timeout=120)
        assert again.screening is not None and again.screening.status == "ok"
        assert restarts == [1] and len(pool.restarts) == 1
        assert set(_screening_pids(pool)).isdisjoint(before)
    finally:
        pool.close()


def test_a_crash_loop_is_not_restarted_for_ever(wav, monkeypatch):
    """Past MAX_RESTARTS in the window the broken pool is returned as it is: the batch sees a
    ``BrokenExecutor`` and the worker stops abnormally (a model that cannot load, a recording
    that kills every process) instead of spinning."""
    import os
    import signal as sig
    from concurrent.futures import BrokenExecutor

    from anomaly_cli.worker import pool as pool_mod

    monkeypatch.setattr(pool_mod, "MAX_RESTARTS", 0)
    pool = _pool(RecordingFetcher(wav, delay=0.5), io_workers=1)
    try:
        fut = pool.submit("https://audio.example/a.wav")
        os.kill(_screening_pids(pool)[0], sig.SIGKILL)
        res = fut.result(timeout=120)
        assert isinstance(res.error, BrokenExecutor) and pool.restarts == []
    finally:
        pool.close()
