"""The webmail's files and headers: what the local runtime serves is what AWS would."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mailpipe.local.template import load_template
from mailpipe.webmail import (
    SAME_ORIGIN,
    WebmailSite,
    content_security_policy,
    publish,
    with_api_origin,
)

ROOT = Path(__file__).resolve().parents[2]
INDEX = (ROOT / "webmail" / "index.html").read_text()


def test_cloudfront_sends_the_same_content_security_policy_as_the_local_runtime() -> None:
    resources = load_template(ROOT / "template.yaml")["Resources"]
    headers = resources["WebmailHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    in_aws = headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    # The template's policy is a !Sub naming this stack's message bucket, where large
    # attachments go and large messages come from; the API is on the page's own origin
    # ('self'), as locally (CloudFront sends /v1/* to it).
    assert in_aws == {"Fn::Sub": content_security_policy(INDEX, (
        "https://${MessageBucket.RegionalDomainName}",
        "https://${MessageBucket}.s3.amazonaws.com",
    ))}


def test_the_policy_allows_the_import_map_by_its_hash_and_no_other_inline_script() -> None:
    policy = content_security_policy(INDEX)
    script_src = next(part for part in policy.split("; ") if part.startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'sha256-" in script_src
    changed = INDEX.replace('"preact": "/vendor/preact.mjs"', '"preact": "/elsewhere.mjs"')
    assert content_security_policy(changed) != policy


def test_every_file_the_site_names_is_there() -> None:
    # node_modules comes from `npm ci` (make run, make test), never from the repository.
    assert WebmailSite().missing() == []


@pytest.mark.parametrize("api", [SAME_ORIGIN, "https://abc123.execute-api.us-east-1.amazonaws.com"])
def test_publishing_puts_every_file_in_the_bucket_and_tells_index_where_the_api_is(api) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="webmail")
        keys = publish(s3, "webmail", api)
        stored = {entry["Key"] for entry in s3.list_objects_v2(Bucket="webmail")["Contents"]}
        index = s3.get_object(Bucket="webmail", Key="index.html")
        module = s3.get_object(Bucket="webmail", Key="vendor/preact.mjs")
    assert stored == set(keys) and "index.html" in stored and "js/main.js" in stored
    published = index["Body"].read().decode()
    assert f'<meta name="mailpipe-api" content="{api}">' in published
    # Only the meta changed, so the policy's hash of the import map still holds.
    assert content_security_policy(published) == content_security_policy(INDEX)
    assert index["ContentType"] == "text/html; charset=utf-8"
    assert module["ContentType"] == "text/javascript; charset=utf-8"


def test_published_as_the_cli_publishes_the_page_calls_the_api_on_its_own_origin() -> None:
    # CloudFront serves the API under the webmail's origin: the page is told no other.
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="webmail")
        publish(s3, "webmail")
        published = s3.get_object(Bucket="webmail", Key="index.html")["Body"].read().decode()
    assert '<meta name="mailpipe-api" content="">' in published


def test_an_index_without_the_api_meta_is_refused_rather_than_published_wrong() -> None:
    with pytest.raises(ValueError, match="mailpipe-api"):
        with_api_origin("<html><head></head></html>", "https://api.example")


def test_the_message_bucket_lets_the_webmail_fetch_what_the_api_hands_out_by_link() -> None:
    # A message or part over Lambda's 6 MB answer is a 302 to the bucket, which the page
    # follows with fetch. moto's S3 allows every origin, so the local runtime (and the
    # browser test that downloads a 7 MiB part that way) cannot show a missing rule: this
    # reads it from the template. The rule admits CloudFront's origins, not this
    # distribution by name: the distribution's policy names this bucket, and the bucket
    # naming the distribution would be a circular dependency.
    bucket = load_template(ROOT / "template.yaml")["Resources"]["MessageBucket"]["Properties"]
    [rule] = bucket["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == ["https://*.cloudfront.net"]
    assert rule["AllowedMethods"] == ["GET"]
