"""Re-enqueue results of a test date with the ``rescreen`` attribute (the worker overwrites them).

The work item is rebuilt from the stored ``source`` fields (all 13 of them are kept), with a
fresh ``trace_id`` and ``discovered_at``: the result ``_id`` stays the same, so the worker
replaces the old result instead of adding one. Nothing is deleted by hand.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from typing import Any, Callable, Iterator

from anomaly_cli.adapters.protocols import ReadCollection, WorkQueue
from anomaly_cli.contract import WorkItem
from anomaly_cli.errors import ConfigError
from anomaly_cli.ops.results import Filters, _agg, iter_docs
from anomaly_cli.ops.seed import BadRow, SendReport, send_items
from anomaly_cli.results import document as D

STATUSES = (D.STATUS_OK, D.STATUS_FAILED)


def version_key(version: str) -> list[Any]:
    """Natural order of model versions: ``v2 < v10``, ``2026.1.9 < 2026.1.10``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", version or "") if p]


def build_match(
    test_date: str,
    *,
    status: str | None = None,
    reason: str | None = None,
    model_older_than: str | None = None,
    collection: ReadCollection | None = None,
) -> dict[str, Any]:
    """The ``$match`` of the results to rescreen."""
    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status must be one of {', '.join(STATUSES)}, got {status!r}", field="--status")
    match = Filters(test_date, reason=reason).match()
    if status:
        match[D.F_STATUS] = status
    if model_older_than:
        assert collection is not None, "model_older_than needs the results collection"
        # Versions are compared in Python over the few distinct values (natural order), then
        # matched with $in: string comparison in Mongo would put "v10" before "v9".
        versions = [
            row["_id"]
            for row in _agg(collection, [{"$match": match}, {"$group": {"_id": "$processing.model_version"}}])
        ]
        older = [v for v in versions if v is None or version_key(str(v)) < version_key(model_older_than)]
        match[D.F_MODEL_VERSION] = {"$in": older}
    return match


def items_to_rescreen(
    collection: ReadCollection, match: dict[str, Any], *, now: dt.datetime | None = None
) -> Iterator[WorkItem | BadRow]:
    """Stream the work items of the matching results (a result missing source fields is a BadRow)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    for n, doc in enumerate(iter_docs(collection, match, {"source": 1}), 1):
        try:
            item = D.work_item_of(doc)
        except (TypeError, ValueError) as e:
            yield BadRow(n, f"result {doc.get('_id')}: source fields incomplete ({e})")
            continue
        yield dataclasses.replace(item, trace_id=str(uuid.uuid4()), discovered_at=now)


def rescreen(
    collection: ReadCollection,
    queue: WorkQueue | None,
    test_date: str,
    *,
    status: str | None = None,
    reason: str | None = None,
    model_older_than: str | None = None,
    group_id: str = "",
    dry_run: bool = False,
    on_progress: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """Re-enqueue matching results with the rescreen attribute; ``dry_run`` only counts."""
    match = build_match(
        test_date, status=status, reason=reason, model_older_than=model_older_than, collection=collection
    )
    return send_items(
        queue,
        items_to_rescreen(collection, match),
        group_id=group_id,
        rescreen=True,
        dry_run=dry_run,
        on_progress=on_progress,
    )
