"""CloudFormation custom resource Custom::DkimKeys: a DKIM key pair (RSA-2048 and Ed25519)
for each hosted domain in the stack's keys secret.

Create and Update add keys for the domains that have none and keep every key there is:
a key dropped would break the records already published for it. Delete does nothing (the
secret is the stack's and goes with it). Every request is answered at its ResponseURL,
success or failure, or CloudFormation waits an hour for the answer."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from mailcore.adapters.aws.clients import secrets_client
from mailcore.adapters.aws.secrets_signing_keys import read_keys, write_keys
from mailcore.authentication.signing_keys import with_keys_for

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
ANSWER_SECONDS = 20


def keep_keys(secret_id: str, domains: list[str]) -> int:
    """Keys for each domain that has none, written beside the others; how many there are."""
    client = secrets_client()
    keys = read_keys(client, secret_id)
    kept = with_keys_for(keys, domains, datetime.now(UTC).date())
    if len(kept) != len(keys):
        write_keys(client, secret_id, kept)
        logger.info("dkim keys added", added=len(kept) - len(keys), keys=len(kept))
    return len(kept)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    properties = event.get("ResourceProperties", {})
    secret_id = str(properties.get("SecretId", ""))
    answer: dict[str, Any] = {"Status": "SUCCESS", "Reason": "",
                              "PhysicalResourceId": event.get("PhysicalResourceId")
                              or f"dkim-keys:{secret_id}"}
    try:
        if event["RequestType"] in ("Create", "Update"):
            domains = [name.strip().lower() for name in str(properties["Domains"]).split(",")
                       if name.strip()]
            answer["Data"] = {"Keys": keep_keys(secret_id, domains)}
    except Exception as exc:  # every failure must reach CloudFormation, or it waits an hour
        logger.exception("dkim keys not written")
        answer.update(Status="FAILED", Reason=f"{type(exc).__name__}: see the function's log")
    answer.update({name: event[name] for name in ("StackId", "RequestId", "LogicalResourceId")})
    url = event["ResponseURL"]
    if not url.startswith(("https://", "http://")):  # CloudFormation's: a presigned S3 URL
        raise ValueError("ResponseURL is not an HTTP(S) URL")
    # The presigned URL is signed without a content type: any sent would not match it.
    request = urllib.request.Request(url, data=json.dumps(answer).encode(),  # noqa: S310
                                     method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=ANSWER_SECONDS) as response:  # noqa: S310
        logger.info("answered cloudformation", status=answer["Status"],
                    http_status=response.status)
