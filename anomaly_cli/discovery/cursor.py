"""Discovery's sorted rows, surviving the death of the aggregation cursor.

A backfill of 10^6 rows keeps one sorted aggregation cursor open for minutes. MongoDB kills a
cursor idle for ``cursorTimeoutMillis`` (10 minutes by default; discovery idles while SQS pushes
back), a session after 30 minutes, and a failover of the member it reads from ends the cursor
with a network error. :class:`ResumableRows` hands out pages of :class:`Candidate` rows and, when
the cursor dies (:class:`~anomaly_cli.errors.CursorLost`, or MongoDB unavailable), opens a new one
**strictly after the last row it handed out**:

- the position is the order key of the last row of the last page returned; a page is returned
  whole or not at all (a cursor dying inside a page drops the part read and re-reads it), so a
  row is neither skipped nor handed out twice;
- the new cursor's ``$match`` starts at the position's timestamp and the exact tuple comparison
  (``key > position``) is done in Python, as for an incremental run's watermark;
- rows without a date (invalid, counted but never sent) sort before every date in MongoDB: when
  a cursor dies before the first dated row was handed out, the new cursor skips as many keyless
  rows as were already handed out;
- reopening is bounded: after ``max_reopens`` deaths in a row with no page returned between them,
  the last error is raised (the run fails, the watermark stays where the last decided row put it).
  A network error waits (``backoff``, doubling to ``max_backoff``) before reopening, on the stop
  flag so that a signal still stops the run; an idle-timeout kill reopens at once. The numbers
  are the policy :data:`anomaly_cli.retry.CURSOR_REOPEN`, run by tenacity.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterator, Mapping

from anomaly_cli.adapters.mongo import mongo_errors
from anomaly_cli.discovery.state import WatermarkKey, watermark_doc
from anomaly_cli.errors import CursorLost, MongoUnavailable
from anomaly_cli.log import get_logger
from anomaly_cli.retry import CURSOR_REOPEN

log = get_logger("discovery")

MAX_REOPENS = CURSOR_REOPEN.attempts - 1 if CURSOR_REOPEN.attempts else 8
BACKOFF_SECONDS = CURSOR_REOPEN.first
MAX_BACKOFF_SECONDS = CURSOR_REOPEN.cap


class StopRequested(Exception):
    """Raised when the stop flag was set while waiting to reopen a cursor (the run is interrupted)."""


class ResumableRows:
    """Pages of candidates in discovery order from cursors that may die (see the module doc).

    ``open_cursor(after)`` returns ``(cursor, candidates)``: the driver's cursor (closed when it is
    replaced) and an iterator of :class:`~anomaly_cli.discovery.service.Candidate` with a key
    strictly after ``after`` (all of them for ``None``); ``take(iterator, limit)`` cuts
    one page from it (``service.take_page``'s rule: rows equal on the whole key stay together).
    """

    def __init__(
        self,
        open_cursor: Callable[[WatermarkKey | None], tuple[Any, Iterator[Any]]],
        take: Callable[[Any, int], list[Any]],
        peekable: Callable[[Iterator[Any]], Any],
        *,
        after: WatermarkKey | None,
        wait: Callable[[float], bool],
        max_reopens: int = MAX_REOPENS,
        backoff: float = BACKOFF_SECONDS,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        context: Mapping[str, Any] | None = None,
    ):
        self._open, self._take, self._peekable = open_cursor, take, peekable
        self.position = after
        self._wait = wait
        self.max_reopens, self.backoff, self.max_backoff = max_reopens, backoff, max_backoff
        self.context = dict(context or {})
        self.keyless_out = 0  # keyless rows handed out while no dated row was (see the module doc)
        self.reopens = 0
        self._it: Any = None
        self._cursor: Any = None

    def _start(self) -> None:
        self.close()
        self._cursor, it = self._open(self.position)
        if self.position is None and self.keyless_out:
            it = _skip(it, self.keyless_out)
        self._it = self._peekable(it)

    def next_page(self, limit: int) -> list[Any]:
        """The next page (empty at the end), reopening the cursor as often as it dies."""
        policy = replace(CURSOR_REOPEN, attempts=self.max_reopens + 1, first=self.backoff, cap=self.max_backoff)
        network_waits = 0

        def delay(attempt: int, error: BaseException) -> float:
            nonlocal network_waits
            if isinstance(error, CursorLost):  # killed when idle: the server is fine, reopen at once
                return 0.0
            network_waits += 1
            return policy.delay(network_waits)

        def sleep(seconds: float) -> None:
            if seconds > 0 and self._wait(seconds):
                raise StopRequested()

        retrying = policy.retrying(sleep=sleep, retry_on=lambda e: isinstance(e, MongoUnavailable), wait=delay)
        for attempt in retrying:
            with attempt:
                try:
                    with mongo_errors("discovery page fetch"):
                        if self._it is None:
                            self._start()
                        page = self._take(self._it, limit)
                except MongoUnavailable as e:  # CursorLost is one
                    self.reopens += 1
                    self.close()
                    log.warning(
                        "discovery_cursor_reopened",
                        reason=type(e.__cause__ or e).__name__,
                        after=watermark_doc(self.position) if self.position else None,
                        attempt=attempt.retry_state.attempt_number,
                        **self.context,
                    )
                    raise
        for c in page:
            if c.key is not None:
                self.position = c.key
            elif self.position is None:
                self.keyless_out += 1
        return page

    def close(self) -> None:
        """Close the current cursor (a dead one may refuse: nothing is lost then)."""
        cursor, self._cursor, self._it = self._cursor, None, None
        close = getattr(cursor, "close", None)
        if close:
            try:
                close()
            except Exception:  # noqa: BLE001 - closing a dead cursor may fail; nothing is lost
                pass


def _skip(it: Iterator[Any], n: int) -> Iterator[Any]:
    for i, c in enumerate(it):
        if i >= n:
            yield c
