"""The CLI context: settings and clients, built lazily.

``anomaly --help`` and read-only commands never touch a network, and nothing heavy (boto3,
pymongo, numpy) is imported until a command asks for it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

import typer

from anomaly_cli.config import Settings, load_settings, with_overrides
from anomaly_cli.log import get_logger

log = get_logger("cli")

#: The fix for a MongoDB whose every host refused or did not resolve (the hosts and causes are in the message).
UNREACHABLE_HINT = (
    "check that MongoDB runs at that address, that MONGO_URI names it (host, port, TLS options) and that this "
    "machine may reach it (firewall, security group, Atlas IP access list)"
)

if TYPE_CHECKING:
    from anomaly_cli.adapters.protocols import Database, MongoClient, S3Client, SqsClient
    from anomaly_cli.adapters.sqs import SqsQueue


class CliContext:
    """Per-invocation state shared by the commands (``ctx.obj``)."""

    #: ``work`` and ``discover`` set this: a deployment may start them before their database, so
    #: they wait up to MONGO_TIMEOUT_MS for it (saying so once); every other command reports a
    #: MongoDB whose hosts refuse or do not resolve within about a second (docs/configuration.md).
    waits_for_mongo = False

    def __init__(self, env_file: str | None = None, log_level: str | None = None):
        self.env_file = env_file
        self.log_level = log_level
        self._settings: Settings | None = None

    def settings(self, **flags: Any) -> Settings:
        """Load settings once (defaults < .env < env < global flags), then apply ``flags``."""
        if self._settings is None:
            self._settings = load_settings({"log_level": self.log_level}, env_file=self.env_file or ".env")
            from anomaly_cli.cli import output
            from anomaly_cli.log import configure_logging

            chosen = configure_logging(self._settings.log_level, fmt=self._settings.log_format, console=output.err())
            output.set_log_format(chosen)
        if flags:
            self._settings = with_overrides(self._settings, **flags)
        return self._settings

    @cached_property
    def mongo_client(self) -> MongoClient:
        from anomaly_cli.adapters import mongo

        s = self.settings()
        client = mongo.connect(s.mongo_uri, timeout_ms=s.mongo_timeout_ms)
        if s.mongo_uri.startswith(mongo.EMBEDDED_SCHEME):
            return client
        failures = mongo.first_contact_failures(
            client, within=min(mongo.FIRST_CONTACT_SECONDS, s.mongo_timeout_ms / 1000)
        )
        if failures and self.waits_for_mongo:
            log.warning("mongo_unreachable_waiting", hosts=failures, wait_ms=s.mongo_timeout_ms)
        elif failures:
            from anomaly_cli.errors import MongoUnavailable

            cast(Any, client).close()  # pymongo's client (not the protocol's): stops its monitors
            raise MongoUnavailable("MongoDB cannot be reached: " + "; ".join(failures), hint=UNREACHABLE_HINT)
        return client

    @property
    def db(self) -> Database:
        return self.mongo_client[self.settings().mongo_db_name]

    @cached_property
    def sqs_client(self) -> SqsClient:
        from anomaly_cli.adapters.aws import make_client

        return make_client("sqs", self.settings())

    @cached_property
    def s3_client(self) -> S3Client:
        from anomaly_cli.adapters.aws import make_client

        s = self.settings()
        return make_client(
            "s3", s, connect_timeout=s.fetch_connect_timeout_seconds, read_timeout=s.fetch_read_timeout_seconds
        )

    def queue(self, url: str | None = None) -> SqsQueue:
        from anomaly_cli.adapters.sqs import SqsQueue

        s = self.settings()
        if not (url or s.sqs_queue_url):
            s.require("sqs_queue_url")
        return SqsQueue(self.sqs_client, url or s.sqs_queue_url)


def get(ctx: typer.Context) -> CliContext:
    """The :class:`CliContext` of a command (made on first use when a command runs alone)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliContext):
        root.obj = CliContext()
    return root.obj
