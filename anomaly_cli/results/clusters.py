"""What a duplicate cluster is: the ONE definition that ``results inspect``, ``results dedupe`` and
the report count with.

A *duplicate link* says result ``later`` is the same recording as result ``earlier`` (the flag
``duplicate`` on ``later``, with ``earlier`` in its ``inference.duplicate_of``). A *cluster* is a
connected component of the links of one test date: every result reachable from another through
links, in either direction. So A <- B, A <- C and B <- C are one cluster of three recordings (one
original, two copies), never "2 clusters" (distinct earlier ids) nor "3" (links).

- The cluster's *original* is its earliest member by (``subject_created_at``, ``_id``), the same
  order that decides which result of a pair gets the flag; every other member is a *copy*.
- Clusters come from the stored flags (:func:`load_clusters`: what the dashboards see) or from
  links a sweep has just found (:func:`build_clusters` on them: what ``dedupe --dry-run`` would
  make). After a sweep has flagged, both give the same clusters.
- Re-use of one recording within one student (teacher row and admin row) is not a duplicate
  across children; it is reported as its own finding (``inference.reuse_of``, :data:`KIND_REUSE`)
  and grouped the same way with ``kind=KIND_REUSE``.

Cluster order is stable: by the original's order key, so the first cluster is the earliest
recording that was copied.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from anomaly_cli.adapters.mongo import mongo_errors
from anomaly_cli.adapters.protocols import ReadCollection
from anomaly_cli.contract import test_date_datetime
from anomaly_cli.results import document as D

#: Copies filed under other children (reason ``duplicate``, field ``inference.duplicate_of``).
KIND_DUPLICATE = "duplicate"
#: One recording on several rows of one student (field ``inference.reuse_of``).
KIND_REUSE = "reuse"
_LINK_FIELD = {KIND_DUPLICATE: D.F_DUPLICATE_OF, KIND_REUSE: D.F_REUSE_OF}
#: ``_id`` lists per ``$in`` query while loading members (well under Mongo's 16 MB query limit).
_ID_CHUNK = 1000
_MEMBER_PROJECTION = {
    "_id": 1,
    "source.mongo_doc_id": 1,
    "source.record_type": 1,
    "source.subject_id": 1,
    "source.student_id": 1,
    "source.udise": 1,
    "source.subject_created_at": 1,
    "source.audio_s3_url": 1,
    "inference.duplicate_of": 1,
    "inference.reuse_of": 1,
    "inference.reason_codes": 1,
}


@dataclass(frozen=True)
class ClusterMember:
    """One result of a cluster, with what a person needs to find the child and school."""

    result_id: str
    mongo_doc_id: str | None = None
    record_type: str | None = None
    subject_id: str | None = None
    student_id: str | None = None
    udise: str | None = None
    subject_created_at: dt.datetime | None = None
    audio_url: str = ""  # redacted (no presigned query string)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        if isinstance(d["subject_created_at"], dt.datetime):
            d["subject_created_at"] = d["subject_created_at"].isoformat()
        return d


@dataclass(frozen=True)
class DuplicateCluster:
    """Results of one test date that are all the same recording (``members[0]`` is the original)."""

    kind: str
    members: tuple[ClusterMember, ...]
    links: tuple[tuple[str, str], ...]  # (later, earlier), sorted

    @property
    def original(self) -> str:
        """Result id of the earliest recording of the cluster."""
        return self.members[0].result_id

    @property
    def result_ids(self) -> tuple[str, ...]:
        """Every member's result id, original first, then by order."""
        return tuple(m.result_id for m in self.members)

    @property
    def copies(self) -> tuple[str, ...]:
        """Result ids of every member but the original (the ones that carry the flag)."""
        return self.result_ids[1:]

    @property
    def students(self) -> tuple[str, ...]:
        """Distinct student ids (sorted; members without one are left out)."""
        return tuple(sorted({m.student_id for m in self.members if m.student_id}))

    @property
    def schools(self) -> tuple[str, ...]:
        """Distinct UDISE codes (sorted; members without one are left out)."""
        return tuple(sorted({m.udise for m in self.members if m.udise}))

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json`` and the report."""
        return {
            "kind": self.kind,
            "original": self.original,
            "result_ids": list(self.result_ids),
            "copies": len(self.copies),
            "students": list(self.students),
            "schools": list(self.schools),
            "members": [m.to_dict() for m in self.members],
            "links": [{"later": a, "earlier": b} for a, b in self.links],
        }


@dataclass(frozen=True)
class ClusterSummary:
    """Counts over the clusters of one kind: what ``inspect`` prints in one line."""

    clusters: int = 0
    recordings: int = 0  # results in any cluster (originals + copies)
    copies: int = 0  # results flagged as a copy of an earlier one

    @classmethod
    def of(cls, clusters: Sequence[DuplicateCluster]) -> "ClusterSummary":
        """Summarise ``clusters``."""
        return cls(len(clusters), sum(len(c.members) for c in clusters), sum(len(c.copies) for c in clusters))


def member_of(doc: Mapping[str, Any]) -> ClusterMember:
    """The :class:`ClusterMember` of a stored result (any projection with ``_id``)."""
    src = doc.get("source") or {}
    created = src.get("subject_created_at")
    if isinstance(created, dt.datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=dt.timezone.utc)

    def s(v: Any) -> str | None:
        return None if v is None else str(v)

    return ClusterMember(
        result_id=str(doc["_id"]),
        mongo_doc_id=s(src.get("mongo_doc_id")),
        record_type=s(src.get("record_type")),
        subject_id=s(src.get("subject_id")),
        student_id=s(src.get("student_id")),
        udise=s(src.get("udise")),
        subject_created_at=created if isinstance(created, dt.datetime) else None,
        audio_url=D.display_url(doc),
    )


def build_clusters(
    links: Iterable[tuple[str, str]], docs: Mapping[str, Mapping[str, Any]], *, kind: str = KIND_DUPLICATE
) -> list[DuplicateCluster]:
    """Group ``links`` ((later, earlier) result ids) into clusters, members described from ``docs``.

    A member missing from ``docs`` (deleted since it was flagged) still counts, with its id only.
    """
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = sorted({(str(a), str(b)) for a, b in links if a != b})
    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for x in list(parent):
        groups.setdefault(root(x), []).append(x)
    by_root: dict[str, list[tuple[str, str]]] = {}
    for a, b in pairs:
        by_root.setdefault(root(a), []).append((a, b))

    def order(rid: str) -> tuple[dt.datetime, str]:
        doc = docs.get(rid)
        return D.order_key(doc) if doc is not None else D.order_key({"_id": rid})

    clusters = []
    for r, ids in groups.items():
        ids.sort(key=order)
        members = tuple(member_of(docs[i]) if i in docs else ClusterMember(result_id=i) for i in ids)
        clusters.append(DuplicateCluster(kind, members, tuple(by_root.get(r, ()))))
    clusters.sort(key=lambda c: order(c.original))
    return clusters


def stored_links(
    collection: ReadCollection, test_date: str, *, kind: str = KIND_DUPLICATE
) -> tuple[list[tuple[str, str]], dict]:
    """The links the flags of ``test_date`` hold, and the flagged results (by id).

    Reads only flagged results, through the ``{source.test_date, inference.reason_codes}`` index
    for duplicates (reason ``duplicate``) and the ``{source.test_date, inference.reuse_of}`` index
    for re-use.
    """
    field = _LINK_FIELD[kind]
    query: dict[str, Any] = {D.F_TEST_DATE: test_date_datetime(test_date)}
    if kind == KIND_DUPLICATE:
        query[D.F_REASON_CODES] = "duplicate"
    else:
        query[field] = {"$gt": ""}  # any element: bounded by the multikey index
    links: list[tuple[str, str]] = []
    docs: dict[str, Mapping[str, Any]] = {}
    with mongo_errors("duplicate clusters read"):
        for doc in collection.find(query, _MEMBER_PROJECTION):
            docs[str(doc["_id"])] = doc
            for earlier in (doc.get("inference") or {}).get(field.split(".")[-1]) or []:
                links.append((str(doc["_id"]), str(earlier)))
    return links, docs


def load_clusters(collection: ReadCollection, test_date: str, *, kind: str = KIND_DUPLICATE) -> list[DuplicateCluster]:
    """The clusters of ``test_date`` as the stored flags say (what dashboards and the report show)."""
    links, docs = stored_links(collection, test_date, kind=kind)
    fill_members(collection, links, docs)
    return build_clusters(links, docs, kind=kind)


def fill_members(
    collection: ReadCollection, links: Iterable[tuple[str, str]], docs: dict[str, Mapping[str, Any]]
) -> None:
    """Read (by ``_id``, in chunks) the linked results missing from ``docs``, into ``docs``."""
    missing = sorted({i for pair in links for i in pair} - set(docs))
    with mongo_errors("duplicate clusters read"):
        for i in range(0, len(missing), _ID_CHUNK):
            for doc in collection.find({"_id": {"$in": missing[i : i + _ID_CHUNK]}}, _MEMBER_PROJECTION):
                docs[str(doc["_id"])] = doc
