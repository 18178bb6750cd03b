"""GIVEN secrets inside MONGO_URI's options WHEN a worker starts THEN its worker_started event
shows the option names, never the values."""

from __future__ import annotations

import json

from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown
from tests.security.test_uri_options import KEY_PW, TOKEN, URI


def test_the_worker_started_event_masks_option_secrets(rig, events) -> None:
    worker = rig.worker(settings=rig.settings(mongo_uri=URI), policy=AnyOf((IdleShutdown(0.2),)))
    worker.run()
    (started,) = events.named("worker_started")
    shown = json.dumps(started)
    assert TOKEN not in shown and KEY_PW not in shown and "tlsCertificateKeyFilePassword=***" in shown
