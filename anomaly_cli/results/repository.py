"""The results repository: indexes, first-write-wins bulk inserts, re-screen replaces, and
duplicate detection within a test date (the live check and the order-independent sweep).

Decisions:
- Insert-if-absent is ``UpdateOne({_id}, {$setOnInsert: doc}, upsert=True)``: a redelivered or
  concurrent second screening can never overwrite the first result. ``upserted_ids`` of the bulk
  result says which were new.
- Duplicates are looked up through indexes only: ``{source.test_date, audio.sha256}`` and
  ``{source.test_date, audio.pcm_sha256}`` give exact candidates; the multikey
  ``{source.test_date, audio.fp_bands}`` gives fingerprint candidates, ranked by keys shared in
  one aggregation (at most :data:`MAX_FP_CANDIDATES` are verified, so a popular key cannot make
  a lookup verify the date). Candidates are verified (exact hash, or the fingerprint aligned at
  every offset, ``fingerprint.is_match``). Keys are 48-bit (key format 2, docs/fingerprint.md):
  measured, a lookup among 10^5 results of a date meets a few hundred of them, not most.
- Results stored with format-1 keys (before format 2) are reached by the sweep
  (``results dedupe``), which also asks format-1 keys computed from each result's stored words;
  the live check asks format 2 only. Exact hashes need no keys and match across formats.
- Every screening outcome takes part (issue 17): an exact byte copy or a PCM-identical copy of a
  recording that was no_speech, silent, truncated or corrupt is still a copy filed under another
  child. Only what is identical by construction is left out: empty files (the SHA-256 of no
  bytes) and digital silence (``pcm_sha256`` is null for it); a fingerprint needs >= 1 s of sound.
- A copy between rows of *one student* (same source document, i.e. the teacher and admin rows,
  or the same non-null ``student_id``) is re-use, not a duplicate across children: it goes into
  ``inference.reuse_of`` of the later row, informational (no reason, no anomaly) unless
  ``REUSE_WITHIN_STUDENT_IS_ANOMALY`` makes it reason ``reused_within_student`` and an anomaly.
- The flag goes on the later recording by (``subject_created_at``, ``_id``). Flagging is a
  conditional update (reason pushed only when absent, ``$addToSet`` for ``duplicate_of`` and
  ``reuse_of``), so running it twice, or from both sides of a pair, flags once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from anomaly_cli.adapters.mongo import mongo_errors, replace_each, upsert_absent
from anomaly_cli.adapters.protocols import Collection
from anomaly_cli.contract import test_date_datetime
from anomaly_cli.log import get_logger
from anomaly_cli.results import document as D
from anomaly_cli.results.clusters import (
    KIND_DUPLICATE,
    KIND_REUSE,
    DuplicateCluster,
    build_clusters,
    fill_members,
    stored_links,
)

log = get_logger("results")

#: Fingerprint candidates verified per lookup at most, the ones sharing the most keys first.
MAX_FP_CANDIDATES = 20
#: Exact-hash candidates read per lookup at most (a file copied to more children is one cluster anyway).
MAX_HASH_CANDIDATES = 500
#: SHA-256 of zero bytes: empty uploads are identical by construction, never copies.
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#: Reason code of re-use within one student, when REUSE_WITHIN_STUDENT_IS_ANOMALY is set.
REUSE_REASON = "reused_within_student"

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
    """``later`` is the same recording as ``earlier`` (how: sha256 | pcm_sha256 | fingerprint, with
    the BER and where ``later`` starts in ``earlier``); ``same_student``: re-use, not a duplicate."""

    later: str
    earlier: str
    how: str
    ber: float | None = None
    same_student: bool = False
    offset_s: float | None = None


@dataclass(frozen=True)
class SweepFindings:
    """What a sweep read: results looked up, the linked results by id, every verified link."""

    scanned: int
    docs: Mapping[str, Mapping[str, Any]]
    links: list[DuplicateLink]


@dataclass
class SweepReport:
    """What :meth:`ResultRepository.dedupe_sweep` found and (unless dry run) flagged."""

    test_date: str
    scanned: int = 0
    clusters: list[DuplicateCluster] = field(default_factory=list)
    links: list[DuplicateLink] = field(default_factory=list)
    would_flag: list[str] = field(default_factory=list)
    newly_flagged: list[str] = field(default_factory=list)
    reuse_clusters: list[DuplicateCluster] = field(default_factory=list)
    reuse_links: list[DuplicateLink] = field(default_factory=list)
    dry_run: bool = False


class ResultRepository:
    """Reads and writes ``anomaly_detection_results`` (the collection is injected)."""

    def __init__(self, collection: Collection, *, reuse_is_anomaly: bool = False):
        self.collection = collection
        self.reuse_is_anomaly = reuse_is_anomaly

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
        new_ids = upsert_absent(self.collection, docs, what="result upsert")
        ids = [d["_id"] for d in docs]
        return WriteReport(
            inserted=tuple(i for i in ids if i in new_ids), existed=tuple(i for i in ids if i not in new_ids)
        )

    def replace(self, docs: Sequence[Mapping[str, Any]]) -> WriteReport:
        """Re-screen: overwrite (or create) each result, keeping its ``created_at`` and counting screens."""
        if not docs:
            return WriteReport()
        ids = [d["_id"] for d in docs]
        with mongo_errors("result rescreen lookup"):
            old = {
                d["_id"]: d
                for d in self.collection.find({"_id": {"$in": ids}}, {"created_at": 1, "processing.screen_count": 1})
            }
        new_docs = []
        for d in docs:
            new = dict(d)
            prev = old.get(d["_id"])
            if prev:
                new["created_at"] = prev.get("created_at", new["created_at"])
                proc = dict(new["processing"])
                proc["screen_count"] = int((prev.get("processing") or {}).get("screen_count") or 1) + 1
                new["processing"] = proc
            new_docs.append(new)
        replace_each(self.collection, new_docs, what="result rescreen replace")
        return WriteReport(inserted=tuple(i for i in ids if i not in old), replaced=tuple(i for i in ids if i in old))

    # ----- duplicates: the live check ----------------------------------------------------------
    def find_matches(self, doc: Mapping[str, Any], query_keys: Sequence[int] | None = None) -> list[DuplicateLink]:
        """Indexed candidates for ``doc`` within its test date, verified; each link names the later one.

        ``query_keys`` are the keys to look fingerprint candidates up with (the screening's
        ``fp_query``: its stored keys and their variants with the least reliable bits flipped);
        without them (``results dedupe``), :func:`fp_lookup_keys` of the stored result.
        """
        audio = doc.get("audio") or {}
        base = {D.F_TEST_DATE: test_date_datetime(D.test_date_of(doc)), "_id": {"$ne": doc["_id"]}}
        ors: list[dict[str, Any]] = []
        if _hash_usable(audio.get("sha256")):
            ors.append({D.F_SHA256: audio["sha256"]})
        if audio.get("pcm_sha256"):
            ors.append({D.F_PCM_SHA256: audio["pcm_sha256"]})
        candidates: dict[str, Mapping[str, Any]] = {}
        with mongo_errors("duplicate candidates"):
            if ors:
                for cand in self.collection.find({**base, "$or": ors}, _MATCH_PROJECTION).limit(MAX_HASH_CANDIDATES):
                    candidates[str(cand["_id"])] = cand
            keys = fp_lookup_keys(audio) if query_keys is None else to_int_keys(query_keys)
            if keys and audio.get("fingerprint"):
                for cand in self.collection.aggregate(_ranked_candidates(base, keys)):
                    candidates.setdefault(str(cand["_id"]), cand)
        links = []
        for found in candidates.values():
            link = match(doc, found)
            if link is not None:
                links.append(link)
        return links

    def flag_duplicates(self, links: Iterable[DuplicateLink], now: dt.datetime | None = None) -> list[str]:
        """Flag each link's later result (idempotent); returns ids that gained the ``duplicate`` flag now.

        Links between rows of one student are recorded as re-use (:meth:`mark_reuse`) instead.
        """
        now = now or dt.datetime.now(dt.timezone.utc)
        links = list(links)
        self.mark_reuse([link for link in links if link.same_student], now)
        by_later: dict[str, list[DuplicateLink]] = {}
        for link in links:
            if not link.same_student:
                by_later.setdefault(link.later, []).append(link)
        flagged = []
        for later, group in sorted(by_later.items()):
            earlier = sorted({g.earlier for g in group})
            best = min(group, key=lambda g: g.ber if g.ber is not None else -1.0)
            reason = {
                "code": "duplicate",
                "value": best.ber,
                "threshold": _match_ber() if best.ber is not None else None,
                "detail": f"same recording as {len(earlier)} other child(ren)'s result(s) of this test date "
                f"({best.how}{_where(best)})",
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

    def mark_reuse(self, links: Iterable[DuplicateLink], now: dt.datetime | None = None) -> list[str]:
        """Record re-use within one student on each link's later row (idempotent); ids newly marked.

        Informational (``inference.reuse_of`` only) unless ``reuse_is_anomaly``: then reason
        :data:`REUSE_REASON` and ``is_anomaly``, as for a duplicate.
        """
        now = now or dt.datetime.now(dt.timezone.utc)
        by_later: dict[str, set[str]] = {}
        for link in links:
            by_later.setdefault(link.later, set()).add(link.earlier)
        marked = []
        for later, earlier_set in sorted(by_later.items()):
            earlier = sorted(earlier_set)
            with mongo_errors("reuse mark"):
                res = self.collection.update_one(
                    {"_id": later, D.F_REUSE_OF: {"$not": {"$all": earlier}}},
                    {"$addToSet": {D.F_REUSE_OF: {"$each": earlier}}, "$set": {D.F_UPDATED_AT: now}},
                )
                if res.modified_count:
                    marked.append(later)
                if self.reuse_is_anomaly:
                    reason = {
                        "code": REUSE_REASON,
                        "value": None,
                        "threshold": None,
                        "detail": f"same recording as {len(earlier)} other row(s) of this student (teacher/admin)",
                    }
                    self.collection.update_one(
                        {"_id": later, D.F_REASON_CODES: {"$ne": REUSE_REASON}},
                        {
                            "$push": {D.F_REASONS: reason, D.F_REASON_CODES: REUSE_REASON},
                            "$set": {D.F_IS_ANOMALY: True},
                        },
                    )
        if marked:
            log.info("reuse_within_student_marked", result_ids=marked)
        return marked

    def check_duplicates(
        self, docs: Iterable[Mapping[str, Any]], query_keys: Mapping[str, Sequence[int]] | None = None
    ) -> list[str]:
        """The worker's live check for freshly written results; returns ids flagged ``duplicate`` now.

        ``query_keys`` maps a result id to its screening's lookup keys (``fp_query``).
        """
        links: list[DuplicateLink] = []
        for doc in docs:
            links.extend(self.find_matches(doc, (query_keys or {}).get(str(doc["_id"]))))
        return self.flag_duplicates(links) if links else []

    # ----- duplicates: the order-independent sweep ---------------------------------------------
    def find_duplicate_links(self, test_date: str) -> SweepFindings:
        """All verified links of one test date (duplicates and re-use), and the results they join.

        Every result of the date is looked up exactly as the live check does (the same indexed
        queries, its stored keys), streamed one at a time: memory holds the links, not the date,
        and the outcome does not depend on screening order. Cost: one indexed lookup per result.
        """
        links: dict[tuple[str, str], DuplicateLink] = {}
        involved: dict[str, Mapping[str, Any]] = {}
        scanned = 0
        with mongo_errors("duplicate sweep read"):
            cursor = self.collection.find({D.F_TEST_DATE: test_date_datetime(test_date)}, _MATCH_PROJECTION)
            for doc in cursor.sort([("_id", 1)]):
                scanned += 1
                found = self.find_matches(doc)
                for link in found:
                    links.setdefault((link.later, link.earlier), link)
                if found:
                    involved[str(doc["_id"])] = doc
            missing = sorted({i for pair in links for i in pair} - set(involved))
            for i in range(0, len(missing), 1000):
                for doc in self.collection.find({"_id": {"$in": missing[i : i + 1000]}}, _MATCH_PROJECTION):
                    involved[str(doc["_id"])] = doc
        return SweepFindings(scanned, involved, sorted(links.values(), key=lambda link: (link.later, link.earlier)))

    def dedupe_sweep(self, test_date: str, dry_run: bool = False) -> SweepReport:
        """Find every duplicate of ``test_date`` and (unless ``dry_run``) flag the later recordings.

        ``would_flag`` counts results that would *gain* the flag (not links, not results already
        flagged), in a dry run and a real one alike; ``newly_flagged`` is what a real run flagged.
        ``clusters`` join the stored flags and the links found now: the sweep re-finds what the
        index finds from stored keys, while the live check also looked up with the screening's
        sub-frame keys (a copy trimmed by a fraction of 32 ms), which are not stored.
        """
        found = self.find_duplicate_links(test_date)
        docs, links = dict(found.docs), found.links
        dup = [link for link in links if not link.same_student]
        reuse = [link for link in links if link.same_student]
        # clusters = what is flagged already plus what this sweep found (flags are never taken
        # back), so after a real run they are exactly what results inspect reads from the flags
        stored_dup, dup_docs = stored_links(self.collection, test_date, kind=KIND_DUPLICATE)
        stored_reuse, reuse_docs = stored_links(self.collection, test_date, kind=KIND_REUSE)
        for k, v in {**dup_docs, **reuse_docs}.items():
            docs.setdefault(k, v)
        fill_members(self.collection, stored_dup + stored_reuse, docs)
        clusters = build_clusters([(link.later, link.earlier) for link in dup] + stored_dup, docs)
        reuse_clusters = build_clusters(
            [(link.later, link.earlier) for link in reuse] + stored_reuse, docs, kind=KIND_REUSE
        )
        would = sorted({link.later for link in dup if "duplicate" not in D.reason_codes(docs.get(link.later) or {})})
        report = SweepReport(
            test_date=test_date,
            scanned=found.scanned,
            clusters=clusters,
            links=dup,
            would_flag=would,
            reuse_clusters=reuse_clusters,
            reuse_links=reuse,
            dry_run=dry_run,
        )
        if not dry_run and links:
            report.newly_flagged = self.flag_duplicates(links)  # re-use links are marked there too
        log.info(
            "dedupe_sweep_completed",
            test_date=test_date,
            scanned=report.scanned,
            clusters=len(clusters),
            links=len(dup),
            reuse_links=len(reuse),
            newly_flagged=len(report.newly_flagged),
            dry_run=dry_run,
        )
        return report


# --- matching ---------------------------------------------------------------------------------
def fp_lookup_keys(audio: Mapping[str, Any]) -> list[int]:
    """Keys to look a *stored* result up with (no audio at hand): its stored ``audio.fp_bands``
    plus what its stored words give (:func:`fingerprint.lookup_keys_of_words`: the word keys that
    steady recordings store, and format-1 keys, which reach results stored before key format 2)."""
    from anomaly_cli.audio import fingerprint as fp

    keys = set(to_int_keys(audio.get("fp_bands")))
    if audio.get("fingerprint"):
        try:
            keys.update(fp.lookup_keys_of_words(fp.from_text(audio["fingerprint"])))
        except (ValueError, TypeError):
            pass  # a damaged stored fingerprint is no evidence either way
    return sorted(keys)


def to_int_keys(keys: Any) -> list[int]:
    """Keys as plain ints (anything else, a bool included, dropped)."""
    return [int(k) for k in (keys or []) if isinstance(k, int) and not isinstance(k, bool)]


def _hash_usable(sha: Any) -> bool:
    return bool(sha) and sha != EMPTY_SHA256


def _ranked_candidates(base: Mapping[str, Any], keys: list[int]) -> list[dict[str, Any]]:
    """Results sharing any of ``keys`` (the multikey index), the :data:`MAX_FP_CANDIDATES` sharing most."""
    return [
        {"$match": {**base, D.F_FP_BANDS: {"$in": keys}}},
        {"$addFields": {"_shared": {"$size": {"$setIntersection": [{"$ifNull": ["$audio.fp_bands", []]}, keys]}}}},
        {"$sort": {"_shared": -1, "_id": 1}},
        {"$limit": MAX_FP_CANDIDATES},
        {"$project": _MATCH_PROJECTION},
    ]


def _same_child(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    sa, sb = a.get("source") or {}, b.get("source") or {}
    if sa.get("mongo_doc_id") and sa.get("mongo_doc_id") == sb.get("mongo_doc_id"):
        return True
    return bool(sa.get("student_id")) and sa.get("student_id") == sb.get("student_id")


def match(a: Mapping[str, Any], b: Mapping[str, Any]) -> DuplicateLink | None:
    """A verified link between two results of one test date, or None (any screening outcome)."""
    if a.get("_id") == b.get("_id") or D.test_date_of(a) != D.test_date_of(b):
        return None
    aa, ab = a.get("audio") or {}, b.get("audio") or {}
    later, earlier = (a, b) if D.order_key(a) > D.order_key(b) else (b, a)
    ids = (str(later["_id"]), str(earlier["_id"]))
    same = _same_child(a, b)
    if _hash_usable(aa.get("sha256")) and aa.get("sha256") == ab.get("sha256"):
        return DuplicateLink(*ids, "sha256", same_student=same)
    if aa.get("pcm_sha256") and aa.get("pcm_sha256") == ab.get("pcm_sha256"):
        return DuplicateLink(*ids, "pcm_sha256", same_student=same)
    if aa.get("fingerprint") and ab.get("fingerprint"):
        from anomaly_cli.audio import fingerprint as fp

        try:
            fl = fp.from_text((later.get("audio") or {})["fingerprint"])
            fe = fp.from_text((earlier.get("audio") or {})["fingerprint"])
        except ValueError:
            return None  # a damaged stored fingerprint is no evidence either way
        al = fp.align(fe, fl)
        if al.ber <= fp.MATCH_BER:
            return DuplicateLink(
                *ids, "fingerprint", round(al.ber, 4), same_student=same, offset_s=round(al.offset_s, 2)
            )
    return None


def _where(link: DuplicateLink) -> str:
    if link.offset_s is None or abs(link.offset_s) < 0.1:
        return ""
    return f", starting {link.offset_s:+.1f} s into it"


def _match_ber() -> float:
    from anomaly_cli.audio import fingerprint as fp

    return float(fp.MATCH_BER)
