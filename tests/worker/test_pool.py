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

MODELS = Path(__file__).resolve().parents[2] / "models"


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
    pool = ScreenPool(fetcher, io_workers=io_workers, model_version="v1", max_duration_s=600.0, cpu_workers=1,
                      model_dir=str(MODELS))
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
    real_submit = pool._cpu.submit  # noqa: SLF001 - watching the hand-over under test

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

    pool._cpu.submit = submit  # noqa: SLF001
    try:
        futs = [pool.submit(f"https://audio.example/{i}.wav") for i in range(8)]
        assert all(f.result(timeout=120).screening is not None for f in futs)
        # all 8 downloads finish at once; without the bound all 8 would be handed over together
        assert len(fetcher.started) == 8
        assert peak[0] == pool.cpu_backlog
        assert pool._cpu_slots._value == pool.cpu_backlog  # noqa: SLF001 - every place given back
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
