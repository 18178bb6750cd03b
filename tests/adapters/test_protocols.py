"""The boto3 client protocols name real calls: botocore builds the clients' methods at run time from
the service models, so mypy cannot tell a misspelt method or keyword in ``SqsClient`` / ``S3Client``
from a real one. These tests hold each protocol method against a real client and its service model."""

from __future__ import annotations

import inspect

import boto3
import pytest

from anomaly_cli.adapters.protocols import S3Client, SqsClient

# Methods boto3 adds beside the API operations (no service-model shape to check keywords against).
NOT_OPERATIONS = {"generate_presigned_url", "upload_file"}


def _methods(protocol: type) -> list[str]:
    return [name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")]


@pytest.mark.parametrize(("protocol", "service"), [(SqsClient, "sqs"), (S3Client, "s3")])
def test_each_protocol_method_is_a_call_of_the_real_client(protocol: type, service: str) -> None:
    # GIVEN a real boto3 client (no request is sent)
    client = boto3.client(service, region_name="ap-south-1")
    methods = _methods(protocol)
    assert methods, "the protocol names no calls"
    for name in methods:
        # THEN the method exists on it
        assert callable(getattr(client, name, None)), f"{service} client has no {name}"
        if name in NOT_OPERATIONS:
            continue
        # AND each keyword the protocol declares is a member of the operation's request shape
        operation = client.meta.service_model.operation_model(client.meta.method_to_api_mapping[name])
        members = set(operation.input_shape.members) if operation.input_shape else set()
        keywords = [p for p in inspect.signature(getattr(protocol, name)).parameters if p != "self"]
        unknown = [k for k in keywords if k not in members]
        assert not unknown, f"{protocol.__name__}.{name}: {unknown} are not {operation.name} request members"
