"""GIVEN one hostile message among good ones WHEN a worker processes them THEN only that message
carries the failure: the loop keeps running and every other message of the receive is settled."""

from __future__ import annotations

import json

import pytest

from anomaly_cli import errors
from anomaly_cli.contract import parse_message
from anomaly_cli.worker.shutdown import AnyOf, MaxMessages
from tests.worker.conftest import make_item

DEEP = "[" * 20_000


def _overflowing(item) -> str:
    body = item.to_message()
    body["subject_created_at"] = "0001-01-01T00:00:00+01:00"  # before year 1 once in UTC
    return json.dumps(body)


@pytest.mark.parametrize("kind", ["deep", "overflow"])
def test_parser_turns_hostile_bodies_into_contract_errors(kind):
    body = DEEP if kind == "deep" else _overflowing(make_item("https://x.example/a.wav"))
    with pytest.raises(errors.ContractError):
        parse_message(body)


def test_poison_bodies_in_one_receive_leave_the_good_messages_screened(rig, recordings, events):
    good = [make_item(rig.server.put(f"/g{i}.wav", recordings[f"child{i}.wav"]), n=i) for i in range(3)]
    bad = [rig.send(good[0], body=DEEP), rig.send(good[0], body=_overflowing(good[0]))]
    for item in good:
        rig.send(item)

    report = rig.run(policy=AnyOf((MaxMessages(5),)))

    assert report.reason == "max_messages" and report.error is None
    assert report.stats["malformed"] == 2 and report.stats["succeeded"] == 3
    assert sorted(e["message_id"] for e in events.named("message_malformed")) == sorted(bad)
    assert rig.results.count_documents({}) == 3
    assert rig.counts() == {"visible": 0, "in_flight": 2}  # the two poison bodies wait for redrive


def test_an_exception_for_one_item_of_a_batch_is_that_items_outcome(rig, recordings):
    items = [make_item(rig.server.put(f"/g{i}.wav", recordings[f"child{i}.wav"]), n=i) for i in range(3)]
    poison = items[1]

    real = rig.screen

    class Poisoned:
        model = real.model

        def __call__(self, data: bytes):
            if data == recordings["child1.wav"]:
                raise RecursionError("a decoder bug met by this recording")
            return real(data)

    rig.screen = Poisoned()
    for item in items:
        rig.send(item)
    report = rig.run(policy=AnyOf((MaxMessages(3),)))

    assert report.reason == "max_messages" and report.error is None
    assert report.stats["succeeded"] == 2 and report.stats["transient"] == 1
    assert rig.results.find_one({"_id": poison.result_id}) is None
    assert rig.results.count_documents({}) == 2


def test_a_batch_step_failing_for_one_message_is_isolated_to_it(rig, recordings, monkeypatch):
    items = [make_item(rig.server.put(f"/g{i}.wav", recordings[f"child{i}.wav"]), n=i) for i in range(3)]
    poison = items[2]
    from anomaly_cli.results import document as D

    real = D.build_result

    def build(item, *a, **kw):
        if item.result_id == poison.result_id:
            raise OverflowError("date value out of range")
        return real(item, *a, **kw)

    monkeypatch.setattr(D, "build_result", build)
    from anomaly_cli.worker import batch as B

    real_existing = B.existing_results

    def existing(coll, pairs):
        if any(rid == poison.result_id for rid, _ in pairs):
            raise OverflowError("a key no query can hold")
        return real_existing(coll, pairs)

    monkeypatch.setattr(B, "existing_results", existing)
    for item in items:
        rig.send(item)

    report = rig.run(policy=AnyOf((MaxMessages(3),)))

    assert report.reason == "max_messages" and report.error is None
    assert report.stats["succeeded"] == 2 and report.stats["transient"] == 1
    assert rig.results.count_documents({}) == 2
