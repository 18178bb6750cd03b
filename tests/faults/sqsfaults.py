"""An injecting wrapper around a real (moto) boto3 SQS client: throttling and 5xx answers, and
partial batch failures, drawn from a seeded random source. Everything not injected reaches moto."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any, Callable


def client_error(op: str, code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}, op
    )


THROTTLE = ("RequestThrottled", 400)
SERVER = ("InternalError", 500)


class FaultySqs:
    """``rate`` of calls to each of ``ops`` raise throttling or a 5xx (before reaching moto);
    ``partial`` of batch entries come back in ``Failed[]`` (retryable, ``SenderFault`` false) unless
    ``entry_fault`` decides otherwise for an entry."""

    def __init__(
        self,
        client: Any,
        seed: int,
        *,
        ops: tuple[str, ...] = (),
        rate: float = 0.0,
        partial: float = 0.0,
        entry_fault: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None,
    ):
        self._c = client
        self._rng = random.Random(seed)
        self.ops, self.rate, self.partial, self.entry_fault = ops, rate, partial, entry_fault
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _maybe_raise(self, op: str) -> None:
        with self._lock:
            hit = op in self.ops and self._rng.random() < self.rate
            kind = THROTTLE if self._rng.random() < 0.5 else SERVER
        if hit:
            self.injected[f"{op}:{kind[0]}"] += 1
            raise client_error(op, *kind)

    def _batch(self, op: str, fn: Callable[..., Any], **kw: Any) -> Any:
        self._maybe_raise(op)
        failed, keep = [], []
        for e in kw["Entries"]:
            forced = self.entry_fault(op, e) if self.entry_fault else None
            with self._lock:
                flaky = op in self.ops and self._rng.random() < self.partial
            if forced is not None:
                failed.append(forced)
            elif flaky:
                failed.append({"Id": e["Id"], "Code": "InternalError", "Message": "injected", "SenderFault": False})
            else:
                keep.append(e)
        if failed:
            self.injected[f"{op}:partial"] += len(failed)
        resp = fn(QueueUrl=kw["QueueUrl"], Entries=keep) if keep else {"Successful": []}
        return {"Successful": resp.get("Successful", []), "Failed": list(resp.get("Failed", []) or []) + failed}

    def send_message_batch(self, **kw: Any) -> Any:
        return self._batch("SendMessageBatch", self._c.send_message_batch, **kw)

    def delete_message_batch(self, **kw: Any) -> Any:
        return self._batch("DeleteMessageBatch", self._c.delete_message_batch, **kw)

    def change_message_visibility_batch(self, **kw: Any) -> Any:
        return self._batch("ChangeMessageVisibilityBatch", self._c.change_message_visibility_batch, **kw)

    def receive_message(self, **kw: Any) -> Any:
        self._maybe_raise("ReceiveMessage")
        return self._c.receive_message(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)
