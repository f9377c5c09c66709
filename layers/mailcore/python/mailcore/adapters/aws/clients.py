"""AWS clients, made lazily once per process (module-level clients break moto and
slow cold starts). AWS_ENDPOINT_URL, honoured by botocore itself, points them at moto.

The clients come from botocore directly: they are the same clients boto3 makes, and
importing boto3 costs about 80 ms more at every cold start (it imports s3transfer)."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import NoCredentialsError

if TYPE_CHECKING:
    from botocore.credentials import Credentials
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

_RETRIES = {"mode": "standard", "max_attempts": 3}
# The edge calls its clients from up to 32 storage threads at once (edge/smtp/__main__.py).
# botocore keeps 10 connections by default and opens, then closes, a new one for every
# call beyond those: under load, a TCP (in AWS, a TLS) handshake per message stored.
MAX_POOL_CONNECTIONS = 32
# Below this, a PUT's body goes with its headers: botocore asks S3 to say "100 Continue"
# first for every body, a round trip that only pays when a refusal saves sending a large one.
SMALL_BODY = 1024 * 1024


def _client(service: str, config: Config) -> Any:
    # A session of its own, as boto3.client() makes: it reads the environment now.
    return botocore.session.get_session().create_client(service, config=config)


def _config(**extra: Any) -> Config:
    return Config(connect_timeout=5, read_timeout=20, retries=_RETRIES,  # type: ignore[arg-type]
                  max_pool_connections=MAX_POOL_CONNECTIONS, **extra)


def _send_small_bodies_at_once(request: Any, **_: Any) -> None:
    length = request.headers.get("Content-Length")
    if length is not None and int(length) < SMALL_BODY:
        request.headers.pop("Expect", None)


@cache
def s3_client() -> S3Client:
    # moto's server answers on a bare host:port, so buckets cannot be virtual hosts there.
    style = "path" if os.environ.get("AWS_ENDPOINT_URL") else "auto"
    # SigV4, so presigned links work in every region and with KMS-encrypted objects.
    client = _client("s3", _config(s3={"addressing_style": style}, signature_version="s3v4"))
    client.meta.events.register("before-send.s3.PutObject", _send_small_bodies_at_once)
    return cast("S3Client", client)


@cache
def credentials() -> Credentials:
    """The credentials every client of this process signs with (the same provider chain:
    environment, container role, ...), for the edge's own S3 writer."""
    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise NoCredentialsError
    return found


@cache
def dynamodb_client() -> DynamoDBClient:
    return cast("DynamoDBClient", _client("dynamodb", _config()))


@cache
def cognito_client() -> CognitoIdentityProviderClient:
    return cast("CognitoIdentityProviderClient", _client("cognito-idp", _config()))


@cache
def sqs_client() -> SQSClient:
    return cast("SQSClient", _client("sqs", _config()))


@cache
def secrets_client() -> SecretsManagerClient:
    return cast("SecretsManagerClient", _client("secretsmanager", _config()))
