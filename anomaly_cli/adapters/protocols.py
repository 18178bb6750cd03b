"""What the services need of the clients they are handed, as ``typing.Protocol`` classes.

The services take their clients as constructor or function arguments (CONVENTIONS.md: injected,
never created at import time). These protocols say what each service calls on them, and the real
clients (pymongo, :class:`~anomaly_cli.adapters.sqs.SqsQueue`, the storage fetcher) and the test
doubles (mongomock-ng, moto-backed clients) all fit: nothing is checked at run time, mypy checks
the calls, and checks pymongo's own typed classes against :class:`MongoClient`, :class:`Database`
and :class:`Collection` where :func:`~anomaly_cli.adapters.mongo.connect` returns one. A service
that only reads a collection takes a :class:`ReadCollection`.

The boto3 clients (:class:`SqsClient`, :class:`S3Client`) are described the same way: botocore
builds their methods at run time from the service models, so these protocols name the calls this
package makes, with boto3's own keyword names, and nothing more (tests/adapters/test_protocols.py
holds them against the service models). A new call on a client is added here first, which is where
a reader sees everything the package asks of AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from anomaly_cli.adapters.sqs import BatchOutcome
    from anomaly_cli.adapters.storage import FetchedAudio

#: A document as read from or written to MongoDB.
Document = Mapping[str, Any]
#: A query filter, a projection or an update document.
Query = Mapping[str, Any]
#: A sort or index key: ``[("field", 1), ("other", -1)]``.
Keys = Sequence[tuple[str, int]]


class Cursor(Protocol):
    """What ``find`` answers: the documents, sorted and cut on request."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    def sort(self, key_or_list: Keys) -> Cursor: ...
    def limit(self, limit: int) -> Cursor: ...


class UpdateResult(Protocol):
    """What ``update_one`` / ``update_many`` report."""

    @property
    def matched_count(self) -> int: ...
    @property
    def modified_count(self) -> int: ...


class BulkWriteResult(Protocol):
    """What ``bulk_write`` reports: the ``_id`` of each upserted document by operation index."""

    @property
    def upserted_ids(self) -> dict[int, Any] | None: ...


class ReadCollection(Protocol):
    """A MongoDB collection as the services that only read use it (the source, the reports, the
    lookups); pymongo's and the double's collections fit. Extra driver options (``batch_size``,
    ``sort``, ``allowDiskUse``, ``limit``) pass through as keywords."""

    def find(self, filter: Query = ..., projection: Query | None = ..., **kwargs: Any) -> Cursor: ...
    def find_one(self, filter: Query = ..., projection: Query | None = ..., **kwargs: Any) -> dict[str, Any] | None: ...
    def aggregate(self, pipeline: Sequence[Query], **kwargs: Any) -> Iterator[dict[str, Any]]: ...
    def count_documents(self, filter: Query, **kwargs: Any) -> int: ...
    def index_information(self) -> Mapping[str, Any]: ...
    def with_options(self, *, read_preference: Any = ...) -> ReadCollection: ...


class Collection(ReadCollection, Protocol):
    """A MongoDB collection the repositories also write (results, state, claims, the enqueue log,
    the source's back-links); the pymongo write requests themselves stay in :mod:`~anomaly_cli.adapters.mongo`."""

    def insert_many(self, documents: Iterable[dict[str, Any]], *, ordered: bool = ...) -> object: ...
    def update_one(self, filter: Query, update: Query, *, upsert: bool = ...) -> UpdateResult: ...
    def update_many(self, filter: Query, update: Query) -> UpdateResult: ...
    def delete_many(self, filter: Query) -> object: ...
    def bulk_write(self, requests: Sequence[Any], *, ordered: bool = ...) -> BulkWriteResult: ...
    def find_one_and_update(
        self, filter: Query, update: Query, *, upsert: bool = ..., return_document: bool = ...
    ) -> dict[str, Any] | None: ...
    def find_one_and_delete(self, filter: Query) -> dict[str, Any] | None: ...
    def create_index(self, keys: str | Keys, **kwargs: Any) -> str: ...


class Database(Protocol):
    """A MongoDB database: collections by name, and the few commands the tools run."""

    def __getitem__(self, name: str) -> Collection: ...
    def command(self, command: str, value: Any = ..., **kwargs: Any) -> Mapping[str, Any]: ...
    def list_collection_names(self) -> list[str]: ...


class MongoClient(Protocol):
    """A MongoDB client (pymongo's ``MongoClient`` or the embedded double's): databases by name."""

    def __getitem__(self, name: str) -> Database: ...


class SqsClient(Protocol):
    """A boto3 SQS client, as far as this package uses it: the queue adapter's batch calls and
    receive (:class:`~anomaly_cli.adapters.sqs.SqsQueue`), queue attributes and URLs (doctor,
    metrics, replay), the DLQ move task (``replay-dlq --native``) and the demo/sandbox set-up."""

    def send_message_batch(self, *, QueueUrl: str, Entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...
    def delete_message_batch(self, *, QueueUrl: str, Entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...
    def change_message_visibility_batch(
        self, *, QueueUrl: str, Entries: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]: ...
    def receive_message(
        self,
        *,
        QueueUrl: str,
        MaxNumberOfMessages: int = ...,
        WaitTimeSeconds: int = ...,
        VisibilityTimeout: int = ...,
        MessageSystemAttributeNames: Sequence[str] = ...,
        MessageAttributeNames: Sequence[str] = ...,
    ) -> dict[str, Any]: ...
    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: Sequence[str]) -> dict[str, Any]: ...
    def get_queue_url(self, *, QueueName: str, QueueOwnerAWSAccountId: str = ...) -> dict[str, Any]: ...
    def create_queue(self, *, QueueName: str, Attributes: Mapping[str, str] = ...) -> dict[str, Any]: ...
    def start_message_move_task(
        self, *, SourceArn: str, DestinationArn: str = ..., MaxNumberOfMessagesPerSecond: int = ...
    ) -> dict[str, Any]: ...
    def list_message_move_tasks(self, *, SourceArn: str, MaxResults: int = ...) -> dict[str, Any]: ...


class S3Client(Protocol):
    """A boto3 S3 client, as far as this package uses it: the fetcher's download
    (:class:`~anomaly_cli.adapters.storage.Fetcher`), doctor's sample check, the listen links of
    ``results show`` and the demo/sandbox uploads."""

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]: ...
    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]: ...
    def generate_presigned_url(self, ClientMethod: str, Params: Mapping[str, Any], ExpiresIn: int = ...) -> str: ...
    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]: ...
    def create_bucket(self, *, Bucket: str, CreateBucketConfiguration: Mapping[str, Any] = ...) -> dict[str, Any]: ...
    def upload_file(self, Filename: str, Bucket: str, Key: str) -> None: ...


class WorkQueue(Protocol):
    """The work queue as discovery, the worker and the operator tools use it
    (:class:`~anomaly_cli.adapters.sqs.SqsQueue`): batch calls that report per-entry failures."""

    url: str

    @property
    def is_fifo(self) -> bool: ...
    def send_batch(self, entries: list[dict[str, Any]]) -> BatchOutcome: ...
    def delete_batch(self, receipts: list[tuple[str, str]]) -> BatchOutcome: ...
    def change_visibility_batch(self, items: list[tuple[str, str, int]]) -> BatchOutcome: ...
    def receive(
        self, max_messages: int = ..., wait_seconds: int = ..., visibility_timeout: int | None = None
    ) -> list[dict[str, Any]]: ...
    def approximate_counts(self) -> dict[str, int]: ...


class AudioFetcher(Protocol):
    """Downloads a recording by URL (:class:`~anomaly_cli.adapters.storage.Fetcher`); raises
    :class:`~anomaly_cli.errors.FetchError` subclasses, transient or permanent."""

    def fetch(self, url: str) -> FetchedAudio: ...


__all__ = [
    "AudioFetcher",
    "BulkWriteResult",
    "Collection",
    "Cursor",
    "Database",
    "Document",
    "Keys",
    "MongoClient",
    "Query",
    "ReadCollection",
    "S3Client",
    "SqsClient",
    "UpdateResult",
    "WorkQueue",
]
