"""boto3 clients, made lazily once per process (module-level clients break moto and
slow cold starts). AWS_ENDPOINT_URL, honoured by boto3 itself, points them at moto."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

_RETRIES = {"mode": "standard", "max_attempts": 3}


def _config(**extra: object) -> Config:
    return Config(connect_timeout=5, read_timeout=20, retries=_RETRIES, **extra)  # type: ignore[arg-type]


@cache
def s3_client() -> S3Client:
    # moto's server answers on a bare host:port, so buckets cannot be virtual hosts there.
    style = "path" if os.environ.get("AWS_ENDPOINT_URL") else "auto"
    # SigV4, so presigned links work in every region and with KMS-encrypted objects.
    return boto3.session.Session().client("s3", config=_config(
        s3={"addressing_style": style}, signature_version="s3v4"))


@cache
def dynamodb_client() -> DynamoDBClient:
    return boto3.session.Session().client("dynamodb", config=_config())


@cache
def cognito_client() -> CognitoIdentityProviderClient:
    return boto3.session.Session().client("cognito-idp", config=_config())


@cache
def sqs_client() -> SQSClient:
    return boto3.session.Session().client("sqs", config=_config())


@cache
def secrets_client() -> SecretsManagerClient:
    return boto3.session.Session().client("secretsmanager", config=_config())
