"""What happened to one message: a small frozen value, produced for every message, never raised.

The loop decides from ``kind`` alone what to do with the message:

=================  =======  ===================================================================
kind               acked    why
=================  =======  ===================================================================
succeeded          yes      result written (first write wins), then acked
failed_terminal    yes      permanent failure: terminal result written, then acked
result_exists      yes      a result already existed (redelivery, rerun, concurrent twin)
source_gone        yes      source row deleted or its audio_url changed: nothing to screen
transient          no       visibility set to a backoff from the receive count (redrive -> DLQ)
deferred           no       a twin delivery is being screened elsewhere: short visibility, then
                            it comes back and finds the result
released           no       visibility 0: shutdown, or the access-denied breaker tripped
malformed          no       body breaks the contract: left alone so redrive moves it to the DLQ
=================  =======  ===================================================================
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

from anomaly_cli.retry import REDELIVERY

SUCCEEDED = "succeeded"
FAILED_TERMINAL = "failed_terminal"
RESULT_EXISTS = "result_exists"
SOURCE_GONE = "source_gone"
TRANSIENT = "transient"
RELEASED = "released"
DEFERRED = "deferred"
MALFORMED = "malformed"
ACKED_KINDS = frozenset({SUCCEEDED, FAILED_TERMINAL, RESULT_EXISTS, SOURCE_GONE})

#: Retry delay of a transient failure: BASE * 2**(receive_count - 1), capped (seconds): the
#: redelivery policy (:data:`anomaly_cli.retry.REDELIVERY`).
RETRY_BASE_SECONDS = int(REDELIVERY.first)
RETRY_MAX_SECONDS = int(REDELIVERY.cap)


def retry_visibility(receive_count: int) -> int:
    """Visibility for a transiently failed message: grows with each delivery, capped at 15 min."""
    n = max(1, int(receive_count))
    return int(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(n - 1, 20)))


@dataclass(frozen=True)
class Outcome:
    """The fate of one message (``result_id`` is empty for malformed messages)."""

    message_id: str
    kind: str
    result_id: str = ""
    _: KW_ONLY  # what the outcome says is named at every call site
    stage: str = ""
    error_code: str = ""
    detail: str = ""
    is_anomaly: bool = False
    latency_s: float = 0.0

    @property
    def acked(self) -> bool:
        """Whether the message is deleted from the queue."""
        return self.kind in ACKED_KINDS
