"""End-to-end kit: a moto server over HTTP (SQS with a DLQ and redrive, S3 with generated
recordings), the embedded Mongo double shared by name, and the real CLI."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.worker.conftest import loaded_model, model_dir  # noqa: F401

TEST_DATE = "2025-12-20"


@dataclass
class Stack:
    """Names and clients of one test's private slice of the moto server and the Mongo double."""

    endpoint: str
    sqs: Any
    s3: Any
    bucket: str
    queue_url: str
    dlq_url: str
    mongo_uri: str
    db: Any

    def env(self, **extra: str) -> dict[str, str]:
        """The environment an operator would set (the CLI reads it; nothing else is shared)."""
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "SQS_QUEUE_URL": self.queue_url,
            "MONGO_URI": self.mongo_uri,
            "MONGO_DB_NAME": "nipun",
            "TEST_DATE": TEST_DATE,
            "AUDIO_URL_ALLOWLIST": f"s3://{self.bucket}",
            "LOG_LEVEL": "WARNING",
        }
        env.update(extra)
        return env

    def put(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def counts(self, url: str) -> dict[str, int]:
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return {
            "visible": int(a["ApproximateNumberOfMessages"]),
            "in_flight": int(a["ApproximateNumberOfMessagesNotVisible"]),
        }


@pytest.fixture
def stack(moto_server: str) -> Stack:
    """A fresh bucket, queue + DLQ (redrive after 2 receives, 2 s visibility) and Mongo double."""
    import boto3

    from anomaly_cli.adapters.mongo import connect

    tag = uuid.uuid4().hex[:8]
    sqs = boto3.client("sqs", region_name="ap-south-1", endpoint_url=moto_server)
    s3 = boto3.client("s3", region_name="ap-south-1", endpoint_url=moto_server)
    bucket = f"e2e-audio-{tag}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    dlq = sqs.create_queue(QueueName=f"e2e-{tag}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=f"e2e-{tag}",
        Attributes={
            "VisibilityTimeout": "2",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "2"}),
        },
    )["QueueUrl"]
    uri = f"mongomock://e2e-{tag}"
    return Stack(moto_server, sqs, s3, bucket, url, dlq, uri, connect(uri)["nipun"])
