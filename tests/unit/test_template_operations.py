"""What operations rely on, read from template.yaml: alarms reach someone, queues keep
what they hold long enough, the API is throttled. (Whom the edge trusts:
test_template_edge_trust.py.)"""

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

