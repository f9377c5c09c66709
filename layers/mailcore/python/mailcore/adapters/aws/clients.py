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

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

_RETRIES = {"mode": "standard", "max_attempts": 3}


def _client(service: str, config: Config) -> Any:
    # A session of its own, as boto3.client() makes: it reads the environment now.
    return botocore.session.get_session().create_client(service, config=config)


def _config(**extra: object) -> Config:
    return Config(connect_timeout=5, read_timeout=20, retries=_RETRIES, **extra)  # type: ignore[arg-type]


@cache
def s3_client() -> S3Client:
    # moto's server answers on a bare host:port, so buckets cannot be virtual hosts there.
    style = "path" if os.environ.get("AWS_ENDPOINT_URL") else "auto"
    # SigV4, so presigned links work in every region and with KMS-encrypted objects.
    return cast("S3Client", _client("s3", _config(
        s3={"addressing_style": style}, signature_version="s3v4")))


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
