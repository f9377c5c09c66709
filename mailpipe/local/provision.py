"""Creating template.yaml's resources in moto, and reading what the runtime must wire.

moto's CloudFormation skips AWS::Serverless::* and AWS::ApiGatewayV2::*, so the
translated template is walked here instead: storage, queues and the user pool are
created through the AWS APIs; functions, event source mappings and the HTTP API
are returned for the local runtime to run.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from mailpipe.local.schedules import ScheduleSource, schedule_sources
from mailpipe.local.template import Resolver, Unresolved, load_template, translate

PSEUDO_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    timeout: int
    memory_mb: int


@dataclass(frozen=True)
class QueueSource:
    function: str  # logical id
    queue_url: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool
    visibility_timeout: int


@dataclass(frozen=True)
class JwtAuthorizer:
    issuer: str
    audience: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {name} and {name+} parameters, as in API Gateway
    function: str  # logical id
    authorizer: JwtAuthorizer | None


@dataclass(frozen=True)
class ContainerSpec:
    """One container of an ECS task definition: what the local runtime needs to start it."""

    task_definition: str  # logical id
    name: str
    environment: dict[str, str]


@dataclass
class Provisioned:
    outputs: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    containers: dict[str, ContainerSpec] = field(default_factory=dict)  # by container name
    queue_sources: list[QueueSource] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    schedules: list[ScheduleSource] = field(default_factory=list)


class Provisioner:
    def __init__(self, session: boto3.session.Session, endpoint: str | None, root: Path,
                 stack_name: str, region: str) -> None:
        self._endpoint = endpoint
        self._root = root
        self._stack = stack_name
        self._region = region
        self._s3 = session.client("s3", endpoint_url=endpoint)
        self._sqs = session.client("sqs", endpoint_url=endpoint)
        self._dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        self._cognito = session.client("cognito-idp", endpoint_url=endpoint)
        self._secrets = session.client("secretsmanager", endpoint_url=endpoint)
        self._layer_dirs: dict[str, Path] = {}
        self._queue_timeouts: dict[str, int] = {}

    def provision(self, template: dict[str, Any], parameters: dict[str, str]) -> Provisioned:
        resolver = Resolver({
            "AWS::Region": self._region,
            "AWS::AccountId": PSEUDO_ACCOUNT,
            "AWS::StackName": self._stack,
            # Random, as CloudFormation's: the template derives a key from it.
            "AWS::StackId": f"arn:aws:cloudformation:{self._region}:{PSEUDO_ACCOUNT}:stack/"
                            f"{self._stack}/{uuid.uuid4()}",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            **{name: str(spec.get("Default", "")) for name, spec in
               template.get("Parameters", {}).items()},
            **parameters,
        })
        resolver.evaluate_conditions(template.get("Conditions", {}))
        # Resources whose condition is false are not created, as in CloudFormation.
        pending = {logical_id: resource for logical_id, resource in template["Resources"].items()
                   if resolver.conditions.get(resource.get("Condition", ""), True)}
        deferred_actions: list[tuple[str, dict[str, Any]]] = []
        while pending:
            progressed = False
            for logical_id, resource in list(pending.items()):
                try:
                    self._create(logical_id, resource, resolver, deferred_actions)
                except Unresolved:
                    continue
                del pending[logical_id]
                progressed = True
            if not progressed:
                raise RuntimeError(f"cannot resolve resources: {sorted(pending)}")

        result = Provisioned()
        for logical_id, resource in deferred_actions:
            self._wire(logical_id, resource, resolver, result)
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::ECS::TaskDefinition":
                for container in self._containers(logical_id, resource, resolver):
                    result.containers[container.name] = container
        for name, output in template.get("Outputs", {}).items():
            if resolver.conditions.get(output.get("Condition", ""), True):
                result.outputs[name] = str(resolver.resolve(output["Value"]))
        return result

    # -- storage, queues, accounts: created in moto ------------------------------------------
    def _create(self, logical_id: str, resource: dict[str, Any], resolver: Resolver,
                deferred: list[tuple[str, dict[str, Any]]]) -> None:
        kind = resource["Type"]
        properties = resolver.resolve(resource.get("Properties", {}))
        name = f"{self._stack}-{logical_id}".lower()
        arn_prefix = f"arn:aws:{{}}:{self._region}:{PSEUDO_ACCOUNT}"
        if kind == "AWS::SQS::Queue":
            self._create_queue(logical_id, name, properties, resolver)
        elif kind == "AWS::SQS::QueuePolicy":
            for url in properties["Queues"]:
                self._sqs.set_queue_attributes(
                    QueueUrl=url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
                )
        elif kind == "AWS::S3::Bucket":
            self._create_bucket(logical_id, name, properties, resolver)
        elif kind == "AWS::S3::BucketPolicy":
            self._put_bucket_policy(properties)
        elif kind == "AWS::DynamoDB::Table":
            self._create_table(logical_id, name, properties, resolver)
        elif kind == "AWS::Cognito::UserPool":
            pool = self._cognito.create_user_pool(
                PoolName=properties.get("UserPoolName", name),
                **{key: properties[key] for key in
                   ("Policies", "UsernameConfiguration", "AdminCreateUserConfig", "Schema")
                   if key in properties},
            )["UserPool"]
            resolver.refs[logical_id] = pool["Id"]
            resolver.attributes[(logical_id, "Arn")] = pool["Arn"]
            resolver.attributes[(logical_id, "ProviderName")] = pool["Id"]
        elif kind == "AWS::Cognito::UserPoolClient":
            client = self._cognito.create_user_pool_client(
                UserPoolId=properties["UserPoolId"],
                ClientName=properties.get("ClientName", name),
                GenerateSecret=bool(properties.get("GenerateSecret", False)),
                ExplicitAuthFlows=properties.get("ExplicitAuthFlows", []),
            )["UserPoolClient"]
            resolver.refs[logical_id] = client["ClientId"]
        elif kind == "AWS::SecretsManager::Secret":
            # Ref is the secret's ARN, as in CloudFormation. (A custom resource that writes
            # it does not run here: `mailpipe up` writes what it would.)
            arn = self._secrets.create_secret(
                Name=properties.get("Name", name),
                Description=properties.get("Description", ""),
                SecretString=properties.get("SecretString", "{}"))["ARN"]
            resolver.refs[logical_id] = arn
            resolver.attributes[(logical_id, "Id")] = arn
        elif kind == "AWS::Lambda::Function":
            function_name = properties.get("FunctionName", name)
            resolver.refs[logical_id] = function_name
            resolver.attributes[(logical_id, "Arn")] = (
                f"{arn_prefix.format('lambda')}:function:{function_name}"
            )
            deferred.append((logical_id, resource))
        elif kind == "AWS::Events::Rule":  # a schedule, run by the local runtime's timer
            resolver.refs[logical_id] = name
            resolver.attributes[(logical_id, "Arn")] = f"{arn_prefix.format('events')}:rule/{name}"
            deferred.append((logical_id, resource))
        elif kind == "AWS::Lambda::LayerVersion":
            arn = f"{arn_prefix.format('lambda')}:layer:{name}:1"
            self._layer_dirs[arn] = self._root / properties["Content"]["S3Key"] / "python"
            resolver.refs[logical_id] = arn
        elif kind in ("AWS::Lambda::EventSourceMapping", "AWS::ApiGatewayV2::Api"):
            resolver.refs[logical_id] = uuid.uuid4().hex[:10]
            deferred.append((logical_id, resource))
        else:
            # Not emulated (IAM roles, permissions, stages, alarms): a stable placeholder
            # keeps references to it resolvable.
            resolver.refs[logical_id] = name
            placeholder = f"{arn_prefix.format('local')}:{name}"
            for attribute in ("Arn", "Name", "Id", "DomainName"):
                resolver.attributes[(logical_id, attribute)] = placeholder

    def _create_queue(self, logical_id: str, name: str, properties: dict[str, Any],
                      resolver: Resolver) -> None:
        attributes: Any = {
            key: (json.dumps(value) if isinstance(value, dict) else str(value).lower()
                  if isinstance(value, bool) else str(value))
            for key, value in properties.items()
            if key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
                       "ReceiveMessageWaitTimeSeconds", "RedrivePolicy", "MaximumMessageSize")
        }
        url = self._sqs.create_queue(QueueName=properties.get("QueueName", name),
                                     Attributes=attributes)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self._queue_timeouts[arn] = int(properties.get("VisibilityTimeout", 30))
        resolver.refs[logical_id] = url
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "QueueName")] = url.rsplit("/", 1)[-1]
        resolver.attributes[(logical_id, "QueueUrl")] = url

    def _create_bucket(self, logical_id: str, name: str, properties: dict[str, Any],
                       resolver: Resolver) -> None:
        bucket = properties.get("BucketName", name)[:63]
        self._s3.create_bucket(Bucket=bucket)
        if "VersioningConfiguration" in properties:
            self._s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"]
            )
        if "BucketEncryption" in properties:
            self._s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={"Rules": [
                    # CloudFormation and the S3 API name this field differently.
                    {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                    for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]},
            )
        if "PublicAccessBlockConfiguration" in properties:
            self._s3.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"],
            )
        queues = properties.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if queues:
            notifications: Any = {"QueueConfigurations": [
                    {
                        "QueueArn": queue["Queue"],
                        "Events": [queue["Event"]],
                        **({"Filter": {"Key": {"FilterRules": queue["Filter"]["S3Key"]["Rules"]}}}
                           if "Filter" in queue else {}),
                    }
                    for queue in queues
            ]}
            self._s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=notifications
            )
        resolver.refs[logical_id] = bucket
        resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{bucket}"
        # What a CloudFront origin names; locally the gateway serves the webmail itself.
        resolver.attributes[(logical_id, "RegionalDomainName")] = (
            f"{bucket}.s3.{self._region}.amazonaws.com")

    def _put_bucket_policy(self, properties: dict[str, Any]) -> None:
        document = dict(properties["PolicyDocument"])
        # moto enforces bucket policies, and its server speaks plain HTTP: a TLS-only
        # statement would refuse every local request, so it is the one left out.
        document["Statement"] = [
            statement for statement in document["Statement"]
            if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))
        ]
        if document["Statement"]:
            self._s3.put_bucket_policy(Bucket=properties["Bucket"], Policy=json.dumps(document))

    def _create_table(self, logical_id: str, name: str, properties: dict[str, Any],
                      resolver: Resolver) -> None:
        table = properties.get("TableName", name)
        arguments: dict[str, Any] = {
            "TableName": table,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in properties:
            arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        description = self._dynamodb.create_table(**arguments)["TableDescription"]
        pitr = properties.get("PointInTimeRecoverySpecification", {})
        if pitr.get("PointInTimeRecoveryEnabled"):
            self._dynamodb.update_continuous_backups(
                TableName=table,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            self._dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=ttl)
        resolver.refs[logical_id] = table
        resolver.attributes[(logical_id, "Arn")] = description["TableArn"]

    # -- what runs locally -------------------------------------------------------------------
    def _wire(self, logical_id: str, resource: dict[str, Any], resolver: Resolver,
              result: Provisioned) -> None:
        kind = resource["Type"]
        properties = resolver.resolve(resource.get("Properties", {}))
        if kind == "AWS::Lambda::Function":
            result.functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=resolver.refs[logical_id],
                code_dir=self._root / properties["Code"]["S3Key"],
                handler=properties["Handler"],
                layer_dirs=tuple(self._layer_dirs[arn] for arn in properties.get("Layers", [])),
                environment={key: str(value) for key, value in
                             properties.get("Environment", {}).get("Variables", {}).items()},
                timeout=int(properties.get("Timeout", 3)),
                memory_mb=int(properties.get("MemorySize", 128)),
            )
        elif kind == "AWS::Lambda::EventSourceMapping":
            arn = properties["EventSourceArn"]
            if ":sqs:" not in arn:
                raise ValueError(f"{logical_id}: only SQS event sources run locally")
            function = next(fid for fid, name in resolver.refs.items()
                            if name == properties["FunctionName"])
            result.queue_sources.append(QueueSource(
                function=function,
                queue_url=self._sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"],
                queue_arn=arn,
                batch_size=int(properties.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures"
                in properties.get("FunctionResponseTypes", []),
                visibility_timeout=self._queue_timeouts.get(arn, 30),
            ))
        elif kind == "AWS::ApiGatewayV2::Api":
            result.routes.extend(self._routes(properties["Body"], resolver))
        elif kind == "AWS::Events::Rule":  # a schedule: the local runtime's timer
            result.schedules.extend(schedule_sources(resolver.attributes[(logical_id, "Arn")],
                properties, {resolver.attributes[(function, "Arn")]: (function, spec.code_dir.name)
                             for function, spec in result.functions.items()}, PSEUDO_ACCOUNT))

    @staticmethod
    def _containers(logical_id: str, resource: dict[str, Any],
                    resolver: Resolver) -> list[ContainerSpec]:
        """Whatever the task's condition says: it guards the VPC, load balancer and service that
        exist only in AWS, while the container itself runs locally as a process. Only the
        environment is resolved: the image, roles, secrets and log group are AWS's alone."""
        return [
            ContainerSpec(
                task_definition=logical_id,
                name=container["Name"],
                environment={entry["Name"]: str(resolver.resolve(entry["Value"]))
                             for entry in container.get("Environment", [])},
            )
            for container in resource["Properties"]["ContainerDefinitions"]
        ]

    def _routes(self, body: dict[str, Any], resolver: Resolver) -> list[Route]:
        schemes = body.get("components", {}).get("securitySchemes", {})
        function_by_arn = {value: logical for (logical, attribute), value in
                           resolver.attributes.items() if attribute == "Arn"}
        routes = []
        for path, methods in body.get("paths", {}).items():
            for method, operation in methods.items():
                uri = operation["x-amazon-apigateway-integration"]["uri"]
                function = next(logical for arn, logical in function_by_arn.items()
                                if f"/functions/{arn}/" in uri)
                authorizer = None
                for requirement in operation.get("security", []):
                    for scheme_name in requirement:
                        scheme = schemes.get(scheme_name, {})
                        jwt = scheme.get("x-amazon-apigateway-authorizer", {}).get(
                            "jwtConfiguration")
                        if jwt:
                            audience = jwt.get("audience", [])
                            authorizer = JwtAuthorizer(
                                issuer=jwt["issuer"],
                                audience=tuple(audience if isinstance(audience, list)
                                               else [audience]),
                            )
                routes.append(Route(method.upper(), path, function, authorizer))
        return routes


def provision(root: Path, stack_name: str, parameters: dict[str, str],
              session: boto3.session.Session, endpoint: str | None = None,
              region: str = "us-east-1") -> Provisioned:
    """`root`/template.yaml, expanded as `sam deploy` expands it, created in moto: the one
    way the local stack, the tests and the benchmarks build their AWS. `endpoint` is
    moto's server, or None for moto in this process (mock_aws)."""
    template = translate(load_template(root / "template.yaml"), {
        "AWS::Region": region, "AWS::AccountId": PSEUDO_ACCOUNT,
        "AWS::StackName": stack_name}, region)
    return Provisioner(session, endpoint, root, stack_name, region).provision(template,
                                                                              parameters)
