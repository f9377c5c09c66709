"""Reading template.yaml: CloudFormation YAML tags, the SAM transform, intrinsic functions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from boto3.session import Session
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

LOCAL_CODE_BUCKET = "mailpipe-local-code"


class _CfnLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as stream:
        document = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 (a SafeLoader subclass)
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a template")
    return document


def _no_managed_policies() -> dict[str, str]:
    # The translator asks IAM for managed policy ARNs; locally there is no IAM to ask.
    return {}


def translate(template: dict[str, Any], parameters: Mapping[str, str],
              region: str) -> dict[str, Any]:
    """Expand the SAM transform. Local code paths become s3://mailpipe-local-code/<path>,
    which the translator accepts, and come back as Code.S3Key."""
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for name in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(name), str) and "://" not in properties[name]:
                properties[name] = f"s3://{LOCAL_CODE_BUCKET}/{properties[name]}"
    translator = Translator(None, Parser(), boto_session=Session(region_name=region))
    return translator.translate(  # type: ignore[no-any-return]
        template, parameter_values=dict(parameters), get_managed_policy_map=_no_managed_policies
    )


NO_VALUE = object()  # Ref AWS::NoValue: the property is left out


class Unresolved(Exception):
    """A reference to something not created yet."""


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    """Evaluates intrinsic functions against what has been created so far."""

    def __init__(self, parameters: Mapping[str, str]) -> None:
        self.parameters = dict(parameters)
        self.refs: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}
        self.conditions: dict[str, bool] = {}

    def evaluate_conditions(self, definitions: dict[str, Any]) -> None:
        for name, definition in definitions.items():
            self.conditions[name] = self._condition(definition, definitions)

    def _condition(self, value: Any, definitions: dict[str, Any]) -> bool:
        (name, argument), = value.items()
        if name in ("Condition", "Fn::Condition"):  # the YAML tag's spelling, and JSON's
            if argument not in self.conditions:
                self.conditions[argument] = self._condition(definitions[argument], definitions)
            return self.conditions[argument]
        if name == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return bool(left == right)
        if name == "Fn::Not":
            return not self._condition(argument[0], definitions)
        if name == "Fn::And":
            return all(self._condition(item, definitions) for item in argument)
        if name == "Fn::Or":
            return any(self._condition(item, definitions) for item in argument)
        raise ValueError(f"condition function {name} is not supported locally")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value)
                    if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, argument), = value.items()
            if name == "Ref":
                return self._ref(argument)
            if name == "Fn::GetAtt":
                logical, attribute = (
                    argument if isinstance(argument, list) else argument.split(".", 1)
                )
                return self._attribute(logical, attribute)
            if name == "Fn::Sub":
                return self._sub(argument)
            if name == "Fn::Join":
                separator, items = argument
                items = self.resolve(items)
                if isinstance(items, str):  # a CommaDelimitedList parameter, given as text
                    items = items.split(",")
                return separator.join(str(item) for item in items)
            if name == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.conditions[condition] else when_false)
            if name == "Fn::Select":
                index, items = self.resolve(argument)
                return items[int(index)]
            if name == "Fn::Split":
                separator, text = self.resolve(argument)
                return text.split(separator)
            if name.startswith("Fn::"):
                raise ValueError(f"intrinsic {name} is not supported locally")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise Unresolved(name)

    def _attribute(self, logical: str, attribute: str) -> str:
        try:
            return self.attributes[(logical, attribute)]
        except KeyError:
            raise Unresolved(f"{logical}.{attribute}") from None

    def _sub(self, argument: Any) -> str:
        template, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved_variables = {key: str(self.resolve(item)) for key, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in resolved_variables:
                return resolved_variables[name]
            if "." in name and name.split(".", 1)[0] not in self.parameters:
                logical, attribute = name.split(".", 1)
                return self._attribute(logical, attribute)
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, template)
