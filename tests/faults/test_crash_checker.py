"""The crash matrix's checker catches a broken worker: each test below breaks one guarantee on
purpose (by patching the worker) and asserts that the invariant meant to catch it reports it.
Without these, a matrix that always passes could be a matrix that cannot fail."""

from __future__ import annotations

import pytest

from tests.faults.crashkit import run_scenario

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def test_acking_before_the_write_is_reported(monkeypatch, moto_aws, sqs_client, mongo, audio_server, loaded_model):
    from anomaly_cli.worker import batch

    original = batch.BatchProcessor._write

    def ack_then_write(self, docs, batch_no, out, *rest):  # the bug: ack first, write second
        batch.ack_messages(self.queue, [(h.message_id, h.receipt) for h, _, _ in docs], self.stats, batch_no)
        return original(self, docs, batch_no, out, *rest)

    monkeypatch.setattr(batch.BatchProcessor, "_write", ack_then_write)
    v = run_scenario(
        "after_features", 1, items=20, model=loaded_model, sqs=sqs_client, mongo=mongo, server=audio_server
    )
    assert v.crashed and v.acked_without_result and not v.holds


def test_a_redelivery_overwriting_the_first_result_is_reported(
    monkeypatch, moto_aws, sqs_client, mongo, audio_server, loaded_model
):
    from anomaly_cli.results.repository import ResultRepository
    from anomaly_cli.worker import batch

    # the bug: no existence check, and every write replaces (last write wins)
    monkeypatch.setattr(ResultRepository, "insert_if_absent", lambda self, docs: ResultRepository.replace(self, docs))
    monkeypatch.setattr(batch, "existing_results", lambda coll, pairs: set())
    v = run_scenario("after_write", 1, items=20, model=loaded_model, sqs=sqs_client, mongo=mongo, server=audio_server)
    assert v.crashed and v.overwritten and v.rescreened_after_result and not v.holds
