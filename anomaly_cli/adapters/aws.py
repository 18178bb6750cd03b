"""AWS clients (SQS, S3) built one way: the configured region and endpoint override, and botocore's
own retries turned down, because the callers' retries decide (the policies of :mod:`anomaly_cli.retry`:
storage's downloads, the SQS adapter's calls and batches, the worker loop's pauses).
"""

from __future__ import annotations

from typing import Any, Literal, overload

from anomaly_cli.adapters.protocols import S3Client, SqsClient
from anomaly_cli.config import Settings


def boto_config(settings: Settings | None = None, *, connect_timeout: float = 5.0, read_timeout: float = 30.0) -> Any:
    """botocore config with its own retries turned down: :mod:`anomaly_cli.retry`'s policies decide."""
    from botocore.config import Config

    return Config(
        region_name=settings.aws_region if settings else None,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": 1, "mode": "standard"},
        max_pool_connections=64,
    )


@overload
def make_client(
    service: Literal["sqs"], settings: Settings, *, connect_timeout: float = ..., read_timeout: float = ...
) -> SqsClient: ...
@overload
def make_client(
    service: Literal["s3"], settings: Settings, *, connect_timeout: float = ..., read_timeout: float = ...
) -> S3Client: ...
def make_client(
    service: Literal["sqs", "s3"], settings: Settings, *, connect_timeout: float = 5.0, read_timeout: float = 30.0
) -> SqsClient | S3Client:
    """A boto3 client for ``service`` honouring ``AWS_REGION`` and ``AWS_ENDPOINT_URL``."""
    import boto3

    config = boto_config(settings, connect_timeout=connect_timeout, read_timeout=read_timeout)
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
    if settings.aws_endpoint_url:
        kwargs["endpoint_url"] = settings.aws_endpoint_url
    client: SqsClient | S3Client = boto3.session.Session().client(service, **kwargs)
    return client
