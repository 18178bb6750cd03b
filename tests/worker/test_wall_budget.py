"""GIVEN a screening process that in-process error handling cannot stop (blocked in a native call
using no CPU, stopped with SIGSTOP, or killed by the kernel's RLIMIT_CPU) WHEN it runs an item of
the worker's pool THEN the worker kills and replaces the process, the item gets one terminal result
with its own error code, the other items are screened or retried, and the pool has its processes
back. Real processes (forkserver, as in production); the misbehaving tasks are in budget_tasks.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from anomaly_cli.adapters.storage import FetchedAudio
from anomaly_cli.errors import error_code, is_transient
from anomaly_cli.worker.pool import ScreenPool
from tests.worker.budget_tasks import misbehave

MODELS = Path(__file__).resolve().parents[2] / "anomaly_cli" / "models"


class BytesFetcher:
    """``https://x/<word>`` fetches the bytes ``<word>``."""

    def fetch(self, url: str) -> FetchedAudio:
        return FetchedAudio(url.rsplit("/", 1)[1].encode(), url, "https", 1, 0.0)


@pytest.fixture
def pool():
    p = ScreenPool(
        BytesFetcher(),
        io_workers=4,
        model_version="v2",
        max_duration_s=600.0,
        cpu_workers=2,
        model_dir=str(MODELS),
        wall_seconds=1.5,
        cpu_task=misbehave,
    )
    p.warm_up()
    yield p
    p.close(wait=False)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _old_pids(pool: ScreenPool) -> list[int]:
    return list((getattr(pool._cpu, "_processes", None) or {}).keys())


@pytest.mark.parametrize(
    "word,code",
    [("hang", "wall_budget_exceeded"), ("stop", "wall_budget_exceeded"), ("spin", "cpu_budget_exceeded")],
)
def test_an_item_the_process_cannot_stop_is_killed_replaced_and_answered_once(pool, events, word, code):
    before = _old_pids(pool)
    assert len(before) == 2
    if word == "spin":
        pool.wall_seconds = 20.0  # the kernel's CPU limit (about 1 s away) comes first
    bad = pool.submit(f"https://x/{word}")
    time.sleep(0.2)  # the bad item is running first
    good = [pool.submit(f"https://x/ok{i}") for i in range(3)]
    res = bad.result(timeout=60)
    assert res.screening is not None and res.error is None
    assert res.screening.status == "failed" and res.screening.error["code"] == code
    assert res.screening.error["stage"] == "decode" and res.screening.audio == {"bytes": len(word)}
    answers = [g.result(timeout=60) for g in good]
    # each good item is screened, or retried later (transient) when it was on the pool that was replaced
    for a in answers:
        if a.screening is not None:
            assert a.screening.startswith("screened ok")
        else:
            assert error_code(a.error) == "screening_process_lost" and is_transient(a.error)
    killed = events.named("screening_process_killed")
    assert len(killed) == (1 if code == "wall_budget_exceeded" else 0)
    assert len(events.named("screening_processes_restarted")) == 1
    assert pool.restarts == []  # a budget kill is no crash: the crash-loop limit is untouched
    # the pool has its processes back, and none of the old ones is left behind
    pool.warm_up()
    assert pool.processes_alive() == 2
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in before)
    again = [pool.submit(f"https://x/after{i}") for i in range(4)]
    assert sorted(a.result(timeout=60).screening for a in again) == [f"screened after{i}" for i in range(4)]


def test_items_within_the_wall_budget_are_never_killed(pool, events):
    futs = [pool.submit(f"https://x/ok{i}") for i in range(6)]
    assert [f.result(timeout=60).screening for f in futs] == [f"screened ok{i}" for i in range(6)]
    assert not events.named("screening_process_killed") and pool.processes_alive() == 2


def test_through_the_worker_the_stuck_item_gets_one_terminal_result_and_is_acked(rig, recordings, events, monkeypatch):
    """The whole path: the worker's real screening processes, SQS (moto) and the results store."""
    from functools import partial

    from anomaly_cli.worker import factory, outcome
    from anomaly_cli.worker.factory import build_worker
    from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown
    from tests.worker.budget_tasks import hang_or_screen
    from tests.worker.conftest import make_item

    monkeypatch.setattr(outcome, "RETRY_BASE_SECONDS", 1)  # a good item on the replaced pool comes back soon
    monkeypatch.setattr(factory, "ScreenPool", partial(ScreenPool, wall_seconds=1.5, cpu_task=hang_or_screen))
    stuck = make_item(rig.server.put("/stuck.wav", b"hang"), n=0)
    good = [make_item(rig.server.put(f"/g{n}.wav", recordings[f"child{n}.wav"]), n=n + 1) for n in range(2)]
    for item in (stuck, *good):
        rig.send(item)
    worker = build_worker(
        rig.settings(cpu_workers=2),
        sqs_client=rig.sqs,
        db=rig.db,
        model_version=rig.screen.model.version,
        policy=AnyOf((IdleShutdown(6.0),)),
        worker_id="test-worker",
    )
    report = worker.run()

    assert report.error is None
    docs = {d["_id"]: d for d in rig.results.find()}
    assert set(docs) == {stuck.result_id, *(g.result_id for g in good)}
    assert docs[stuck.result_id]["processing"]["status"] == "failed"
    assert docs[stuck.result_id]["processing"]["error"]["code"] == "wall_budget_exceeded"
    assert all(docs[g.result_id]["processing"]["status"] == "ok" for g in good)
    assert len(events.named("screening_process_killed")) == 1  # killed once, answered once
    assert rig.counts() == {"visible": 0, "in_flight": 0}
