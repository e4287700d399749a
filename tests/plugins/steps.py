"""Small step plugins for the tests: one that raises, one that waits, one that misbehaves."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from msgspec import Meta

from plugins import (
    CallInput,
    CallResult,
    Complete,
    Decision,
    Fail,
    Notice,
    PeopleRule,
    Perform,
    ScheduleTimer,
    Step,
    StepConfig,
    StepInput,
    Text,
)
from plugins.decisions import OpenTasks


class ProbeConfig(StepConfig, frozen=True, kw_only=True):
    """`fail_times`: how many calls of the hook raise before it works (-1: always)."""

    fail_times: Annotated[int, Meta(ge=-1)] = -1
    limit: Annotated[int, Meta(ge=0)] = 10
    person: int = 3


class Raising(Step[ProbeConfig]):
    """`decide` raises `fail_times` times (counted per instance of the plugin), then opens a
    task for `person` (3: the marketing head in the runtime tests' organisation)."""

    name = "raising"
    title = Text(zh="会出错的步骤", en="Raising step")
    description = Text(zh="测试用", en="For tests")
    config_type = ProbeConfig

    def __init__(self) -> None:
        self.calls = 0

    def decide(self, step: StepInput[ProbeConfig]) -> Decision:
        self.calls += 1
        if step.config.fail_times < 0 or self.calls <= step.config.fail_times:
            raise RuntimeError("boom")
        return OpenTasks(assignees=PeopleRule(ids=(step.config.person,)), why={"because": "probe"})


class SleeperConfig(StepConfig, frozen=True, kw_only=True):
    until: dt.datetime
    past_timer: bool = False


class Sleeper(Step[SleeperConfig]):
    """Waits until `until` (a timer), then passes with a notice to the initiator."""

    name = "sleeper"
    title = Text(zh="等待", en="Sleeper")
    description = Text(zh="测试用", en="For tests")
    config_type = SleeperConfig

    def decide(self, step: StepInput[SleeperConfig]) -> Decision:
        if step.config.past_timer:
            return ScheduleTimer(at=step.now - dt.timedelta(minutes=1))
        if step.now < step.config.until:
            return ScheduleTimer(at=step.config.until, note="not yet")
        return Complete(note="awake", notify=(Notice(recipients=(step.initiator.id,), text="醒了"),))


class Garbage(Step[ProbeConfig]):
    """Returns something that is not a decision."""

    name = "garbage"
    title = Text(zh="错误返回", en="Garbage")
    description = Text(zh="测试用", en="For tests")
    config_type = ProbeConfig

    def decide(self, step: StepInput[ProbeConfig]) -> Decision:
        return "approve please"  # type: ignore[return-value]


class Flaky(Step[ProbeConfig]):
    """A side-effect step whose `perform` raises `fail_times` times, then completes."""

    name = "flaky"
    title = Text(zh="不稳定的外部调用", en="Flaky call")
    description = Text(zh="测试用", en="For tests")
    config_type = ProbeConfig

    def __init__(self) -> None:
        self.performed: list[str] = []

    def decide(self, step: StepInput[ProbeConfig]) -> Decision:
        return Perform()

    def perform(self, call: CallInput[ProbeConfig]) -> CallResult:
        self.performed.append(call.idempotency_key)
        if call.config.fail_times < 0 or len(self.performed) <= call.config.fail_times:
            raise ConnectionError("the other system is down")
        if call.config.limit == 0:
            return Fail(reason="the other system said no", retry=False)
        return Complete(note="done")


class NoDecide:
    """Not a step plugin: it has no `decide`."""

    name = "no-decide"
    title = Text(zh="无", en="None")
    description = Text(zh="无", en="None")
    config_type = ProbeConfig


class Unbuildable(Step[ProbeConfig]):
    name = "unbuildable"
    title = Text(zh="无法创建", en="Unbuildable")
    description = Text(zh="测试用", en="For tests")
    config_type = ProbeConfig

    def __init__(self) -> None:
        raise ValueError("needs a licence key")
