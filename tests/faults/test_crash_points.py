"""A worker killed at each stage boundary (a ``BaseException`` it cannot catch, every later call
of it dead too), then a new worker takes over; the invariants of :mod:`tests.faults.crashkit` hold.

CI runs 60 items per crash point (seed 1 everywhere, seed 2 too after the write and mid-delete); the full
matrix (20 seeds x 300 items) is
``bench/bench_crash_matrix.py`` (and the ``slow`` test below)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.crashkit import POINTS, make_recordings, run_scenario

ITEMS = 60
# the dead worker's threads (heartbeat, batches) die of the injected Crash on purpose
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture(scope="module")
def sixty() -> list[bytes]:
    return make_recordings(ITEMS, 11)


def _check(v: Any) -> None:
    assert v.crashed, f"the crash point {v.point} was never reached"
    assert not v.acked_without_result, f"acked without a durable result: {v.acked_without_result[:5]}"
    assert not v.missing, f"{len(v.missing)} items lost (no result, not in the queue: {v.left_in_queue} left)"
    assert not v.overwritten, f"first results overwritten by a redelivery: {v.overwritten[:5]}"
    assert not v.rescreened_after_result, f"screened again although a result existed: {v.rescreened_after_result[:5]}"
    assert v.results == v.items and v.left_in_queue == 0


# two seeds where the crash leaves results written but unacked (the subtle points), one elsewhere:
# keeps the CI matrix within its time budget on 2 shared cores
CI_RUNS = [(p, 1) for p in POINTS] + [("after_write", 2), ("mid_delete", 2)]


@pytest.mark.parametrize("point,seed", CI_RUNS)
def test_crash_then_takeover_keeps_every_item_once(
    point, seed, moto_aws, sqs_client, mongo, audio_server, loaded_model, sixty
):
    v = run_scenario(
        point, seed, items=ITEMS, model=loaded_model, sqs=sqs_client, mongo=mongo, server=audio_server, recordings=sixty
    )
    _check(v)
    if point == "after_write":
        # the crash left written-but-unacked results: the redelivery found them (and kept them)
        assert v.results_at_crash > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 23))
@pytest.mark.parametrize("point", POINTS)
def test_full_matrix(point, seed, moto_aws, sqs_client, mongo, audio_server, loaded_model):
    v = run_scenario(
        point, seed, items=300, model=loaded_model, sqs=sqs_client, mongo=mongo, server=audio_server, deadline_s=600
    )
    _check(v)
