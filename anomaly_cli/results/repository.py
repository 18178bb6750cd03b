"""The results repository: indexes, first-write-wins bulk inserts, re-screen replaces, and
duplicate detection within a test date (the live check and the order-independent sweep).

Decisions:
- Insert-if-absent is ``UpdateOne({_id}, {$setOnInsert: doc}, upsert=True)``: a redelivered or
  concurrent second screening can never overwrite the first result. ``upserted_ids`` of the bulk
  result says which were new.
- Duplicates are looked up through indexes only: ``{source.test_date, audio.sha256}``,
  ``{source.test_date, audio.pcm_sha256}`` and the multikey ``{source.test_date, audio.fp_bands}``
  give candidates, which are verified (exact hash, or ``fingerprint.is_match``). Failed,
  silent, no-speech and corrupt recordings resemble each other and take no part.
- Only recordings of *another child* count: a candidate from the same source document (same
  ``mongo_doc_id``, i.e. the same student's teacher and admin rows) or the same non-null
  ``student_id`` is not a duplicate.
- The flag goes on the later recording by (``subject_created_at``, ``_id``). Flagging is a
  conditional update (reason pushed only when absent, ``$addToSet`` for ``duplicate_of``), so
  running it twice, or from both sides of a pair, flags once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from anomaly_cli.adapters.mongo import mongo_errors
from anomaly_cli.contract import test_date_datetime
from anomaly_cli.errors import MongoWriteFailed
from anomaly_cli.log import get_logger
from anomaly_cli.results import document as D
from anomaly_cli.results.clusters import DuplicateCluster, build_clusters

log = get_logger("results")

#: Reasons whose recordings all look alike: never matched as duplicates.
DUPLICATE_EXCLUDED = ("silent", "no_speech", "corrupt", "unavailable")

INDEXES: tuple[tuple[tuple[str, int], ...], ...] = (
    ((D.F_MONGO_DOC_ID, 1), (D.F_TEST_DATE, 1), (D.F_RECORD_TYPE, 1), (D.F_SUBJECT_ID, 1)),
    ((D.F_TEST_DATE, 1), (D.F_PROCESSED_AT, 1)),
    ((D.F_TEST_DATE, 1), (D.F_IS_ANOMALY, 1)),
    ((D.F_TEST_DATE, 1), (D.F_SHA256, 1)),
    ((D.F_TEST_DATE, 1), (D.F_PCM_SHA256, 1)),
    ((D.F_TEST_DATE, 1), (D.F_FP_BANDS, 1)),  # multikey: one entry per band sub-hash
    ((D.F_TEST_DATE, 1), (D.F_REASON_CODES, 1)),
    ((D.F_TEST_DATE, 1), (D.F_REUSE_OF, 1)),  # multikey: results re-using another row's recording
)
_MATCH_PROJECTION = {
    "_id": 1,
    "source.subject_created_at": 1,
    "source.mongo_doc_id": 1,
    "source.student_id": 1,
    "source.test_date": 1,
    "source.record_type": 1,
    "source.subject_id": 1,
    "source.udise": 1,
    "source.audio_s3_url": 1,
    "inference.duplicate_of": 1,
    "audio.sha256": 1,
    "audio.pcm_sha256": 1,
    "audio.fingerprint": 1,
    "audio.fp_bands": 1,
    "processing.status": 1,
    "inference.reason_codes": 1,
}


@dataclass(frozen=True)
class WriteReport:
    """What a bulk write did: ids newly inserted, ids that already had a result, ids replaced."""

    inserted: tuple[str, ...] = ()
    existed: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()


@dataclass(frozen=True)
class DuplicateLink:
    """``later`` duplicates ``earlier`` (how: sha256 | pcm_sha256 | fingerprint, with the BER)."""

    later: str
    earlier: str
    how: str
    ber: float | None = None


@dataclass
class SweepReport:
    """What :meth:`ResultRepository.dedupe_sweep` found and (unless dry run) flagged."""

    test_date: str
    scanned: int = 0
    clusters: list[DuplicateCluster] = field(default_factory=list)
    links: list[DuplicateLink] = field(default_factory=list)
    would_flag: list[str] = field(default_factory=list)
    newly_flagged: list[str] = field(default_factory=list)
    dry_run: bool = False


class ResultRepository:
    """Reads and writes ``anomaly_detection_results`` (the collection is injected)."""

    def __init__(self, collection: Any):
        self.collection = collection

    # ----- indexes and writes ----------------------------------------------------------------
    def ensure_indexes(self) -> list[str]:
        """Create the spec's three indexes plus the duplicate-search ones (idempotent)."""
        names = []
        with mongo_errors("create result indexes"):
            for keys in INDEXES:
                names.append(self.collection.create_index(list(keys)))
        return names

    def insert_if_absent(self, docs: Sequence[Mapping[str, Any]]) -> WriteReport:
        """One bulk write; the first result of an ``_id`` wins. Raises MongoUnavailable/MongoWriteFailed."""
        if not docs:
            return WriteReport()
        from pymongo import UpdateOne
        from pymongo.errors import BulkWriteError

        ops = [UpdateOne({"_id": d["_id"]}, {"$setOnInsert": dict(d)}, upsert=True) for d in docs]
        try:
            with mongo_errors("result upsert"):
                res = self.collection.bulk_write(ops, ordered=False)
        except BulkWriteError as e:
            raise MongoWriteFailed(f"result upsert refused: {str(e.details.get('writeErrors', ''))[:300]}") from e
        new_ids = {str(v) for v in (res.upserted_ids or {}).values()}
        ids = [d["_id"] for d in docs]
        return WriteReport(
            inserted=tuple(i for i in ids if i in new_ids), existed=tuple(i for i in ids if i not in new_ids)
        )

    def replace(self, docs: Sequence[Mapping[str, Any]]) -> WriteReport:
        """Re-screen: overwrite (or create) each result, keeping its ``created_at`` and counting screens."""
        if not docs:
            return WriteReport()
        from pymongo import ReplaceOne

        ids = [d["_id"] for d in docs]
        with mongo_errors("result rescreen lookup"):
            old = {
                d["_id"]: d
                for d in self.collection.find({"_id": {"$in": ids}}, {"created_at": 1, "processing.screen_count": 1})
            }
        ops = []
        for d in docs:
            new = dict(d)
            prev = old.get(d["_id"])
            if prev:
                new["created_at"] = prev.get("created_at", new["created_at"])
                proc = dict(new["processing"])
                proc["screen_count"] = int((prev.get("processing") or {}).get("screen_count") or 1) + 1
                new["processing"] = proc
            ops.append(ReplaceOne({"_id": d["_id"]}, new, upsert=True))
        with mongo_errors("result rescreen replace"):
            self.collection.bulk_write(ops, ordered=False)
        return WriteReport(inserted=tuple(i for i in ids if i not in old), replaced=tuple(i for i in ids if i in old))

    # ----- duplicates: the live check ----------------------------------------------------------
    def find_matches(self, doc: Mapping[str, Any]) -> list[DuplicateLink]:
        """Indexed candidates for ``doc`` within its test date, verified; each link names the later one."""
        if not eligible(doc):
            return []
        audio = doc.get("audio") or {}
        ors: list[dict[str, Any]] = []
        if audio.get("sha256"):
            ors.append({D.F_SHA256: audio["sha256"]})
        if audio.get("pcm_sha256"):
            ors.append({D.F_PCM_SHA256: audio["pcm_sha256"]})
        if audio.get("fp_bands"):
            ors.append({D.F_FP_BANDS: {"$in": list(audio["fp_bands"])}})
        if not ors:
            return []
        query = {D.F_TEST_DATE: test_date_datetime(D.test_date_of(doc)), "_id": {"$ne": doc["_id"]}, "$or": ors}
        with mongo_errors("duplicate candidates"):
            candidates = list(self.collection.find(query, _MATCH_PROJECTION).limit(500))
        links = []
        for cand in candidates:
            link = match(doc, cand)
            if link is not None:
                links.append(link)
        return links

    def flag_duplicates(self, links: Iterable[DuplicateLink], now: dt.datetime | None = None) -> list[str]:
        """Flag each link's later result (idempotent); returns ids that gained the flag now."""
        now = now or dt.datetime.now(dt.timezone.utc)
        by_later: dict[str, list[DuplicateLink]] = {}
        for link in links:
            by_later.setdefault(link.later, []).append(link)
        flagged = []
        for later, group in sorted(by_later.items()):
            earlier = sorted({g.earlier for g in group})
            best = min(group, key=lambda g: g.ber if g.ber is not None else -1.0)
            reason = {
                "code": "duplicate",
                "value": best.ber,
                "threshold": _match_ber() if best.ber is not None else None,
                "detail": f"same recording as {len(earlier)} other result(s) of this test date ({best.how})",
            }
            with mongo_errors("duplicate flag"):
                res = self.collection.update_one(
                    {"_id": later, D.F_REASON_CODES: {"$ne": "duplicate"}},
                    {
                        "$push": {D.F_REASONS: reason, D.F_REASON_CODES: "duplicate"},
                        "$set": {D.F_IS_ANOMALY: True, D.F_UPDATED_AT: now},
                        "$addToSet": {D.F_DUPLICATE_OF: {"$each": earlier}},
                    },
                )
                if res.modified_count:
                    flagged.append(later)
                else:  # already flagged: only widen duplicate_of
                    self.collection.update_one({"_id": later}, {"$addToSet": {D.F_DUPLICATE_OF: {"$each": earlier}}})
        return flagged

    def check_duplicates(self, docs: Iterable[Mapping[str, Any]]) -> list[str]:
        """The worker's live check for freshly written results; returns ids flagged now."""
        links: list[DuplicateLink] = []
        for doc in docs:
            links.extend(self.find_matches(doc))
        return self.flag_duplicates(links) if links else []

    # ----- duplicates: the order-independent sweep ---------------------------------------------
    def find_duplicate_links(self, test_date: str) -> tuple[dict[str, Mapping[str, Any]], list[DuplicateLink]]:
        """All verified duplicate links of one test date, and the results they were read from (by id).

        Reads the test date's eligible results once and matches them in memory through the same
        hash / band keys the indexes hold; the result does not depend on screening order.
        """
        query = {
            D.F_TEST_DATE: test_date_datetime(test_date),
            D.F_STATUS: D.STATUS_OK,
            D.F_REASON_CODES: {"$nin": list(DUPLICATE_EXCLUDED)},
        }
        with mongo_errors("duplicate sweep read"):
            docs = [d for d in self.collection.find(query, _MATCH_PROJECTION) if eligible(d)]
        buckets: dict[tuple[str, str], list[int]] = {}
        for i, d in enumerate(docs):
            audio = d.get("audio") or {}
            for key in ("sha256", "pcm_sha256"):
                if audio.get(key):
                    buckets.setdefault((key, audio[key]), []).append(i)
            for band in audio.get("fp_bands") or []:
                buckets.setdefault(("band", band), []).append(i)
        pairs: set[tuple[int, int]] = set()
        for members in buckets.values():
            for a_pos, a in enumerate(members):
                for b in members[a_pos + 1 :]:
                    pairs.add((min(a, b), max(a, b)))
        links = [link for a, b in sorted(pairs) if (link := match(docs[a], docs[b])) is not None]
        links.sort(key=lambda l: (l.later, l.earlier))
        return {str(d["_id"]): d for d in docs}, links

    def dedupe_sweep(self, test_date: str, dry_run: bool = False) -> SweepReport:
        """Find every duplicate of ``test_date`` and (unless ``dry_run``) flag the later recordings.

        ``would_flag`` counts results that would *gain* the flag (not links, not results already
        flagged), in a dry run and a real one alike; ``newly_flagged`` is what a real run flagged.
        """
        docs, links = self.find_duplicate_links(test_date)
        clusters = build_clusters([(l.later, l.earlier) for l in links], docs)
        would = sorted({l.later for l in links if "duplicate" not in D.reason_codes(docs.get(l.later) or {})})
        report = SweepReport(
            test_date=test_date, scanned=len(docs), clusters=clusters, links=links, would_flag=would, dry_run=dry_run
        )
        if not dry_run and links:
            report.newly_flagged = self.flag_duplicates(links)
        log.info(
            "dedupe_sweep_completed",
            test_date=test_date,
            scanned=report.scanned,
            clusters=len(clusters),
            links=len(links),
            newly_flagged=len(report.newly_flagged),
            dry_run=dry_run,
        )
        return report


# --- matching ---------------------------------------------------------------------------------
def eligible(doc: Mapping[str, Any]) -> bool:
    """Whether a result takes part in duplicate matching at all."""
    if (doc.get("processing") or {}).get("status") != D.STATUS_OK:
        return False
    return not set(D.reason_codes(doc)) & set(DUPLICATE_EXCLUDED)


def _same_child(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    sa, sb = a.get("source") or {}, b.get("source") or {}
    if sa.get("mongo_doc_id") and sa.get("mongo_doc_id") == sb.get("mongo_doc_id"):
        return True
    return bool(sa.get("student_id")) and sa.get("student_id") == sb.get("student_id")


def match(a: Mapping[str, Any], b: Mapping[str, Any]) -> DuplicateLink | None:
    """A verified link between two results of one test date, or None."""
    if a.get("_id") == b.get("_id") or not (eligible(a) and eligible(b)) or _same_child(a, b):
        return None
    aa, ab = a.get("audio") or {}, b.get("audio") or {}
    later, earlier = (a, b) if D.order_key(a) > D.order_key(b) else (b, a)
    if aa.get("sha256") and aa.get("sha256") == ab.get("sha256"):
        return DuplicateLink(str(later["_id"]), str(earlier["_id"]), "sha256")
    if aa.get("pcm_sha256") and aa.get("pcm_sha256") == ab.get("pcm_sha256"):
        return DuplicateLink(str(later["_id"]), str(earlier["_id"]), "pcm_sha256")
    if aa.get("fingerprint") and ab.get("fingerprint"):
        from anomaly_cli.audio import fingerprint as fp

        fa, fb = fp.from_text(aa["fingerprint"]), fp.from_text(ab["fingerprint"])
        if fp.is_match(fa, fb):
            return DuplicateLink(
                str(later["_id"]), str(earlier["_id"]), "fingerprint", round(float(fp.bit_error_rate(fa, fb)), 4)
            )
    return None


def _match_ber() -> float:
    from anomaly_cli.audio import fingerprint as fp

    return float(fp.MATCH_BER)
