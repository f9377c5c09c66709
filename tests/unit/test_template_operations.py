"""What operations rely on, read from template.yaml: alarms reach someone, queues keep
what they hold long enough, the API is throttled, the edge trusts only its load balancer."""

from __future__ import annotations

from pathlib import Path

from mailpipe.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = load_template(ROOT / "template.yaml")["Resources"]
FOURTEEN_DAYS = 14 * 24 * 3600


def test_every_alarm_notifies_the_alarm_topic_and_an_address_can_subscribe():
    alarms = {name: resource for name, resource in RESOURCES.items()
              if resource["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_every_queue_keeps_its_messages_fourteen_days():
    queues = {name: resource for name, resource in RESOURCES.items()
              if resource["Type"] == "AWS::SQS::Queue"}
    assert {"InboundQueue", "InboundDeadLetterQueue", "OutgoingQueue"} <= set(queues)
    for name, queue in queues.items():
        assert queue["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS, name


def test_the_http_api_is_throttled():
    settings = RESOURCES["MailApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {"ThrottlingRateLimit": {"Ref": "ApiRateLimit"},
                        "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"}}


def test_edge_ports_admit_only_the_vpc_and_proxy_headers_are_trusted_only_from_it():
    ingress = RESOURCES["EdgeSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert {rule["FromPort"] for rule in ingress} == {2525, 2587, 2143, 2993, 8080, 8081}
    for rule in ingress:
        assert rule["CidrIp"] == {"Ref": "EdgeVpcCidr"}, rule
    containers = RESOURCES["EdgeTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert len(containers) == 2  # SMTP and IMAP
    for container in containers:
        environment = {item["Name"]: item["Value"] for item in container["Environment"]}
        assert environment["MAILPIPE_PROXY_PROTOCOL"] == "true"
        assert environment["MAILPIPE_PROXY_TRUSTED_NETWORKS"] == {"Ref": "EdgeVpcCidr"}
