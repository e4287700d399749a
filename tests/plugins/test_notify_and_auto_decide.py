"""The notify and auto-decide built-ins, with the test kit and through the engine."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import pytest

from plugins import Complete, Fail, Notice, OpenTasks, Outcome, Perform, SmtpSettings
from plugins.builtin.auto_decide import AutoDecide
from plugins.builtin.notify import Notify, RobotKind, RobotRefused, render, robot_request
from plugins.testing import FINANCE, MARKETING_HEAD, STAFF, FakeContacts, StepKit
from runtime.flow import Status
from runtime.flow.effects import Notify as NotifyEffect
from tests.plugins.support import Receiver

TEMPLATE = "{initiator}（{department}）的申请 {number}：预算 {budget} 元，{missing}请知悉"
TO_FINANCE = {"kind": "role", "role": "finance_specialist"}


# -- notify --------------------------------------------------------------------------------------


def test_in_app_only_passes_at_once_with_the_notice() -> None:
    kit = StepKit(Notify())
    decision = kit.decide(
        {"template": TEMPLATE, "recipients": TO_FINANCE}, data={"budget": Decimal("200000")}
    )
    text = "张伟（市场部）的申请 FL202509001：预算 200,000.00 元，请知悉"
    assert decision == Complete(note="站内信 1 人", notify=(Notice(recipients=(FINANCE,), text=text),))


def test_in_app_notices_go_out_through_the_engines_notifications() -> None:
    run = StepKit(Notify()).run({"template": "新申请 {number}", "recipients": TO_FINANCE})
    assert run.status is Status.ARCHIVED
    (notice,) = [e for e in run.effects if isinstance(e, NotifyEffect)]
    assert (notice.template, notice.recipients, notice.payload["note"]) == (
        "plugin_notice",
        (FINANCE,),
        "新申请 FL202509001",
    )


async def test_an_in_app_notice_arrives_titled_with_the_plugins_text(db: None) -> None:
    from runtime.notifications import deliver
    from storage.tables import Notification
    from tests.service.support import Clock, person_id

    staff = await person_id("e1001")
    payload = {
        "recipients": [staff],
        "template": "plugin_notice",
        "data": {"node_id": "notice", "note": "预算已同步到财务系统"},
        "title": "2025年Q4新品推广会",
        "number": "FL202509001",
        "instance_id": 1,
    }
    assert await deliver("notice-1", payload, Clock()()) == 1
    row = (
        await Notification.select(Notification.title, Notification.body)
        .where(Notification.person == staff)
        .first()
    )
    assert row == {"title": "流程通知：2025年Q4新品推广会（FL202509001）", "body": "预算已同步到财务系统"}


def test_other_channels_wait_for_the_actor() -> None:
    config = {"template": "x", "recipients": TO_FINANCE, "channels": ["in_app", "email"]}
    decision = StepKit(Notify()).decide(config)
    assert isinstance(decision, Perform) and decision.notify[0].recipients == (FINANCE,)


class FakeSMTP:
    sent: list[EmailMessage] = []

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host

    def __enter__(self) -> FakeSMTP:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send_message(self, message: EmailMessage) -> None:
        FakeSMTP.sent.append(message)


@pytest.fixture()
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EmailMessage]]:
    FakeSMTP.sent = []
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    yield FakeSMTP.sent


def test_e_mail_goes_to_the_recipients_with_addresses(smtp: list[EmailMessage]) -> None:
    kit = StepKit(
        Notify(),
        smtp=SmtpSettings(host="mail.example.com", sender="flow@example.com"),
        contacts=FakeContacts({FINANCE: "liuyang@example.com"}),
    )
    config = {
        "template": "预算 {budget}",
        "subject": "{number} 待复核",
        "recipients": TO_FINANCE,
        "channels": ["email"],
    }
    result = kit.perform(config, data={"budget": Decimal("1234.5")})
    assert result == Complete(note="e-mail to 1")
    (message,) = smtp
    assert (message["To"], message["Subject"], message.get_content().strip()) == (
        "liuyang@example.com",
        "FL202509001 待复核",
        "预算 1,234.50",
    )
    assert message["Message-ID"] == "<FL202509001.1.0@formflow>"


def test_without_smtp_e_mail_is_skipped_not_failed(smtp: list[EmailMessage]) -> None:
    config = {"template": "x", "recipients": TO_FINANCE, "channels": ["email"]}
    assert StepKit(Notify()).perform(config) == Complete(note="e-mail skipped: SMTP is not configured")
    assert smtp == []


class RobotReceiver(Receiver):
    """Answers like a group robot: {"errcode": 0} or the code set in `code`."""

    def __init__(self, code: int = 0) -> None:
        super().__init__(signed=False)
        self.answer = json.dumps(
            {"errcode": code, "errmsg": "ok" if code == 0 else "keywords not in content"}
        ).encode()


@pytest.mark.parametrize("kind", list(RobotKind))
def test_a_robot_message_is_posted(kind: RobotKind) -> None:
    with RobotReceiver().running() as robot:
        kit = StepKit(Notify(), secrets={"robot": robot.url})
        config = {
            "template": "{number} 已提交",
            "channels": ["robot"],
            "robot": {"kind": kind, "webhook": "robot"},
        }
        assert kit.perform(config) == Complete(note=f"{kind} robot")
        body = robot.received[0].json()
    text = body["text"]["content"] if kind != RobotKind.FEISHU else body["content"]["text"]
    assert text == "FL202509001 已提交"


def test_dingtalk_and_feishu_signatures() -> None:
    url, _ = robot_request(
        RobotKind.DINGTALK,
        "https://oapi.dingtalk.com/robot/send?access_token=t",
        "SEC1",
        "hi",
        1_700_000_000.5,
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    digest = hmac.new(b"SEC1", b"1700000000500\nSEC1", hashlib.sha256).digest()
    assert query["timestamp"] == ["1700000000500"] and query["sign"] == [base64.b64encode(digest).decode()]
    _, body = robot_request(RobotKind.FEISHU, "https://open.feishu.cn/hook/x", "SEC2", "hi", 1_700_000_000.5)
    digest = hmac.new(b"1700000000\nSEC2", b"", hashlib.sha256).digest()
    assert (body["timestamp"], body["sign"]) == ("1700000000", base64.b64encode(digest).decode())


def test_a_robot_that_refuses_is_retried_and_a_missing_secret_is_not() -> None:
    with RobotReceiver(code=310000).running() as robot:
        kit = StepKit(Notify(), secrets={"robot": robot.url})
        config = {"template": "x", "channels": ["robot"], "robot": {"kind": "dingtalk", "webhook": "robot"}}
        with pytest.raises(RobotRefused, match="310000"):
            kit.perform(config)
    assert StepKit(Notify()).perform(config) == Fail(
        reason="the secret 'robot' (robot webhook) is not configured", retry=False
    )


@pytest.mark.parametrize(
    ("config", "problems"),
    [
        ({"template": "预算 {budget}", "recipients": TO_FINANCE}, []),
        ({"template": "{nope}", "recipients": TO_FINANCE}, ["config.template: unknown placeholder {nope}"]),
        (
            {"template": "{budget.x}", "recipients": TO_FINANCE},
            ["config.template: {budget.x} is not a placeholder ({field_key})"],
        ),
        ({"template": "x"}, ["config.recipients: in-app messages and e-mails need recipients"]),
        ({"template": "x", "channels": ["robot"]}, ["config.robot: the robot channel needs a robot"]),
        ({"template": "x", "channels": []}, ["config.channels: expected `array` of length >= 1"]),
    ],
)
def test_notify_config_problems(config: dict[str, Any], problems: list[str]) -> None:
    assert StepKit(Notify()).check(config, fields={"budget": "money"}) == problems


def test_render_leaves_unknown_names_empty() -> None:
    assert render("{a}-{b}-{c", {"a": "1"}) == "1--{c"


# -- auto-decide ------------------------------------------------------------------------------------

SMALL = {"when": "form.budget < 1000", "then": "approve", "note": "小额自动通过"}


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (
            500,
            Complete(
                outcome=Outcome.CONTINUE, note="小额自动通过", output={"condition": "form.budget < 1000"}
            ),
        ),
        (
            5000,
            Complete(note="条件不成立，继续流程", output={"condition": "form.budget < 1000", "held": False}),
        ),
    ],
)
def test_auto_decide_approves_small_amounts(budget: int, expected: Complete) -> None:
    assert StepKit(AutoDecide()).decide(SMALL, data={"budget": Decimal(budget)}) == expected


def test_auto_decide_can_reject_or_hand_over_to_people() -> None:
    kit = StepKit(AutoDecide())
    rejected = kit.decide(
        {"when": "form.budget > 1000000", "then": "reject"}, data={"budget": Decimal(2_000_000)}
    )
    assert rejected == Complete(
        outcome=Outcome.REJECT, note="条件成立，自动驳回", output={"condition": "form.budget > 1000000"}
    )
    config = {**SMALL, "otherwise": {"assignees": {"kind": "department_head"}, "mode": "any"}}
    run = kit.run(config, data={"budget": Decimal(5000)})
    assert run.assignees() == [MARKETING_HEAD]
    assert isinstance(kit.decide(config, data={"budget": Decimal(5000)}), OpenTasks)
    assert kit.run(config, data={"budget": Decimal(50)}).status is Status.ARCHIVED


def test_auto_decide_reads_the_initiator_like_branch_conditions() -> None:
    kit = StepKit(AutoDecide())
    config = {"when": "initiator.department_code == 'MKT'", "then": "approve"}
    assert kit.decide(config).outcome == Outcome.CONTINUE  # type: ignore[union-attr]
    assert kit.decide(config, initiator=FINANCE).output == {"condition": config["when"], "held": False}  # type: ignore[union-attr]


def test_auto_decide_sees_only_what_the_mask_shows() -> None:
    config = {**SMALL, "field_permissions": {"budget": "hidden"}}
    decision = StepKit(AutoDecide()).decide(config, data={"budget": Decimal(10)})
    assert decision.output["held"] is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("when", "problems"),
    [
        ("form.budget < 1000", []),
        ("form.budget <", ["config.when: condition does not parse: "]),
        ("budget < 1000", ["config.when: unknown name 'budget'"]),
        ("form.budgett < 1000", ["config.when: unknown field 'budgett'"]),
        ("initiator.salary > 1", ["config.when: unknown initiator attribute 'salary'"]),
    ],
)
def test_auto_decide_config_problems(when: str, problems: list[str]) -> None:
    found = StepKit(AutoDecide()).check({"when": when}, fields={"budget": "money"})
    assert [p[: len(q)] for p, q in zip(found, problems, strict=True)] == problems


def test_the_kit_default_initiator_is_marketing_staff() -> None:
    assert StepKit(AutoDecide()).input({"when": "true"}).initiator.id == STAFF
