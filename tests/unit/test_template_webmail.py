"""The webmail's origin in AWS, read from template.yaml: CloudFront serves the API under
the page's own origin (/v1/*), so the page's policy names no host but its own and this
stack's message bucket; and the local runtime serves the same policy."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest
import requests

from mailcore.adapters.aws import clients
from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.s3_keys import message_key, part_key, upload_key
from mailpipe.local.gateway import Gateway, JwtVerifier
from mailpipe.local.template import Resolver, load_template
from mailpipe.webmail import WebmailSite

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
DISTRIBUTION = RESOURCES["WebmailDistribution"]["Properties"]["DistributionConfig"]
BUCKET = "mail-messagebucket-1x2y3z4w5v6u"
API_ID = "a1b2c3d4e5"
# AWS's managed policies, by the IDs CloudFront documents.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def in_region(region: str) -> Resolver:
    """The template's values for a stack in `region` whose bucket and API are made."""
    resolver = Resolver({"AWS::Region": region, "AWS::AccountId": "123456789012",
                         "AWS::StackName": "mail", "AWS::Partition": "aws",
                         "AWS::URLSuffix": "amazonaws.com"})
    resolver.refs.update({"MessageBucket": BUCKET, "MailApi": API_ID})
    # What CloudFormation answers for a bucket's RegionalDomainName, us-east-1 included.
    resolver.attributes[("MessageBucket", "RegionalDomainName")] = (
        f"{BUCKET}.s3.{region}.amazonaws.com")
    return resolver


def load_function_module(function: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{function}_{Path(path).stem}",
                                                  ROOT / "functions" / function / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


def template_policy(region: str) -> dict[str, list[str]]:
    headers = RESOURCES["WebmailHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    csp = headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    return directives(in_region(region).resolve(csp))


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# ---- the policy in AWS -------------------------------------------------------------------
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_the_policy_in_aws_names_no_wildcard_host_only_this_stacks_bucket(region):
    policy = template_policy(region)
    for name, sources in policy.items():
        for source in sources:
            assert "*" not in source, (name, source)
    # The page's own origin (the webmail, and the API under /v1/*) and this bucket, by
    # its regional name and its global one: nothing of another stack or account.
    assert policy["connect-src"] == ["'self'", f"https://{BUCKET}.s3.{region}.amazonaws.com",
                                     f"https://{BUCKET}.s3.amazonaws.com"]
    assert policy["default-src"] == ["'none'"]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_the_policy_admits_every_link_the_api_hands_out(region, monkeypatch):
    # The links the API gives the page (a large message or part by 302, the form a large
    # attachment is POSTed with) come from the functions' own S3 client, as in Lambda.
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    clients.s3_client.cache_clear()
    try:
        store = S3RawMessageStore(clients.s3_client(), BUCKET)
        links = [store.download_link(message_key("m1")), store.download_link(part_key("m1", 2)),
                 store.upload_form(upload_key("bob@hamburger.edu", "u1"), "application/pdf",
                                   25 * 1024 * 1024).url]
    finally:
        clients.s3_client.cache_clear()
    connect = template_policy(region)["connect-src"]
    for link in links:
        assert origin(link) in connect, link


# ---- the API under the webmail's origin ----------------------------------------------------
def test_cloudfront_sends_v1_to_the_api_uncached_with_every_header_but_host():
    [behaviour] = [behaviour for behaviour in DISTRIBUTION["CacheBehaviors"]
                   if behaviour["PathPattern"] == "/v1/*"]
    [api] = [each for each in DISTRIBUTION["Origins"] if each["Id"] == behaviour["TargetOriginId"]]
    resolver = in_region("eu-west-1")
    assert resolver.resolve(api["DomainName"]) == f"{API_ID}.execute-api.eu-west-1.amazonaws.com"
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert behaviour["ViewerProtocolPolicy"] == "https-only"
    # Every answer is one account's: nothing cached, and the Authorization header goes
    # through (CloudFront forwards it by origin request policy only when caching is off).
    assert behaviour["CachePolicyId"] == CACHING_DISABLED
    assert behaviour["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "WebmailHeadersPolicy"}
    # The files stay the default.
    assert DISTRIBUTION["DefaultCacheBehavior"]["TargetOriginId"] == "webmail"


def _api_routes() -> set[tuple[str, str]]:
    events = RESOURCES["ServeApiFunction"]["Properties"]["Events"]
    return {(event["Properties"]["Method"].upper(), event["Properties"]["Path"])
            for event in events.values() if event["Type"] == "HttpApi"}


def test_every_route_the_webmail_calls_reaches_the_api_through_cloudfront():
    [behaviour] = [behaviour for behaviour in DISTRIBUTION["CacheBehaviors"]
                   if behaviour["PathPattern"] == "/v1/*"]
    allowed = set(behaviour["AllowedMethods"])
    routes = _api_routes()
    for method, path in routes:
        if path.startswith("/v1/"):
            assert method in allowed, (method, path)
    # api.js is the only place the page calls fetch: each call names its method and path.
    source = (ROOT / "webmail" / "src" / "api.js").read_text()
    calls = [(method, re.sub(r"\$\{[^}]*\}", "{}", quoted or templated))
             for method, quoted, templated
             in re.findall(r"request\('([A-Z]+)', (?:'([^']*)'|`([^`]*)`)", source)]
    assert len(calls) > 10
    known = {(method, re.sub(r"\{[^}]+\}", "{}", path)) for method, path in routes}
    for method, path in calls:
        assert path.startswith("/v1/"), path
        assert method in allowed, (method, path)
        assert (method, path) in known, (method, path)


def test_no_other_origin_may_call_the_api_from_a_browser():
    # No CORS on the HttpApi: the page calls it on its own origin, and any other page's
    # cross-origin call is refused by the browser.
    assert "CorsConfiguration" not in RESOURCES["MailApi"]["Properties"]


# ---- the local runtime, from outside -----------------------------------------------------
@pytest.fixture
def local_site() -> Iterator[tuple[str, str]]:
    """The local runtime's web server as `mailpipe up` builds it: the webmail beside the
    API, with moto (here, a stand-in address) as the store links point at."""
    store = "http://127.0.0.1:45999"
    gateway = Gateway("127.0.0.1", 0, [], {}, JwtVerifier(store),
                      site=WebmailSite(ROOT / "webmail", connect=(store,)))
    gateway.start()
    host, port = gateway.server.server_address[:2]
    try:
        yield f"http://{host}:{port}", store
    finally:
        gateway.stop()


@pytest.mark.parametrize("path", ["/", "/js/main.js", "/app.css", "/vendor/preact.mjs"])
def test_the_local_page_is_served_with_the_policy_the_template_gives(local_site, path):
    site, store = local_site
    response = requests.get(site + path, timeout=10)
    assert response.status_code == 200
    local = directives(response.headers["content-security-policy"])
    in_aws = template_policy("us-east-1")
    # The same policy but for where the message store is: moto's address here, this
    # stack's bucket in AWS. Nothing else differs, and neither names a wildcard.
    assert local.pop("connect-src") == ["'self'", store]
    assert in_aws.pop("connect-src") == ["'self'", f"https://{BUCKET}.s3.us-east-1.amazonaws.com",
                                         f"https://{BUCKET}.s3.amazonaws.com"]
    assert local == in_aws


# ---- the client's address behind CloudFront ------------------------------------------------
def test_cloudfront_passes_the_viewers_address_with_the_stacks_key_the_api_checks():
    request_parts = load_function_module("serve_api", "mailbox_api/request_parts.py")
    [behaviour] = [behaviour for behaviour in DISTRIBUTION["CacheBehaviors"]
                   if behaviour["PathPattern"] == "/v1/*"]
    [api] = [each for each in DISTRIBUTION["Origins"] if each["Id"] == "api"]
    [header] = api["OriginCustomHeaders"]
    environment = RESOURCES["ServeApiFunction"]["Properties"]["Environment"]["Variables"]
    assert header["HeaderName"] == request_parts.ORIGIN_KEY_HEADER
    # The same value in both places: the random part of the stack's id.
    assert header["HeaderValue"] == environment["MAILPIPE_CLOUDFRONT_ORIGIN_KEY"] == {
        "Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    stack_id = ("arn:aws:cloudformation:us-east-1:123456789012:stack/mail/"
                "1f0e9a70-0b1c-11ef-9f3a-0a1b2c3d4e5f")
    assert Resolver({"AWS::StackId": stack_id}).resolve(header["HeaderValue"]) == (
        "1f0e9a70-0b1c-11ef-9f3a-0a1b2c3d4e5f")
    [association] = behaviour["FunctionAssociations"]
    assert association == {"EventType": "viewer-request",
                           "FunctionARN": {"Ref": "WebmailViewerAddress"}}


@pytest.mark.parametrize("sent", [{}, {"x-mailpipe-viewer-address": {"value": "10.0.0.1"}},
                                  {"X-Mailpipe-Viewer-Address": {"value": "10.0.0.1"}}])
def test_the_viewer_request_function_sets_the_viewers_address_over_what_the_viewer_sent(sent):
    # CloudFront Functions are JavaScript (cloudfront-js-2.0): run the template's code in
    # node with the event CloudFront gives it. (CloudFront lowercases header names.)
    function = RESOURCES["WebmailViewerAddress"]["Properties"]
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    event = {"viewer": {"ip": "198.51.100.66"},
             "request": {"method": "POST", "uri": "/v1/session",
                         "headers": {name.lower(): value for name, value in sent.items()}}}
    script = function["FunctionCode"] + (
        f"\nprocess.stdout.write(JSON.stringify(handler({json.dumps(event)})));\n")
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True,
                            timeout=30, check=True)
    request = json.loads(result.stdout)
    assert request["headers"]["x-mailpipe-viewer-address"] == {"value": "198.51.100.66"}
    assert request["uri"] == "/v1/session"
