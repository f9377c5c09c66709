"""Who the edge trusts, read from template.yaml and evaluated as CloudFormation would for
a given deployment: the tasks' ports admit the load balancer's security group and nothing
else, and PROXY headers are believed from the load balancer's own fixed addresses only,
not from every host of the VPC or of the subnets it shares with the tasks."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from edge.smtp.server import EdgeConfig
from mailpipe.local.template import NO_VALUE, Resolver, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
LOAD_BALANCER_GROUP = {"Ref": "EdgeLoadBalancerSecurityGroup"}

SUBNETS = ["subnet-0a1b2c3d", "subnet-1a1b2c3d", "subnet-2a1b2c3d"]
ADDRESSES = ["10.0.1.10", "10.0.2.10", "10.0.3.10"]


def deployed(subnets: list[str], addresses: list[str], **parameters: Any) -> Resolver:
    """The template's parameters and conditions for one deployment with the edge; each
    resource's Ref is its logical id. List parameters are lists, as CloudFormation has
    them."""
    values: dict[str, Any] = {name: spec.get("Default", "")
                              for name, spec in TEMPLATE["Parameters"].items()}
    values.update({"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
                   "AWS::StackName": "mail", "AWS::Partition": "aws",
                   "AWS::URLSuffix": "amazonaws.com",
                   "EdgeImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/edge:1",
                   "EdgeVpcId": "vpc-0a1b2c3d", "EdgeVpcCidr": "10.0.0.0/16",
                   "EdgeSubnetIds": subnets, "EdgeLoadBalancerAddresses": addresses,
                   **parameters})
    resolver = Resolver(values)
    resolver.evaluate_conditions(TEMPLATE["Conditions"])
    resolver.refs.update({logical_id: logical_id for logical_id in RESOURCES})
    return resolver


def load_balancer_addresses(resolver: Resolver) -> set[str]:
    properties = RESOURCES["EdgeLoadBalancer"]["Properties"]
    assert "Subnets" not in properties  # an address can be fixed only by SubnetMappings
    mappings = resolver.resolve(properties["SubnetMappings"])
    return {mapping["PrivateIPv4Address"] for mapping in mappings}


def edge_environments(resolver: Resolver) -> list[dict[str, str]]:
    """Each container's environment, as the task would have it."""
    containers = RESOURCES["EdgeTaskDefinition"]["Properties"]["ContainerDefinitions"]
    environments = []
    for container in containers:
        environment = {}
        for entry in container.get("Environment", []):
            value = resolver.resolve(entry["Value"])
            if value is not NO_VALUE:
                environment[entry["Name"]] = str(value)
        environments.append(environment)
    return environments


def proxied_configs(resolver: Resolver) -> list[EdgeConfig]:
    """The edge's configuration in every container that takes PROXY headers, read by the
    edge's own code (edge_imap takes the same proxy_trusted from it)."""
    configs = [EdgeConfig.from_environ(environment, "mx.example.com")
               for environment in edge_environments(resolver)]
    proxied = [config for config in configs if config.proxy_protocol]
    assert proxied, "no container of the edge takes PROXY headers"
    return proxied


def trusts(config: EdgeConfig, peer: str) -> bool:
    address = ipaddress.ip_address(peer)
    return any(address in network for network in config.proxy_trusted)


def ingress_of(group: str) -> list[dict[str, Any]]:
    """A security group's ingress rules, inline or as separate resources."""
    rules = list(RESOURCES[group]["Properties"].get("SecurityGroupIngress", []))
    rules += [resource["Properties"] for resource in RESOURCES.values()
              if resource["Type"] == "AWS::EC2::SecurityGroupIngress"
              and resource["Properties"].get("GroupId") in ({"Ref": group},
                                                             {"Fn::GetAtt": [group, "GroupId"]})]
    return rules


def covers(rules: list[dict[str, Any]], port: int) -> list[dict[str, Any]]:
    return [rule for rule in rules if int(rule["FromPort"]) <= port <= int(rule["ToPort"])]


def target_groups() -> dict[str, dict[str, Any]]:
    return {name: resource["Properties"] for name, resource in RESOURCES.items()
            if resource["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"}


def edge_ports() -> set[int]:
    """Every port the load balancer reaches the tasks on: traffic and health checks."""
    ports = set()
    for properties in target_groups().values():
        ports.add(int(properties["Port"]))
        ports.add(int(properties["HealthCheckPort"]))
    return ports


# ---- security groups -------------------------------------------------------------------
def test_the_tasks_admit_their_ports_only_from_the_load_balancers_security_group():
    rules = ingress_of("EdgeSecurityGroup")
    assert rules
    for rule in rules:
        assert rule.get("SourceSecurityGroupId") == LOAD_BALANCER_GROUP, rule
        for source in ("CidrIp", "CidrIpv6", "SourcePrefixListId", "SourceSecurityGroupName"):
            assert source not in rule, rule
    for port in edge_ports():
        assert covers(rules, port), f"port {port} is not admitted from the load balancer"
    service = RESOURCES["EdgeService"]["Properties"]["NetworkConfiguration"]
    assert service["AwsvpcConfiguration"]["SecurityGroups"] == [{"Ref": "EdgeSecurityGroup"}]


def test_the_load_balancer_has_its_own_security_group_open_only_on_its_listeners():
    balancer = RESOURCES["EdgeLoadBalancer"]["Properties"]
    assert balancer["Type"] == "network"
    assert balancer["SecurityGroups"] == [LOAD_BALANCER_GROUP]
    group = RESOURCES["EdgeLoadBalancerSecurityGroup"]["Properties"]
    listeners = {int(resource["Properties"]["Port"]) for resource in RESOURCES.values()
                 if resource["Type"] == "AWS::ElasticLoadBalancingV2::Listener"}
    assert listeners == {25, 587, 143, 993}
    ingress = group["SecurityGroupIngress"]
    assert {int(rule["FromPort"]) for rule in ingress} == listeners
    for rule in ingress:
        assert rule["FromPort"] == rule["ToPort"], rule
    # Out only to the edge's ports, inside the VPC.
    egress = group["SecurityGroupEgress"]
    for rule in egress:
        assert rule["CidrIp"] == {"Ref": "EdgeVpcCidr"}, rule
        assert rule["IpProtocol"] == "tcp" and rule["FromPort"] == rule["ToPort"], rule
    assert {int(rule["FromPort"]) for rule in egress} == edge_ports()


def test_the_load_balancer_connects_from_its_own_addresses_with_the_client_in_proxy_v2():
    # Were the client's address preserved, connections would come from the Internet and
    # the PROXY header would have to be trusted from anywhere.
    for name, properties in target_groups().items():
        attributes = {item["Key"]: item["Value"] for item in properties["TargetGroupAttributes"]}
        assert properties["TargetType"] == "ip", name
        assert attributes["proxy_protocol_v2.enabled"] == "true", name
        assert attributes["preserve_client_ip.enabled"] == "false", name


# ---- PROXY trust -------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 2, 3])
def test_proxy_headers_are_trusted_from_exactly_the_load_balancers_fixed_addresses(count):
    resolver = deployed(SUBNETS[:count], ADDRESSES[:count])
    mappings = resolver.resolve(RESOURCES["EdgeLoadBalancer"]["Properties"]["SubnetMappings"])
    # One address in each subnet, in the order given.
    assert [(mapping["SubnetId"], mapping["PrivateIPv4Address"]) for mapping in mappings] == (
        list(zip(SUBNETS[:count], ADDRESSES[:count], strict=True)))
    fixed = load_balancer_addresses(resolver)
    # As the task has it: the same addresses, each as a /32.
    for environment in edge_environments(resolver):
        if environment.get("MAILPIPE_PROXY_PROTOCOL") == "true":
            assert environment["MAILPIPE_PROXY_TRUSTED_NETWORKS"] == ",".join(
                f"{address}/32" for address in ADDRESSES[:count])
    # As the edge reads it.
    for config in proxied_configs(resolver):
        assert set(config.proxy_trusted) == {ipaddress.ip_network(f"{address}/32")
                                             for address in fixed}


@pytest.mark.parametrize("peer", [
    "10.0.1.11",     # the next address in the load balancer's subnet: a task, say
    "10.0.1.9",
    "10.0.2.200",    # another subnet of the VPC
    "10.0.0.1",
    "10.0.255.254",  # the VPC's last host
    "127.0.0.1",     # the edge's own default, which the template must not fall back to
    "203.0.113.7",   # the Internet
])
def test_no_other_address_of_the_vpc_or_the_subnets_is_trusted(peer):
    resolver = deployed(SUBNETS, ADDRESSES)
    for config in proxied_configs(resolver):
        assert not trusts(config, peer)
        for address in ADDRESSES:
            assert trusts(config, address)


def test_a_deployment_with_the_edge_must_name_the_load_balancers_addresses():
    [rule] = TEMPLATE["Rules"].values()
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "EdgeImageUri"}, ""]}]}
    assert rule["Assertions"] == [{
        "Assert": {"Fn::Not": [{"Fn::EachMemberEquals": [
            {"Ref": "EdgeLoadBalancerAddresses"}, ""]}]},
        "AssertDescription": rule["Assertions"][0]["AssertDescription"],
    }]
    # Without the edge (and in the local runtime, which runs the container without a load
    # balancer) nothing is named, and the edge keeps its loopback default.
    resolver = deployed([""], [""], EdgeImageUri="")
    assert not resolver.conditions["HasEdgeLoadBalancerAddresses"]
    for environment in edge_environments(resolver):
        assert environment.get("MAILPIPE_PROXY_TRUSTED_NETWORKS", "") == ""
