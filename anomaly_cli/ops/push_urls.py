"""Ad-hoc recordings into the pipeline: audio URLs -> contract-valid ``adhoc`` work items.

Input: one URL per line, or a CSV whose header names ``url`` (or ``audio_url``) and optionally
``student_id``, ``udise``, ``test_date``. Decisions (the issue is silent on them):

- ``mongo_doc_id`` is the first 24 hex digits of SHA-256(url) (ObjectId-shaped, stable: pushing
  the same URL twice gives the same result ``_id``, so the worker screens it once);
- ``subject_id`` is ``adhoc-`` + 12 hex digits of the same hash;
- ``source_collection`` is ``adhoc:<input name>`` (``adhoc:stdin`` for standard input), so ad-hoc
  results never collide with, or are counted as, a real source collection's;
- ``test_date`` is the row's, else ``--test-date``, else today (UTC);
- a URL that cannot be fetched at all (bad scheme, no key) is a bad row reported with its line.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import uuid
from typing import Iterable, Iterator, TextIO

from anomaly_cli.config import validate_test_date
from anomaly_cli.contract import ADHOC, WorkItem
from anomaly_cli.errors import AnomalyError, ConfigError
from anomaly_cli.ops.seed import BadRow
from anomaly_cli.redact import redact_url

URL_COLUMNS = ("url", "audio_url", "audio_s3_url")


def adhoc_item(
    url: str,
    *,
    source_name: str,
    test_date: str,
    subject_name: str,
    student_id: str | None = None,
    udise: str | None = None,
    now: dt.datetime | None = None,
) -> WorkItem:
    """The work item of one ad-hoc URL (raises ``InvalidUrl`` / ``UrlNotAllowed`` / ``ConfigError``)."""
    from anomaly_cli.adapters.urls import parse_audio_url

    url = url.strip()
    parse_audio_url(url)
    validate_test_date(test_date, field_name="test_date")
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    now = now or dt.datetime.now(dt.timezone.utc)
    return WorkItem(
        source_collection=f"adhoc:{source_name}",
        mongo_doc_id=digest[:24],
        test_date=test_date,
        record_type=ADHOC,
        subject_id=f"adhoc-{digest[:12]}",
        subject_name=subject_name,
        audio_s3_url=url,
        source_updated_at=now,
        subject_created_at=now,
        student_id=(student_id or None),
        udise=(udise or None),
        trace_id=str(uuid.uuid4()),
        discovered_at=now,
    )


def read_urls(
    fh: TextIO, *, source_name: str, default_test_date: str, subject_name: str, now: dt.datetime | None = None
) -> Iterator[WorkItem | BadRow]:
    """Yield one item (or a :class:`BadRow`) per non-blank, non-comment input line (streamed)."""
    first = fh.readline()
    skipped = 0
    while first and (not first.strip() or first.lstrip().startswith("#")):
        skipped += 1
        first = fh.readline()
    if not first:
        return
    header = [c.strip().lower() for c in next(csv.reader([first]))]
    url_col = next((c for c in URL_COLUMNS if c in header), None)
    if url_col is None:
        yield from _plain(_chain([first], fh), source_name, default_test_date, subject_name, now, start=skipped + 1)
        return
    reader = csv.DictReader(fh, fieldnames=header)
    for row in reader:
        line = reader.line_num + 1 + skipped  # the header (and lines before it) were read before the DictReader
        if not any((v or "").strip() for k, v in row.items() if k is not None):
            continue
        try:
            yield adhoc_item(
                row.get(url_col) or "",
                source_name=source_name,
                test_date=(row.get("test_date") or "").strip() or default_test_date,
                subject_name=subject_name,
                student_id=(row.get("student_id") or "").strip() or None,
                udise=(row.get("udise") or "").strip() or None,
                now=now,
            )
        except AnomalyError as e:
            yield BadRow(line, _why(e, row.get(url_col) or ""))


def _plain(
    lines: Iterable[str], source_name: str, test_date: str, subject_name: str, now: dt.datetime | None, start: int = 1
) -> Iterator[WorkItem | BadRow]:
    for line, text in enumerate(lines, start):
        url = text.strip()
        if not url or url.startswith("#"):
            continue
        try:
            yield adhoc_item(url, source_name=source_name, test_date=test_date, subject_name=subject_name, now=now)
        except AnomalyError as e:
            yield BadRow(line, _why(e, url))


def _chain(first: list[str], rest: TextIO) -> Iterator[str]:
    yield from first
    yield from rest


def _why(e: AnomalyError, url: str) -> str:
    return f"{e.code}: {redact_url(url.strip())[:200]}" if not isinstance(e, ConfigError) else str(e)
