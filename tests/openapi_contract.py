"""Checks real responses against openapi.yaml, the API's one description."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import ROOT

_URI = "urn:mailpipe:openapi"


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


@cache
def _registry() -> Registry:
    return Registry().with_resource(_URI, Resource.from_contents(
        spec(), default_specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _template_for(path: str) -> str:
    for template in spec()["paths"]:
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return template
    raise AssertionError(f"{path} is not in openapi.yaml")


def check_response(method: str, path: str, status: int, content_type: str | None,
                   body: bytes | str) -> None:
    """Fail unless openapi.yaml documents this status for this operation and the body
    matches the documented schema."""
    template = _template_for(path)
    operation = spec()["paths"][template].get(method.lower())
    assert operation is not None, f"{method} {template} is not in openapi.yaml"
    responses = operation["responses"]
    assert str(status) in responses, (
        f"{method} {template} answered {status}, not documented: {body!r:.300}")
    response = responses[str(status)]
    pointer = _pointer("paths", template, method.lower(), "responses", str(status))
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#")
        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    content = response.get("content")
    if not content:
        assert not body, f"{method} {template} {status} should have no body"
        return
    media = (content_type or "").split(";")[0].strip()
    if media not in content:
        assert "*/*" in content, f"{method} {template} {status}: {media} not documented"
        return
    if media != "application/json":
        return
    document = json.loads(body)
    schema = {"$ref": f"{_URI}#{pointer}{_pointer('content', media, 'schema')}"}
    jsonschema.Draft202012Validator(schema, registry=_registry()).validate(document)
